"""Stage 2: models. Keras 3 models that take a (28, 28, 1) image scaled to 0..1 and output the
probabilities of each class (a final softmax), so every exported file has the same contract.

Each architecture is built in two forms from one definition:

- for training, layers after the input use ``channels_first`` (the torch backend computes in NCHW,
  and with channels_last Keras transposes around every convolution; a one-channel (28, 28, 1) image
  reshapes to (1, 28, 28) for free); the training loop runs it through train.twin;
- for the saved ``model.keras``, :func:`portable` rebuilds it with Keras' standard layers in
  ``channels_last`` and copies the weights, so the file loads with plain Keras on any backend
  (TensorFlow's CPU convolutions take channels_last only), without digitkit installed.
"""

from __future__ import annotations

from collections.abc import Callable

import digitkit  # noqa: F401  (selects the torch backend before Keras loads)
import keras
import numpy as np
from keras import layers

from digitkit import DigitkitError

INPUT_SHAPE = (28, 28, 1)
TRAINING = "channels_first"
PORTABLE = "channels_last"


class _Builder:
    """Layers in one data format: ``channels_first`` for training, ``channels_last`` for the saved file."""

    def __init__(self, data_format: str):
        self.data_format = data_format
        self.fmt = {"data_format": data_format}

    def stem(self, name: str) -> list:
        inputs = [keras.Input(INPUT_SHAPE, name="image")]
        if self.data_format == TRAINING:
            inputs.append(layers.Reshape((1, *INPUT_SHAPE[:2]), name=f"{name}_to_nchw"))
        return inputs

    def conv(self, filters: int, kernel: int, **kwargs):
        return layers.Conv2D(filters, kernel, **self.fmt, **kwargs)

    def pool(self):
        return layers.MaxPooling2D(2, **self.fmt)

    def batch_norm(self):
        # Keras defaults to momentum 0.99, too slow for runs of a few hundred steps.
        return layers.BatchNormalization(axis=1 if self.data_format == TRAINING else -1, momentum=0.9)

    def conv_bn_relu(self, filters: int, kernel: int, strides: int = 1) -> list:
        return [self.conv(filters, kernel, strides=strides, padding="same", use_bias=False),
                self.batch_norm(), layers.ReLU()]


def tutorial(num_classes: int = 10, data_format: str = TRAINING) -> keras.Model:
    """The tutorial's model, layer for layer (94,602 parameters)."""
    b = _Builder(data_format)
    return keras.Sequential(
        b.stem("tutorial") + [
            b.conv(32, 5, activation="relu"),
            b.pool(),
            layers.Dropout(0.5),
            b.conv(64, 3, activation="relu"),
            b.pool(),
            layers.Dropout(0.2),
            b.conv(128, 1, activation="relu"),
            b.pool(),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="tutorial",
    )


def keras_example(num_classes: int = 10, data_format: str = TRAINING) -> keras.Model:
    """The Keras MNIST example the tutorial shows (1,199,882 parameters)."""
    b = _Builder(data_format)
    return keras.Sequential(
        b.stem("keras_example") + [
            b.conv(32, 3, activation="relu"),
            b.conv(64, 3, activation="relu"),
            b.pool(),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="keras_example",
    )


def digitnet(num_classes: int = 10, data_format: str = TRAINING, width: int = 32,
             name: str = "digitnet") -> keras.Model:
    """digitkit's default: a small batch-norm CNN, built for accuracy per CPU second.

    A strided 5x5 stem halves the resolution at once (most of a CNN's cost is at full resolution),
    then two 3x3 conv blocks with max pooling; about 105k parameters at the default width (channel
    counts that are multiples of 16 suit the CPU's vector and matrix units).
    """
    b = _Builder(data_format)
    return keras.Sequential(
        b.stem(name)
        + b.conv_bn_relu(width, 5, strides=2)
        + b.conv_bn_relu(2 * width, 3)
        + [b.pool()]
        + b.conv_bn_relu(4 * width, 3)
        + [
            b.pool(),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name=name,
    )


def digitnet_small(num_classes: int = 10, data_format: str = TRAINING) -> keras.Model:
    """digitnet at half width: about a third of the compute, for ``--preset fast``."""
    return digitnet(num_classes, data_format, width=16, name="digitnet_small")


def digitnet_large(num_classes: int = 10, data_format: str = TRAINING) -> keras.Model:
    """digitnet at 1.5 times the width, for ``--preset best``."""
    return digitnet(num_classes, data_format, width=48, name="digitnet_large")


MODELS: dict[str, Callable[..., keras.Model]] = {
    "digitnet": digitnet,
    "digitnet-small": digitnet_small,
    "digitnet-large": digitnet_large,
    "tutorial": tutorial,
    "keras-example": keras_example,
}


def check_model_name(name: str) -> str:
    if name not in MODELS:
        raise DigitkitError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return name


def build_model(name: str, num_classes: int = 10, data_format: str = TRAINING) -> keras.Model:
    """Build a model by its registry name (see ``MODELS``), in its training form by default."""
    return MODELS[check_model_name(name)](num_classes, data_format)


def registry_name(model: keras.Model) -> str:
    """The ``MODELS`` name a model was built under (Keras names use '_' where ours use '-')."""
    return check_model_name(base_model(model).name.replace("_", "-"))


def portable(model: keras.Model) -> keras.Model:
    """The same model with Keras' standard layers in channels_last: what ``model.keras`` holds."""
    target = build_model(registry_name(model), model.output_shape[-1], PORTABLE)
    copy_weights(model, target)
    return target


def copy_weights(source: keras.Model, target: keras.Model, skip_head: bool = False) -> None:
    """Copy weights layer by layer between two builds of one architecture, whatever their data
    formats (the Dense after Flatten has its rows reordered from C,H,W to H,W,C or back).
    ``skip_head`` leaves the last layer alone (a new head for other classes)."""
    pairs = list(zip(_weighted(source), _weighted(target)))
    if len(_weighted(source)) != len(_weighted(target)):
        raise DigitkitError(f"cannot copy weights from {source.name} to {target.name}: different architectures")
    if skip_head:
        pairs = pairs[:-1]
    for (src, src_in), (dst, dst_in) in pairs:
        weights = src.get_weights()
        if [w.shape for w in weights] != [tuple(v.shape) for v in dst.weights]:
            raise DigitkitError(f"cannot copy weights of layer {src.name} into {dst.name}: shapes differ")
        if src_in is not None and dst_in is not None and src_in != dst_in:
            weights[0] = weights[0][_flatten_order(src_in, dst_in)]
        dst.set_weights(weights)


def _weighted(model: keras.Model) -> list:
    """(layer, flattened input layout) for each layer with weights; the layout is set for a Dense
    right after Flatten: ("C", H, W, C) style tuples telling the order its input rows come in."""
    out, flat, data_format = [], None, PORTABLE
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.MaxPooling2D)):
            data_format = layer.data_format
        if isinstance(layer, layers.Flatten):
            flat = (tuple(layer.input.shape[1:]), data_format)
            continue
        if layer.weights:
            out.append((layer, flat))
        if isinstance(layer, layers.Dense):
            flat = None
    return out


def _flatten_order(src_in, dst_in) -> np.ndarray:
    """Index array: row i of the target's kernel is row order[i] of the source's."""
    (src_shape, src_fmt), (_, dst_fmt) = src_in, dst_in
    chw = src_shape if src_fmt == TRAINING else (src_shape[2], src_shape[0], src_shape[1])
    c, h, w = (int(v) for v in chw)
    index = np.arange(c * h * w).reshape(c, h, w) if src_fmt == TRAINING else \
        np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1)
    # index[c, h, w] = source row of element (c, h, w); lay it out in the target's order.
    return index.reshape(-1) if dst_fmt == TRAINING else index.transpose(1, 2, 0).reshape(-1)


