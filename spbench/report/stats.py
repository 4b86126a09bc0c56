"""Paired comparison of each variant with ``base``: mean per-pair AUC difference and bootstrap CI.

Definition (the same text heads ``paired.md``):

1. **Per-pair AUC.** For one run (method, variant, seed), one EC setting and one (image,
   annotation) pair, the normalised AUC of a metric is taken over that pair's values at the
   run's scales, with the *run's* K̄ per scale as abscissa (the mean actual number of
   superpixels over all pairs of that run, EC setting and scale, i.e. the x of the Table 2
   curve), over [low, high] with the rule of ``docs/protocol.md`` §8 (linear interpolation at the
   ends, linear extrapolation at an unbracketed end). The AUC is linear in the values for fixed
   abscissae, so the mean of these per-pair AUCs over all pairs is exactly the run's Table 2 AUC.
   A pair that lacks a value at any of the run's scales gets no AUC and is left out.
2. **Seeds pooled.** For each (model, EC, pair), the per-pair AUCs of the model's seeds are
   averaged (over the seeds that have the pair).
3. **Difference.** Δ = variant − base per pair, over the pairs both models have, for the same
   method, dataset, split and EC setting; the reported value is the plain mean of Δ over pairs
   (every (image, annotation) pair weighs once, as in ``docs/protocol.md`` §6).
4. **Interval.** 95 % percentile bootstrap: resample the *images* with replacement (each image
   with all of its pairs), recompute the pair-weighted mean Δ, 2000 resamples by default, with a
   seeded :class:`numpy.random.Generator` (one fresh generator per comparison, so a comparison's
   interval does not depend on which other comparisons exist). "Significant" means that the
   interval excludes 0. The interval holds the variation between test images only, not between
   training seeds, hence:
5. **Seed-matched Δ.** For each seed both models have, the mean over pairs of (variant seed k −
   base seed k); the smallest and largest are reported, and ``seeds_agree`` says whether every
   one is on the side of 0 the mean Δ is on.

No torch is imported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from spbench.metrics import metric, normalized_auc
from spbench.report.aggregate import (
    DEFAULT_AUC_RANGE,
    RUN_KEYS,
    aggregate_curves,
    format_number,
    markdown_table,
    model_label,
)
from spbench.report.tables import EXTRAPOLATED_MARK, TABLE2_METRICS

__all__ = [
    "PAIRED_COLUMNS",
    "PAIRED_METRICS",
    "auc_weights",
    "bootstrap_mean_ci",
    "format_paired_markdown",
    "pair_aucs",
    "paired_differences",
]

#: Metrics compared: the columns of Table 2 (with EC only those that are not 0 by construction).
PAIRED_METRICS: tuple[str, ...] = TABLE2_METRICS

#: Columns of :func:`paired_differences` (also of its empty result).
PAIRED_COLUMNS: tuple[str, ...] = (
    "dataset", "split", "method", "ec", "variant", "model", "base_model", "metric",
    "mean_delta", "ci_low", "ci_high", "significant", "base_mean", "variant_mean",
    "n_images", "n_pairs", "n_seeds_base", "n_seeds_variant", "n_boot", "level",
    "n_seeds_matched", "seed_delta_min", "seed_delta_max", "seeds_agree",
    "auc_low", "auc_high", "auc_extrapolated",
)  # fmt: skip

BASE_VARIANT = "base"
_PAIR = ["image_id", "annotation"]


def auc_weights(
    k: Sequence[float] | np.ndarray, low: float, high: float
) -> tuple[np.ndarray, bool]:
    """Weights w with ``normalized_auc(k, v) == w @ v`` for every v (same order as ``k``).

    The normalised AUC is linear in the values for fixed abscissae; the weights are the AUCs of
    the unit vectors.

    Parameters
    ----------
    k
        Abscissae (need not be sorted; at least two, finite and distinct).
    low, high
        AUC range.

    Returns
    -------
    weights : numpy.ndarray
        One weight per point, in the order of ``k``.
    extrapolated : bool
        Whether an end of the range is not bracketed by the points.
    """
    k = np.asarray(k, dtype=float)
    if k.size < 2 or not np.isfinite(k).all():
        raise ValueError(f"need at least two finite abscissae, got {k.tolist()}")
    order = np.argsort(k, kind="stable")
    weights = np.empty(k.size)
    extrapolated = False
    for pos, idx in enumerate(order):
        unit = np.zeros(k.size)
        unit[pos] = 1.0
        result = normalized_auc(k[order], unit, low=low, high=high)
        weights[idx] = result.value
        extrapolated = extrapolated or bool(result.extrapolated)
    return weights, extrapolated


def pair_aucs(
    scores: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    metrics: Sequence[str] = PAIRED_METRICS,
) -> pd.DataFrame:
    """Per-(image, annotation) normalised AUCs against the run's K̄ (definition step 1).

    Parameters
    ----------
    scores
        Score rows (see :mod:`spbench.report.aggregate`).
    curves
        :func:`~spbench.report.aggregate.aggregate_curves` of ``scores`` (computed if ``None``);
        its ``k_mean`` is the abscissa.
    auc_range
        ``(low, high)``.
    metrics
        Score columns to integrate.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, seed, ec, image_id, annotation) with one
        column per metric (NaN where the pair misses a scale) and ``auc_extrapolated``.
    """
    if curves is None:
        curves = aggregate_curves(scores)
    low, high = (float(x) for x in auc_range)
    keys = [*RUN_KEYS, "ec"]
    k_of = {
        key: dict(zip(g["scale"], g["k_mean"], strict=True))
        for key, g in curves.groupby(keys, sort=True, dropna=False)
    }
    parts = []
    for key, group in scores.groupby(keys, sort=True, dropna=False):
        k_by_scale = k_of[key]
        scales = sorted(k_by_scale)
        if len(scales) < 2:
            continue
        weights, extrapolated = auc_weights([k_by_scale[s] for s in scales], low, high)
        wide = group.set_index([*_PAIR, "scale"])[list(metrics)].unstack("scale")
        part = pd.DataFrame(index=wide.index)
        for name in metrics:
            values = wide[name].reindex(columns=scales).to_numpy(dtype=float)
            part[name] = values @ weights  # NaN where any scale is missing
        part = part.reset_index()
        for name, value in zip(keys, key, strict=True):
            part[name] = value
        part["auc_extrapolated"] = extrapolated
        parts.append(part)
    columns = [*keys, *_PAIR, *metrics, "auc_extrapolated"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def bootstrap_mean_ci(
    image_sums: np.ndarray,
    image_counts: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator | None = None,
    indices: np.ndarray | None = None,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a pair-weighted mean, resampling images.

    Parameters
    ----------
    image_sums, image_counts
        Per image, the sum of the pair values and the number of pairs.
    n_boot
        Number of resamples (ignored if ``indices`` is given).
    rng
        Generator used to draw the resamples.
    indices
        ``[n_boot, n_images]`` resampled image indices to reuse (the same draws for every metric
        of one comparison).
    level
        Coverage of the interval.

    Returns
    -------
    tuple of float
        ``(low, high)``; NaN if there is no image.
    """
    n = image_sums.size
    if n == 0:
        return math.nan, math.nan
    if indices is None:
        if rng is None:
            raise ValueError("give rng or indices")
        indices = rng.integers(0, n, size=(n_boot, n))
    counts = image_counts[indices].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = image_sums[indices].sum(axis=1) / counts
    means = means[counts > 0]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def paired_differences(
    scores: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    metrics: Sequence[str] = PAIRED_METRICS,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    base: str = BASE_VARIANT,
) -> pd.DataFrame:
    """Mean per-pair AUC difference variant − base with an image-bootstrap interval.

    See the module docstring for the exact definition.

    Parameters
    ----------
    scores
        Score rows.
    curves
        Their :func:`~spbench.report.aggregate.aggregate_curves` (computed if ``None``).
    auc_range
        ``(low, high)`` of the AUC.
    metrics
        Score columns compared.
    n_boot
        Bootstrap resamples.
    seed
        Seed of the :class:`numpy.random.Generator` (a fresh one per comparison).
    level
        Interval coverage (0.95).
    base
        The variant each other variant of a method is compared with (Table 3: the factorial's
        all-off run; the sweep: its λ = 0 run).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, EC, variant ≠ base, metric) with ``model``,
        ``base_model``, ``mean_delta``, ``ci_low``, ``ci_high``, ``significant`` (the interval
        excludes 0), ``base_mean`` and ``variant_mean`` (mean per-pair AUC over the compared
        pairs), ``n_images``, ``n_pairs``, ``n_seeds_base``, ``n_seeds_variant``, ``n_boot``,
        ``level``, ``auc_low``, ``auc_high`` and ``auc_extrapolated`` (either model extrapolated).
        Empty if no method has both ``base`` and another variant.
    """
    low, high = (float(x) for x in auc_range)
    per_pair = pair_aucs(scores, curves, auc_range=auc_range, metrics=metrics)
    if per_pair.empty:
        return pd.DataFrame(columns=list(PAIRED_COLUMNS))
    model_keys = ["dataset", "split", "method", "variant", "ec"]
    pooled = per_pair.groupby([*model_keys, *_PAIR], sort=True, dropna=False)[list(metrics)].mean()
    by_model = per_pair.groupby(model_keys, dropna=False)
    context = {
        "per_seed": per_pair.set_index([*model_keys, "seed", *_PAIR])[list(metrics)],
        "n_seeds": by_model["seed"].nunique(),
        "extrapolated": by_model["auc_extrapolated"].any(),
        "n_boot": int(n_boot),
        "level": float(level),
        "auc_low": low,
        "auc_high": high,
    }
    rows = []
    for key, group in pooled.groupby(
        level=["dataset", "split", "method", "ec"], sort=True, dropna=False
    ):
        rows += _compare_with_base(
            group.droplevel(["dataset", "split", "method", "ec"]),
            key,
            base=base,
            metrics=metrics,
            context=context,
            seed=seed,
        )
    return _sort_paired(pd.DataFrame(rows, columns=list(PAIRED_COLUMNS)), metrics)


