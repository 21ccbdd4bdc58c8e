"""Scanned forms in training (train.augment.scanned_forms, a share of the other writers and of the
calibration), the moving average of the weights (train.average), and the out-of-distribution
figures of benchmarks/real_handwriting.py."""

import json

import numpy as np
import pytest
import keras
import torch
from PIL import Image, ImageDraw

from digitkit import ConfigError
from digitkit.train import TrainConfig, train
from digitkit.train.augment import scanned_forms
from digitkit.train.average import WeightAverage
from digitkit.train.mix import TrainingData, wrong_cuts



def bar(width: int) -> torch.Tensor:
    """A thin vertical stroke (a plain 1) of ``width`` px in a 28x28 field."""
    image = torch.zeros(28, 28)
    image[4:24, 14 - width // 2 : 14 - width // 2 + width] = 1
    return image


def first_digits(mnist, count: int = 2000):
    """The first ``count`` MNIST training digits as a dataset with no validation split of its own."""
    class Data:
        x_train, y_train, x_val, y_val = mnist.x_train[:count], mnist.y_train[:count], None, None
        class_names = [str(d) for d in range(10)]
        num_classes = 10

    return Data


def test_scanned_forms_are_binarised_jagged_and_some_stretched_to_their_box():
    ones = torch.stack([bar(2)] * 64)[..., None]
    scans = scanned_forms(ones, torch.Generator().manual_seed(0), stretched=0.5)
    assert scans.shape == ones.shape and float(scans.min()) >= 0 and float(scans.amax(dim=(1, 2, 3)).min()) == 1
    widths = (scans[..., 0] > 0.5).any(1).sum(1)
    # Stretched: the 1 fills its 20 px box both ways (a fat bar); the rest stay thin.
    assert int((widths >= 18).sum()) > 16 and int((widths <= 5).sum()) > 16
    untouched = scanned_forms(ones, torch.Generator().manual_seed(0), stretched=0.0)
    assert int(((untouched[..., 0] > 0.5).any(1).sum(1) >= 18).sum()) == 0
    # Binarised at 16-32 px and resampled: edges are a few grey levels, not the pen's smooth ramp.
    values = torch.unique((scans * 255).round())
    assert len(values) > 8


def test_training_data_draws_scans_from_the_other_writers_and_calibrates_on_both(mnist):
    Data = first_digits(mnist)
    with_scans = TrainingData(TrainConfig.from_preset("fast", val_size=200), Data, torch.device("cpu"))
    assert with_scans.pool_names == ["other writers", "scanned forms of them", "non-digits", "wrong cuts"]
    pen, scans = with_scans.pools[0][2], with_scans.pools[1][2]
    assert scans == round((pen + scans) * 0.5)
    without = TrainingData(TrainConfig.from_preset("fast", val_size=200, scanned=0.0), Data, torch.device("cpu"))
    assert without.pool_names == ["other writers", "non-digits", "wrong cuts"]
    # The calibration writers come twice (pen and scan-style): twice as many calibrate.
    assert with_scans.calibration.sum() == 2 * without.calibration.sum()
    assert with_scans.pools[1][1] == min(scans * 1, with_scans.pools[0][1])  # as many as one epoch draws
    assert len(with_scans.x_train) == len(without.x_train) + with_scans.pools[1][1]


def test_the_default_also_draws_scans_of_the_datasets_own_digits(mnist):
    Data = first_digits(mnist)
    config = TrainConfig.from_preset("default", val_size=200)
    data = TrainingData(config, Data, torch.device("cpu"))
    assert data.pool_names == ["other writers", "scanned forms of them", "scanned forms of its digits", "non-digits",
                               "wrong cuts"]
    first, size, drawn = data.pools[2]
    assert drawn == round(1800 * config.scanned_dataset) and drawn * config.epochs - 5 <= size <= drawn * config.epochs
    # Scans of MNIST's own digits, labelled as the digits they were made from: binarised and scaled
    # back up (few grey levels against MNIST's smooth ones), --scanned-stretched of them (0.6) stretched
    # to their box.
    scans, labels = data.x_train[first : first + size, ..., 0], data.y_train[first : first + size]
    assert set(labels.tolist()) == set(range(10))

    def stretched_ones(data) -> float:  # a 1 as wide as its box: stretched
        first, size, _ = data.pools[2]
        scans, labels = data.x_train[first : first + size, ..., 0], data.y_train[first : first + size]
        return float(((scans[labels == 1] > 0.5).any(1).sum(1) >= 15).float().mean())
    assert config.scanned_stretched == 0.6 and 0.45 < stretched_ones(data) < 0.75
    third = TrainConfig.from_preset("default", val_size=200, scanned_stretched=0.3)
    third = TrainingData(third, Data, torch.device("cpu"))
    assert 0.15 < stretched_ones(third) < 0.45
    fast = TrainingData(TrainConfig.from_preset("fast", val_size=200), Data, torch.device("cpu"))
    assert "scanned forms of its digits" not in fast.pool_names
    for wrong in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="scanned dataset"):
            TrainConfig.from_preset("default", scanned_dataset=wrong).validate()
        with pytest.raises(ConfigError, match="scanned stretched"):
            TrainConfig.from_preset("default", scanned_stretched=wrong).validate()
    assert len(data.x_train) == len(TrainingData(TrainConfig.from_preset("default", val_size=200, scanned_dataset=0.0),
                                                 Data, torch.device("cpu")).x_train) + size


