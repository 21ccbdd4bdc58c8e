"""How long reading a whole number takes: a 6-digit drawing through `POST /api/read` on a warm
`digitkit serve` (p50 and p90 of 50 requests), a 12-megapixel phone photo of a number through the
same endpoint, and `digitkit read RUN one.png` from the shell (median of 3).

    python benchmarks/read_speed.py runs/first
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).parent))
from browser_helpers import digitkit_server  # noqa: E402
from read_numbers import as_drawing, as_photo, drawn_number, held_out_digits  # noqa: E402


def post_image(url: str, data: bytes, name: str) -> float:
    body = (f"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n--b--\r\n"
    request = urllib.request.Request(url + "/api/read", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a run folder or model file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    by = held_out_digits()
    ink, _ = drawn_number(by, rng, 6)
    drawing = as_drawing(ink, rng)
    drawing = drawing.resize((420, round(420 * drawing.height / drawing.width)))  # the page's upload size
    # A 12-megapixel phone photo: the synthesized photo enlarged, with a sensor's grain so that its JPEG
    # is as large as a phone's (several MB; a smooth enlargement would compress to a fraction).
    photo = np.asarray(as_photo(ink, rng).resize((4000, 3000)), np.int16)
    photo = Image.fromarray(np.clip(photo + rng.integers(-12, 13, photo.shape, dtype=np.int16), 0, 255).astype(np.uint8))
    drawing_png, photo_jpeg = encoded(drawing, "PNG"), encoded(photo, "JPEG", quality=90)
    with digitkit_server("serve", args.model) as url:
        post_image(url, drawing_png, "warm.png")
        drawn = sorted(post_image(url, drawing_png, "d.png") for _ in range(50))
        photos = sorted(post_image(url, photo_jpeg, "p.jpg") for _ in range(5))
    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.png"
        drawing.save(one)
        shell = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "digitkit", "read", args.model, str(one)], check=True,
                           capture_output=True)
            shell.append(time.perf_counter() - started)
    print("| what | time |\n| --- | --- |")
    print(f"| 6-digit drawing, POST /api/read, warm server (p50 / p90 of 50) | {1000 * drawn[24]:.0f} / {1000 * drawn[44]:.0f} ms |")
    print(f"| 12-megapixel photo ({len(photo_jpeg) / 1e6:.1f} MB JPEG), POST /api/read (median of 5) | "
          f"{1000 * statistics.median(photos):.0f} ms |")
    print(f"| `digitkit read RUN one.png` from the shell (median of 3) | {statistics.median(shell):.2f} s |")


if __name__ == "__main__":
    main()