def _compare_with_base(
    group: pd.DataFrame,
    key: tuple,
    *,
    base: str,
    metrics: Sequence[str],
    context: dict,
    seed: int,
) -> list[dict]:
    """Rows of :func:`paired_differences` for one (dataset, split, method, EC).

    ``group`` holds the seed-pooled per-pair AUCs indexed by (variant, image, annotation);
    ``context`` the per-model seed counts and extrapolation flags and the shared settings.
    No rows if ``base`` is not among its variants.
    """
    dataset, split, method, ec = key
    variants = list(dict.fromkeys(group.index.get_level_values("variant")))
    if base not in variants:
        return []
    base_aucs = group.xs(base, level="variant")
    # XC and Stray are 0 with EC by construction: Δ = 0, no information.
    compared = [m for m in metrics if not ec or metric(m).with_ec]
    rows = []
    for variant in sorted((v for v in variants if v != base), key=_natural):
        other = group.xs(variant, level="variant")
        joined = base_aucs.add_suffix("_base").join(other.add_suffix("_var"), how="inner")
        key_b = (dataset, split, method, base, ec)
        key_v = (dataset, split, method, variant, ec)
        shared = {
            "dataset": dataset,
            "split": split,
            "method": method,
            "ec": bool(ec),
            "variant": variant,
            "model": model_label(method, variant),
            "base_model": model_label(method, base),
            "n_seeds_base": int(context["n_seeds"][key_b]),
            "n_seeds_variant": int(context["n_seeds"][key_v]),
            "n_boot": context["n_boot"],
            "level": context["level"],
            "auc_low": context["auc_low"],
            "auc_high": context["auc_high"],
            "auc_extrapolated": bool(
                context["extrapolated"][key_b] or context["extrapolated"][key_v]
            ),
        }
        by_seed = _seed_matched_deltas(context["per_seed"], key_b, key_v)
        rows += [
            {**shared, "metric": name, **stats, **_seed_spread(by_seed, name, stats["mean_delta"])}
            for name, stats in _paired_stats(
                joined, compared, n_boot=context["n_boot"], level=context["level"], seed=seed
            )
        ]
    return rows


