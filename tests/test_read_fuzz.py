"""Damaged files through the number reader: a few thousand PNG and JPEG files of a number with bytes
flipped, cut short or repeated. Each is answered (a number, or a NormalizeError saying why not)
within its bound; none raises anything else."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from digitkit.classifier import load_classifier
from digitkit.data.normalize import NormalizeError, load_image
from digitkit.predict.numbers import read_number

BOUND_SECONDS = 5.0  # far above a read's ~30 ms: a file that takes this long has escaped the bounds


def number_image(mnist) -> Image.Image:
    line = np.full((60, 200), 245, np.uint8)
    for i in range(5):
        line[16:44, 10 + 38 * i : 38 + 38 * i] = np.minimum(line[16:44, 10 + 38 * i : 38 + 38 * i], 255 - mnist.x_test[i])
    return Image.fromarray(line)


def mutants(data: bytes, rng, count: int):
    for _ in range(count):
        damaged = bytearray(data)
        kind = rng.integers(4)
        if kind == 0:  # flipped bytes, anywhere (headers and chunk lengths too)
            for at in rng.integers(0, len(damaged), int(rng.integers(1, 12))):
                damaged[at] = int(rng.integers(256))
        elif kind == 1:  # cut short
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        elif kind == 2:  # a stretch repeated
            at = int(rng.integers(0, len(damaged)))
            damaged[at:at] = damaged[at : at + int(rng.integers(1, 400))]
        else:  # a size field made huge
            at = int(rng.integers(0, min(len(damaged), 64)))
            damaged[at : at + 4] = b"\x7f\xff\xff\xff"
        yield bytes(damaged)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_damaged_files_are_answered_or_refused_cleanly(fmt, onnx_model, mnist):
    model = load_classifier(onnx_model)
    buffer = io.BytesIO()
    number_image(mnist).save(buffer, fmt)
    rng = np.random.default_rng(0 if fmt == "PNG" else 1)
    read = refused = 0
    slowest = 0.0
    for data in mutants(buffer.getvalue(), rng, 1200):
        started = time.perf_counter()
        try:
            answer = read_number(model, load_image(data))
            assert isinstance(answer.number, str)
            read += 1
        except NormalizeError:
            refused += 1
        slowest = max(slowest, time.perf_counter() - started)
    assert read + refused == 1200 and read > 50 and refused > 50, (read, refused)  # both paths exercised
    assert slowest < BOUND_SECONDS, slowest
