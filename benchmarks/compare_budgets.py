"""Compare one method's base and LAP runs trained at two budgets, pair by pair.

For two run folders of the same profile that differ in training steps only (cpu-short, 700
steps, and cpu-long, 2,800 steps, ``config/four-times-longer.yaml``), print and optionally write
as Markdown, for each metric without and with EC:

- each model's change from the shorter to the longer budget (``base`` then ``lap``), mean over
  (image, annotation) pairs of the per-pair normalised AUC difference, seeds pooled, with a
  percentile bootstrap interval over images (``spbench.report.stats``, as ``paired.md``);
- the change of the LAP effect: (LAP − base at the longer budget) − (LAP − base at the shorter),
  per pair, with its interval: whether longer training shrinks or widens what LAP costs or buys.

Each run's AUC uses its own K̄ per scale as abscissa, as its own Table 2 does.

Example::

    python benchmarks/compare_budgets.py results/cpu-short results/cpu-long \\
        --method scn --out results/cpu-long/budget.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from spbench.metrics import metric
from spbench.report.aggregate import RUN_ATTRIBUTES, format_number, load_scores, markdown_table
from spbench.report.stats import (
    bootstrap_mean_ci,
    format_paired_markdown,
    pair_aucs,
    paired_differences,
)

METRICS = ("xc", "stray", "asa", "co", "br", "bp")
PAIR = ["ec", "image_id", "annotation"]


def score_files(run: Path, method: str) -> list[Path]:
    """Return the base and LAP score files of ``method`` in run folder ``run``."""
    files = [
        f
        for f in sorted((run / "scores" / method).glob("*/seed*.parquet"))
        if f.parent.name in ("base", "lap")
    ]
    if not files:
        raise SystemExit(f"{run}: no scores/{method}/{{base,lap}}/seed*.parquet (run it first)")
    return files


def load_run(run: Path, method: str) -> pd.DataFrame:
    """Return ``method``'s base and LAP score rows in run folder ``run``."""
    scores = load_scores(score_files(run, method))
    if scores["train_steps"].nunique() != 1:
        steps = sorted(scores["train_steps"].unique())
        raise SystemExit(f"{run}: {method}'s runs differ in training steps {steps}")
    return scores


