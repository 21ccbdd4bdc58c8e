"""What one epoch of training is made of: the dataset's training images, drawn again up to a minimum
of steps, and (for digit datasets) other writers' handwriting and drawings that are not digits, as
the recipe's fractions say. Data policy, kept out of the training loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from digitkit import DigitkitError
from digitkit.data import split_validation
from digitkit.data.handwriting import DIGITS, load_extra_digits, load_non_digits, load_part
from digitkit.data.normalize import BlankImage, fit_digit
from digitkit.inference import to_tensor
from digitkit.train.augment import scanned_forms
from digitkit.train.config import TrainConfig

MIN_STEPS = 50  # steps per epoch at least: a small dataset is drawn from again (augmented each time)
INKED = 0.1  # a wrong cut's digits are cropped to their pixels above this


class TrainingData:
    """The training and validation tensors on the device, and each epoch's order of examples.

    Digit datasets only: with ``config.synthetic`` > 0, every epoch is the dataset's training images
    plus a fresh random draw from other writers' handwriting (data.handwriting: real pen digits and
    generated styles, as ``config.writers`` says), that many that they make up the ``synthetic``
    fraction of the epoch; a tenth of them joins the validation split, so the best epoch and the
    calibration are chosen on other writers too; with the real pen digits, the calibration writers
    (never trained on) join the validation split and alone fit the temperature. A ``config.scanned``
    share of the other writers' draws are the same digits as scanned forms deliver them (made once
    per run, ``augment.scanned_forms``), and the calibration writers join as scans too. With
    ``config.non_digits`` > 0, that fraction of the epoch is drawings that are not digits, labelled
    one past the last class (see ``_loss``), and a ``config.wrong_cuts`` fraction is digits cut
    wrongly (``wrong_cuts``), labelled the same. With ``config.scanned_dataset`` > 0, each epoch also
    draws that share of the dataset's own digits again as scanned forms deliver them."""

    def __init__(self, config: TrainConfig, data, dev: torch.device, arrays: EpochArrays | None = None):
        arrays = arrays or EpochArrays.build(config, data)
        self.base, self.pools, self.pool_names = arrays.base, arrays.pools, arrays.pool_names
        self.calibration = arrays.calibration
        self.per_epoch_extra = sum(drawn for _, _, drawn in self.pools)
        self.x_train, self.x_valid = to_tensor(arrays.x_train, dev), to_tensor(arrays.x_valid, dev)
        self.y_train, self.y_valid = (torch.from_numpy(a.astype(np.int64)).to(dev)
                                      for a in (arrays.y_train, arrays.y_valid))
        self.y_val_numpy = arrays.y_valid
        self.repeat = max(0, MIN_STEPS * config.batch_size - self.base)
        self.epoch_size = self.base + self.repeat + self.per_epoch_extra

    def mix(self) -> str:
        """What each epoch draws besides the dataset, for the progress line."""
        return "".join(f" + {drawn:,} {name}" for (_, _, drawn), name in zip(self.pools, self.pool_names))

    def epoch_order(self, generator: torch.Generator, mix: float = 1.0) -> torch.Tensor:
        """One epoch's example indices; ``mix`` < 1 keeps that share of each pool's draws and takes
        the rest from the dataset's images (the same number of images, so the same steps)."""
        dev = self.x_train.device
        kept = [round(count * mix) for _, _, count in self.pools]
        order = torch.randperm(self.base, device=dev, generator=generator)
        extra = self.repeat + sum(count for _, _, count in self.pools) - sum(kept)
        if extra:
            order = torch.cat([order, torch.randint(self.base, (extra,), device=dev, generator=generator)])
        if self.pools:
            drawn = [first + torch.randint(size, (count,), device=dev, generator=generator)
                     for (first, size, _), count in zip(self.pools, kept)]
            order = torch.cat([order, *drawn])
            order = order[torch.randperm(len(order), device=dev, generator=generator)]
        return order


