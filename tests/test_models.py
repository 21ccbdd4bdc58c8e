import numpy as np
import pytest

from digitkit import DigitkitError
from digitkit.models import MODELS, build_model


@pytest.mark.parametrize(
    "name, params",
    [("tutorial", 94_602), ("keras-example", 1_199_882), ("digitnet", 105_386), ("digitnet-small", 29_658),
     ("digitnet-large", 227_194)],
)
def test_parameter_counts(name, params):
    assert build_model(name).count_params() == params


def test_the_settings_name_every_model_the_registry_builds():
    # The training settings list the names without importing Keras; they must not drift apart.
    from digitkit.train import config

    assert config.MODELS == tuple(MODELS)


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_image_in_probabilities_out(name, rng):
    model = build_model(name)
    assert model.input_shape == (None, 28, 28, 1)
    probs = np.asarray(model(rng.random((3, 28, 28, 1)).astype("float32"), training=False).detach())
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs >= 0).all()


def test_tutorial_layers_match_the_tutorial():
    kinds = [layer.__class__.__name__ for layer in build_model("tutorial").layers]
    assert kinds == ["Reshape", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "MaxPooling2D", "Dropout",
                     "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dense"]


def test_unknown_model():
    with pytest.raises(DigitkitError, match="unknown model 'resnet'"):
        build_model("resnet")


@pytest.mark.parametrize("name", list(MODELS))
def test_portable_form_predicts_the_same_with_standard_layers(name, rng):
    import keras

    from digitkit.models import portable

    model = build_model(name)
    for layer in model.layers:  # non-trivial batch-norm statistics
        if "batch" in layer.name:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    saved = portable(model)
    x = rng.random((4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x, training=False).detach()), np.asarray(saved(x, training=False).detach()),
                               atol=1e-5)
    assert all(type(layer).__module__.startswith("keras.") for layer in saved.layers)
    assert {getattr(layer, "data_format", "channels_last") for layer in saved.layers} == {"channels_last"}
    assert isinstance(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(saved)), keras.Model)


def test_copy_weights_can_leave_the_head_for_new_classes(rng):
    from digitkit.models import copy_weights, portable

    source = portable(build_model("digitnet"))
    target = build_model("digitnet", num_classes=3)
    head_before = [w.copy() for w in target.layers[-1].get_weights()]
    copy_weights(source, target, skip_head=True)
    np.testing.assert_array_equal(source.layers[0].get_weights()[0], target.layers[1].get_weights()[0])  # first conv
    for before, after in zip(head_before, target.layers[-1].get_weights()):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(DigitkitError, match="different architectures|shapes differ"):
        copy_weights(build_model("tutorial"), build_model("digitnet"))


def test_fold_temperature_scales_the_logits(rng):
    from digitkit.models import fold_temperature
    from digitkit.train.calibrate import apply_temperature

    model = build_model("digitnet")
    x = rng.random((5, 28, 28, 1)).astype("float32")
    before = np.asarray(model(x, training=False).detach())
    fold_temperature(model, 0.5)
    after = np.asarray(model(x, training=False).detach())
    np.testing.assert_allclose(after, apply_temperature(before, 0.5), atol=1e-5)
    assert (after.argmax(1) == before.argmax(1)).all() and after.max() > before.max()


def test_temperature_fit_recovers_a_known_temperature(rng):
    from digitkit.train.calibrate import apply_temperature, fit_temperature

    logits = rng.normal(0, 3, (4000, 10))
    labels = np.array([rng.choice(10, p=np.exp(row) / np.exp(row).sum()) for row in logits])
    overconfident = apply_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.4)
    assert fit_temperature(overconfident, labels) == pytest.approx(1 / 0.4, rel=0.1)
    # A model that averages answers is calibrated as it answers: the same answer five times is one
    # answer; five that disagree average to a less sure one, which needs a sharper temperature.
    assert fit_temperature(np.stack([overconfident] * 5), labels) == pytest.approx(fit_temperature(overconfident, labels))
    noisy = np.stack([apply_temperature(np.exp(logits + rng.normal(0, 2, logits.shape)), 0.4) for _ in range(5)])
    assert fit_temperature(noisy, labels) < fit_temperature(noisy.mean(0), labels)


def test_shift_averaged_model_averages_the_shifted_images(rng):
    import keras

    from digitkit.models import SHIFTS, base_model, portable, registry_name, shift_averaged, shift_images

    base = portable(build_model("digitnet"))
    averaged = shift_averaged(base)
    x = rng.random((4, 28, 28, 1)).astype("float32")
    expected = np.mean([np.asarray(base(shift_images(x, dy, dx), training=False).detach()) for dy, dx in SHIFTS], axis=0)
    np.testing.assert_allclose(np.asarray(averaged(x, training=False).detach()), expected, atol=1e-6)
    # The shifts move the image one pixel, zeros coming in at the edge.
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 5, 7] = 1
    assert shift_images(image, 1, 0)[0, 6, 7] == 1 and shift_images(image, 0, -1)[0, 5, 6] == 1
    assert shift_images(image, -1, 0).sum() == 1 and shift_images(np.ones((1, 3, 3)), 1, 0)[0, 0].sum() == 0
    # Standard layers only, the base's weights not repeated, and the base found again.
    assert averaged.count_params() == base.count_params() + 4 * 9
    assert base_model(averaged) is base and base_model(base) is base and registry_name(averaged) == "digitnet"
    assert isinstance(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(averaged)), keras.Model)