def _seed_matched_deltas(per_seed: pd.DataFrame, key_b: tuple, key_v: tuple) -> pd.DataFrame:
    """Mean per-pair Δ of seed k of the variant against seed k of the base, per shared seed.

    ``per_seed`` holds per-pair AUCs indexed by the model keys, ``seed``, image and annotation.
    One row per seed both models have (none if they share no seed), one column per metric.
    """
    levels = ["dataset", "split", "method", "variant", "ec"]
    base = per_seed.xs(key_b, level=levels)
    other = per_seed.xs(key_v, level=levels)
    return (other - base).groupby(level="seed").mean().dropna(how="all")


def _seed_spread(by_seed: pd.DataFrame, name: str, mean_delta: float) -> dict:
    """``n_seeds_matched``, the smallest and largest seed-matched Δ of metric ``name`` and
    ``seeds_agree`` (every one of them on the side of 0 that the mean Δ is on)."""
    values = by_seed[name].dropna().to_numpy(dtype=float) if name in by_seed else np.array([])
    if not len(values):
        return {"n_seeds_matched": 0, "seed_delta_min": math.nan, "seed_delta_max": math.nan,
                "seeds_agree": False}  # fmt: skip
    return {
        "n_seeds_matched": len(values),
        "seed_delta_min": float(values.min()),
        "seed_delta_max": float(values.max()),
        "seeds_agree": bool(np.all(np.sign(values) == np.sign(mean_delta)) and mean_delta != 0),
    }


