"""Table 2 of the paper, regenerated from our AUCs, in Markdown, CSV and LaTeX (booktabs).

Rows: every (method, variant, EC) present, ordered by method, EC yes before no (as the paper),
``base`` before ``lap`` before any other variant. For the columns the paper reports (ASA, CO, B =
BP, XC, Stray) the paper's value and the difference ours − paper are placed beside ours where the
paper has that row (``paper.md`` §4; secondary-summary caveat).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from spbench.report.paper import PAPER_DATASET, PAPER_SPLIT, TABLE2, TABLE3

__all__ = [
    "PAPER_COLUMNS",
    "TABLE2_METRICS",
    "format_table2_latex",
    "format_table2_markdown",
    "format_table3_markdown",
    "latex_escape",
    "table2_frame",
    "table3_frame",
]

TABLE2_METRICS: tuple[tuple[str, str, int], ...] = (
    # (AUC column, header, decimals)
    ("asa", "ASA", 4),
    ("co", "CO", 4),
    ("bp", "BP", 4),
    ("br", "BR", 4),
    ("ue_np", "UE", 4),
    ("xc", "XC", 1),
    ("stray", "Stray", 1),
)
"""Metric columns of Table 2: (AUC column, header, decimals). UE is ``ue_np``."""

PAPER_COLUMNS: tuple[str, ...] = ("asa", "co", "bp", "xc", "stray")
"""Metrics the paper's Table 2 reports (its "B" is our BP)."""

_ARROWS = {"asa": "↑", "co": "↑", "bp": "↑", "br": "↑", "ue_np": "↓", "xc": "↓", "stray": "↓"}
EXTRAPOLATED_MARK = "†"
_VARIANT_ORDER = {"base": 0, "lap": 1}


def _sort_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        _ec=~frame["ec"].astype(bool),
        _var=[(_VARIANT_ORDER.get(v, 2), v) for v in frame["variant"]],
    ).sort_values(["dataset", "split", "method", "_ec", "_var"], kind="stable")


def table2_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """Build the machine-readable Table 2 from the seed summary.

    Parameters
    ----------
    summary
        Output of :func:`spbench.report.aggregate.summarise_seeds`.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, EC), in table order, with ``model``,
        ``dataset``, ``split``, ``method``, ``variant``, ``ec``; per metric of
        :data:`TABLE2_METRICS` ``<m>`` (mean AUC over seeds), ``<m>_std`` and
        ``<m>_extrapolated``; per metric of :data:`PAPER_COLUMNS` ``<m>_paper`` and ``<m>_delta``
        (ours − paper; NaN where the paper has no such row or the data is not BSDS500 test);
        ``k_min``, ``k_max``, ``auc_low``, ``auc_high``, ``n_seeds``, ``seeds``,
        ``auc_extrapolated``, the run attributes and ``paper_source``.
    """
    paper = {(r.method, r.variant, r.ec): r for r in TABLE2}
    rows = []
    for rec in _sort_key(summary).to_dict("records"):
        row: dict[str, object] = {
            "model": rec["model"],
            "dataset": rec["dataset"],
            "split": rec["split"],
            "method": rec["method"],
            "variant": rec["variant"],
            "ec": bool(rec["ec"]),
        }
        for metric, _, _ in TABLE2_METRICS:
            row[metric] = rec[metric]
            row[f"{metric}_std"] = rec[f"{metric}_std"]
            row[f"{metric}_extrapolated"] = rec[f"{metric}_extrapolated"]
        comparable = (
            str(rec["dataset"]).lower() == PAPER_DATASET and str(rec["split"]) == PAPER_SPLIT
        )
        ref = paper.get((rec["method"], rec["variant"], bool(rec["ec"]))) if comparable else None
        for metric in PAPER_COLUMNS:
            value = getattr(ref, metric) if ref is not None else np.nan
            row[f"{metric}_paper"] = value
            row[f"{metric}_delta"] = rec[metric] - value
        for col in ("k_min", "k_max", "auc_low", "auc_high", "n_seeds", "seeds"):
            row[col] = rec[col]
        row["auc_extrapolated"] = rec["auc_extrapolated"]
        for col in ("weights", "msd_mode", "use_lap", "use_msd", "use_wr", "lambda_lap"):
            row[col] = rec.get(col)
        row["train_steps"] = rec.get("train_steps")
        row["paper_source"] = ref.source if ref is not None else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(value: object, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{decimals}f}"


