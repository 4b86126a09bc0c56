"""Collect a run's Snakemake benchmark files into one table: where its time went, per job and rule.

Every rule writes ``benchmarks/<run>/<rule group>/<job>.tsv`` (wall seconds, peak memory, CPU
seconds; Snakemake's ``benchmark:`` directive). This prints one row per job and a summary per
group (train, predict, score, report, data), and with ``--out`` writes the per-job table as CSV.

Example::

    python benchmarks/job_times.py benchmarks/cpu-short --out results/cpu-short/job_times.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

COLUMNS = {"s": "wall_s", "cpu_time": "cpu_s", "max_rss": "max_rss_mb"}


def job_times(folder: str | Path) -> pd.DataFrame:
    """Return one row per benchmark file under ``folder``: group, job, wall and CPU seconds, MB.

    ``group`` is the first folder below ``folder`` (``train``, ``predict``, ...), ``job`` the rest
    of the path without ``.tsv``; a file with several rows (``benchmark: repeat(...)``) gives its
    mean.
    """
    root = Path(folder)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"{path} is not a Snakemake benchmark file (no {sorted(missing)})")
        parts = path.relative_to(root).with_suffix("").parts
        values = frame[list(COLUMNS)].rename(columns=COLUMNS).mean()
        rows.append({"group": parts[0], "job": "/".join(parts[1:]), **values.round(2).to_dict()})
    if not rows:
        raise FileNotFoundError(f"no benchmark .tsv files under {root}")
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Print the per-job and per-group tables of a run's benchmark folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="benchmarks/<run_name>")
    parser.add_argument("--out", type=Path, help="write the per-job table here (CSV)")
    args = parser.parse_args(argv)
    table = job_times(args.folder)
    print(table.to_string(index=False))
    groups = table.groupby("group")[["wall_s", "cpu_s"]].agg(["sum", "count"])
    print()
    print(groups.round(1).to_string())
    print(f"\nsum of job wall times: {table['wall_s'].sum():.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    main()
