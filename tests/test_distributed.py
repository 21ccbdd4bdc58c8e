"""Data-parallel training under torchrun (2 processes, Gloo, on the CPU) and resuming a stopped run."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from digitkit.train import TrainConfig, train

pytestmark = pytest.mark.filterwarnings("ignore")

# The settings both the 2-process and the 1-process run use: no augmentation and no synthetic draw,
# so the two see exactly the same examples in the same steps; fp32, so the two differ only in the order
# in which sums are added up.
# The data mix pinned, not the recipe's: under one thread per test worker, some mixes (the recipe's
# wrong cuts, more non-digits, none) met a near-tie (a max-pool or a ReLU at its edge) within the
# first steps, after which the runs part as two seeds would; with two threads they stayed within
# 3e-8. The step-by-step comparison is about the ranks' arithmetic, not the data mix.
SMALL = dict(preset="fast", limit=1000, val_size=128, epochs=1, batch_size=16, lr=3e-3, augment=False,
             synthetic=0.0, non_digits=0.05, wrong_cuts=0.0, calibrate=False, precision="fp32")

RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    from digitkit.train import TrainConfig, loop, train

    rank = int(os.environ["RANK"])
    trace = open(os.path.join(sys.argv[1], f"rank{rank}.jsonl"), "w")
    indices = []

    real_step = torch.optim.AdamW.step
    def step(self, *args, **kwargs):  # after every optimizer step: the examples used and the weights
        out = real_step(self, *args, **kwargs)
        params = [p for group in self.param_groups for p in group["params"]]
        digest = float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(params)))
        trace.write(json.dumps({"step": len(indices), "digest": digest, "indices": indices[-1]}) + "\\n")
        return out
    torch.optim.AdamW.step = step

    real_init = loop.TrainingData.__init__
    def init(self, *args, **kwargs):  # watch which training examples each step reads
        real_init(self, *args, **kwargs)
        images = self.x_train
        class Watched:
            device = images.device

            def __getitem__(_, idx):
                indices.append(idx.tolist())
                return images[idx]
        self.x_train = Watched()
    loop.TrainingData.__init__ = init

    train(TrainConfig.from_preset(**json.loads(sys.argv[2])), quiet=True)
    trace.close()
""")

FAIL_ON_RANK_ONE = textwrap.dedent("""
    import os
    if os.environ.get("RANK") == "1":  # only in the second process torchrun starts
        import digitkit.train.loop as loop
        real, calls = loop._loss, [0]
        def failing(*args, **kwargs):
            calls[0] += 1
            if calls[0] > 3:
                raise RuntimeError("simulated failure")
            return real(*args, **kwargs)
        loop._loss = failing
""")


