"""Data-parallel training with ``torch.distributed``, launched by ``torchrun``.

Under torchrun (``WORLD_SIZE`` > 1 in the environment) every process runs the same training: the
same model (DDP broadcasts rank 0's weights at the start), the same seeded order of examples, and
each step's global batch of ``batch_size`` examples split across the ranks (rank r takes every
world-th example: disjoint, together the whole batch). DDP all-reduces (averages) the gradients,
batch norm computes its statistics over the whole global batch (synchronised), so a step is the
step single-process training takes with the same global batch, and the learning-rate schedule is
unchanged. Rank 0 alone writes the run folder, the logs and the progress. NCCL on CUDA (one GPU per
process), Gloo on the CPU.
"""

from __future__ import annotations

import os
import signal
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from digitkit import DigitkitError


@dataclass(frozen=True)
class Context:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor


def setup() -> Context:
    """The process group when launched by torchrun (initialised once), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # one GPU per process; Keras places its variables there
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        # torchrun stops the other ranks with SIGTERM when one fails: let them clean up as on Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
    return Context(world=world, rank=rank, local_rank=local_rank)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def wrap(module: torch.nn.Module, ctx: Context, dev: torch.device) -> torch.nn.Module:
    """The training module under DistributedDataParallel when there are several ranks."""
    if not ctx.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    # Batch norm's moving statistics are the same on every rank (computed from the global batch), so
    # DDP need not broadcast buffers.
    # The differentiable all-reduce batch norm uses (train.twin) is marked deprecated in favour of a
    # private module; it works, and the notice would print on every rank.
    warnings.filterwarnings("ignore", message=".*all_reduce is deprecated", category=FutureWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its notice about renaming that flag
        return DistributedDataParallel(module, device_ids=[ctx.local_rank] if dev.type == "cuda" else None,
                                       broadcast_buffers=False)


def launch(argv: list[str], nproc: int) -> int:
    """``digitkit train --nproc N ...``: run the same command under torchrun on this machine."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if nproc < 2:
        raise DigitkitError(f"--nproc must be at least 2 to train in parallel, got {nproc}")
    args = get_args_parser().parse_args(["--standalone", "--nproc-per-node", str(nproc), "-m", "digitkit", *argv])
    try:
        run(args)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        message = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        lines = [line for line in str(message or "").strip().splitlines() if line.strip()]
        detail = lines[-1] if lines and not lines[0].startswith("To enable traceback") else "its error is printed above"
        raise DigitkitError(f"training stopped: rank {rank} (local rank {failure.local_rank}) failed with exit code "
                            f"{failure.exitcode}; {detail}. No run folder was written.") from None
    return 0