def _fmt_delta(value: object, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):+.{decimals}f}"


def _onoff(flag: object) -> str:
    if isinstance(flag, (bool, np.bool_)):
        return "on" if flag else "off"
    return str(flag)  # seeds disagree: the joined values


def _cell(row: pd.Series, metric: str, decimals: int, *, pm: str, mark: str) -> str:
    text = _fmt(row[metric], decimals)
    std = row[f"{metric}_std"]
    if row["n_seeds"] > 1 and not (isinstance(std, float) and math.isnan(std)):
        text += f"{pm}{float(std):.{decimals}f}"
    if row[f"{metric}_extrapolated"]:
        text += mark
    return text


def _header_and_rows(
    table: pd.DataFrame, *, pm: str, mark: str, multi_data: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "EC"]
    if multi_data:
        header = ["Data", *header]
    for metric, name, _ in TABLE2_METRICS:
        header.append(f"{name} {_ARROWS[metric]}")
        if metric in PAPER_COLUMNS:
            header += [f"{name} (paper)", f"Δ{name}"]
    header += ["K̄ range", "seeds"]
    body = []
    for _, row in table.iterrows():
        cells = [str(row["model"]), "yes" if row["ec"] else "no"]
        if multi_data:
            cells = [f"{row['dataset']}/{row['split']}", *cells]
        for metric, _, decimals in TABLE2_METRICS:
            cells.append(_cell(row, metric, decimals, pm=pm, mark=mark))
            if metric in PAPER_COLUMNS:
                cells += [
                    _fmt(row[f"{metric}_paper"], decimals),
                    _fmt_delta(row[f"{metric}_delta"], decimals),
                ]
        cells.append(f"{row['k_min']:.0f}–{row['k_max']:.0f}")
        cells.append(str(int(row["n_seeds"])))
        body.append(cells)
    return header, body


def _data_description(table: pd.DataFrame) -> str:
    pairs = sorted({f"{d} / {s}" for d, s in zip(table["dataset"], table["split"], strict=True)})
    return ", ".join(pairs)


