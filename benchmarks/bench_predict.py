"""Where the time of ``spbench predict`` goes, per image and scale, on the device at hand.

For the first ``--max-images`` test images of a prepared dataset and each ``--scales`` value, it
times the steps of :func:`spbench.predict.predict_image` and of the EC output separately
(median over images, in ms): the bicubic resize, the network's forward pass, the arg-max to
hard labels (:func:`spbench.grid.hard_labels`, and for comparison the gather over a
``[9, H, W]`` id map it replaced), the nearest upsampling, and the enforced connectivity.
With ``--batch`` > 1 the forward pass also runs on that many same-size copies of each image,
to show whether batching would pay on this device (on 2 CPU cores it does not).

The network is the checkpoint's (``--checkpoint``) or a freshly initialised one of ``--method``:
its weights change the EC work a little, not the network's cost.

Example::

    python benchmarks/bench_predict.py data/bsds500/prepared --max-images 10 --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import pandas as pd
import torch

from spbench.checkpoint import load_checkpoint
from spbench.constants import CELL_SIZE
from spbench.data.loader import normalize
from spbench.data.prepared import load_split
from spbench.grid import candidate_ids, hard_labels
from spbench.metrics import enforce_connectivity
from spbench.models import create_model
from spbench.predict import network_size, upsample_labels


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    """Return ``fn()`` and its wall time in ms."""
    start = time.perf_counter()
    out = fn()
    return out, 1e3 * (time.perf_counter() - start)


def _gather_labels(q: torch.Tensor) -> torch.Tensor:
    """The previous ``hard_labels``: gather a ``[9, H, W]`` id map at the channel arg-max."""
    n_h, n_w = q.shape[-2] // CELL_SIZE, q.shape[-1] // CELL_SIZE
    ids = candidate_ids(n_h, n_w, CELL_SIZE).expand(q.shape[0], -1, -1, -1)
    return ids.gather(1, q.argmax(dim=1, keepdim=True)).squeeze(1)


@torch.inference_mode()
def time_image(model, image: np.ndarray, scale: float, batch: int) -> dict[str, float]:
    """Return the ms of each prediction step for one image at one scale."""
    height, width = image.shape[:2]
    h_in, w_in = network_size(height, width, scale, (320, 480))
    resized, t_resize = _timed(
        lambda: cv2.resize(image, (w_in, h_in), interpolation=cv2.INTER_CUBIC)
    )
    x = normalize(torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))[None])
    out, t_forward = _timed(lambda: model(x).assignment)
    labels, t_argmax = _timed(lambda: hard_labels(out, CELL_SIZE)[0])
    gathered, t_gather = _timed(lambda: _gather_labels(out))
    if not torch.equal(gathered[0], labels):  # the two must agree, or the timing is moot
        raise AssertionError("hard_labels and the id-map gather disagree")
    noec, t_upsample = _timed(lambda: upsample_labels(labels, height, width))
    _, t_ec = _timed(lambda: enforce_connectivity(noec, (h_in // CELL_SIZE) * (w_in // CELL_SIZE)))
    row = {
        "resize": t_resize,
        "forward": t_forward,
        "hard_labels": t_argmax,
        "gather (old)": t_gather,
        "upsample": t_upsample,
        "ec": t_ec,
    }
    if batch > 1:
        _, t_batch = _timed(lambda: model(x.expand(batch, -1, -1, -1).contiguous()))
        row[f"forward/image at batch {batch}"] = t_batch / batch
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Time prediction on the prepared data and print the median ms per image and scale."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="prepared dataset folder (spbench data ...)")
    parser.add_argument("--checkpoint", help="a spbench checkpoint (default: --method, untrained)")
    parser.add_argument("--method", default="scn")
    parser.add_argument("--max-images", type=int, default=10)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.7, 1.0, 1.5])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1, help="also time the forward at this batch")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        model = create_model(ckpt["method"])
        model.load_state_dict(ckpt["model"])
    else:
        model = create_model(args.method)
    model.eval()
    samples = load_split(args.data, "test", max_images=args.max_images).samples
    time_image(model, samples[0].image, args.scales[0], 1)  # warm-up: allocator, kernels
    rows = [
        {"scale": scale, **time_image(model, sample.image, scale, args.batch)}
        for scale in args.scales
        for sample in samples
    ]
    table = pd.DataFrame(rows).groupby("scale").median()
    steps = ["resize", "forward", "hard_labels", "upsample", "ec"]
    table["total"] = table[steps].sum(axis=1)  # one image at one scale, as predict runs it
    print(
        f"median ms per image over {len(samples)} images, {args.threads} threads, "
        f"torch {torch.__version__}"
    )
    print(table.round(1).to_string())
    return table


if __name__ == "__main__":
    main()