# Test-time augmentation: the image and its four one-pixel shifts (down, up, right, left).
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def shift_averaged(model: keras.Model) -> keras.Model:
    """The model's probabilities averaged over the image and its one-pixel shifts (:data:`SHIFTS`),
    as one model of Keras' standard layers that every exporter and reader already knows.

    Each shift is a fixed 3x3 convolution with a single 1 in its kernel (zeros shifted in at the
    edge), not a pad-and-crop: convolutions are ops every format and digitkit's own Core ML reader
    run, and the kernel is exact in fp16 and int8. The base model is shared, so the weights are not
    repeated; inference costs one pass per shift.
    """
    image = keras.Input(INPUT_SHAPE, name="image")
    answers = []
    for dy, dx in SHIFTS:
        shifted = image
        if (dy, dx) != (0, 0):
            kernel = np.zeros((3, 3, 1, 1), np.float32)
            kernel[1 - dy, 1 - dx] = 1.0  # out[y, x] = in[y - dy, x - dx]
            shift = layers.Conv2D(1, 3, padding="same", use_bias=False, trainable=False,
                                  name=f"shift_{_signed(dy)}_{_signed(dx)}")
            shifted = shift(image)
            shift.set_weights([kernel])
        answers.append(model(shifted))
    return keras.Model(image, layers.Average(name="probabilities")(answers), name=f"{model.name}_shift_averaged")


def _signed(n: int) -> str:
    return f"plus{n}" if n > 0 else f"minus{-n}" if n < 0 else "0"


def shift_images(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, H, W[, C]) images (NumPy or torch) moved dy pixels down and dx right, zeros shifted in:
    what each shift of :func:`shift_averaged` computes."""
    if dy == dx == 0:
        return x  # the image itself: no copy
    out = np.zeros_like(x) if isinstance(x, np.ndarray) else x.new_zeros(x.shape)  # NumPy or torch
    height, width = x.shape[1:3]
    out[:, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        x[:, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def base_model(model: keras.Model) -> keras.Model:
    """The model a :func:`shift_averaged` model averages (itself for any other model)."""
    if model.name.endswith("_shift_averaged"):
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(inner) == 1:
            return inner[0]
    return model


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """Make the final softmax compute softmax(logits / T) by scaling the last Dense layer: every
    format the model is exported to then gives the calibrated probabilities, with no extra op."""
    head = model.layers[-1]
    if not isinstance(head, layers.Dense) or head.activation is not keras.activations.softmax:
        raise DigitkitError(f"{model.name}: the last layer is not a softmax Dense layer")
    head.set_weights([w / temperature for w in head.get_weights()])