def test_the_last_epoch_can_end_on_the_dataset_with_the_same_number_of_steps(mnist):
    Data = first_digits(mnist)
    data = TrainingData(TrainConfig.from_preset("default", val_size=200), Data, torch.device("cpu"))
    whole, half, none = (data.epoch_order(torch.Generator().manual_seed(0), mix) for mix in (1.0, 0.5, 0.0))
    assert len(whole) == len(half) == len(none) == data.epoch_size
    own = [int((order < data.base).sum()) for order in (whole, half, none)]
    assert own[0] == data.base + data.repeat and own[2] == data.epoch_size
    assert abs(own[1] - (own[0] + own[2]) / 2) <= len(data.pools)
    for first, size, drawn in data.pools:
        in_pool = [int(((order >= first) & (order < first + size)).sum()) for order in (whole, half, none)]
        assert in_pool == [drawn, round(drawn * 0.5), 0]
    for wrong in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="final mix"):
            TrainConfig.from_preset("default", final_mix=wrong).validate()


def test_a_scan_that_lost_its_digit_is_not_learnt_as_that_digit():
    from digitkit.train.mix import EpochArrays

    class Data:
        # A faint hairline 1 binarises away at a scan's threshold, a clear 7 survives.
        faint, clear = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8)
        faint[4:24, 14] = 30
        clear[5, 6:22] = 255
        clear[5:24, 19:22] = 255
        x_train, y_train = np.stack([faint, clear] * 20), np.array([1, 7] * 20, np.uint8)
        x_val, y_val = x_train[:2], y_train[:2]
        class_names = [str(d) for d in range(10)]
        num_classes = 10

    config = TrainConfig.from_preset("default", scanned_dataset=1.0, synthetic=0.0, non_digits=0.0, epochs=1)
    arrays = EpochArrays.build(config, Data)
    first, size, _ = arrays.pools[0]
    assert arrays.pool_names == ["scanned forms of its digits"]
    assert set(arrays.y_train[first : first + size].tolist()) == {7}
    Data.x_train, Data.y_train = Data.x_train[::2], Data.y_train[::2]  # faint 1s alone: no scan survives
    assert EpochArrays.build(config, Data).pool_names == []


