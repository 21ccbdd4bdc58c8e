"""The training forward pass of a Keras model, on the model's own parameters.

On the torch backend a Keras model is a ``torch.nn.Module``, and calling it works, but each
``Layer.__call__`` costs Python work (about 2 ms a layer on a 2-core CPU) and casts its inputs back to
float32, which undoes bf16 autocast. For the handful of layer types digitkit's models use (Reshape,
Conv2D, BatchNormalization, ReLU, MaxPooling2D, Dropout, Flatten, Dense), :class:`TrainingTwin`
runs the same computation with ``torch.nn.functional`` on the very same ``torch.nn.Parameter``
objects: the optimizer updates the Keras model's weights, batch norm updates its moving statistics,
and after training the Keras model is simply used (saved, evaluated, exported). No library offers
this (Keras has no lighter call path), hence this file; tests/test_train.py checks that twin and
Keras agree, in training and in inference, for every model. (One documented difference: torch
updates the moving variance with the unbiased batch variance, Keras with the biased one, a factor
n / (n - 1) that is 1.0001 for a batch of 256 images.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from keras import layers

from digitkit import DigitkitError


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/Keras "same": output ceil(size / stride), the odd pixel of padding at the end."""
    out = math.ceil(size / stride)
    total = max(0, (out - 1) * stride + kernel - size) if stride > 1 else kernel - 1
    return total // 2, total - total // 2


