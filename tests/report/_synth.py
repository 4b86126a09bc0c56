"""Synthetic score tables with a known linear relation between each metric and K̄.

Every metric of a (method, variant, EC, seed) run is ``a + b·n_superpixels`` per row, plus a
per-annotation perturbation that sums to zero within each (run, EC, scale). The per-scale means
are then exactly ``a + b·K̄`` and, because a piecewise-linear curve through collinear points is
the line itself, the normalised AUC over [low, high] is ``a + b·(low + high)/2`` whether or not
the ends are bracketed.

Images carry 2, 3 and 1 annotations with per-image offsets of K of +3, −1 and −3: the mean over
the 6 (image, annotation) rows is K_s, the mean over the 3 images is K_s − 1/3.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

LOW, HIGH = 384.0, 1200.0
MID = (LOW + HIGH) / 2
SCALES = (0.8, 1.0, 1.2, 1.4, 1.5)
K_EC = (300.0, 500.0, 800.0, 1100.0, 1400.0)
K_NOEC = (290.0, 480.0, 760.0, 1050.0, 1300.0)
K_UNBRACKETED = (400.0, 600.0, 800.0, 1000.0, 1150.0)  # scn-lap without EC: both ends extrapolated
IMAGES = (("img_a", 2, 3.0), ("img_b", 3, -1.0), ("img_c", 1, -3.0))
N_ROWS = sum(n for _, n, _ in IMAGES)
PERTURB = {2: (0.01, -0.01), 3: (0.01, 0.0, -0.01), 1: (0.0,)}
METHODS = ("cds", "scn")
VARIANTS = ("base", "lap")
SEEDS = {("scn", "base"): (0, 1)}  # every other run has seed 0 only
SEED_SHIFT = 0.01  # seed 1 adds this to every intercept

METRIC_NAMES = ("asa", "ue", "ue_np", "ue_levin", "oe", "co", "br", "bp", "ev", "xc", "stray")


def coefficients(method: str, variant: str, ec: bool, metric: str) -> tuple[float, float]:
    """Intercept and slope (per superpixel) of a metric for a run, distinct for every run."""
    m = METHODS.index(method)
    v = VARIANTS.index(variant)
    e = 0 if ec else 1
    j = METRIC_NAMES.index(metric)
    if metric in ("xc", "stray"):
        if ec:
            return 0.0, 0.0
        return 100.0 * (j - 8) + 10.0 * m + 5.0 * v, 0.05 * (j - 8) + 0.01 * v
    a = 0.1 * (j + 1) + 0.01 * m + 0.002 * v + 0.0005 * e
    b = 1e-5 * (j + 1) + 1e-6 * v
    return a, b


def k_values(method: str, variant: str, ec: bool) -> tuple[float, ...]:
    if ec:
        return K_EC
    if (method, variant) == ("scn", "lap"):
        return K_UNBRACKETED
    return K_NOEC


def expected_auc(method: str, variant: str, ec: bool, metric: str, seed: int = 0) -> float:
    a, b = coefficients(method, variant, ec, metric)
    return a + SEED_SHIFT * seed + b * MID


def make_scores(methods=METHODS, variants=VARIANTS) -> pd.DataFrame:
    """Build the synthetic long-format score table (one row per run, EC, scale, image, annot.)."""
    rows = []
    for method, variant, ec in itertools.product(methods, variants, (True, False)):
        for seed in SEEDS.get((method, variant), (0,)):
            for scale, k in zip(SCALES, k_values(method, variant, ec), strict=True):
                for image_id, n_ann, dk in IMAGES:
                    n_sp = k + dk
                    for ann in range(n_ann):
                        row = {
                            "method": method,
                            "variant": variant,
                            "seed": seed,
                            "use_lap": variant == "lap",
                            "use_msd": variant == "lap",
                            "use_wr": variant == "lap",
                            "lambda_lap": 360.0 if variant == "lap" else 0.0,
                            "msd_mode": "per_image",
                            "weights": "trained here, random init",
                            "train_steps": 1000,
                            "budget": 1.0,
                            "gt_cap50": True,
                            "max_annotations": 0,
                            "dataset": "bsds500",
                            "split": "test",
                            "image_id": image_id,
                            "annotation": ann,
                            "scale": scale,
                            "n_nominal": int(600 * scale * scale),
                            "ec": ec,
                            "n_superpixels": int(n_sp),
                        }
                        for metric in METRIC_NAMES:
                            a, b = coefficients(method, variant, ec, metric)
                            value = a + SEED_SHIFT * seed + b * n_sp
                            if metric in ("xc", "stray"):
                                row[metric] = value  # per prediction: same on every annotation
                            else:
                                row[metric] = value + PERTURB[n_ann][ann]
                        rows.append(row)
    frame = pd.DataFrame(rows)
    # xc/stray are integers in real score files; here they carry fractions to keep the
    # relation exact, which the report must accept (it only averages them).
    return frame.astype({"seed": "int64", "annotation": "int64", "train_steps": "int64"})


def assert_close(a: float, b: float, tol: float = 1e-9) -> None:
    assert np.isclose(a, b, rtol=0, atol=tol), (a, b)


def ssm_published_curves() -> pd.DataFrame:
    """The SSMamba authors' published per-scale means (docs/paper.md §5) as one run's curve
    frame (the shape :func:`spbench.report.aggregate.aggregate_curves` returns)."""
    from spbench.report.paper import ssm_published_curve_frame

    return ssm_published_curve_frame().assign(
        dataset="bsds500",
        split="test",
        method="ssm",
        variant="base",
        seed=0,
        ec=True,
        model="SSM",
        scale=lambda f: np.sqrt(f["n_nominal"] / 600),
        k_mean=lambda f: f["n_superpixels"],
        use_lap=False,
        use_msd=False,
        use_wr=False,
        lambda_lap=0.0,
        msd_mode="per_image",
        weights="published",
        train_steps=0,
        budget=1.0,
        gt_cap50=True,
        max_annotations=5,
        n_rows=999,
        n_images=200,
    )
