"""Write docs/preprocessing_vectors.json: small input images and the 28x28 arrays that
digitkit.data.normalize makes of them; and docs/thickening_vectors.json: the (longer side, area,
boundary) cases where the thickening rule decides otherwise in float32 than in float64, with the
float64 answer. Ports of the routine (JavaScript, Swift) check against both.

    python docs/make_preprocessing_vectors.py
"""

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from digitkit.data.normalize import THIN_STROKE, TARGET_STROKE, WORK_SIZE, find_ink, normalize, stroke_width, thickening


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
    specks = seven(size=(48, 56), width=6)
    draw = ImageDraw.Draw(specks)
    for x, y in [(2, 2), (44, 3), (3, 50), (40, 52), (24, 30)]:
        draw.point([(x, y), (x + 1, y)], fill=40)  # dust: removed as specks
    yield "speck removal: seven with dust L 48x56", specks
    thin = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(thin).line([(14, 16), (30, 6), (46, 16), (14, 54), (48, 54)], fill=0, width=1)
    yield "thickening: one-pixel pen two L 60x60", thin
    bold = Image.new("L", (40, 44), 0)
    draw = ImageDraw.Draw(bold)
    draw.rectangle([15, 2, 25, 41], fill=255)  # a thick 1 with a flag and a foot, filling its box
    draw.polygon([(15, 2), (4, 12), (8, 16), (15, 10)], fill=255)
    draw.rectangle([6, 35, 34, 41], fill=255)
    yield "no thickening: thick box-filling one L 40x44", bold
    pencil = Image.new("L", (44, 52), 250)
    ImageDraw.Draw(pencil).line([(10, 8), (34, 8), (18, 46)], fill=30, width=7)
    texture = np.asarray(pencil).copy()
    texture[::2, ::3] = np.where(texture[::2, ::3] < 128, 250, texture[::2, ::3])  # pinholes in the graphite
    yield "no thickening: textured pencil seven L 44x52", Image.fromarray(texture)
    fat = Image.new("L", (32, 32), 250)  # over half of it ink: the median grey is the ink's
    ImageDraw.Draw(fat).polygon([(12, 0), (31, 0), (31, 6), (20, 31), (0, 31), (0, 24)], fill=10)
    yield "ink over half: a one stretched to fill a tight box L 32x32", fat
    yield "ink over half, light on dark: the same one inverted L 32x32", ImageOps.invert(fat)
    # The same as a dataset's grey bitmap (blurred, 16 px): not two-level, but as small as a dataset's digits.
    grey = ImageOps.invert(fat).filter(ImageFilter.GaussianBlur(1.5)).resize((16, 16), Image.Resampling.BILINEAR)
    yield "ink over half, grey light on dark: the one as a dataset's 16x16 bitmap L 16x16", grey
    form = Image.new("L", (72, 72), 240)
    draw = ImageDraw.Draw(form)
    draw.rectangle([4, 4, 67, 67], outline=25, width=2)  # a scanned form's dark printed box
    draw.line([(30, 18), (38, 12), (38, 58)], fill=35, width=4)
    yield "form box: a one in a dark printed box L 72x72", form.rotate(2, fillcolor=240, resample=Image.Resampling.BILINEAR)


def thickened(image) -> bool:
    ink = find_ink(image).ink
    return stroke_width(ink > 0) < THIN_STROKE * TARGET_STROKE * max(ink.shape)


def _thickening_float32(longer: int, area: int, boundary: int) -> float:
    """The rule as a port computing in float32 would: what the vectors catch."""
    f = np.float32
    width = f(2) * f(area) / f(max(boundary, 1))
    wanted = f(TARGET_STROKE) * f(longer)
    if width >= f(THIN_STROKE) * wanted:
        return 0.0
    grow = (wanted - width) / f(2)
    return float(grow) if grow >= f(0.5) else 0.0


def thickening_ties():
    """Every (longer, area, boundary) next to the rule's two thresholds (thick enough; grow ≥ 0.5 px)
    for crops up to the work size, where float32 decides otherwise than float64: to thicken or not,
    or by how many pixels to pad."""
    for longer in range(1, WORK_SIZE + 1):
        for boundary in range(1, 4 * longer + 1):
            for threshold in (THIN_STROKE * TARGET_STROKE * longer * boundary / 2, boundary * (TARGET_STROKE * longer - 1) / 2):
                for area in range(max(boundary, int(threshold) - 1), int(threshold) + 2):
                    if area > longer * longer:
                        continue
                    exact, single = thickening(longer, area, boundary), _thickening_float32(longer, area, boundary)
                    if (exact > 0) != (single > 0) or math.ceil(exact) != math.ceil(single):
                        yield {"longer": longer, "area": area, "boundary": boundary, "grow": exact}


def main():
    vectors = []
    for name, image in cases():
        if name.startswith(("thickening", "no thickening")):  # each case exercises what it says
            assert thickened(image) == name.startswith("thickening"), name
        rgba = image.convert("RGBA")
        vectors.append({
            "name": name,
            "mode": image.mode,
            "width": image.width,
            "height": image.height,
            "rgba": np.asarray(rgba).reshape(-1).tolist(),
            "expected": normalize(image).image.tolist(),
        })
    for case in vectors:
        print(f"{case['name']}: {case['width']}x{case['height']}")
    path = Path(__file__).with_name("preprocessing_vectors.json")
    path.write_text(json.dumps(vectors, separators=(",", ":")) + "\n")
    print(f"wrote {len(vectors)} vectors to {path}")
    ties = list(thickening_ties())
    path = Path(__file__).with_name("thickening_vectors.json")
    path.write_text(json.dumps(ties, separators=(",", ":")) + "\n")
    print(f"wrote {len(ties)} thickening ties to {path}")


if __name__ == "__main__":
    main()
