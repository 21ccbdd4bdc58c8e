"""What one image can cost: decoding and normalising the most expensive images digitkit accepts.

Each image is measured in a fresh process: the time to decode it (`load_image`, which also reduces
large images to 384 px) and to normalise it (`normalize`), best of 5, and the peak memory the process
grew by over its resident size before the first image (which counts Pillow's and NumPy's allocations alike).

    python benchmarks/normalize_cost.py
    python benchmarks/normalize_cost.py --json cost.json

Targets (issue: hardening): any accepted image normalises in under 50 ms and under 100 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitkit.data.normalize import MAX_PIXELS


def thin_pen(size: int) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).line([(size * 0.2, size * 0.2), (size * 0.8, size * 0.2), (size * 0.4, size * 0.9)],
                               fill=0, width=1)
    return image


def cases() -> dict[str, tuple[Image.Image, str]]:
    side = int(MAX_PIXELS**0.5)
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8), "RGB")
    photo = thin_pen(4000).resize((4032, 3024)).convert("RGB")
    return {
        "thin pen 600x600 PNG": (thin_pen(600), "PNG"),
        "thin pen 1200x1200 PNG": (thin_pen(1200), "PNG"),
        "thin pen 4000x4000 PNG (16 MP, the most accepted)": (thin_pen(side), "PNG"),
        "RGBA 4000x4000 PNG, transparent canvas": (thin_pen(side).convert("LA").convert("RGBA"), "PNG"),
        "phone photo 4032x3024 JPEG": (photo, "JPEG"),
        "noise 2000x2000 RGB PNG (incompressible)": (noisy, "PNG"),
        "20000x1 PNG": (Image.new("L", (20000, 1), 0), "PNG"),
        "16-bit grey 2000x2000 PNG": (thin_pen(2000).convert("I;16"), "PNG"),
        "LAB 1000x1000 TIFF": (thin_pen(1000).convert("RGB").convert("LAB"), "TIFF"),
    }


MEASURE = r"""
import sys, time, json

from digitkit.data.normalize import BlankImage, load_image, normalize

def status_mb(field):  # VmRSS: resident now; VmHWM: its peak (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024

blob = open(sys.argv[1], "rb").read()
before = status_mb("VmRSS")  # after the imports, whose own peak must not hide the image's
decode, norm = [], []
for _ in range(6):  # the first warms the decoder's and the filters' code paths
    t = time.perf_counter(); image = load_image(blob); decode.append(time.perf_counter() - t)
    t = time.perf_counter()
    try:
        normalize(image)
    except BlankImage:
        pass
    norm.append(time.perf_counter() - t)
peak = status_mb("VmHWM")
print(json.dumps({"decode_ms": 1000 * min(decode[1:]), "normalize_ms": 1000 * min(norm[1:]),
                  "peak_mb": max(0.0, peak - before)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (image, fmt) in cases().items():
            buffer = io.BytesIO()
            image.save(buffer, fmt)
            path = Path(tmp) / f"case.{fmt.lower()}"
            path.write_bytes(buffer.getvalue())
            out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"measuring {name} failed:\n{out.stderr[-2000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"image": name, "bytes": len(buffer.getvalue()), **result})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| image | file size | decode ms | normalise ms | peak memory MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['image']} | {r['bytes'] / 1024:.0f} KiB | {r['decode_ms']:.1f} | {r['normalize_ms']:.1f} | "
              f"{r['peak_mb']:.0f} |")
    worst = max(rows, key=lambda r: r["normalize_ms"])
    print(f"\nslowest normalisation: {worst['normalize_ms']:.1f} ms ({worst['image']}); "
          f"largest memory: {max(r['peak_mb'] for r in rows):.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
