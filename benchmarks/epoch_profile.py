"""Where a training step's time goes: per image, for a model at a batch size, on this machine.

Times the parts of digitkit's training step on random images (the cost does not depend on the
pixels): the augmentation, the forward and backward passes with the optimizer step (through the
training twin and in the training's arithmetic, as `digitkit train` runs them: bf16 where the CPU
computes it), and one validation pass of 10,000 images; then splits
the step by operator kind with torch's profiler. With `--compile`, the same step under
`torch.compile` too: the seconds its first steps take (compiling) and its time per image after.

    python benchmarks/epoch_profile.py                        # digitnet, batch 256
    python benchmarks/epoch_profile.py --model digitnet-small --batch-size 128
    python benchmarks/epoch_profile.py --compile
    python benchmarks/epoch_profile.py --precision fp32
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import digitkit.models  # noqa: F401  (selects the torch backend before Keras loads)
import torch

from digitkit.models import MODELS, build_model
from digitkit.train.augment import Augmentation, augment_batch
from digitkit.train.loop import _loss
from digitkit.train.precision import mixed_precision, training_arithmetic
from digitkit.train.twin import TrainingTwin

KINDS = {"convolution": "convolution", "batch_norm": "batch norm", "threshold": "ReLU", "clamp_min": "ReLU",
         "relu": "ReLU", "max_pool": "pooling", "adam": "optimizer", "lerp": "optimizer", "sqrt": "optimizer"}


def per_image(step, images: int, steps: int) -> float:
    for _ in range(3):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps / images * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="digitnet", choices=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="also time the step under torch.compile")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="the training's arithmetic (auto: as digitkit train picks it on this machine)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model)
    twin = TrainingTwin(model)
    optimizer = torch.optim.AdamW([v.value for v in model.trainable_weights], lr=1e-3)
    x = torch.rand(args.batch_size, 28, 28, 1)
    y = torch.randint(0, 10, (args.batch_size,))
    generator = torch.Generator().manual_seed(0)
    aug = Augmentation()

    cpu = torch.device("cpu")

    def train_step(forward=twin):
        with mixed_precision(cpu, args.precision):
            loss = _loss(forward(x).float(), y, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    augmenting = per_image(lambda: augment_batch(x, aug, generator), args.batch_size, args.steps)
    stepping = per_image(train_step, args.batch_size, args.steps)
    validation = torch.rand(10_000, 28, 28, 1)
    start = time.perf_counter()
    with torch.no_grad(), mixed_precision(cpu, args.precision):
        for i in range(0, len(validation), 1000):
            twin(validation[i : i + 1000], training=False)
    validating = time.perf_counter() - start

    from torch.profiler import profile

    with profile() as prof:
        for _ in range(10):
            train_step()
    shares: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        kind = next((k for key, k in KINDS.items() if key in event.key.lower()), "other")
        shares[kind] += event.self_cpu_time_total
    total = sum(shares.values())

    print(f"{args.model}, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{training_arithmetic(cpu, args.precision)}")
    print(f"augmentation           {augmenting:7.1f} µs per image")
    print(f"forward+backward+step  {stepping:7.1f} µs per image  ({1e6 / (augmenting + stepping):,.0f} images/s with "
          "the augmentation)")
    print(f"validation             {validating:7.2f} s per 10,000 images")
    print("the step by operator kind: " + ", ".join(f"{kind} {value / total:.0%}" for kind, value in
                                                    sorted(shares.items(), key=lambda kv: -kv[1])))
    if args.compile:
        compiled = torch.compile(twin)
        start = time.perf_counter()
        train_step(compiled)
        train_step(compiled)
        compiling = time.perf_counter() - start
        print(f"torch.compile: first two steps {compiling:.1f} s (compiling), then "
              f"{per_image(lambda: train_step(compiled), args.batch_size, args.steps):.1f} µs per image")


if __name__ == "__main__":
    main()