def test_wrong_cuts_are_pairs_and_pieces_learnt_as_no_digit(mnist):
    Data = first_digits(mnist)
    config = TrainConfig.from_preset("fast", val_size=200, wrong_cuts=0.1)
    data = TrainingData(config, Data, torch.device("cpu"))
    first, size, drawn = data.pools[data.pool_names.index("wrong cuts")]
    assert drawn == round(data.base / (1 - config.synthetic - config.non_digits - 0.1) * 0.1)  # a tenth of the epoch
    assert size == drawn * config.epochs and set(data.y_train[first : first + size].tolist()) == {10}
    cuts = wrong_cuts(mnist.x_train[:500], 200, seed=0)
    assert cuts.shape == (200, 28, 28) and cuts.dtype == np.uint8
    ink = cuts > 60
    widths, heights = ink.any(1).sum(1), ink.any(2).sum(1)
    # Even ones are two digits side by side, fitted as one: nearly all as wide as tall; odd ones a
    # piece of a wide digit: narrower for their height than MNIST's digits are (median 0.8).
    assert (widths[0::2] >= heights[0::2]).mean() > 0.85 and np.median(widths[0::2] / heights[0::2]) > 1.2
    assert np.median(widths[1::2] / heights[1::2]) < 0.7
    off = TrainingData(TrainConfig.from_preset("fast", val_size=200, wrong_cuts=0.0), Data, torch.device("cpu"))
    assert "wrong cuts" not in off.pool_names


def test_the_average_follows_the_weights_and_is_swapped_in_to_be_saved():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    average = WeightAverage(model, decay=0.9)
    kernel = model.weights[0].value
    start = kernel.detach().clone()
    with torch.no_grad():
        kernel.add_(1.0)
    for _ in range(200):
        average.update()
    assert torch.allclose(average.shadow[0], start + 1, atol=1e-3)  # caught up with constant weights
    with torch.no_grad():
        kernel.add_(1.0)
    average.update()
    assert torch.allclose(average.shadow[0], start + 1.1, atol=1e-3)  # a tenth of the way per step
    with average.swapped_in():
        assert torch.allclose(kernel, start + 1.1, atol=1e-3)
    assert torch.allclose(kernel, start + 2)  # its own weights back after the block
    saved = average.state_dict()
    other = WeightAverage(model, decay=0.9)
    other.load_state_dict(saved)
    assert other.steps == 201 and torch.equal(other.shadow[0], average.shadow[0])


def test_a_run_with_an_average_saves_the_averaged_weights(tmp_path, tiny_mnist_dir):
    config = dict(limit=600, val_size=200, runs_dir=str(tmp_path), data_dir=str(tiny_mnist_dir), epochs=1,
                  synthetic=0.0, non_digits=0.0, calibrate=False)
    plain = train(TrainConfig.from_preset("fast", name="plain", **config), quiet=True)
    averaged = train(TrainConfig.from_preset("fast", name="averaged", average=0.99, **config), quiet=True)
    history = json.loads((averaged.path / "history.json").read_text())
    assert history[0]["val_accuracy"] > 0.5
    a = keras.saving.load_model(plain.path / "model.keras").get_weights()
    b = keras.saving.load_model(averaged.path / "model.keras").get_weights()
    # Same seed, same steps: only the averaging differs, so the saved weights do.
    assert any(not np.allclose(x, y) for x, y in zip(a, b))
    with pytest.raises(Exception, match="average"):
        TrainConfig.from_preset("fast", average=1.0).validate()


def test_out_of_distribution_figures(real_handwriting):
    module = real_handwriting
    digits = np.linspace(0.5, 1.0, 100)
    apart = module.auroc_and_fpr95(digits, np.linspace(0.0, 0.4, 50))
    assert apart == {"n": 50, "auroc": 1.0, "fpr_at_95_tpr": 0.0}
    alike = module.auroc_and_fpr95(digits, digits.copy())
    assert alike["auroc"] == pytest.approx(0.5) and alike["fpr_at_95_tpr"] == pytest.approx(0.95)
    # Half the non-digits score as high as the surest digits.
    half = module.auroc_and_fpr95(digits, np.r_[np.full(50, 0.1), np.full(50, 1.0)])
    assert half["fpr_at_95_tpr"] == 0.5 and 0.5 < half["auroc"] < 0.55


