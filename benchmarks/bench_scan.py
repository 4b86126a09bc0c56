"""Choose SSM's ``scan_chunk``: time one SSMamba forward + backward per chunk length.

The pure-PyTorch selective scan (``spbench/models/ssm/scan.py``) does ``O(L·T)`` work in chunks
of ``T`` and a sequential carry over ``L/T`` chunks: small ``T`` means more sequential steps
(launch-bound on a GPU), large ``T`` more arithmetic and memory. This script builds the model
once per ``T`` with the same weights and input, and prints the median time of a forward +
backward (sum of the outputs; no optimiser) and the peak GPU memory, so the fastest ``T`` can
become the default.

Example::

    python benchmarks/bench_scan.py --device cuda --batch-size 8 --crop 208 \\
        --chunks 16 32 64 128 256
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch

from spbench.models import create_model
from spbench.train import device_name, resolve_device


def time_chunk(
    chunk: int, stage: str, batch: torch.Tensor, steps: int, warmup: int
) -> tuple[float, float]:
    """Return (median ms of forward + backward, peak GPU MiB or NaN) for ``scan_chunk=chunk``."""
    torch.manual_seed(0)
    model = create_model("ssm", stage=stage, scan_chunk=chunk).to(batch.device).train()
    cuda = batch.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(batch.device)
    times = []
    for i in range(warmup + steps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        out = model(batch)
        sum(t.float().sum() for t in out if torch.is_tensor(t)).backward()
        model.zero_grad(set_to_none=True)
        if cuda:
            end.record()
            torch.cuda.synchronize(batch.device)
            elapsed = start.elapsed_time(end)
        else:
            elapsed = (time.perf_counter() - t0) * 1000.0
        if i >= warmup:
            times.append(elapsed)
    peak = torch.cuda.max_memory_allocated(batch.device) / 2**20 if cuda else math.nan
    return statistics.median(times), peak


def main(argv: list[str] | None = None) -> int:
    """Parse the options, time every chunk length and print one line per length."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--stage", default="stage2", choices=["stage1", "stage2"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=208)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    batch = torch.randn(
        args.batch_size, 3, args.crop, args.crop, generator=torch.Generator().manual_seed(0)
    ).to(device)
    print(f"SSM {args.stage}, batch {args.batch_size} x {args.crop}², {device_name(device)}")
    print(f"torch {torch.__version__}; median of {args.steps} after {args.warmup} warm-up")
    print(f"{'scan_chunk':>10} {'fwd+bwd ms':>11} {'peak MiB':>9}")
    for chunk in args.chunks:
        median, peak = time_chunk(chunk, args.stage, batch, args.steps, args.warmup)
        print(f"{chunk:>10} {median:>11.1f} {peak:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
