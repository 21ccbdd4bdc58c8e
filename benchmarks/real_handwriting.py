"""A stand-in for real handwriting: MNIST *test* digits re-rendered as scans and drawings, read back
with `digitkit predict --json`, exactly as a user would.

Each image takes a random size (56-420 px digit), stroke weight (pen thinner or thicker), a
non-square canvas with the digit anywhere on it, polarity (dark ink on light paper or the reverse),
paper tint, illumination gradient and noise, colour mode (L, RGB with coloured ink, RGBA over a
transparent background) and file type (PNG, or JPEG at quality 60-95). Fashion-MNIST test images
rendered the same way measure how confident the model is on images that hold no digit.

    python benchmarks/real_handwriting.py runs/first                 # 3,500 digits + 500 non-digits
    python benchmarks/real_handwriting.py runs/first/MNISTClassifier.onnx --count 1000

Prints the accuracy on the digits, the confidence on non-digits, and predict's throughput
(images per second with the model loaded once, normalisation included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from digitkit.data import load_dataset


def render(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One 28x28 MNIST-style image (white on black) → a plausible scan or drawing of it."""
    scale = rng.uniform(2, 15)
    size = int(28 * scale)
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    pen = rng.choice([-1, 0, 0, 1, 2])  # thinner, as is, thicker pen
    if pen:
        radius = max(1, int(round(abs(pen) * scale / 5)))
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        disk = yy**2 + xx**2 <= radius**2
        big = ndimage.grey_dilation(big, footprint=disk) if pen > 0 else ndimage.grey_erosion(big, footprint=disk)
    ink = 1 / (1 + np.exp(-(big - 0.45) * rng.uniform(8, 20)))  # crisp pen edges
    height = int(size * rng.uniform(1.05, 2.5))
    width = int(size * rng.uniform(1.05, 2.5))
    canvas = np.zeros((height, width), np.float32)
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    canvas[top : top + size, left : left + size] = ink
    mode = rng.choice(["L", "RGB", "RGBA"], p=[0.4, 0.4, 0.2])
    if mode == "RGBA":
        colour = rng.integers(0, 90, 3) if rng.random() < 0.7 else rng.integers(170, 256, 3)
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = np.clip(canvas * 255, 0, 255)
        return Image.fromarray(rgba, "RGBA")
    dark_ink = rng.random() < 0.75
    paper = rng.uniform(170, 255) if dark_ink else rng.uniform(0, 60)
    ink_level = rng.uniform(0, 70) if dark_ink else rng.uniform(190, 255)
    ramp = np.linspace(-1, 1, width)[None, :] * rng.uniform(0, 25)
    grey = paper + (ink_level - paper) * canvas + ramp + rng.normal(0, rng.uniform(0, 10), canvas.shape)
    if mode == "L":
        return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    tint = rng.uniform(0.8, 1.2, 3)  # coloured ink and paper
    rgb = np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def build_set(folder: Path, images: np.ndarray, labels: np.ndarray | None, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), count, replace=False)
    truth = {}
    for n, i in enumerate(picks):
        image = render(images[i], rng)
        jpeg = image.mode != "RGBA" and rng.random() < 0.3
        name = f"{n:05d}.{'jpg' if jpeg else 'png'}"
        if jpeg:
            image.save(folder / name, quality=int(rng.integers(60, 96)))
        else:
            image.save(folder / name)
        truth[name] = None if labels is None else str(labels[i])
    return truth


def predict_json(model: str, folder: Path) -> dict[str, dict]:
    """Run the real CLI, as the held-out set will be: `digitkit predict MODEL DIR --json`."""
    out = subprocess.run([sys.executable, "-m", "digitkit.cli", "predict", model, str(folder), "--json"],
                         capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {Path(r["file"]).name: r for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="run folder, .keras, .onnx, .mlpackage or .mlmodel")
    parser.add_argument("--count", type=int, default=3500, help="digits to render (default 3500)")
    parser.add_argument("--non-digits", type=int, default=500, help="Fashion-MNIST images (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="keep the rendered images in this folder")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    mnist = load_dataset("mnist")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        digits, others = root / "digits", root / "non-digits"
        digits.mkdir(parents=True, exist_ok=True)
        others.mkdir(parents=True, exist_ok=True)
        truth = build_set(digits, mnist.x_test, mnist.y_test, args.count, args.seed)
        rows = predict_json(args.model, digits)
        correct = sum(rows.get(name, {}).get("label") == label for name, label in truth.items())
        failed = sum("error" in rows.get(name, {"error": 1}) for name in truth)
        result = {"model": args.model, "digits": len(truth), "accuracy": correct / len(truth), "failed": failed}

        if args.non_digits:
            try:
                fashion = load_dataset("fashion-mnist", download=False)
                build_set(others, fashion.x_test, None, args.non_digits, args.seed + 1)
                conf = [r["confidence"] for r in predict_json(args.model, others).values() if "confidence" in r]
                result |= {"non_digits": len(conf), "non_digit_mean_confidence": float(np.mean(conf)),
                           "non_digit_confidence_over_0.9": float(np.mean(np.array(conf) > 0.9))}
                digit_conf = [r["confidence"] for r in rows.values() if "confidence" in r]
                result["digit_mean_confidence"] = float(np.mean(digit_conf))
            except Exception as err:  # Fashion-MNIST is optional here
                result["non_digits"] = f"skipped: {err}"

        from digitkit.predict import expand_inputs, load_classifier, predict_files

        classifier = load_classifier(args.model)
        paths = expand_inputs([str(digits)])[:1000]
        start = time.perf_counter()
        predict_files(classifier, paths)
        result["predict_images_per_second"] = len(paths) / (time.perf_counter() - start)

    print(json.dumps(result, indent=2))
    print(f"\nreal-handwriting stand-in: {result['accuracy']:.2%} of {result['digits']} digits read correctly; "
          f"predict runs at {result['predict_images_per_second']:.0f} images/s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