def _sort_paired(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """``table`` in report order: method, variant (natural order), EC before no EC, metric order."""
    if table.empty:
        return table
    order = {m: i for i, m in enumerate(metrics)}
    variants = {v: i for i, v in enumerate(sorted(table["variant"].unique(), key=_natural))}
    return (
        table.assign(
            _ec=~table["ec"], _m=table["metric"].map(order), _v=table["variant"].map(variants)
        )
        .sort_values(["dataset", "split", "method", "_v", "_ec", "_m"], kind="stable")
        .drop(columns=["_ec", "_m", "_v"])
        .reset_index(drop=True)
    )


def _paired_stats(
    joined: pd.DataFrame, metrics: Sequence[str], *, n_boot: int, level: float, seed: int
) -> list[tuple[str, dict]]:
    """Per metric: mean Δ over the pairs of ``joined`` and its image-bootstrap interval.

    ``joined`` has one row per (image, annotation) pair, indexed by ``image_id`` among others,
    with ``<metric>_base`` and ``<metric>_var`` columns. Every metric is resampled with the same
    image draws (one generator seeded with ``seed``). Statistics are NaN, and the counts 0,
    where no pair has both values.
    """
    if joined.empty:
        return []
    codes, uniques = pd.factorize(joined.index.get_level_values("image_id"), sort=True)
    indices = np.random.default_rng(seed).integers(0, len(uniques), size=(n_boot, len(uniques)))
    out = []
    for name in metrics:
        b = joined[f"{name}_base"].to_numpy(dtype=float)
        v = joined[f"{name}_var"].to_numpy(dtype=float)
        delta = v - b
        valid = np.isfinite(delta)
        counts = np.bincount(codes[valid], minlength=len(uniques)).astype(float)
        if valid.any():
            sums = np.bincount(codes[valid], weights=delta[valid], minlength=len(uniques))
            low, high = bootstrap_mean_ci(sums, counts, n_boot=n_boot, level=level, indices=indices)
            values = (delta[valid].mean(), low, high, b[valid].mean(), v[valid].mean())
        else:
            values = (math.nan,) * 5
        keys = ("mean_delta", "ci_low", "ci_high", "base_mean", "variant_mean")
        stats = {k: float(x) for k, x in zip(keys, values, strict=True)}
        stats["significant"] = bool(stats["ci_low"] > 0 or stats["ci_high"] < 0)
        stats["n_images"] = int((counts > 0).sum())
        stats["n_pairs"] = int(valid.sum())
        out.append((name, stats))
    return out


def _seed_range(row: pd.Series, decimals: int) -> str:
    """``+0.01 … +0.03`` (one value for one matched seed, ``—`` for none)."""
    if not row["n_seeds_matched"]:
        return "—"
    low = format_number(row["seed_delta_min"], decimals, sign=True)
    high = format_number(row["seed_delta_max"], decimals, sign=True)
    return low if row["n_seeds_matched"] == 1 else f"{low} … {high}"


def _natural(text: str) -> tuple:
    """Sort key that orders ``lap`` first, then ``lap_l90`` before ``lap_l360``."""
    parts = tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))
    return (text != "lap", parts)


