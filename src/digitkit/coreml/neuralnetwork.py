"""Execute a Core ML NeuralNetwork (the pre-ML-Program format, ``.mlmodel``) with NumPy."""

from __future__ import annotations

import numpy as np

from digitkit import DigitkitError
from digitkit.coreml import ops


def weights(params, shape=None) -> np.ndarray:
    """A WeightParams message → float32 array (fp32, fp16 or 8-bit linear-quantized storage)."""
    if len(params.floatValue):
        data = np.array(params.floatValue, np.float32)
    elif params.float16Value:
        data = np.frombuffer(params.float16Value, np.float16).astype(np.float32)
    elif params.rawValue and params.quantization.WhichOneof("QuantizationType") == "linearQuantization":
        if params.quantization.numberOfBits != 8:
            raise DigitkitError(f"NeuralNetwork: {params.quantization.numberOfBits}-bit weights are not supported")
        q = np.frombuffer(params.rawValue, np.uint8).astype(np.float32)
        lin = params.quantization.linearQuantization
        scale, bias = np.array(lin.scale, np.float32), np.array(lin.bias, np.float32)
        if shape is not None and scale.size > 1:
            q = q.reshape(shape[0], -1)
            return (q * scale[:, None] + bias[:, None]).reshape(shape)
        data = q * scale + bias
    else:
        raise DigitkitError("NeuralNetwork: weight storage format not supported (expected fp32, fp16 or int8)")
    return data.reshape(shape) if shape is not None else data


def _conv(layer, x):
    p = layer.convolution
    if p.isDeconvolution:
        raise DigitkitError("NeuralNetwork layer 'deconvolution' is not supported")
    groups = max(int(p.nGroups), 1)
    kh, kw = p.kernelSize or (3, 3)
    w = weights(p.weights, (int(p.outputChannels), int(p.kernelChannels), kh, kw))
    b = weights(p.bias) if p.hasBias else None
    strides = list(p.stride) or [1, 1]
    dil = list(p.dilationFactor) or [1, 1]
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        pad_type = "same_lower" if p.same.asymmetryMode == 1 else "same"
        return ops.conv(x, w, b, strides, pad_type, None, dil, groups)
    amounts = p.valid.paddingAmounts.borderAmounts
    pad = [v for edge in amounts for v in (edge.startEdgeSize, edge.endEdgeSize)] or [0, 0, 0, 0]
    return ops.conv(x, w, b, strides, "custom", pad, dil, groups)


def _pool(layer, x):
    p = layer.pooling
    kind = {0: "max", 1: "avg"}.get(p.type)
    if kind is None:
        raise DigitkitError("NeuralNetwork: L2 pooling is not supported")
    if p.globalPooling:
        return x.max(axis=(-2, -1), keepdims=True) if kind == "max" else x.mean(axis=(-2, -1), keepdims=True)
    kernel, strides = list(p.kernelSize), list(p.stride)
    padding = p.WhichOneof("PoolingPaddingType")
    if padding == "valid":
        amounts = p.valid.paddingAmounts.borderAmounts
        pad = [v for edge in amounts for v in (edge.startEdgeSize, edge.endEdgeSize)] or [0, 0, 0, 0]
        args = ("custom", pad, False)
    elif padding == "same":
        args = ("same", None, False)
    else:  # includeLastPixel: Caffe-style ceil mode
        pad = list(p.includeLastPixel.paddingAmounts) or [0, 0]
        args = ("custom", [pad[0], pad[0], pad[1], pad[1]], True)
    if kind == "max":
        return ops.max_pool(x, kernel, strides, *args)
    return ops.avg_pool(x, kernel, strides, *args, exclude_padding_from_average=bool(p.avgPoolExcludePadding))


def _activation(layer, x):
    kind = layer.activation.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return np.maximum(x, 0)
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "leakyReLU":
        return np.where(x >= 0, x, x * layer.activation.leakyReLU.alpha)
    if kind == "linear":
        return x * layer.activation.linear.alpha + layer.activation.linear.beta
    raise DigitkitError(f"NeuralNetwork activation '{kind}' is not supported")


def _inner_product(layer, x):
    p = layer.innerProduct
    w = weights(p.weights, (int(p.outputChannels), int(p.inputChannels)))
    b = weights(p.bias) if p.hasBias else None
    if x.ndim >= 3 and x.shape[-2:] == (1, 1):  # rank-5 style (…, C, 1, 1)
        y = ops.linear(x[..., 0, 0], w, b)
        return y[..., None, None]
    return ops.linear(x, w, b)


def _padding(layer, x):
    p = layer.padding
    if p.WhichOneof("PaddingType") != "constant":
        mode = {"reflection": "reflect", "replication": "replicate"}[p.WhichOneof("PaddingType")]
        value = 0.0
    else:
        mode, value = "constant", p.constant.value
    amounts = p.paddingAmounts.borderAmounts
    pad = [v for edge in amounts for v in (edge.startEdgeSize, edge.endEdgeSize)]
    return ops.pad(x, pad, mode, value)


def _reshape_static(layer, x):
    shape = [int(s) for s in layer.reshapeStatic.targetShape]
    if shape and shape[0] == 1 and x.shape[0] > 1:
        shape[0] = x.shape[0]  # converted for one image; the batch follows the input
    return x.reshape(shape)


def _batchnorm(layer, x):
    p = layer.batchnorm
    c = int(p.channels)
    return ops.batch_norm(x, weights(p.mean, (c,)), weights(p.variance, (c,)), weights(p.gamma, (c,)),
                          weights(p.beta, (c,)), p.epsilon)


LAYERS = {
    "convolution": _conv,
    "pooling": _pool,
    "activation": _activation,
    "innerProduct": _inner_product,
    "padding": _padding,
    "reshapeStatic": _reshape_static,
    "transpose": lambda layer, x: np.transpose(x, list(layer.transpose.axes)),
    "softmaxND": lambda layer, x: ops._softmax_op(x, layer.softmaxND.axis),
    "softmax": lambda layer, x: ops._softmax_op(x, -3 if x.ndim >= 3 else -1),
    "flatten": lambda layer, x: x.reshape(x.shape[0], -1),
    "batchnorm": _batchnorm,
}
MULTI_INPUT = {"add": np.add, "multiply": np.multiply}


def run_layers(nn, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    env = dict(feeds)
    for layer in nn.layers:
        kind = layer.WhichOneof("layer")
        try:
            inputs = [env[name] for name in layer.input]
        except KeyError as err:
            raise DigitkitError(f"NeuralNetwork layer '{layer.name}' reads undefined blob {err}") from None
        if kind in MULTI_INPUT:
            out = inputs[0]
            for other in inputs[1:]:
                out = MULTI_INPUT[kind](out, other)
            if len(inputs) == 1:  # the spec: one input is added to / multiplied by the scalar alpha
                out = MULTI_INPUT[kind](out, np.float32(getattr(layer, kind).alpha))
        elif kind in LAYERS:
            out = LAYERS[kind](layer, inputs[0].astype(np.float32))
        else:
            raise DigitkitError(
                f"digitkit's Core ML interpreter does not implement the NeuralNetwork layer '{kind}' "
                f"(layer '{layer.name}'); supported: {', '.join(sorted(LAYERS | MULTI_INPUT))}"
            )
        env[layer.output[0]] = np.asarray(out, np.float32)
    return env
