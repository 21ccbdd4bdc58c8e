import json
import subprocess
import sys

import pytest

from digitkit.cli import main


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "digitkit train --model tutorial --epochs 10 --batch-size 200" in capsys.readouterr().out


def test_unknown_model_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "resnet"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_evaluate_missing_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "is not a run folder" in err and "Traceback" not in err


def test_evaluate_run_without_model(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert main(["evaluate", str(tmp_path / "half")]) == 2
    assert "has no model.keras" in capsys.readouterr().err


def test_evaluate_corrupt_model(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.keras").write_bytes(b"not a zip")
    (tmp_path / "bad" / "config.json").write_text("{}")
    assert main(["evaluate", str(tmp_path / "bad")]) == 2
    assert "not a readable Keras model" in capsys.readouterr().err


def test_train_bad_data_dir(tmp_path, capsys):
    assert main(["train", "--data-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "does not hold the mnist files" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no half-made run folder


def test_train_then_evaluate(tmp_path, tiny_mnist_dir, capsys):
    runs = tmp_path / "runs"
    args = ["train", "--preset", "fast", "--limit", "400", "--val-size", "100", "--name", "cli",
            "--runs-dir", str(runs), "--data-dir", str(tiny_mnist_dir)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(runs / "cli"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    evaluation = json.loads((runs / "cli" / "evaluation.json").read_text())
    assert printed == evaluation
    metrics = json.loads((runs / "cli" / "metrics.json").read_text())
    assert evaluation["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert evaluation["num_test"] == 300


def test_training_log_in_a_file_keeps_each_epoch_on_one_line(tmp_path, tiny_mnist_dir):
    """Written to a pipe or a file (no terminal), every epoch's line stays whole."""
    out = subprocess.run([sys.executable, "-m", "digitkit", "train", "--preset", "fast", "--limit", "400",
                          "--val-size", "100", "--epochs", "2", "--name", "log", "--runs-dir", str(tmp_path),
                          "--data-dir", str(tiny_mnist_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    epochs = [line for line in out.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all("val_accuracy" in line and line.endswith(" s)") for line in epochs), out.stdout
    assert "-0.0000" not in out.stdout
    # The command ends ready for predict and serve, and says where its time went, step by step.
    assert (tmp_path / "log" / "MNISTClassifier.onnx").is_file()
    assert f"Ready for predict and serve: {tmp_path / 'log' / 'MNISTClassifier.onnx'}" in out.stdout
    times = next(line for line in out.stdout.splitlines() if " s in all: " in line)
    for step in ("start-up", "data", "training", "calibration", "test", "pictures", "ONNX"):
        assert f"{step} " in times, times
    steps = json.loads((tmp_path / "log" / "metrics.json").read_text())["seconds"]
    assert set(steps) == {"data", "training", "model", "calibration", "test", "pictures"}
    assert all(value >= 0 for value in steps.values())

    # predict reads the run through its ONNX file: no torch, no Keras in the process.
    from PIL import Image

    from digitkit.data import load_dataset

    Image.fromarray(255 - load_dataset("mnist", tiny_mnist_dir).x_test[0]).save(tmp_path / "one.png")
    code = ("import sys; from digitkit.cli import main; code = main(['predict', sys.argv[1], sys.argv[2], '--json']); "
            "assert 'torch' not in sys.modules and 'keras' not in sys.modules, 'torch or keras imported'; "
            "sys.exit(code)")
    predicted = subprocess.run([sys.executable, "-c", code, str(tmp_path / "log"), str(tmp_path / "one.png")],
                               capture_output=True, text=True)
    assert predicted.returncode == 0, predicted.stderr
    row = json.loads(predicted.stdout)
    assert row["label"] in [str(d) for d in range(10)] and row["verdict"] in ("sure", "not sure", "not a class")


def test_numbers_never_print_minus_zero():
    from digitkit.ui import number

    assert number(-1e-9) == "0.0000" and number(-0.25) == "-0.2500" and number(0.12345) == "0.1235"


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend torch" in out and "data mnist:" in out
    from digitkit.train.precision import cpu_computes_bf16

    assert f"training arithmetic: {'bf16' if cpu_computes_bf16() else 'fp32'}" in out


def test_a_failed_onnx_export_after_training_keeps_the_run(tmp_path, tiny_mnist_dir, capsys, monkeypatch):
    import digitkit.export
    from digitkit import DigitkitError

    def broken(*args, **kwargs):
        raise DigitkitError("the converter broke")

    monkeypatch.setattr(digitkit.export, "export", broken)
    args = ["train", "--preset", "fast", "--limit", "200", "--val-size", "50", "--name", "kept",
            "--runs-dir", str(tmp_path), "--data-dir", str(tiny_mnist_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "its ONNX export failed (the converter broke)" in out and (tmp_path / "kept" / "model.keras").is_file()
    assert not (tmp_path / "kept" / "MNISTClassifier.onnx").exists()


def test_the_command_line_loads_keras_without_jax_scikit_learn_and_pyplot():
    # Keras imports them when installed, for features digitkit never uses (2-2.5 s of start-up).
    # `train --help` and a bad setting need no Keras at all (3-5 s).
    code = ("import sys; from digitkit.cli import main\n"
            "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert main(['train', '--lr', '-1']) == 2\n"
            "assert not {'torch', 'keras'} & set(sys.modules), 'torch or keras loaded for help or a bad setting'\n"
            "main(['info'])\n"
            "assert 'keras' in sys.modules, 'keras not loaded'\n"
            "assert not {'sklearn', 'jax', 'matplotlib'} & set(sys.modules), 'an extra was loaded'\n"
            "from digitkit.deps import keras_extras_skipped\n"
            "with keras_extras_skipped():\n    import sklearn, matplotlib.pyplot  # any importer but Keras gets them\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_a_command_that_loaded_torch_ends_with_its_code_and_all_its_output(tmp_path):
    # From the shell such a command skips the interpreter's teardown (os._exit): its exit code and
    # every line it wrote, into a pipe too, must still come out.
    done = subprocess.run([sys.executable, "-m", "digitkit", "train", "--epochs", "0", "--runs-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--epochs must be a whole number of at least 1, got 0" in done.stderr, done.stderr
    code = ("import sys, torch; sys.argv = ['digitkit', 'info']\n"
            "from digitkit.cli import main\nprint('before', flush=False)\nmain()\nprint('never: main ends the process')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("before") and "data mnist:" in done.stdout
    assert "never" not in done.stdout
