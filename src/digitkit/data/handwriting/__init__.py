"""Handwriting from writers MNIST lacks, and drawings that are not digits: one module per source and
one builder.

MNIST has about 500 writers, mostly American: no crossed 7s, few 1s with a flag and a foot, few
open 4s. To read other people, digitkit trains on MNIST plus:

- ``skeletons``: hand-made digit skeletons in several styles, drawn by random writers with a round pen;
- ``fonts``: handwriting fonts, rendered and distorted like scans;
- ``hershey``: Hershey stroke fonts, drawn as pen strokes;
- ``pendigits``: real pen digits of 24 writers who are not in MNIST (6 more are held out);
- ``shapes``: non-digits (hearts, stars, spirals, scribbles, letters, dots), learnt as "no digit".

``pen`` is the renderer they share; ``builder`` builds the shipped training set.
"""

from digitkit.data.handwriting.builder import (DIGITS, EXTRA_DIR, PARTS, build_non_digits, build_pendigits,
                                               build_synthetic, letter_sources, load_extra_digits,
                                               load_non_digits, load_part, non_digit, normalized)
from digitkit.data.handwriting.fonts import FONT_ROOT, TRAINING_FONTS, distort_glyph, font_glyph, font_paths
from digitkit.data.handwriting.hershey import HERSHEY_ROOT, TRAINING_HERSHEY, hershey_glyphs
from digitkit.data.handwriting.pen import (Writer, canvas_image, draw_strokes, drawing, pen_digit, smooth_curve,
                                           to_unit_box)
from digitkit.data.handwriting.skeletons import STYLES, style_strokes

__all__ = ["DIGITS", "EXTRA_DIR", "FONT_ROOT", "HERSHEY_ROOT", "PARTS", "STYLES", "TRAINING_FONTS",
           "TRAINING_HERSHEY", "Writer", "build_non_digits", "build_pendigits", "build_synthetic", "canvas_image",
           "distort_glyph", "draw_strokes", "drawing", "font_glyph", "font_paths", "hershey_glyphs",
           "letter_sources", "load_extra_digits", "load_non_digits", "load_part", "non_digit", "normalized",
           "pen_digit", "smooth_curve", "style_strokes", "to_unit_box"]