@dataclasses.dataclass
class EpochArrays:
    """The uint8 images and labels behind :class:`TrainingData`, before they go to the device: plain
    NumPy, so that ``digitkit train`` can build them in another process while Keras imports
    (train.prefetch). ``pools``: (first index, size, drawn per epoch) after the dataset's images;
    ``calibration``: which validation images fit the temperature."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    base: int
    pools: list[tuple[int, int, int]]
    pool_names: list[str]
    calibration: np.ndarray

    @classmethod
    def build(cls, config: TrainConfig, data) -> EpochArrays:
        if data.x_val is not None:
            x_tr, y_tr, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
        else:
            x_tr, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, config.val_size, config.seed)
        if config.limit:
            x_tr, y_tr = x_tr[: config.limit], y_tr[: config.limit]
        if not len(x_tr):
            raise DigitkitError("no training images left after the validation split")
        # All validation images fit the temperature unless other writers' calibration set is there:
        # how sure to be with a new person is what the page and the app show.
        out = cls(x_tr, y_tr, x_val, y_val, len(x_tr), [], [], np.ones(len(x_val), bool))
        digits = list(data.class_names) == list(DIGITS)
        synthetic = config.synthetic if digits else 0.0
        non_digits = config.non_digits if digits else 0.0
        cuts = config.wrong_cuts if non_digits else 0.0  # learnt as non-digits too
        epoch_size = out.base / (1 - synthetic - non_digits - cuts)
        # Each pool's images are gathered first and joined once, not the whole set copied per pool.
        parts = [(x_tr, y_tr)]
        if synthetic > 0:
            out._other_writers(config, round(epoch_size * synthetic), parts)
        if digits and config.scanned_dataset > 0:
            out._own_scans(config, round(out.base * config.scanned_dataset), parts)
        if non_digits > 0:
            x_nd = load_non_digits()
            out._pool("non-digits", len(x_nd), round(epoch_size * non_digits), parts)
            parts.append((x_nd, np.full(len(x_nd), data.num_classes, y_tr.dtype)))
            if cuts > 0:
                # Made from the digits above (the dataset's, other writers', scans), each about once.
                drawn = round(epoch_size * cuts)
                made = wrong_cuts(np.concatenate([x for x, _ in parts[:-1]]), drawn * config.epochs, config.seed)
                out._pool("wrong cuts", len(made), drawn, parts)
                parts.append((made, np.full(len(made), data.num_classes, y_tr.dtype)))
        out.x_train = np.concatenate([x for x, _ in parts]) if len(parts) > 1 else x_tr
        out.y_train = np.concatenate([y for _, y in parts]) if len(parts) > 1 else y_tr
        return out

    def _pool(self, name: str, size: int, drawn: int, parts: list) -> None:
        """A pool of ``size`` images, about to be appended after the images in ``parts``."""
        self.pools.append((sum(len(x) for x, _ in parts), size, drawn))
        self.pool_names.append(name)

    def _own_scans(self, config: TrainConfig, drawn: int, parts: list) -> None:
        """The pool of the dataset's own digits as scanned forms deliver them (its hundreds of writers,
        where the other writers are two dozen), as many as the run draws (each about once)."""
        x_tr, y_tr = parts[0]
        chosen = np.random.default_rng(config.seed + 2).permutation(self.base)[: drawn * config.epochs]
        originals = x_tr[chosen]
        scans = as_scans(originals, config.seed + 2, config.scanned_stretched)
        # A faint digit can binarise to a few dots or to nothing: no longer a picture of its label.
        kept = _inked_pixels(scans) >= 0.25 * _inked_pixels(originals)
        if not kept.any():  # a handful of images, or none that survives a scan
            return
        self._pool("scanned forms of its digits", int(kept.sum()), drawn, parts)
        parts.append((scans[kept], y_tr[chosen][kept]))

    def _other_writers(self, config: TrainConfig, drawn: int, parts: list) -> None:
        """The other writers' pool (and its scanned forms) after the training images, their held-out
        tenth and the calibration writers after the validation images."""
        x_ex, y_ex = load_extra_digits(tuple(config.writers.split("+")))
        # Held out even when the dataset gives no validation images (--val-size 0): the best
        # epoch and the calibration are then chosen on other writers alone.
        x_ex_tr, y_ex_tr, x_ex_val, y_ex_val = split_validation(x_ex, y_ex, round(0.1 * len(x_ex)), config.seed)
        scans = round(drawn * config.scanned)
        self._pool("other writers", len(x_ex_tr), drawn - scans, parts)
        parts.append((x_ex_tr, y_ex_tr))
        if scans:
            # As many scans as the run draws (each about once), of as many different digits.
            chosen = np.random.default_rng(config.seed).permutation(len(x_ex_tr))[: scans * config.epochs]
            self._pool("scanned forms of them", len(chosen), scans, parts)
            parts.append((as_scans(x_ex_tr[chosen], config.seed, config.scanned_stretched), y_ex_tr[chosen]))
        valid = [(self.x_valid, self.y_valid), (x_ex_val, y_ex_val)]
        held = len(self.x_valid) + len(x_ex_val)
        if "pendigits" in config.writers:
            # Writers training never saw fit the temperature, as pen drawings and, with scans in
            # training, as scanned forms too: one temperature for both kinds.
            x_cal, y_cal = load_part("pendigits-calibration")
            valid.append((x_cal, y_cal))
            if scans:
                valid.append((as_scans(x_cal, config.seed + 1, config.scanned_stretched), y_cal))
        self.x_valid, self.y_valid = (np.concatenate(arrays) for arrays in zip(*valid))
        # The calibration writers after the held-out images, where they are; else every image.
        self.calibration = np.arange(len(self.x_valid)) >= held if len(valid) > 2 else np.ones(len(self.x_valid), bool)


def wrong_cuts(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` wrong cuts of uint8 digits, each fitted into 28x28 as one digit (``fit_digit``), as a
    number's reader sees them: half are two digits side by side, touching or overlapping by up to a
    fifth of their height; half are the left or right piece of a wide digit cut 35-65% of the way
    across. Learnt as no digit, so the reader cuts a pair apart and keeps a whole digit whole."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, 28, 28), np.uint8)
    candidates = rng.permutation(len(images))[: 4 * count]
    wide = candidates[_is_wide(images[candidates])].tolist()
    i = failures = 0
    while i < count:
        if failures > count + 100:
            raise DigitkitError("the training images are too faint to make wrong cuts of (nearly every piece is "
                                "too small to see at 28 px); train with --wrong-cuts 0")
        if i % 2 == 0 or not wide:
            ink = _pair(*(_inked(images[k]) for k in rng.integers(len(images), size=2)), rng)
        else:
            ink = _piece(_inked(images[wide[int(rng.integers(len(wide)))]]), rng)
        try:
            out[i] = fit_digit(ink)
        except BlankImage:  # blank, or a piece of a faint scan too small to see at 28 px: cut another
            failures += 1
            continue
        i += 1
    return out


def _pair(left: np.ndarray, right: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height = max(len(left), len(right))
    drop = int(rng.integers(0, max(1, height // 6)))  # one sits a little lower
    overlap = min(int(rng.uniform(0, 0.2) * height), left.shape[1] - 1, right.shape[1] - 1)
    canvas = np.zeros((height + drop, left.shape[1] + right.shape[1] - overlap), np.float32)
    canvas[: len(left), : left.shape[1]] = left
    region = canvas[drop : drop + len(right), left.shape[1] - overlap :]
    np.maximum(region, right, out=region)
    return canvas


def _is_wide(images: np.ndarray) -> np.ndarray:
    """Which uint8 digits are wide: a piece of a narrow digit is a bar, which a 1 is, so only wide
    digits are cut. The ink's box as ``_inked`` crops it, for all at once."""
    inked = images > INKED * 255
    rows, cols = inked.any(2), inked.any(1)

    def extent(mask: np.ndarray) -> np.ndarray:
        return mask.shape[1] - mask[:, ::-1].argmax(1) - mask.argmax(1)

    return extent(cols) >= 0.7 * extent(rows)


