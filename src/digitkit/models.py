"""Stage 2: models. Keras 3 models that take a (28, 28, 1) image scaled to 0..1 and output the
probabilities of the ten classes (a final softmax), so every exported file has the same contract.

Layers after the input use ``channels_first``: the torch backend computes in NCHW, and with
channels_last Keras transposes around every convolution. A one-channel (28, 28, 1) image reshapes to
(1, 28, 28) for free, so users still pass images the usual Keras way.
"""

from __future__ import annotations

from collections.abc import Callable

import digitkit  # noqa: F401  (selects the torch backend before Keras loads)
import keras
from keras import layers

from digitkit import DigitkitError

INPUT_SHAPE = (28, 28, 1)
_CF = {"data_format": "channels_first"}


def _stem(name: str) -> list:
    return [keras.Input(INPUT_SHAPE, name="image"), layers.Reshape((1, 28, 28), name=f"{name}_to_nchw")]


def tutorial(num_classes: int = 10) -> keras.Model:
    """The tutorial's model, layer for layer (94,602 parameters)."""
    return keras.Sequential(
        _stem("tutorial") + [
            layers.Conv2D(32, 5, activation="relu", **_CF),
            layers.MaxPooling2D(2, **_CF),
            layers.Dropout(0.5),
            layers.Conv2D(64, 3, activation="relu", **_CF),
            layers.MaxPooling2D(2, **_CF),
            layers.Dropout(0.2),
            layers.Conv2D(128, 1, activation="relu", **_CF),
            layers.MaxPooling2D(2, **_CF),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="tutorial",
    )


def keras_example(num_classes: int = 10) -> keras.Model:
    """The Keras MNIST example the tutorial shows (1,199,882 parameters)."""
    return keras.Sequential(
        _stem("keras_example") + [
            layers.Conv2D(32, 3, activation="relu", **_CF),
            layers.Conv2D(64, 3, activation="relu", **_CF),
            layers.MaxPooling2D(2, **_CF),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="keras_example",
    )


@keras.saving.register_keras_serializable(package="digitkit")
class BatchNorm(layers.BatchNormalization):
    """Keras batch norm that trains through torch's fused kernel on the torch backend.

    Keras computes training-mode batch norm from a dozen element-wise ops; torch's
    ``F.batch_norm`` does the same maths (and the moving-average update) in one kernel, which makes
    a whole training step about 15% faster on CPU. Inference and export use Keras' own code path.
    """

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable and mask is None and self.axis == 1 and keras.backend.backend() == "torch":
            import torch.nn.functional as F

            return F.batch_norm(
                inputs, self.moving_mean.value, self.moving_variance.value,
                self.gamma.value if self.scale else None, self.beta.value if self.center else None,
                training=True, momentum=1 - self.momentum, eps=self.epsilon,
            )
        return super().call(inputs, training=training, mask=mask)


def _conv_bn_relu(filters: int, kernel: int, strides: int = 1) -> list:
    return [
        layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, **_CF),
        # Keras defaults to momentum 0.99, too slow for runs of a few hundred steps.
        BatchNorm(axis=1, momentum=0.9),
        layers.ReLU(),
    ]


def digitnet(num_classes: int = 10, width: int = 24) -> keras.Model:
    """digitkit's default: a small batch-norm CNN, built for accuracy per CPU second.

    A strided 5x5 stem halves the resolution at once (most of a CNN's cost is at full resolution),
    then two 3x3 conv blocks with max pooling; about 62k parameters at the default width.
    """
    return keras.Sequential(
        _stem("digitnet")
        + _conv_bn_relu(width, 5, strides=2)
        + _conv_bn_relu(2 * width, 3)
        + [layers.MaxPooling2D(2, **_CF)]
        + _conv_bn_relu(4 * width, 3)
        + [
            layers.MaxPooling2D(2, **_CF),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="digitnet",
    )


def digitnet_small(num_classes: int = 10) -> keras.Model:
    """digitnet at two-thirds width: about half the compute, for ``--preset fast``."""
    model = digitnet(num_classes, width=16)
    model.name = "digitnet_small"
    return model


def digitnet_large(num_classes: int = 10) -> keras.Model:
    """digitnet at double width: slower to train, for ``--preset best``."""
    model = digitnet(num_classes, width=48)
    model.name = "digitnet_large"
    return model


MODELS: dict[str, Callable[..., keras.Model]] = {
    "digitnet": digitnet,
    "digitnet-small": digitnet_small,
    "digitnet-large": digitnet_large,
    "tutorial": tutorial,
    "keras-example": keras_example,
}


def build_model(name: str, num_classes: int = 10) -> keras.Model:
    """Build a model by its registry name (see ``MODELS``)."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise DigitkitError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return factory(num_classes)
