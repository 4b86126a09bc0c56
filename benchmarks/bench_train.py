"""Time full training steps (forward, loss, backward, optimiser) of base vs LAP per method.

A thin wrapper of :mod:`spbench.bench` (also ``spbench bench train``): synthetic batches on the
device, per-step times (CUDA events on a GPU), images/s, peak GPU memory, the LAP overhead over
base, and a check of each loss term of the fast modes (TF32, bf16, channels-last, torch.compile,
CUDA graph) against fp32 eager.

Examples::

    python benchmarks/bench_train.py --methods scn ainet --steps 20 --crop 64 --batch-size 2 \\
        --device cpu
    python -m spbench.gpu_lease --n 1 -- python benchmarks/bench_train.py --methods scn \\
        --modes fp32 bf16+compile --out results/bench/train_bf16_compile.csv
"""

from __future__ import annotations

import argparse
import sys

from spbench.bench import add_train_arguments, run_train
from spbench.errors import UserError


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_train_arguments(parser)
    try:
        run_train(parser.parse_args(argv))
    except (KeyError, ValueError, UserError) as err:  # UserError: no row ran
        print(f"bench_train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
