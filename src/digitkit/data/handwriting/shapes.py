"""Drawings that are not digits (hearts, stars, spirals, scribbles, letters, a tapped dot, …): the
model learns to answer them with no confidence (uniform probabilities), so the page and the app can
say "That doesn't look like a digit" instead of "0, 98.9% sure".

Each kind is a function ``rng → strokes`` in a unit box (x right, y down), drawn by a random writer
with the pen of a drawing app. ``TRAINING_KINDS`` make training data; the benchmark also draws
``HELD_OUT_KINDS``, which training never sees, and letters from fonts training does not use.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from digitkit.data.handwriting.pen import canvas_image, smooth_curve


def _closed(points: np.ndarray) -> np.ndarray:
    return np.vstack([points, points[:1]])


def heart(rng):
    t = np.linspace(0, 2 * math.pi, 60)
    x = 16 * np.sin(t) ** 3 * rng.uniform(0.8, 1.2)
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [np.stack([x, y], 1)]


def star(rng):
    points = int(rng.choice([5, 5, 6, 7]))
    inner = rng.uniform(0.35, 0.5)
    angles = np.linspace(0, 2 * math.pi, 2 * points, endpoint=False) - math.pi / 2
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return [_closed(np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1))]


def spiral(rng):
    turns = rng.uniform(2, 4)
    t = np.linspace(0, 2 * math.pi * turns, int(40 * turns))
    r = 0.1 + t
    return [np.stack([r * np.cos(t), r * np.sin(t) * rng.choice([-1, 1])], 1)]


def scribble(rng):
    # Enough turns that no single stroke of a digit is among them.
    count = int(rng.integers(12, 26))
    walk = np.cumsum(rng.normal(0, 1, (count, 2)), 0)
    return [smooth_curve(walk, steps=6)]


def triangle(rng):
    corners = np.array([[0, -1], [0.9, 0.6], [-0.9, 0.6]]) + rng.normal(0, 0.08, (3, 2))
    return [_closed(corners)]


def square(rng):
    w = rng.uniform(0.6, 1.4)
    corners = np.array([[-w, -1], [w, -1], [w, 1], [-w, 1]]) + rng.normal(0, 0.05, (4, 2))
    return [_closed(corners)]


def cross(rng):
    if rng.random() < 0.5:  # plus
        return [np.array([[-1, 0], [1, 0]]), np.array([[0, -1], [0, 1]])]
    return [np.array([[-1, -1], [1, 1]]), np.array([[1, -1], [-1, 1]])]


def zigzag(rng):
    teeth = int(rng.integers(3, 7))
    x = np.linspace(-1, 1, 2 * teeth + 1)
    y = np.where(np.arange(2 * teeth + 1) % 2 == 0, -0.4, 0.4)
    return [np.stack([x, y], 1)]


def wave(rng):
    x = np.linspace(-1, 1, 60)
    return [np.stack([x, 0.3 * np.sin(x * math.pi * rng.uniform(1.5, 4))], 1)]


def smiley(rng):
    t = np.linspace(0, 2 * math.pi, 40)
    face = np.stack([np.cos(t), np.sin(t)], 1)
    mouth_t = np.linspace(0.2 * math.pi, 0.8 * math.pi, 12)
    mouth = np.stack([0.55 * np.cos(mouth_t), 0.1 + 0.45 * np.sin(mouth_t)], 1)
    eye = 0.12 * np.stack([np.cos(t), np.sin(t)], 1)
    eyes = [eye + (-0.38, -0.3), eye + (0.38, -0.3)]
    return [face, mouth, *eyes]


def arrow(rng):
    return [np.array([[-1, 0], [1, 0]]), np.array([[0.5, -0.45], [1, 0], [0.5, 0.45]])]


def hash_sign(rng):
    return [np.array([[-0.4, -1], [-0.5, 1]]), np.array([[0.4, -1], [0.3, 1]]),
            np.array([[-1, -0.35], [1, -0.35]]), np.array([[-1, 0.35], [1, 0.35]])]


def check(rng):
    return [np.array([[-1, 0], [-0.4, 0.7], [1, -1]])]


def lightning(rng):
    return [np.array([[0.3, -1], [-0.4, 0.1], [0.3, 0.0], [-0.3, 1]])]


def house(rng):
    return [_closed(np.array([[-0.8, 0], [0.8, 0], [0.8, 1], [-0.8, 1]])), np.array([[-1, 0.1], [0, -0.9], [1, 0.1]])]


def cloud(rng):
    bumps = int(rng.integers(4, 7))
    t = np.linspace(0, 2 * math.pi, bumps * 12)
    r = 1 + 0.25 * np.abs(np.sin(t * bumps / 2))
    return [np.stack([1.4 * r * np.cos(t), 0.8 * r * np.sin(t)], 1)]


def flower(rng):
    petals = int(rng.integers(4, 8))
    t = np.linspace(0, 2 * math.pi, petals * 16)
    r = np.abs(np.cos(t * petals / 2))
    return [np.stack([r * np.cos(t), r * np.sin(t)], 1)]


def sun(rng):
    t = np.linspace(0, 2 * math.pi, 30)
    rays = int(rng.integers(6, 11))
    strokes = [0.5 * np.stack([np.cos(t), np.sin(t)], 1)]
    for a in np.linspace(0, 2 * math.pi, rays, endpoint=False):
        strokes.append(np.array([[0.65 * math.cos(a), 0.65 * math.sin(a)], [math.cos(a), math.sin(a)]]))
    return strokes


def loops(rng):
    count = int(rng.integers(3, 7))
    t = np.linspace(0, 2 * math.pi * count, count * 20)
    return [np.stack([t / (2 * math.pi) * 0.9 + 0.5 * np.sin(t), -0.6 * np.cos(t) * rng.uniform(0.6, 1.2)], 1)]


def eye(rng):
    t = np.linspace(0, math.pi, 20)
    upper = np.stack([np.cos(t) * 1.4, -0.7 * np.sin(t)], 1)
    lower = np.stack([np.cos(t) * 1.4, 0.7 * np.sin(t)], 1)
    s = np.linspace(0, 2 * math.pi, 24)
    return [upper, lower, 0.35 * np.stack([np.cos(s), np.sin(s)], 1)]


def fish(rng):
    t = np.linspace(0.25 * math.pi, 1.75 * math.pi, 40)
    body = np.stack([np.cos(t) + 0.3, 0.55 * np.sin(t)], 1)
    tail = np.array([[1.0, -0.38], [1.6, 0.4], [1.6, -0.4], [1.0, 0.38]])
    return [body, tail]


def moon(rng):
    t = np.linspace(0.5 * math.pi, 1.5 * math.pi, 30)
    inner = rng.uniform(0.2, 0.5)  # the inner arc bulges the same way, less: a crescent, not an O
    return [np.vstack([np.stack([np.cos(t), np.sin(t)], 1), np.stack([inner * np.cos(t[::-1]), np.sin(t[::-1])], 1)])]


SHAPES = {"heart": heart, "star": star, "spiral": spiral, "scribble": scribble, "triangle": triangle,
          "square": square, "cross": cross, "zigzag": zigzag, "wave": wave, "smiley": smiley, "arrow": arrow,
          "hash": hash_sign, "check": check, "lightning": lightning, "house": house, "cloud": cloud,
          "flower": flower, "sun": sun, "loops": loops, "eye": eye,
          "fish": fish, "moon": moon}
HELD_OUT_KINDS = ("lightning", "flower", "fish", "moon")  # benchmark only
TRAINING_KINDS = tuple(k for k in SHAPES if k not in HELD_OUT_KINDS) + ("letter", "dot")
# Letters and signs that no digit resembles (no O, I, l, S, Z, B, b, g, q, G, T, …).
LETTERS = "AEFHKMNPRVWXYkmnvwx#%*+=<>@"


def shape_strokes(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """A shape's strokes in a unit box (1 high, top-left at 0, 0)."""
    strokes = [np.asarray(s, np.float64) for s in SHAPES[kind](rng)]
    points = np.vstack(strokes)
    lo, hi = points.min(0), points.max(0)
    scale = max(hi[1] - lo[1], hi[0] - lo[0], 1e-6)
    return [(s - lo) / scale for s in strokes]


def dot(rng: np.random.Generator) -> Image.Image:
    """A tap on the canvas: a round blot of the pen, or a tiny squiggle, somewhere on the canvas."""
    canvas = 280 if rng.random() < 0.5 else int(rng.integers(200, 700))
    yy, xx = np.mgrid[0:canvas, 0:canvas]
    radius = rng.uniform(3, 25)
    cx, cy = rng.uniform(radius, canvas - radius, 2)
    stretch = rng.uniform(1, 2.5) if rng.random() < 0.4 else 1.0
    distance = np.hypot((xx - cx) / stretch, yy - cy)
    ink = np.clip(radius - distance + 0.5, 0, 1).astype(np.float32)
    return canvas_image(ink, rng, page=canvas == 280)