class TrainingTwin(torch.nn.Module):
    def __init__(self, model, sync_batch_norm: bool = False):
        super().__init__()
        self.model = model  # registers the Keras model's parameters under this module too
        self.sync_batch_norm = sync_batch_norm  # batch statistics over all ranks (train.distributed)
        self.steps = []
        shape = tuple(model.input_shape[1:])
        for layer in model.layers:
            step, shape = self._step(layer, shape)
            if step is not None:
                self.steps.append((step, isinstance(layer, (layers.BatchNormalization, layers.Dropout))))

    def _step(self, layer, shape):
        if isinstance(layer, layers.Reshape):
            target = tuple(layer.target_shape)
            return (lambda x: x.reshape(x.shape[0], *target)), target
        if isinstance(layer, layers.Conv2D):
            return _conv_step(layer, shape)
        if isinstance(layer, layers.BatchNormalization):
            if layer.axis not in (1, [1]):
                raise DigitkitError(f"the fast training path needs batch norm over axis 1 ({layer.name})")
            momentum, eps = 1 - layer.momentum, layer.epsilon
            mean, var = layer.moving_mean.value, layer.moving_variance.value
            gamma = layer.gamma.value if layer.scale else None
            beta = layer.beta.value if layer.center else None
            if self.sync_batch_norm:
                return (lambda x, train: _sync_batch_norm(x, mean, var, gamma, beta, momentum, eps) if train else
                        F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)), shape
            return (lambda x, train: F.batch_norm(x, mean, var, gamma, beta, training=train, momentum=momentum,
                                                  eps=eps)), shape
        if isinstance(layer, layers.ReLU):
            # In place: every ReLU of digitkit's models follows a layer whose backward does not need
            # its output (batch norm, convolution), so this saves a copy of the activations.
            return (lambda x: F.relu(x, inplace=x.requires_grad or not torch.is_grad_enabled())), shape
        if isinstance(layer, layers.MaxPooling2D):
            if layer.padding != "valid" or layer.data_format != "channels_first":
                raise DigitkitError(f"the fast training path has no form of layer {layer.name}")
            size, stride = tuple(layer.pool_size), tuple(layer.strides)
            c, h, w = shape
            return (lambda x: F.max_pool2d(x, size, stride)), (c, (h - size[0]) // stride[0] + 1, (w - size[1]) // stride[1] + 1)
        if isinstance(layer, layers.Dropout):
            rate = layer.rate
            return (lambda x, train: F.dropout(x, rate, training=train)), shape
        if isinstance(layer, layers.Flatten):
            return (lambda x: x.flatten(1)), (math.prod(shape),)
        if isinstance(layer, layers.Dense):
            kernel, bias = layer.kernel.value, layer.bias.value if layer.use_bias else None
            activation = _activation(layer)
            return (lambda x: activation(F.linear(x, kernel.t(), bias))), (layer.units,)
        if isinstance(layer, layers.InputLayer):
            return None, shape
        raise DigitkitError(f"the fast training path has no form of layer {layer.name} ({type(layer).__name__})")

    def forward(self, x: torch.Tensor, training: bool = True) -> torch.Tensor:
        """Probabilities for a batch of (N, 28, 28, 1) images; ``training`` as in Keras (batch
        statistics and dropout, or the moving statistics)."""
        for step, needs_mode in self.steps:
            x = step(x, training) if needs_mode else step(x)
        return x


def _sync_batch_norm(x, running_mean, running_var, gamma, beta, momentum, eps):
    """Training batch norm with the statistics of the global batch, summed over all ranks.

    torch's SyncBatchNorm has no CPU kernels (Gloo training would fail), so the statistics are
    gathered here with the differentiable all-reduce of torch.distributed.nn: its backward sums the
    gradients of every rank, as SyncBatchNorm's does."""
    from torch.distributed.nn.functional import all_reduce

    x = x.float()
    channels = x.shape[1]
    count = torch.full((1,), x.numel() / channels, device=x.device)
    total = all_reduce(torch.cat([x.sum((0, 2, 3)), count]))
    n = total[-1]
    mean = total[:channels] / n
    # Two passes, as F.batch_norm computes it: E[x²] - E[x]² in fp32 cancels catastrophically for
    # channels whose mean is large next to their spread, and DDP drifts away from one process.
    centred = x - mean.view(1, channels, 1, 1)
    var = all_reduce((centred * centred).sum((0, 2, 3))) / n
    with torch.no_grad():  # the moving statistics, as F.batch_norm keeps them (unbiased variance)
        running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
        running_var.mul_(1 - momentum).add_(var.detach() * (n / (n - 1)), alpha=momentum)
    shape = (1, channels, 1, 1)
    y = centred * torch.rsqrt(var.view(shape) + eps)
    if gamma is not None:
        y = y * gamma.view(shape)
    if beta is not None:
        y = y + beta.view(shape)
    return y


def _activation(layer):
    name = getattr(layer.activation, "__name__", "")
    table = {"linear": lambda x: x, "relu": F.relu, "softmax": lambda x: torch.softmax(x.float(), dim=-1)}
    if name not in table:
        raise DigitkitError(f"the fast training path has no form of activation {name!r} ({layer.name})")
    return table[name]


def _conv_step(layer, shape):
    """A Conv2D as one torch call (channels-last in memory), and its output shape."""
    if layer.data_format != "channels_first" or layer.groups != 1 or tuple(layer.dilation_rate) != (1, 1):
        raise DigitkitError(f"the fast training path has no form of layer {layer.name} ({layer.data_format})")
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    _, height, width = shape
    pad = (*_same_padding(width, kw, sw), *_same_padding(height, kh, sh)) if layer.padding == "same" else (0,) * 4
    kernel, bias = layer.kernel.value, layer.bias.value if layer.use_bias else None
    activation = _activation(layer)
    # Symmetric padding goes into the convolution itself: a separate pad costs a copy of the
    # activations forward and back (a fifth of a step for digitnet on a 2-core CPU).
    inner = pad[0] if pad[0] == pad[1] == pad[2] == pad[3] else 0
    outer = (0,) * 4 if inner else pad

    def conv(x):
        if any(outer):
            x = F.pad(x, outer)
        # Keras keeps kernels as (h, w, in, out); torch wants (out, in, h, w), here channels-last
        # in memory like the activations, so the CPU's fast kernels are used forward and back.
        weight = kernel.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        return activation(F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, bias,
                                   stride=(sh, sw), padding=inner))

    out_h = (height + pad[2] + pad[3] - kh) // sh + 1
    out_w = (width + pad[0] + pad[1] - kw) // sw + 1
    return conv, (layer.filters, out_h, out_w)