def _piece(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cut = int(rng.uniform(0.35, 0.65) * ink.shape[1])
    piece = ink[:, :cut] if rng.random() < 0.5 else ink[:, cut:]
    cols = np.flatnonzero(piece.max(0) > 0.1)
    if len(cols) < 0.4 * len(piece):  # a thin sliver is a bar, which a 1 is: cut further in
        return ink[:, : max(cut, int(0.65 * ink.shape[1]))]
    return piece


def _inked(image: np.ndarray) -> np.ndarray:
    ink = image.astype(np.float32) / 255
    rows, cols = np.flatnonzero(ink.max(1) > INKED), np.flatnonzero(ink.max(0) > INKED)
    if not len(rows):
        return ink  # a blank image stays whole (fit_digit finds the other digit's ink)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _inked_pixels(images: np.ndarray) -> np.ndarray:
    return (images > INKED * 255).sum((1, 2))


def as_scans(images: np.ndarray, seed: int, stretched: float) -> np.ndarray:
    """uint8 digits as scanned forms deliver them (``augment.scanned_forms``), one each, ``stretched``
    of them pulled to fill their box."""
    scans = scanned_forms(to_tensor(images, torch.device("cpu")), torch.Generator().manual_seed(seed), stretched)
    return (scans[..., 0] * 255).round().to(torch.uint8).numpy()
