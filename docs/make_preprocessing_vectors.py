"""Write docs/preprocessing_vectors.json: small input images and the 28x28 arrays that
digitkit.predict.preprocessing makes of them. Ports of the routine (JavaScript, Swift) check against it.

    python docs/make_preprocessing_vectors.py
"""

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitkit.predict.preprocessing import normalize


def seven(size=(40, 60), ink=0, paper=255, width=5, mode="L"):
    image = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.line([(w * 0.2, h * 0.2), (w * 0.8, h * 0.2), (w * 0.45, h * 0.85)], fill=ink, width=width)
    return image


def cases():
    yield "dark-on-light L 40x60 seven", seven()
    yield "light-on-dark L 40x60 seven", seven(ink=255, paper=0)
    yield "blue ink on cream RGB 40x60 seven", seven(ink=(30, 40, 160), paper=(245, 240, 220), mode="RGB")
    canvas = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).ellipse([15, 10, 35, 40], outline=(0, 0, 0, 255), width=4)
    yield "RGBA transparent canvas 50x50 zero", canvas
    small = Image.new("L", (64, 36), 255)
    ImageDraw.Draw(small).line([(50, 5), (50, 14)], fill=0, width=2)
    yield "tiny off-centre one in L 64x36", small


def main():
    vectors = []
    for name, image in cases():
        rgba = image.convert("RGBA")
        vectors.append({
            "name": name,
            "mode": image.mode,
            "width": image.width,
            "height": image.height,
            "rgba": np.asarray(rgba).reshape(-1).tolist(),
            "expected": normalize(image).image.tolist(),
        })
    path = Path(__file__).with_name("preprocessing_vectors.json")
    path.write_text(json.dumps(vectors, separators=(",", ":")) + "\n")
    print(f"wrote {len(vectors)} vectors to {path}")


if __name__ == "__main__":
    main()