def combine(short: pd.DataFrame, long: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Return both runs' rows in one frame, variants renamed ``<variant>@<steps>``, and the two
    step counts as tags; stop, naming what differs, unless the runs differ in training steps
    only (the same variants and seeds with the same loss settings and weights, scored on the
    same (image, annotation, scale, EC) samples)."""
    tags = [str(int(frame["train_steps"].iloc[0])) for frame in (short, long)]
    if tags[0] == tags[1]:
        raise SystemExit(f"both runs trained {tags[0]} steps: nothing to compare")
    for column in (c for c in RUN_ATTRIBUTES if c != "train_steps"):
        a, b = (frame.groupby(["variant", "seed"])[column].first() for frame in (short, long))
        if not a.equals(b):
            raise SystemExit(f"the runs differ in {column} (or in their variants and seeds)")
    keys = ["image_id", "annotation", "scale", "ec"]
    samples = [set(map(tuple, frame[keys].drop_duplicates().to_numpy())) for frame in (short, long)]
    if samples[0] != samples[1]:
        raise SystemExit(
            f"the runs were scored on different samples ({len(samples[0] ^ samples[1])} of the"
            " (image, annotation, scale, EC) keys are in one only): score both on one protocol"
        )
    tagged = [
        frame.assign(variant=frame["variant"] + "@" + tag)
        for frame, tag in zip((short, long), tags, strict=True)
    ]
    return pd.concat(tagged, ignore_index=True), tags[0], tags[1]


def budget_changes(scores: pd.DataFrame, short: str, long: str, **kw) -> pd.DataFrame:
    """Return base's and LAP's change from ``short`` to ``long`` steps
    (:func:`~spbench.report.stats.paired_differences` rows, metric units)."""
    rows = []
    for variant in ("base", "lap"):
        pair = scores[scores["variant"].isin([f"{variant}@{short}", f"{variant}@{long}"])]
        rows.append(paired_differences(pair, base=f"{variant}@{short}", **kw))
    return pd.concat(rows, ignore_index=True)


def effect_change(
    scores: pd.DataFrame,
    short: str,
    long: str,
    *,
    auc_range: tuple[float, float],
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Return, per EC setting and metric, the mean over pairs of
    (lap@long − base@long) − (lap@short − base@short) of the per-pair AUCs (metric units):
    ``mean`` with seeds pooled, its 95 % percentile bootstrap interval over images
    (``low``, ``high``), and ``per_seed``, the same mean for each seed k alone (seed k of each
    of the four runs)."""
    per_pair = pair_aucs(scores, auc_range=auc_range, metrics=METRICS)
    wide = per_pair.groupby(["seed", "variant", *PAIR])[list(METRICS)].mean().unstack("variant")
    rows = []
    for ec, group in wide.groupby(level="ec"):
        for name in (m for m in METRICS if not ec or metric(m).with_ec):
            aucs = group[name]
            per_seed = (aucs[f"lap@{long}"] - aucs[f"base@{long}"]) - (
                aucs[f"lap@{short}"] - aucs[f"base@{short}"]
            )
            pooled = per_seed.groupby(level=["image_id", "annotation"]).mean().dropna()
            by_image = pooled.groupby(level="image_id").agg(["sum", "count"])
            low, high = bootstrap_mean_ci(
                by_image["sum"].to_numpy(),
                by_image["count"].to_numpy(),
                n_boot=n_boot,
                rng=np.random.default_rng(seed),
            )
            rows.append(
                {
                    "ec": bool(ec),
                    "metric": name,
                    "mean": pooled.mean(),
                    "low": low,
                    "high": high,
                    "per_seed": per_seed.groupby(level="seed").mean().to_dict(),
                }
            )
    return pd.DataFrame(rows)


def format_effect_change(effect: pd.DataFrame, short: str, long: str) -> str:
    """Return :func:`effect_change` as a Markdown section."""
    rows = []
    for row in effect.itertuples():
        fact = metric(row.metric)
        mean, low, high = (_signed(v, fact.decimals) for v in (row.mean, row.low, row.high))
        seeds = [f"{_signed(v, fact.decimals)} (seed {k})" for k, v in sorted(row.per_seed.items())]
        rows.append(
            ["yes" if row.ec else "no", fact.label, f"{mean} [{low}, {high}]", ", ".join(seeds)]
        )
    header = ["EC", "metric", "Δ of Δ, seeds pooled [95 % interval over images]", "per seed"]
    title = f"## The LAP effect's change: (LAP − base at {long}) − (LAP − base at {short} steps)"
    note = (
        "The interval is over test images only; where the seeds disagree in sign, the change is"
        " within training noise."
    )
    return "\n".join([title, "", note, "", *markdown_table(header, rows)]) + "\n"


def _signed(value: float, decimals: int) -> str:
    return format_number(value, decimals, sign=True)


def main(argv: list[str] | None = None) -> None:
    """Print (and with ``--out`` write) both comparisons as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("short_run", type=Path, help="run folder of the shorter budget")
    parser.add_argument("long_run", type=Path, help="run folder of the longer budget")
    parser.add_argument("--method", default="scn")
    parser.add_argument("--auc-range", type=float, nargs=2, default=(384.0, 1200.0))
    parser.add_argument("--out", type=Path, help="Markdown file to write")
    args = parser.parse_args(argv)
    scores, short, long = combine(
        *(load_run(run, args.method) for run in (args.short_run, args.long_run))
    )
    auc_range = (float(args.auc_range[0]), float(args.auc_range[1]))
    changes = budget_changes(scores, short, long, auc_range=auc_range, metrics=METRICS)
    title = (
        f"From {short} to {long} training steps, each model against itself"
        f" (“base”: its {short}-step run, “variant”: its {long}-step run, seed k against seed k)"
    )
    text = format_paired_markdown(changes, title=title)
    text += "\n" + format_effect_change(
        effect_change(scores, short, long, auc_range=auc_range), short, long
    )
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
