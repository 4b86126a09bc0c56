"""Time the scoring of the full evaluation protocol for one model (``docs/protocol.md`` §2–§6).

For each of the 13 scales s = 0.3 … 1.5 and each test image, a stand-in prediction is built: the
plain 16-px grid of the network input (320s×480s landscape, 480s×320s portrait) nearest-upsampled
to the original size with PyTorch-legacy ``nearest`` semantics, perturbed with seeded random
fragments so that EC has work. Then, as the protocol does:

- EC once per image and scale (:func:`spbench.metrics.enforce_connectivity`);
- every (image, annotation) pair scored with and without EC (:class:`PredictionScorer`, GT
  statistics shared across scales);
- XC/Stray once per image and scale on the no-EC map (and on the EC map, as the check = 0).

Reports pairs per second, the measured time, the extrapolated time of the full protocol
(1063 pairs × 13 scales × 2 EC settings) and a linearity check (N/2 vs N images).

Example::

    python benchmarks/bench_metrics.py /path/to/prepared/bsds500 --max-images 40 --workers 2
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import time

import numpy as np

from spbench.metrics import (
    LabelMapStats,
    PredictionScorer,
    enforce_connectivity,
    fragmentation,
)

SCALES: tuple[float, ...] = tuple(round(0.3 + 0.1 * k, 1) for k in range(13))
FULL_PAIRS = 1063
CELL = 16


def nominal_count(scale: float) -> int:
    """Nominal superpixel count int(600·s²) = (20s)·(30s) grid cells (``docs/protocol.md`` §2).

    Computed from the cell counts: in floating point 600·0.7² = 293.99999999999994, so a plain
    ``int(600 * s * s)`` would give 293 instead of 294 at s = 0.7.
    """
    return round(20 * scale) * round(30 * scale)


def legacy_nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Source indices of PyTorch's legacy ``nearest`` upsampling from ``in_size`` to ``out_size``.

    src = min(⌊fl32(dst · fl32(in/out))⌋, in − 1) (``docs/protocol.md`` §2).
    """
    scale = np.float32(in_size / out_size)
    dst = np.arange(out_size, dtype=np.float32)
    src = np.floor(dst * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def grid_prediction(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Perturbed 16-px grid labels at the original resolution (a stand-in network output)."""
    h, w = shape
    landscape = w >= h
    h_in = round((320 if landscape else 480) * scale)
    w_in = round((480 if landscape else 320) * scale)
    gh, gw = h_in // CELL, w_in // CELL
    rows = legacy_nearest_index(h_in, h) // CELL
    cols = legacy_nearest_index(w_in, w) // CELL
    labels = rows[:, None] * gw + cols[None, :]
    # Fragments: small rectangles given the id of a nearby cell (up to 2 cells away), which
    # creates stray pixels, excess components and small EC merges.
    n_frag = int(0.5 * gh * gw)
    ys = rng.integers(0, h, n_frag)
    xs = rng.integers(0, w, n_frag)
    hs = rng.integers(1, 7, n_frag)
    ws = rng.integers(1, 7, n_frag)
    dy = rng.integers(-2, 3, n_frag)
    dx = rng.integers(-2, 3, n_frag)
    for y, x, fh, fw, oy, ox in zip(ys, xs, hs, ws, dy, dx, strict=True):
        cy = int(np.clip(y // (h / gh) + oy, 0, gh - 1))
        cx = int(np.clip(x // (w / gw) + ox, 0, gw - 1))
        labels[y : y + fh, x : x + fw] = cy * gw + cx
    return labels


def score_image(args: tuple[int, np.ndarray, np.ndarray, int]) -> dict[str, float]:
    """Score one image over all scales; return timings (s) and a few sums for a sanity check."""
    index, image, annotations, seed = args
    rng = np.random.default_rng([seed, index])
    shape = annotations.shape[1:]
    t = {"gen": 0.0, "gt": 0.0, "ec": 0.0, "frag": 0.0, "score": 0.0}
    sums = {"asa_noec": 0.0, "asa_ec": 0.0, "xc": 0.0, "stray": 0.0, "sp_ec": 0.0, "xc_ec": 0.0}
    t0 = time.perf_counter()
    gts = [LabelMapStats(a) for a in annotations]
    t["gt"] += time.perf_counter() - t0
    for scale in SCALES:
        t0 = time.perf_counter()
        labels = grid_prediction(shape, scale, rng)
        t1 = time.perf_counter()
        ec = enforce_connectivity(labels, nominal_count(scale))
        t2 = time.perf_counter()
        xc, stray = fragmentation(labels)
        xc_ec, stray_ec = fragmentation(ec)
        t3 = time.perf_counter()
        for name, pred in (("noec", labels), ("ec", ec)):
            scorer = PredictionScorer(pred, image=image)
            for g in gts:
                row = scorer.score(g)
                sums[f"asa_{name}"] += row["asa"]
                if name == "ec":
                    sums["sp_ec"] += row["n_superpixels"]
        t4 = time.perf_counter()
        t["gen"] += t1 - t0
        t["ec"] += t2 - t1
        t["frag"] += t3 - t2
        t["score"] += t4 - t3
        sums["xc"] += xc
        sums["stray"] += stray
        sums["xc_ec"] += xc_ec + stray_ec
    return {**t, **sums, "pairs": float(len(gts))}


def run(samples: list, workers: int, seed: int) -> tuple[float, dict[str, float]]:
    """Score ``samples``; return the wall time (s) without label generation and summed stats."""
    tasks = [(i, s.image, s.annotations, seed) for i, s in enumerate(samples)]
    t0 = time.perf_counter()
    if workers > 1:
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(workers) as pool:
            results = pool.map(score_image, tasks, chunksize=1)
    else:
        results = [score_image(t) for t in tasks]
    wall = time.perf_counter() - t0
    total = {k: sum(r[k] for r in results) for k in results[0]}
    # Label generation is part of this harness, not of scoring: remove its share of the wall time.
    cpu = sum(total[k] for k in ("gen", "gt", "ec", "frag", "score"))
    wall_scoring = wall * (cpu - total["gen"]) / cpu if cpu > 0 else wall
    return wall_scoring, total


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", help="prepared dataset folder (holding dataset.json)")
    parser.add_argument("--split", default="test", help="split to score (default: test)")
    parser.add_argument(
        "--max-images", type=int, default=None, help="use only the first N images (default: all)"
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random fragments")
    parser.add_argument(
        "--no-linearity", action="store_true", help="skip the N/2-image linearity run"
    )
    args = parser.parse_args(argv)

    from spbench.data.prepared import load_split

    t0 = time.perf_counter()
    split = load_split(args.root, args.split)
    samples = split.samples[: args.max_images] if args.max_images else split.samples
    print(
        f"loaded {len(samples)} images / {sum(s.n_annotations for s in samples)} pairs of "
        f"{args.root}:{args.split} in {time.perf_counter() - t0:.1f} s; workers={args.workers}"
    )

    half = None
    if not args.no_linearity and len(samples) >= 2:
        half_samples = samples[: len(samples) // 2]
        half = run(half_samples, args.workers, args.seed)[0], len(half_samples)

    wall, tot = run(samples, args.workers, args.seed)
    n_pairs = int(tot["pairs"])
    scored = n_pairs * len(SCALES) * 2
    rate = scored / wall
    full = FULL_PAIRS * len(SCALES) * 2
    n_img_scales = len(samples) * len(SCALES)
    print(f"scales: {len(SCALES)} ({SCALES[0]}..{SCALES[-1]}), EC settings: 2")
    print(f"pair scores: {scored} ({n_pairs} pairs × {len(SCALES)} scales × 2)")
    print(f"total scoring time: {wall:.2f} s wall ({args.workers} workers)")
    print(f"throughput: {rate:.1f} pair-scores/s (EC, XC/Stray and GT preparation included)")
    print(
        f"extrapolated full protocol ({FULL_PAIRS} pairs × {len(SCALES)} × 2 = {full}): "
        f"{full / rate:.1f} s"
    )
    cpu = {k: tot[k] for k in ("gt", "ec", "frag", "score")}
    print(
        "CPU time per image and scale: "
        + ", ".join(f"{k} {1000 * v / n_img_scales:.2f} ms" for k, v in cpu.items())
        + f" (label generation, excluded: {1000 * tot['gen'] / n_img_scales:.2f} ms)"
    )
    print(
        f"sanity: mean ASA noEC {tot['asa_noec'] / (n_pairs * len(SCALES)):.4f}, "
        f"EC {tot['asa_ec'] / (n_pairs * len(SCALES)):.4f}; mean #SP EC "
        f"{tot['sp_ec'] / (n_pairs * len(SCALES)):.1f}; mean XC {tot['xc'] / n_img_scales:.1f}, "
        f"Stray {tot['stray'] / n_img_scales:.1f} per image-scale; XC+Stray after EC "
        f"{int(tot['xc_ec'])} (must be 0)"
    )
    if half is not None:
        t_half, n_half = half
        ratio = t_half / wall if wall > 0 else math.nan
        print(
            f"linearity: {n_half} images {t_half:.2f} s, {len(samples)} images {wall:.2f} s, "
            f"ratio {ratio:.3f} (ideal {n_half / len(samples):.3f})"
        )
    return 0 if tot["xc_ec"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