def test_the_benchmark_reads_scan_style_digits_by_how_they_were_scanned(real_handwriting):
    module = real_handwriting
    drawing = Image.new("L", (120, 160), 255)
    ImageDraw.Draw(drawing).line([(60, 10), (60, 150)], fill=0, width=9)
    made = [module.scanned_form(drawing, np.random.default_rng(seed))[1] for seed in range(60)]
    assert all(set(details) == set(module.SCAN_DETAILS) for details in made)
    for key, values in (("pen", {"as written", "thicker", "thinner, broken"}), ("height", set(module.SCAN_HEIGHTS)),
                        ("box", {"aspect kept", "stretched"})):
        assert {details[key] for details in made} == values

    def answer(digit: int, confidence: float) -> dict:
        probs = {str(d): (confidence if d == digit else (1 - confidence) / 9) for d in range(10)}
        return {"probabilities": probs, "confidence": confidence}
    truth = {"a": {"label": "1", "render": "scan-style", "source": "w", "pen": "thicker"},
             "b": {"label": "1", "render": "scan-style", "source": "w", "pen": "thicker"},
             "c": {"label": "7", "render": "scan-style", "source": "w", "pen": "as written"},
             "d": {"label": "7", "render": "drawn", "source": "w"}}
    rows = {"a": answer(1, 0.99), "b": answer(8, 0.95), "c": answer(7, 0.6), "d": answer(7, 0.99)}
    summary = module.summarise_digits(truth, rows)
    # Drawn images have no pen: only the scans are grouped, each group with its own figures.
    assert summary["scans_by_pen"] == {"as written": {"n": 1, "accuracy": 1.0, "right_flagged_not_sure": 1.0},
                                       "thicker": {"n": 2, "accuracy": 0.5, "right_flagged_not_sure": 0.0}}
    assert "scans_by_height" not in summary


def test_the_benchmarks_mnist_scans_are_binary_and_a_stretched_1_fills_its_box(mnist, real_handwriting):
    module = real_handwriting
    one = mnist.x_test[int(np.flatnonzero(mnist.y_test == 1)[0])]
    rng = np.random.default_rng(0)
    kept, stretched = (np.asarray(module.mnist_scan(one, rng, s)) for s in (False, True))
    for scan in (kept, stretched):
        assert set(np.unique(scan).tolist()) == {20, 240}  # binarised: ink and paper, nothing between

    def box(scan):
        rows, cols = np.flatnonzero((scan < 128).any(1)), np.flatnonzero((scan < 128).any(0))
        return rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    tall, wide = box(kept)
    assert wide < tall / 2  # a 1 keeps its narrow shape
    tall, wide = box(stretched)
    assert abs(wide - tall) <= 4 * (64 // 16)  # and stretched, it is as wide as it is tall (a fat bar)
    binary, tall = module._scan_binary(one, rng, True)
    tight = np.asarray(module._jagged(binary[module._box(binary)], tall, margin=0)) < 128
    assert tight[0].any() and tight[-1].any() and tight[:, 0].any() and tight[:, -1].any()  # no paper round it


def test_wrong_cuts_pass_over_pieces_too_small_to_see_and_refuse_images_that_are_all_such():
    from digitkit import DigitkitError

    digits = np.zeros((40, 28, 28), np.uint8)
    digits[::2, 4:24, 4:24] = 255  # clear wide blocks
    # The odd ones blank (a scan that kept no ink): a pair of two of them is no cut at all.
    cuts = wrong_cuts(digits, 30, seed=0)
    assert cuts.shape == (30, 28, 28) and (cuts.reshape(30, -1).max(1) > 0).all()
    with pytest.raises(DigitkitError, match="wrong-cuts 0"):
        wrong_cuts(np.zeros((10, 28, 28), np.uint8), 5, seed=0)