def _torchrun(tmp_path, config: dict, nproc=2, extra=()):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                           *extra, str(script), str(tmp_path), json.dumps(config)],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tiny_mnist_dir):
    tmp = tmp_path_factory.mktemp("ddp")
    config = SMALL | {"name": "ddp", "runs_dir": str(tmp / "runs"), "data_dir": str(tiny_mnist_dir)}
    out = _torchrun(tmp, config)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    traces = [[json.loads(line) for line in (tmp / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    return tmp, traces


def test_ranks_see_disjoint_shards_covering_each_batch(two_process_run):
    _, (rank0, rank1) = two_process_run
    assert len(rank0) == len(rank1) > 0
    for a, b in zip(rank0, rank1):
        assert not set(a["indices"]) & set(b["indices"])
        assert abs(len(a["indices"]) - len(b["indices"])) <= 1
    assert len(rank0[0]["indices"]) + len(rank1[0]["indices"]) == SMALL["batch_size"]  # the global batch


def test_parameters_are_identical_on_both_ranks_after_every_step(two_process_run):
    _, (rank0, rank1) = two_process_run
    for a, b in zip(rank0, rank1):
        assert a["digest"] == pytest.approx(b["digest"], rel=1e-9, abs=1e-9), a["step"]


def test_rank_zero_writes_one_complete_run_folder(two_process_run):
    tmp, _ = two_process_run
    runs = tmp / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["ddp"]
    files = {p.name for p in (runs / "ddp").iterdir()}
    assert {"model.keras", "config.json", "history.json", "metrics.json", "curves.png"} <= files
    assert len(json.loads((runs / "ddp" / "history.json").read_text())) == SMALL["epochs"]


def test_matches_single_process_training_with_the_same_global_batch(two_process_run, tmp_path, tiny_mnist_dir, mnist):
    """Step for step, the same weights as one process with the same global batch, up to rounding.

    Rounding differences stay at 1e-7 for the first steps; later, a near-tie (a max-pool or a ReLU at
    its edge) can go the other way and the two runs part like two seeds would. So the trajectory is
    compared step by step while it is still deterministic, and the finished models by what they read."""
    from digitkit.inference import predict_images
    from digitkit.runs import Run

    tmp, (rank0, _) = two_process_run
    config = SMALL | {"name": "one", "runs_dir": str(tmp_path / "runs"), "data_dir": str(tiny_mnist_dir)}
    (tmp_path / "rank.py").write_text(RANK_SCRIPT)
    out = subprocess.run([sys.executable, str(tmp_path / "rank.py"), str(tmp_path), json.dumps(config)],
                         capture_output=True, text=True, timeout=900, env=os.environ | {"RANK": "0"})
    assert out.returncode == 0, out.stderr[-3000:]
    single = [json.loads(line) for line in (tmp_path / "rank0.jsonl").read_text().splitlines()]
    assert len(single) == len(rank0)
    for a, b in zip(rank0[:15], single[:15]):
        assert a["digest"] == pytest.approx(b["digest"], rel=1e-6), a["step"]

    test = mnist.x_test[:1000]
    ddp = predict_images(Run.open(tmp / "runs" / "ddp").load_model(), test).argmax(1)
    one = predict_images(Run.open(tmp_path / "runs" / "one").load_model(), test).argmax(1)
    assert (ddp == one).mean() >= 0.95


def test_a_rank_that_dies_ends_the_job_with_its_name(tmp_path, tiny_mnist_dir, capsys, monkeypatch):
    """Rank 1 fails while rank 0 trains: the job stops, says which rank, and leaves no run folder."""
    import os

    from digitkit.cli import main

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAIL_ON_RANK_ONE)  # runs at start-up in each process
    monkeypatch.setenv("PYTHONPATH", f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    code = main(["train", "--nproc", "2", "--preset", "fast", "--limit", "256", "--val-size", "64", "--epochs", "1",
                 "--batch-size", "64", "--name", "dies", "--runs-dir", str(tmp_path / "runs"),
                 "--data-dir", str(tiny_mnist_dir)])
    assert code == 2
    err = capsys.readouterr().err
    assert "rank 1 (local rank 1) failed" in err and "No run folder was written" in err
    assert not (tmp_path / "runs" / "dies").exists()
    assert not list((tmp_path / "runs").glob(".dies*"))  # nor a hidden half-made one


def test_resume_continues_from_the_last_finished_epoch(tmp_path, tiny_mnist_dir):
    from digitkit.runs import Run

    config = TrainConfig.from_preset("fast", limit=400, val_size=100, epochs=3, batch_size=64, name="r",
                                     runs_dir=str(tmp_path), data_dir=str(tiny_mnist_dir))
    whole = train(dataclasses.replace(config, name="whole"), quiet=True)

    def stop_after_two(epoch, model, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, on_epoch_end=stop_after_two, quiet=True)
    assert not (tmp_path / "r").exists() and (tmp_path / ".r.partial").is_dir()
    resumed = train(TrainConfig.from_preset("fast", name="r", resume=True, runs_dir=str(tmp_path)), quiet=True)
    history = json.loads((resumed.path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for x, y in zip(Run.open(resumed.path).load_model().get_weights(), whole.load_model().get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)  # as if it had never stopped
    assert not (tmp_path / ".r.partial").exists()


def test_resume_without_an_interrupted_run(tmp_path):
    from digitkit import ConfigError

    with pytest.raises(ConfigError, match="finds no interrupted run"):
        train(TrainConfig.from_preset("fast", name="nothing", resume=True, runs_dir=str(tmp_path)), quiet=True)
