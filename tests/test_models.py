import numpy as np
import pytest

from digitkit import DigitkitError
from digitkit.models import MODELS, build_model


@pytest.mark.parametrize(
    "name, params",
    [("tutorial", 94_602), ("keras-example", 1_199_882), ("digitnet", 61_762), ("digitnet-large", 227_194)],
)
def test_parameter_counts(name, params):
    assert build_model(name).count_params() == params


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
