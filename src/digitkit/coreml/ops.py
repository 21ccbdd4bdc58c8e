"""NumPy kernels for the MIL operations (ML Program) that digitkit's exports use, and their neighbours.

Each kernel takes numpy arrays / Python values for the op's named inputs and returns the output(s).
Semantics follow the MIL op reference for the iOS15/iOS16 opsets. Tensors are computed in float32;
the executor rounds results to float16 where the program declares fp16 (see mlprogram.py).
Tested op by op against torch.nn.functional in tests/test_coreml_ops.py.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import softmax as _softmax

from digitkit import DigitkitError

DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8, "uint8": np.uint8,
          "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def _ints(v) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def spatial_padding(in_sizes, kernel, strides, dilations, pad_type, pad) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for MIL's pad_type valid/same/same_lower/custom."""
    if pad_type == "valid":
        return [(0, 0)] * len(in_sizes)
    if pad_type == "custom":
        p = _ints(pad)
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(in_sizes))]
    if pad_type in ("same", "same_lower"):
        out = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if pad_type == "same" else (big, small))
        return out
    raise DigitkitError(f"unsupported pad_type {pad_type!r}")


def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """N-d convolution (cross-correlation), x (N, C_in, *S), weight (C_out, C_in/groups, *K)."""
    x = np.asarray(x, np.float32)
    weight = np.asarray(weight, np.float32)
    spatial = x.ndim - 2
    kernel = weight.shape[2:]
    strides = _ints(strides) if strides is not None else [1] * spatial
    dilations = _ints(dilations) if dilations is not None else [1] * spatial
    padding = spatial_padding(x.shape[2:], kernel, strides, dilations, pad_type, pad)
    x = np.pad(x, [(0, 0), (0, 0)] + padding)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    windows = sliding_window_view(x, eff, axis=tuple(range(2, x.ndim)))  # N, C, *out_full, *eff
    index = tuple(slice(None, None, s) for s in strides) + tuple(slice(None, None, d) for d in dilations)
    windows = windows[(slice(None), slice(None)) + index]  # N, C, *out, *K
    groups = int(groups)
    c_in = x.shape[1] // groups
    c_out = weight.shape[0] // groups
    outs = []
    k_axes = list(range(2 + spatial, 2 + 2 * spatial))
    for g in range(groups):
        w = weight[g * c_out : (g + 1) * c_out]
        win = windows[:, g * c_in : (g + 1) * c_in]
        # sum over C_in and kernel dims: (N, C, *out, *K) x (O, C, *K) -> (N, *out, O)
        out = np.tensordot(win, w, axes=([1] + k_axes, [1] + list(range(2, 2 + spatial))))
        outs.append(np.moveaxis(out, -1, 1))
    y = np.concatenate(outs, axis=1) if groups > 1 else outs[0]
    if bias is not None:
        y = y + np.asarray(bias, np.float32).reshape((1, -1) + (1,) * spatial)
    return y


def _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, reducer, pad_value, exclude_padding=True):
    x = np.asarray(x, np.float32)
    spatial = len(_ints(kernel_sizes))
    kernel = _ints(kernel_sizes)
    strides = _ints(strides) if strides is not None else [1] * spatial
    padding = spatial_padding(x.shape[-spatial:], kernel, strides, [1] * spatial, pad_type, pad)
    if ceil_mode:
        # Extra padding at the end so that a partial last window is kept.
        extra = []
        for size, k, s, (b, a) in zip(x.shape[-spatial:], kernel, strides, padding):
            full = size + b + a
            out = math.ceil((full - k) / s) + 1
            extra.append(max((out - 1) * s + k - full, 0))
        padding = [(b, a + e) for (b, a), e in zip(padding, extra)]
    lead = [(0, 0)] * (x.ndim - spatial)
    padded = np.pad(x, lead + padding, constant_values=pad_value)
    axes = tuple(range(x.ndim - spatial, x.ndim))
    windows = sliding_window_view(padded, kernel, axis=axes)
    windows = windows[(slice(None),) * (x.ndim - spatial) + tuple(slice(None, None, s) for s in strides)]
    window_axes = tuple(range(x.ndim, x.ndim + spatial))
    if reducer == "max":
        return windows.max(axis=window_axes)
    total = windows.sum(axis=window_axes)
    if not exclude_padding:
        return total / float(np.prod(kernel))
    ones = np.pad(np.ones(x.shape[-spatial:], np.float32), padding)
    counts = sliding_window_view(ones, kernel)[tuple(slice(None, None, s) for s in strides)]
    return total / counts.sum(axis=tuple(range(spatial, 2 * spatial)))


def max_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, "max", -np.inf)


def avg_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False,
             exclude_padding_from_average=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, "avg", 0.0, exclude_padding_from_average)


