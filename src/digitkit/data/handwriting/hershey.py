"""Hershey stroke fonts (Debian's hershey-fonts-data): single-line glyphs, drawn as pen strokes."""

from __future__ import annotations

from pathlib import Path

import numpy as np


HERSHEY_ROOT = Path("/usr/share/hershey-fonts")
TRAINING_HERSHEY = ("futural", "scripts")  # the simplex and script designs; the benchmark uses others


def hershey_glyphs(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Glyphs of a Hershey ``.jhf`` font in ASCII order from space: char → strokes (x right, y down)."""
    text = Path(path).read_text(encoding="latin-1").replace("\n", "")
    glyphs, pos, code = {}, 0, 32
    while pos + 8 <= len(text):
        count = int(text[pos + 5 : pos + 8])
        body = text[pos + 8 : pos + 8 + 2 * count]
        pos += 8 + 2 * count
        strokes, current = [], []
        for i in range(2, len(body) - 1, 2):  # the first pair is the glyph's left and right bounds
            pair = body[i : i + 2]
            if pair == " R":
                if current:
                    strokes.append(np.array(current, np.float64))
                current = []
            else:
                current.append((ord(pair[0]) - ord("R"), ord(pair[1]) - ord("R")))
        if current:
            strokes.append(np.array(current, np.float64))
        glyphs[chr(code)] = strokes
        code += 1
    return glyphs