def format_table2_markdown(table: pd.DataFrame, *, title: str = "Table 2") -> str:
    """Render Table 2 as Markdown with an explanatory header note and footnotes.

    Parameters
    ----------
    table
        Output of :func:`table2_frame`.
    title
        Heading text.

    Returns
    -------
    str
        The Markdown document (heading, note, pipe table, footnotes), ending with a newline.
    """
    if table.empty:
        return f"# {title}\n\nNo score rows were given.\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    multi = table[["dataset", "split"]].drop_duplicates().shape[0] > 1
    header, body = _header_and_rows(table, pm=" ± ", mark=EXTRAPOLATED_MARK, multi_data=multi)
    comparable = any(
        str(d).lower() == PAPER_DATASET and str(sp) == PAPER_SPLIT
        for d, sp in zip(table["dataset"], table["split"], strict=True)
    )
    lines = [
        f"# {title}",
        "",
        f"- Every number is a **normalised AUC over K̄ ∈ [{low:.0f}, {high:.0f}]**: "
        f"(1/{high - low:.0f})·∫ v(K̄) dK̄, trapezoids through the per-scale points, where v is "
        "the plain mean of the metric over all (image, annotation) pairs and K̄ the mean "
        "*actual* number of superpixels at that scale (protocol.md §6, §8).",
        "- XC and Stray are counted per prediction and averaged over the same pairs.",
        f"- Data: {_data_description(table)}.",
        "- **BP is the paper's “B”** (boundary precision; paper.md §4). UE is UE_np.",
        "- Mean over seeds, ± sample standard deviation when there is more than one seed. "
        "“K̄ range”: the K̄ measured by every seed.",
        "- Δ = ours − paper. The paper's numbers are selected rows of its Table 2 taken from a "
        "*secondary summary* of the paper, not the PDF (paper.md §4): provisional until "
        "checked against the PDF. “—”: the paper has no such number"
        + ("" if comparable else " (paper numbers apply to BSDS500 test only)")
        + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines.append("")
    if table["auc_extrapolated"].any():
        lines.append(
            f"{EXTRAPOLATED_MARK} The measured K̄ does not bracket [{low:.0f}, {high:.0f}] for "
            "this run: the AUC uses a linear extrapolation from the two nearest points at the "
            "unbracketed end (protocol.md §8) and is less reliable."
        )
        lines.append("")
    lines += ["Runs (weights provenance and loss settings):", ""]
    cols = ["model", "weights", "train_steps", "use_lap", "use_msd", "use_wr", "lambda_lap"]
    for rec in table[[*cols, "msd_mode", "seeds"]].drop_duplicates(cols).to_dict("records"):
        lap = _onoff(rec["use_lap"])
        if lap == "on":
            lap += f" (λ_LAP = {rec['lambda_lap']})"
        lines.append(
            f"- {rec['model']}: {rec['weights']}; {rec['train_steps']} training steps; "
            f"LAP {lap}, MSD {_onoff(rec['use_msd'])} (mode {rec['msd_mode']}), "
            f"WR {_onoff(rec['use_wr'])}; seeds {rec['seeds']}"
        )
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (``_``, ``&``, ``%`` ...) in plain text."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _latex_cell(text: str) -> str:
    text = latex_escape(text)
    return (
        text.replace(" ± ", r" $\pm$ ")
        .replace("±", r"$\pm$")
        .replace(EXTRAPOLATED_MARK, r"$^\dagger$")
        .replace("—", "--")
        .replace("–", "--")
        .replace("Δ", r"$\Delta$")
        .replace("↑", r"$\uparrow$")
        .replace("↓", r"$\downarrow$")
        .replace("K̄", r"$\bar{K}$")
    )


def format_table2_latex(table: pd.DataFrame, *, caption: str | None = None) -> str:
    """Render Table 2 as a LaTeX ``table`` with booktabs rules.

    Parameters
    ----------
    table
        Output of :func:`table2_frame`.
    caption
        Caption text (plain text, escaped here); a default describing the numbers is used if
        ``None``.

    Returns
    -------
    str
        LaTeX source needing ``\\usepackage{booktabs}``; a ``\\midrule`` separates the methods.
    """
    if table.empty:
        return "% Table 2: no score rows were given\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    multi = table[["dataset", "split"]].drop_duplicates().shape[0] > 1
    header, body = _header_and_rows(table, pm=" ± ", mark=EXTRAPOLATED_MARK, multi_data=multi)
    if caption is None:
        caption = (
            f"Normalised AUC over K in [{low:.0f}, {high:.0f}] of the mean over (image, "
            f"annotation) pairs against the actual mean number of superpixels; "
            f"{_data_description(table)}. BP is the paper's B. Paper values from a secondary "
            "summary of the paper; Delta = ours - paper."
        )
        if table["auc_extrapolated"].any():
            caption += " Dagger: AUC extrapolated at an unbracketed end of the range."
    spec = "l" * (3 if multi else 2) + "r" * (len(header) - (3 if multi else 2))
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\resizebox{\linewidth}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(_latex_cell(h) for h in header) + r" \\",
        r"\midrule",
    ]
    methods = table["method"].tolist()
    for i, cells in enumerate(body):
        if i > 0 and methods[i] != methods[i - 1]:
            lines.append(r"\midrule")
        lines.append(" & ".join(_latex_cell(c) for c in cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}}",
        rf"\caption{{{latex_escape(caption)}}}",
        r"\label{tab:spbench-table2}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def table3_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """Our CDS runs without EC beside the paper's Table 3 (CDS ablation) rows.

    A run matches a paper configuration by its loss switches: ``use_lap`` and ``use_msd`` must
    agree, and ``use_wr`` too where the paper's row states it (the "LAP only" row does not,
    ``method.md`` §7). Only BSDS500 test runs are compared.

    Parameters
    ----------
    summary
        Output of :func:`spbench.report.aggregate.summarise_seeds`.

    Returns
    -------
    pandas.DataFrame
        One row per matching (run variant, paper configuration): ``configuration``, ``model``,
        ``variant``, ``use_lap``, ``use_msd``, ``use_wr``, ``n_seeds``, and for ASA, CO, BP and XC
        ours (``<m>``), ``<m>_paper`` and ``<m>_delta`` (ours − paper). Empty if nothing matches.
    """
    cols = ["configuration", "model", "variant", "use_lap", "use_msd", "use_wr", "n_seeds"]
    metrics = ("asa", "co", "bp", "xc")
    rows = []
    sel = summary[
        (summary["method"] == "cds")
        & ~summary["ec"].astype(bool)
        & (summary["dataset"].astype(str).str.lower() == PAPER_DATASET)
        & (summary["split"] == PAPER_SPLIT)
    ]
    for ref in TABLE3:
        for rec in _sort_key(sel).to_dict("records"):
            flags = [rec["use_lap"], rec["use_msd"], rec["use_wr"]]
            if not all(isinstance(f, (bool, np.bool_)) for f in flags):
                continue  # seeds disagree on a switch: not comparable
            if (bool(rec["use_lap"]), bool(rec["use_msd"])) != (ref.use_lap, ref.use_msd):
                continue
            if ref.use_wr is not None and bool(rec["use_wr"]) != ref.use_wr:
                continue
            row = {"configuration": ref.configuration, **{c: rec[c] for c in cols[1:]}}
            for metric in metrics:
                row[metric] = rec[metric]
                row[f"{metric}_paper"] = getattr(ref, metric)
                row[f"{metric}_delta"] = rec[metric] - getattr(ref, metric)
            rows.append(row)
    extra = [f"{m}{s}" for m in metrics for s in ("", "_paper", "_delta")]
    return pd.DataFrame(rows, columns=[*cols, *extra])


def format_table3_markdown(table: pd.DataFrame, *, title: str = "Table 3") -> str:
    """Render :func:`table3_frame` as Markdown (ours, paper, Δ for ASA, CO, BP, XC).

    Returns
    -------
    str
        The Markdown document, ending with a newline.
    """
    lines = [
        f"# {title}",
        "",
        "CDS ablation without EC (paper Table 3, 3 decimals, from a secondary summary of the "
        "paper; paper.md §4). Ours: normalised AUC as in Table 2. Runs are matched to the paper's "
        "configurations by their loss switches; the paper's “LAP only” row does not say whether "
        "WR was on (method.md §7), so it matches either. BP is the paper's “B”.",
        "",
    ]
    if table.empty:
        lines.append("No CDS run without EC on BSDS500 test matches a Table 3 configuration.")
        return "\n".join(lines) + "\n"
    header = ["Configuration", "Model", "LAP/MSD/WR", "seeds"]
    for name in ("ASA", "CO", "BP", "XC"):
        header += [name, f"{name} (paper)", f"Δ{name}"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for _, row in table.iterrows():
        switches = "/".join(_onoff(row[c]) for c in ("use_lap", "use_msd", "use_wr"))
        cells = [row["configuration"], row["model"], switches, str(int(row["n_seeds"]))]
        for metric, decimals in (("asa", 4), ("co", 4), ("bp", 4), ("xc", 1)):
            cells += [
                _fmt(row[metric], decimals),
                _fmt(row[f"{metric}_paper"], 3 if metric != "xc" else 1),
                _fmt_delta(row[f"{metric}_delta"], decimals),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