def pad(x, pad, mode="constant", constant_val=0.0):
    p = _ints(pad)
    dims = len(p) // 2
    widths = [(0, 0)] * (x.ndim - dims) + [(p[2 * i], p[2 * i + 1]) for i in range(dims)]
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(constant_val))
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    raise DigitkitError(f"pad: unsupported mode {mode!r}")


def linear(x, weight, bias=None):
    y = np.asarray(x, np.float32) @ np.asarray(weight, np.float32).T
    return y if bias is None else y + np.asarray(bias, np.float32)


def matmul(x, y, transpose_x=False, transpose_y=False):
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    if transpose_x:
        x = np.swapaxes(x, -1, -2)
    if transpose_y:
        y = np.swapaxes(y, -1, -2)
    return x @ y


def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(variance, shape) + float(epsilon))
    if gamma is not None:
        y = y * np.reshape(gamma, shape)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y


def cast(x, dtype):
    try:
        return np.asarray(x).astype(DTYPES[str(dtype)])
    except KeyError:
        raise DigitkitError(f"cast: unsupported dtype {dtype!r}") from None


def reshape(x, shape):
    return np.reshape(x, _ints(shape))


def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    q = np.asarray(quantized_data).astype(np.float32)
    shape = [1] * q.ndim
    axis = int(axis)
    def bcast(v):
        v = np.asarray(v, np.float32)
        if v.size == 1:
            return v.reshape(())
        s = list(shape)
        s[axis] = -1
        return v.reshape(s)
    return (q - bcast(zero_point)) * bcast(scale)


def unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """Indices packed LSB-first into bytes (MIL's sub-byte layout) → uint8 array of ``count``."""
    bits = np.unpackbits(np.asarray(packed, np.uint8), bitorder="little")[: count * nbits]
    weights = (1 << np.arange(nbits)).astype(np.uint16)
    return (bits.reshape(count, nbits) * weights).sum(axis=1).astype(np.uint8)


def constexpr_lut_to_dense(indices, lut, shape):
    lut = np.asarray(lut)
    shape = _ints(shape)
    nbits = int(math.log2(lut.size))
    if 2**nbits != lut.size:
        raise DigitkitError(f"constexpr_lut_to_dense: LUT size {lut.size} is not a power of two")
    idx = unpack_bits(indices, nbits, int(np.prod(shape)))
    return lut[idx].reshape(shape)


def classify(probabilities, classes):
    """Returns (labels, list of {label: probability}) for a batch of probability vectors."""
    probs = np.asarray(probabilities, np.float32)
    probs = probs.reshape(-1, probs.shape[-1])
    labels = [str(c) for c in np.asarray(classes).reshape(-1)]
    if len(labels) != probs.shape[-1]:
        raise DigitkitError(f"classify: {len(labels)} classes for {probs.shape[-1]} probabilities")
    top = probs.argmax(axis=1)
    return [labels[i] for i in top], [dict(zip(labels, map(float, row))) for row in probs]


def _binary(fn):
    return lambda x, y: fn(np.asarray(x), np.asarray(y))


def _softmax_op(x, axis=-1):
    return _softmax(np.asarray(x, np.float32), axis=int(axis))


# name -> (kernel, names of the inputs it accepts). Unlisted inputs are an error.
KERNELS = {
    "add": _binary(np.add), "sub": _binary(np.subtract), "mul": _binary(np.multiply),
    "real_div": _binary(np.divide), "maximum": _binary(np.maximum), "minimum": _binary(np.minimum),
    "relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-np.asarray(x, np.float32))),
    "tanh": lambda x: np.tanh(x), "exp": lambda x: np.exp(x), "sqrt": lambda x: np.sqrt(x),
    "clip": lambda x, alpha, beta: np.clip(x, float(alpha), float(beta)),
    "leaky_relu": lambda x, alpha=0.01: np.where(x >= 0, x, x * float(alpha)),
    "softmax": _softmax_op,
    "conv": conv, "max_pool": max_pool, "avg_pool": avg_pool, "pad": pad, "linear": linear,
    "matmul": matmul, "batch_norm": batch_norm, "cast": cast, "reshape": reshape,
    "transpose": lambda x, perm: np.transpose(x, _ints(perm)),
    "identity": lambda x: x,
    "squeeze": lambda x, axes=None: np.squeeze(x, axis=None if axes is None else tuple(_ints(axes))),
    "expand_dims": lambda x, axes: np.expand_dims(x, tuple(_ints(axes))),
    "reduce_mean": lambda x, axes=None, keep_dims=False: np.mean(
        x, axis=None if axes is None else tuple(_ints(axes)), keepdims=bool(keep_dims)),
    "concat": lambda values, axis, interleave=False: np.concatenate(values, axis=int(axis)),
    "constexpr_affine_dequantize": constexpr_affine_dequantize,
    "constexpr_lut_to_dense": constexpr_lut_to_dense,
}