def format_paired_markdown(
    table: pd.DataFrame,
    *,
    title: str = "Paired comparison",
    empty: str = "No method has both a `base` run and another variant: nothing to compare.",
) -> str:
    """Render :func:`paired_differences` as Markdown with the definition in the header.

    ``empty`` is the document's text when ``table`` has no row.

    Returns
    -------
    str
        The Markdown document, ending with a newline.
    """
    lines = [f"# {title}", ""]
    if table.empty:
        lines.append(empty)
        return "\n".join(lines) + "\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    n_boot = int(table["n_boot"].iloc[0])
    level = float(table["level"].iloc[0])
    lines += [
        "Definition:",
        "",
        f"- **Per-pair AUC**: for each (image, annotation) pair, the normalised AUC over "
        f"K̄ ∈ [{low:.0f}, {high:.0f}] of that pair's metric values at the run's scales, with the "
        "run's K̄ per scale (mean actual number of superpixels over all pairs) as the shared "
        "abscissa (docs/protocol.md §8). Its mean over pairs equals the run's normalised AUC "
        "as the tables report it when every pair has a value at every scale (a pair missing "
        "one is left out here, while the tables average the others at that scale).",
        "- **Seeds pooled**: a model's per-pair AUCs are averaged over its seeds before "
        "differencing.",
        "- **Δ = variant − base** per pair (same method, data and EC setting, pairs both have); "
        "“mean Δ” is the plain mean over pairs.",
        f"- **{100 * level:g} % CI**: percentile bootstrap over *images* (each resampled image "
        f"brings all its annotations), {n_boot} resamples, seeded numpy Generator. "
        "“significant”: the interval excludes 0. The interval is over test images only: it "
        "does not hold the variation between training seeds.",
        "- **Δ per seed**: the mean Δ of seed k of the variant against seed k of the base, for "
        "each seed both have (smallest … largest); “seeds agree”: every one is on the side of 0 "
        "the mean Δ is on. With few seeds, a significant Δ whose seeds disagree is not evidence.",
        "- XC and Stray are 0 with EC by construction: they are compared without EC only.",
        "",
    ]
    header = [
        "Comparison", "EC", "Metric", "base", "variant", "mean Δ", "CI low", "CI high",
        "n_images", "n_pairs", "seeds (b/v)", "significant", "Δ per seed", "seeds agree",
    ]  # fmt: skip
    rows: list[list[str]] = []
    multi = table[["dataset", "split"]].drop_duplicates().shape[0] > 1
    for _, row in table.iterrows():
        fact = metric(row["metric"])
        d = fact.decimals
        comparison = f"{row['model']} vs {row['base_model']}"
        if multi:
            comparison += f" ({row['dataset']}/{row['split']})"
        rows.append(
            [
                comparison,
                "yes" if row["ec"] else "no",
                fact.label,
                format_number(row["base_mean"], d),
                format_number(row["variant_mean"], d),
                format_number(row["mean_delta"], d, sign=True)
                + (EXTRAPOLATED_MARK if row["auc_extrapolated"] else ""),
                format_number(row["ci_low"], d, sign=True),
                format_number(row["ci_high"], d, sign=True),
                str(int(row["n_images"])),
                str(int(row["n_pairs"])),
                f"{int(row['n_seeds_base'])}/{int(row['n_seeds_variant'])}",
                "yes" if row["significant"] else "no",
                _seed_range(row, d),
                ("yes" if row["seeds_agree"] else "no") if row["n_seeds_matched"] > 1 else "—",
            ]
        )
    lines += markdown_table(header, rows)
    if table["auc_extrapolated"].any():
        lines += [
            "",
            f"{EXTRAPOLATED_MARK} The K̄ of the base or the variant does not bracket "
            f"[{low:.0f}, {high:.0f}]: their AUCs use a linear extrapolation at that end "
            "(docs/protocol.md §8) and are less reliable.",
        ]
    return "\n".join(lines) + "\n"
