import json

import numpy as np
import pytest
import torch

from digitkit import DigitkitError
from digitkit.runs import Run
from digitkit.train import PRESETS, TrainConfig, precision, train
from digitkit.train.precision import training_arithmetic

RUN_FILES = {"model.keras", "config.json", "history.json", "metrics.json", "curves.png",
             "confusion_matrix.png", "misclassified.png"}


def quick(tmp_path, data_dir, **overrides):
    base = dict(limit=600, epochs=1, val_size=200, runs_dir=str(tmp_path), data_dir=str(data_dir))
    return TrainConfig.from_preset(**(base | overrides))


def test_short_run_writes_a_complete_run_folder(tmp_path, tiny_mnist_dir):
    run = train(quick(tmp_path, tiny_mnist_dir, name="r1", epochs=2, limit=1000, batch_size=64), quiet=True)
    assert {p.name for p in run.path.iterdir()} == RUN_FILES
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert 0.5 < metrics["test_accuracy"] <= 1.0  # 100 steps on 1,000 digits already learn a lot
    assert metrics["num_test"] == 300
    assert metrics["arithmetic"] == training_arithmetic(torch.device("cpu"))
    assert sum(map(sum, metrics["confusion_matrix"])) == 300
    history = json.loads((run.path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"] == "digitnet" and config["preset"] == "default"
    assert Run.open(run.path).load_model().count_params() == 105_386


def test_same_seed_same_weights_on_cpu(tmp_path, tiny_mnist_dir):
    a = train(quick(tmp_path, tiny_mnist_dir, name="a", limit=300), quiet=True).load_model()
    b = train(quick(tmp_path, tiny_mnist_dir, name="b", limit=300), quiet=True).load_model()
    c = train(quick(tmp_path, tiny_mnist_dir, name="c", limit=300, seed=1), quiet=True).load_model()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


@pytest.mark.parametrize("best", [1, 2])
def test_the_saved_model_is_the_best_epochs(tmp_path, tiny_mnist_dir, monkeypatch, best):
    """model.keras holds the epoch of the lowest validation loss: the last one from memory, an
    earlier one from its checkpoint."""
    from digitkit.train import loop

    evaluate, epochs = loop._evaluate, []

    def lowest_at_best(session):
        epochs.append(None)
        return (1.0 if len(epochs) == best else 2.0), evaluate(session)[1]

    monkeypatch.setattr(loop, "_evaluate", lowest_at_best)
    kernels = []  # the first convolution's kernel after each epoch
    run = train(quick(tmp_path, tiny_mnist_dir, name=f"best{best}", epochs=2, limit=300), quiet=True,
                on_epoch_end=lambda epoch, model, logs: kernels.append(model.trainable_weights[0].numpy().copy()))
    assert run.metrics["best_epoch"] == best and len(kernels) == 2
    saved = Run.open(run.path).load_model().trainable_weights[0].numpy()
    np.testing.assert_array_equal(saved, kernels[best - 1])
    assert not np.array_equal(saved, kernels[2 - best])


@pytest.mark.parametrize("computes_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_cpus_that_compute_bf16_train_in_bf16_and_others_in_fp32(monkeypatch, computes_bf16, expected):
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: computes_bf16)
    cpu = torch.device("cpu")
    assert training_arithmetic(cpu) == expected
    assert isinstance(precision.mixed_precision(cpu), torch.autocast) == (expected == "bf16")
    assert (training_arithmetic(cpu, "fp32"), training_arithmetic(cpu, "bf16")) == ("fp32", "bf16")
    assert training_arithmetic(torch.device("cuda")) == "bf16"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_are_wired(tmp_path, tiny_mnist_dir, preset):
    config = quick(tmp_path, tiny_mnist_dir, preset=preset, name=preset, limit=256, epochs=1)
    recipe = PRESETS[preset]
    assert (config.model, config.batch_size, config.lr, config.augment) == (
        recipe.model, recipe.batch_size, recipe.lr, recipe.augment)
    run = train(config, quiet=True)
    saved = json.loads((run.path / "config.json").read_text())
    assert saved["preset"] == preset and saved["model"] == recipe.model


def test_model_alone_picks_its_recipe_and_flags_override():
    config = TrainConfig.from_preset(model="tutorial", epochs=3)
    assert (config.preset, config.optimizer, config.schedule, config.batch_size, config.epochs) == (
        "tutorial", "adam", "constant", 200, 3)
    assert TrainConfig.from_preset(model="keras-example").model == "keras-example"


@pytest.mark.parametrize(
    "overrides, message",
    [({"epochs": 0}, "epochs must be a whole number of at least 1"), ({"batch_size": 0}, "batch size must"),
     ({"lr": -1.0}, "lr must be a number above 0"), ({"preset": "turbo"}, "preset 'turbo' is unknown")],
)
def test_bad_config(tmp_path, tiny_mnist_dir, overrides, message):
    with pytest.raises(DigitkitError, match=message):
        train(quick(tmp_path, tiny_mnist_dir, **overrides), quiet=True)
    assert not any(tmp_path.iterdir())  # nothing written


def test_existing_run_folder_is_not_clobbered(tmp_path, tiny_mnist_dir):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    with pytest.raises(DigitkitError, match="already exists"):
        train(quick(tmp_path, tiny_mnist_dir, name="taken"), quiet=True)
    assert (tmp_path / "taken" / "keep.txt").exists()


@pytest.mark.parametrize("name", ["digitnet", "digitnet-small", "tutorial", "keras-example"])
def test_training_twin_computes_what_keras_computes(name, rng):
    """The fast training path runs the Keras model's own parameters: same outputs, same batch-norm
    updates, same gradients as calling the Keras model."""
    import torch

    from digitkit.models import build_model
    from digitkit.train.twin import TrainingTwin

    keras_model, twin_model = build_model(name), build_model(name)
    twin_model.set_weights(keras_model.get_weights())
    for layer in keras_model.layers + twin_model.layers:
        if hasattr(layer, "rate"):
            layer.rate = 0.0  # Keras draws dropout masks from its own generator: compare without them
    twin = TrainingTwin(twin_model)
    x = torch.from_numpy(rng.random((16, 28, 28, 1)).astype("float32"))
    expected = keras_model(x, training=True)
    got = twin(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    expected.sum().backward(), got.sum().backward()
    for a, b in zip(keras_model.trainable_weights, twin_model.trainable_weights):
        torch.testing.assert_close(b.value.grad, a.value.grad, atol=1e-4, rtol=1e-3)
    # Moving statistics: torch updates the variance with the unbiased batch variance, Keras the biased
    # one: they differ by n / (n - 1), 0.1% for a batch of 16 images of 7x7.
    for a, b in zip(keras_model.non_trainable_weights, twin_model.non_trainable_weights):
        torch.testing.assert_close(b.value, a.value, atol=1e-6, rtol=2e-3)
    with torch.no_grad():
        torch.testing.assert_close(twin(x, training=False), keras_model(x, training=False), atol=1e-5, rtol=1e-4)


def test_shift_averaged_run_saves_what_its_metrics_report(tmp_path, tiny_mnist_dir):
    from digitkit.data import load_dataset
    from digitkit.inference import predict_images
    from digitkit.models import base_model

    run = train(quick(tmp_path, tiny_mnist_dir, name="tta", shift_average=True), quiet=True)
    assert PRESETS["best"].shift_average and not PRESETS["default"].shift_average
    model = Run.open(run.path).load_model()
    assert model.name.endswith("_shift_averaged") and base_model(model).name == "digitnet"
    metrics = json.loads((run.path / "metrics.json").read_text())
    data = load_dataset("mnist", data_dir=tiny_mnist_dir)
    probs = predict_images(model, data.x_test)
    assert metrics["shift_average"] and metrics["test_accuracy"] == pytest.approx((probs.argmax(1) == data.y_test).mean())
    # Fine-tuning starts from the averaged model's base.
    tuned = train(quick(tmp_path, tiny_mnist_dir, name="tuned", init=str(run.path)), quiet=True)
    assert Run.open(tuned.path).load_model().name == "digitnet"
