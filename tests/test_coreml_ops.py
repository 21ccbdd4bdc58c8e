"""digitkit's Core ML interpreter, op by op, against torch.nn.functional as the independent reference.

Each case builds a one-op ML Program with coremltools' MIL builder, runs it through digitkit's
interpreter (parsing the protobuf and the weight blob), and compares with torch.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coreml_helpers import mb, run_mil
from digitkit import DigitkitError
from digitkit.coreml import ops

RNG = np.random.default_rng(0)
TOL = {False: dict(rtol=1e-5, atol=1e-5), True: dict(rtol=1e-2, atol=1e-2)}


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def torch_same_pad(size, k, s, d, lower=False):
    total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("pad_type", ["valid", "same", "same_lower", "custom"])
@pytest.mark.parametrize("stride, dilation, groups", [(1, 1, 1), (2, 1, 1), (1, 2, 1), (2, 1, 2)])
def test_conv(pad_type, stride, dilation, groups, fp16):
    x = rand(2, 4, 11, 10)
    w = rand(6, 4 // groups, 3, 5)
    b = rand(6)
    wt = w.astype(np.float16) if fp16 else w
    bt = b.astype(np.float16) if fp16 else b
    kwargs = dict(weight=wt, bias=bt, strides=[stride, stride], dilations=[dilation, dilation], groups=groups,
                  pad_type=pad_type)
    if pad_type == "custom":
        kwargs["pad"] = [1, 2, 0, 3]
    out, kinds = run_mil(lambda x: mb.conv(x=x, **kwargs), x, fp16=fp16)
    assert "conv" in kinds
    if pad_type == "custom":
        pads = [(1, 2), (0, 3)]
    elif pad_type == "valid":
        pads = [(0, 0), (0, 0)]
    else:
        pads = [torch_same_pad(n, k, stride, dilation, pad_type == "same_lower") for n, k in zip((11, 10), (3, 5))]
    xt = F.pad(torch.from_numpy(x), (*pads[1], *pads[0]))
    ref = F.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride, dilation=dilation, groups=groups)
    np.testing.assert_allclose(out, ref.numpy(), **TOL[fp16] if not fp16 else dict(rtol=2e-2, atol=5e-2))


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("pad_type, ceil_mode", [("valid", False), ("valid", True), ("custom", False), ("same", False)])
def test_pool(kind, pad_type, ceil_mode, fp16):
    x = rand(2, 3, 9, 8)
    kwargs = dict(kernel_sizes=[3, 2], strides=[2, 2], pad_type=pad_type, ceil_mode=ceil_mode)
    if pad_type == "custom":
        kwargs["pad"] = [1, 1, 1, 0]
    if kind == "avg_pool":
        kwargs["exclude_padding_from_average"] = True
    out, _ = run_mil(lambda x: getattr(mb, kind)(x=x, **kwargs), x, fp16=fp16)
    xt = torch.from_numpy(x)
    if pad_type == "custom":
        pads = [(1, 1), (1, 0)]
    elif pad_type == "same":
        pads = [torch_same_pad(n, k, 2, 1) for n, k in zip((9, 8), (3, 2))]
    else:
        pads = [(0, 0), (0, 0)]
    fill = float("-inf") if kind == "max_pool" else 0.0
    padded = F.pad(xt, (*pads[1], *pads[0]), value=fill)
    if kind == "max_pool":
        ref = F.max_pool2d(padded, (3, 2), 2, ceil_mode=ceil_mode)
    else:
        ones = F.pad(torch.ones_like(xt), (*pads[1], *pads[0]))
        ref = F.avg_pool2d(padded, (3, 2), 2, ceil_mode=ceil_mode) / F.avg_pool2d(ones, (3, 2), 2, ceil_mode=ceil_mode)
    np.testing.assert_allclose(out, ref.numpy(), **TOL[fp16])


def test_avg_pool_counting_padding():
    x = rand(1, 2, 6, 6)
    out, _ = run_mil(lambda x: mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[1, 1], pad_type="custom",
                                           pad=[1, 1, 1, 1], exclude_padding_from_average=False), x)
    ref = F.avg_pool2d(torch.from_numpy(x), 3, 1, padding=1, count_include_pad=True)
    np.testing.assert_allclose(out, ref.numpy(), **TOL[False])


@pytest.mark.parametrize("mode, torch_mode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "replicate")])
def test_pad(mode, torch_mode):
    x = rand(1, 2, 5, 6)
    out, _ = run_mil(lambda x: mb.pad(x=x, pad=[1, 2, 2, 1], mode=mode, constant_val=0.5), x)
    kwargs = {"value": 0.5} if mode == "constant" else {}
    ref = F.pad(torch.from_numpy(x), (2, 1, 1, 2), mode=torch_mode, **kwargs)
    np.testing.assert_allclose(out, ref.numpy())


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_linear_and_matmul(fp16):
    x, w, b = rand(3, 7), rand(5, 7), rand(5)
    dt = np.float16 if fp16 else np.float32
    out, _ = run_mil(lambda x: mb.linear(x=x, weight=w.astype(dt), bias=b.astype(dt)), x, fp16=fp16)
    np.testing.assert_allclose(out, F.linear(*map(torch.from_numpy, (x, w, b))).numpy(), **TOL[fp16])
    y = rand(5, 7)
    out, _ = run_mil(lambda x, y: mb.matmul(x=x, y=y, transpose_y=True), x, y, fp16=fp16)
    np.testing.assert_allclose(out, x @ y.T, **TOL[fp16])


@pytest.mark.parametrize("name, torch_fn", [
    ("relu", F.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("exp", torch.exp),
])
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_unary(name, torch_fn, fp16):
    x = rand(2, 3, 4)
    out, _ = run_mil(lambda x: getattr(mb, name)(x=x), x, fp16=fp16)
    np.testing.assert_allclose(out, torch_fn(torch.from_numpy(x)).numpy(), **TOL[fp16])


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_softmax(axis, fp16):
    x = rand(2, 3, 4)
    out, _ = run_mil(lambda x: mb.softmax(x=x, axis=axis), x, fp16=fp16)
    np.testing.assert_allclose(out, F.softmax(torch.from_numpy(x), dim=axis).numpy(), **TOL[fp16])


@pytest.mark.parametrize("name, fn", [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul),
                                      ("real_div", torch.div), ("maximum", torch.maximum),
                                      ("minimum", torch.minimum)])
def test_binary_broadcasting(name, fn):
    x, y = rand(2, 3, 4), rand(3, 1) + 3
    out, _ = run_mil(lambda x, y: getattr(mb, name)(x=x, y=y), x, y)
    np.testing.assert_allclose(out, fn(torch.from_numpy(x), torch.from_numpy(y)).numpy(), rtol=1e-6)


def test_shape_ops():
    x = rand(2, 3, 4)
    out, _ = run_mil(lambda x: mb.transpose(x=x, perm=[2, 0, 1]), x)
    np.testing.assert_array_equal(out, torch.from_numpy(x).permute(2, 0, 1).numpy())
    out, _ = run_mil(lambda x: mb.reshape(x=x, shape=[2, 12]), x)
    np.testing.assert_array_equal(out, x.reshape(2, 12))
    out, _ = run_mil(lambda x: mb.expand_dims(x=x, axes=[1]), x)
    assert out.shape == (2, 1, 3, 4)
    out, _ = run_mil(lambda x: mb.squeeze(x=mb.expand_dims(x=x, axes=[0]), axes=[0]), x)
    np.testing.assert_array_equal(out, x)
    out, _ = run_mil(lambda x, y: mb.concat(values=[x, y], axis=1), x, x + 1)
    np.testing.assert_array_equal(out, torch.cat([torch.from_numpy(x), torch.from_numpy(x + 1)], 1).numpy())
    out, _ = run_mil(lambda x: mb.reduce_mean(x=x, axes=[1, 2], keep_dims=True), x)
    np.testing.assert_allclose(out, x.mean(axis=(1, 2), keepdims=True), rtol=1e-6)


def test_cast_rounds_to_fp16():
    x = np.array([[1 / 3, 1000.1, 65504.0, 1e-8]], np.float32)
    out, _ = run_mil(lambda x: mb.cast(x=mb.cast(x=x, dtype="fp16"), dtype="fp32"), x)
    np.testing.assert_array_equal(out, torch.from_numpy(x).half().float().numpy())


def test_clip_leaky_relu_batch_norm():
    x = rand(2, 3, 4, 4)
    out, _ = run_mil(lambda x: mb.clip(x=x, alpha=-0.5, beta=0.5), x)
    np.testing.assert_array_equal(out, np.clip(x, -0.5, 0.5))
    out, _ = run_mil(lambda x: mb.leaky_relu(x=x, alpha=0.2), x)
    np.testing.assert_allclose(out, F.leaky_relu(torch.from_numpy(x), 0.2).numpy(), rtol=1e-6)
    mean, var, gamma, beta = rand(3), np.abs(rand(3)) + 0.1, rand(3), rand(3)
    out, _ = run_mil(lambda x: mb.batch_norm(x=x, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=1e-3), x)
    ref = F.batch_norm(torch.from_numpy(x), *map(torch.from_numpy, (mean, var, gamma, beta)), eps=1e-3)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_constexpr_affine_dequantize_per_channel():
    q = RNG.integers(-128, 127, (4, 6)).astype(np.int8)
    scale = np.abs(rand(4)) + 0.01
    zero = RNG.integers(-3, 3, 4).astype(np.int8)
    x = rand(2, 6)
    build = lambda x: mb.linear(x=x, weight=mb.constexpr_affine_dequantize(  # noqa: E731
        quantized_data=q, zero_point=zero, scale=scale, axis=0))
    out, kinds = run_mil(build, x)
    assert "constexpr_affine_dequantize" in kinds
    w = (q.astype(np.float32) - zero[:, None]) * scale[:, None]
    np.testing.assert_allclose(out, x @ w.T, rtol=1e-5, atol=1e-5)


def test_lut_bit_unpacking_matches_the_documented_example():
    # MIL docs: n_bits=2, shape (5,): byte 0 = i3 i2 i1 i0 (MSB..LSB) = 01 10 11 00, byte 1 = .. .. .. 11
    packed = np.array([0b01101100, 0b00000011], np.uint8)
    assert ops.unpack_bits(packed, 2, 5).tolist() == [0, 3, 2, 1, 3]


@pytest.mark.parametrize("nbits", [1, 2, 4, 6, 8])
def test_constexpr_lut_to_dense(nbits):
    shape = (5, 7)
    indices = RNG.integers(0, 2**nbits, shape[0] * shape[1])
    bits = ((indices[:, None] >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
    packed = np.packbits(bits, bitorder="little")
    lut = rand(2**nbits)
    x = rand(2, 7)
    build = lambda x: mb.linear(x=x, weight=mb.constexpr_lut_to_dense(  # noqa: E731
        indices=packed, lut=lut, shape=np.array(shape, np.uint32)))
    out, kinds = run_mil(build, x)
    assert "constexpr_lut_to_dense" in kinds
    np.testing.assert_allclose(out, x @ lut[indices].reshape(shape).T, rtol=1e-5, atol=1e-5)


def test_unsupported_op_is_named():
    with pytest.raises(DigitkitError, match="does not implement the MIL op 'sin'"):
        run_mil(lambda x: mb.sin(x=x), rand(2, 2))


def test_classify_outputs():
    labels, dicts = ops.classify(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), np.array(["a", "b", "c"]))
    assert labels == ["b", "a"]
    assert dicts[0] == pytest.approx({"a": 0.1, "b": 0.7, "c": 0.2})


def test_neuralnetwork_add_and_multiply_with_one_input_use_alpha():
    # Keras' Average layer converts to adds and a one-input multiply by 1/n (alpha).
    from coremltools.proto import NeuralNetwork_pb2

    from digitkit.coreml.neuralnetwork import run_layers

    nn = NeuralNetwork_pb2.NeuralNetwork()
    for name, kind, inputs, alpha in [("sum", "add", ["a", "b"], 0.0), ("mean", "multiply", ["sum"], 0.5),
                                      ("shifted", "add", ["mean"], 1.0)]:
        layer = nn.layers.add()
        layer.name = name
        layer.input.extend(inputs)
        layer.output.append(name)
        getattr(layer, kind).alpha = alpha
    a, b = np.array([[1.0, 2.0]], np.float32), np.array([[3.0, 6.0]], np.float32)
    env = run_layers(nn, {"a": a, "b": b})
    np.testing.assert_allclose(env["sum"], a + b)  # two inputs: alpha unused
    np.testing.assert_allclose(env["mean"], (a + b) / 2)
    np.testing.assert_allclose(env["shifted"], (a + b) / 2 + 1)
