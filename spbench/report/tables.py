"""Table 2 of the paper, regenerated from our AUCs, in Markdown, CSV and LaTeX (booktabs).

Rows: every (method, variant, EC) present, ordered by method, EC yes before no (as the paper),
``base`` before ``lap`` before any other variant. For the columns the paper reports (ASA, CO, B =
BP, XC, Stray) the paper's value and the difference ours − paper are placed beside ours where the
paper has that row (``docs/paper.md`` §4; secondary-summary caveat).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from spbench.catalogue import PUBLISHED_PREFIX
from spbench.config import budget_label
from spbench.metrics import metric
from spbench.report.aggregate import format_number, markdown_table, model_label
from spbench.report.paper import (
    PAPER_DATASET,
    PAPER_N_IMAGES,
    PAPER_SPLIT,
    TABLE2,
    TABLE3,
    Table3Row,
)

__all__ = [
    "PAPER_COLUMNS",
    "TABLE2_METRICS",
    "TABLE3_METRICS",
    "TABLE3_PAPER_COLUMNS",
    "data_description",
    "effective_lambda_lap",
    "format_cell",
    "format_table2_latex",
    "format_table2_markdown",
    "format_table3_latex",
    "format_table3_markdown",
    "latex_escape",
    "sort_rows",
    "switch_configuration",
    "table2_frame",
    "table3_frame",
]

TABLE2_METRICS: tuple[str, ...] = ("asa", "co", "bp", "br", "ue_np", "xc", "stray")
"""Metric columns of Table 2 (labels, arrows and decimals from :mod:`spbench.metrics.facts`)."""

PAPER_COLUMNS: tuple[str, ...] = ("asa", "co", "bp", "xc", "stray")
"""Metrics the paper's Table 2 reports (its "B" is our BP)."""

EXTRAPOLATED_MARK = "†"
_VARIANT_ORDER = {"base": 0, "lap": 1}


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame``'s rows in Table 2's order: by data and method, EC yes before no, then
    ``base``, ``lap`` and any other variant by name."""
    keys = frame.assign(
        _pos=np.arange(len(frame)),
        _ec=~frame["ec"].astype(bool),
        _var=[(_VARIANT_ORDER.get(v, 2), v) for v in frame["variant"]],
    ).sort_values(["dataset", "split", "method", "_ec", "_var"], kind="stable")
    return frame.iloc[keys["_pos"].to_numpy()]


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
    for rec in sort_rows(summary).to_dict("records"):
        row: dict[str, object] = {
            "model": rec["model"],
            "dataset": rec["dataset"],
            "split": rec["split"],
            "method": rec["method"],
            "variant": rec["variant"],
            "ec": bool(rec["ec"]),
        }
        for name in TABLE2_METRICS:
            row[name] = rec[name]
            row[f"{name}_std"] = rec[f"{name}_std"]
            row[f"{name}_extrapolated"] = rec[f"{name}_extrapolated"]
        # Published weights (variant pub_lap) are compared with the paper's row of their variant.
        variant = str(rec["variant"]).removeprefix(PUBLISHED_PREFIX)
        ref = paper.get((rec["method"], variant, bool(rec["ec"]))) if scored_as_paper(rec) else None
        for name in PAPER_COLUMNS:
            value = getattr(ref, name) if ref is not None else np.nan
            row[f"{name}_paper"] = value
            row[f"{name}_delta"] = rec[name] - value
        for col in ("k_min", "k_max", "auc_low", "auc_high", "n_seeds", "seeds"):
            row[col] = rec[col]
        for col in ("n_images", "n_pairs", "gt_cap50", "max_annotations"):
            row[col] = rec[col]
        row["auc_extrapolated"] = rec["auc_extrapolated"]
        for col in ("weights", "msd_mode", "use_lap", "use_msd", "use_wr"):
            row[col] = rec.get(col)
        row["lambda_lap"] = effective_lambda_lap(rec)
        row["train_steps"] = rec.get("train_steps")
        row["budget"] = rec.get("budget")
        row["paper_source"] = ref.source if ref is not None else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _onoff(flag: object) -> str:
    if isinstance(flag, (bool, np.bool_)):
        return "on" if flag else "off"
    return str(flag)  # seeds disagree: the joined values


def format_cell(row: pd.Series, name: str, decimals: int, *, pm: str, mark: str) -> str:
    """Return ``row[name]`` with ``decimals`` digits, ``pm`` and the seeds' standard deviation
    (``<name>_std``) when ``row["n_seeds"] > 1``, and ``mark`` if ``<name>_extrapolated``; "—"
    for a missing value."""
    text = format_number(row[name], decimals)
    std = row[f"{name}_std"]
    if row["n_seeds"] > 1 and not (isinstance(std, float) and math.isnan(std)):
        text += f"{pm}{float(std):.{decimals}f}"
    if row[f"{name}_extrapolated"]:
        text += mark
    return text


def _header_and_rows(
    table: pd.DataFrame, *, pm: str, mark: str, multi_data: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "EC"]
    if multi_data:
        header = ["Data", *header]
    for fact in map(metric, TABLE2_METRICS):
        header.append(fact.header)
        if fact.name in PAPER_COLUMNS:
            header += [f"{fact.label} (paper)", f"Δ{fact.label}"]
    header += ["K̄ range", "seeds"]
    body = []
    for _, row in table.iterrows():
        cells = [str(row["model"]), "yes" if row["ec"] else "no"]
        if multi_data:
            cells = [f"{row['dataset']}/{row['split']}", *cells]
        for fact in map(metric, TABLE2_METRICS):
            cells.append(format_cell(row, fact.name, fact.decimals, pm=pm, mark=mark))
            if fact.name in PAPER_COLUMNS:
                cells += [
                    format_number(row[f"{fact.name}_paper"], fact.decimals),
                    format_number(row[f"{fact.name}_delta"], fact.decimals, sign=True),
                ]
        cells.append(f"{row['k_min']:.0f}–{row['k_max']:.0f}")
        cells.append(str(int(row["n_seeds"])))
        body.append(cells)
    return header, body


def scored_as_paper(rec: dict) -> bool:
    """Whether a summary row was scored as the paper's numbers were: BSDS500 test, GT capped at
    50 labels, every annotation (``docs/protocol.md``); the image count is stated, not required.
    """
    return (
        str(rec["dataset"]).lower() == PAPER_DATASET
        and str(rec["split"]) == PAPER_SPLIT
        and rec.get("gt_cap50") is True
        and rec.get("max_annotations") == 0
    )


def data_description(table: pd.DataFrame) -> str:
    """Return what ``table``'s rows were scored on, e.g. ``bsds500 / test, 40 images, 213
    (image, annotation) pairs; GT capped at 50 labels, every annotation`` (columns ``dataset``,
    ``split``, ``n_images``, ``n_pairs``, ``gt_cap50``, ``max_annotations``)."""
    parts = []
    for (dataset, split), group in table.groupby(["dataset", "split"], sort=True):
        parts.append(
            f"{dataset} / {split}, {int(group['n_images'].max())} images, "
            f"{int(group['n_pairs'].max())} (image, annotation) pairs"
        )
    options = []
    for cap in dict.fromkeys(table["gt_cap50"].tolist()):
        options.append("GT capped at 50 labels" if cap is True else f"GT capped: {cap}")
    for most in dict.fromkeys(table["max_annotations"].tolist()):
        options.append("every annotation" if most == 0 else f"at most {most} annotations")
    return "; ".join(parts) + "; " + ", ".join(options)


def _subset_note(table: pd.DataFrame, columns: tuple[str, ...]) -> str:
    """``"; these rows score 40 of the 200 test images, so Δ compares a subset with the paper's
    full set"`` when a row showing a paper number (``<c>_paper`` of ``columns``) scored fewer
    images than the paper; ``""`` otherwise."""
    shown = table[[f"{name}_paper" for name in columns]].notna().any(axis=1)
    fewest = min((int(n) for n in table.loc[shown, "n_images"]), default=PAPER_N_IMAGES)
    if fewest >= PAPER_N_IMAGES:
        return ""
    return (
        f"; these rows score {fewest} of the {PAPER_N_IMAGES} test images, so Δ compares a "
        "subset with the paper's full set"
    )


def _paper_note(table: pd.DataFrame, columns: tuple[str, ...] = PAPER_COLUMNS) -> str:
    """Where the paper's numbers apply, and whether the rows that show one cover every image."""
    return (
        "“—”: the paper has no such number, or the row was not scored as the paper was "
        f"(BSDS500 test, GT capped at 50 labels, every annotation){_subset_note(table, columns)}."
    )


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
    lines = [
        f"# {title}",
        "",
        f"- Every number is a **normalised AUC over K̄ ∈ [{low:.0f}, {high:.0f}]**: "
        f"(1/{high - low:.0f})·∫ v(K̄) dK̄, trapezoids through the per-scale points, where v is "
        "the plain mean of the metric over all (image, annotation) pairs and K̄ the mean "
        "*actual* number of superpixels at that scale (docs/protocol.md §6, §8).",
        "- XC and Stray are counted per prediction and averaged over the same pairs.",
        f"- Data: {data_description(table)}.",
        "- **BP is the paper's “B”** (boundary precision; docs/paper.md §4).",
        "- Mean over seeds, ± sample standard deviation when there is more than one seed. "
        "“K̄ range”: the K̄ measured by every seed.",
        "- Δ = ours − paper. The paper's numbers are selected rows of its Table 2 taken from a "
        "*secondary summary* of the paper, not the PDF (docs/paper.md §4): provisional until "
        "checked against the PDF. " + _paper_note(table),
        "",
    ]
    lines += markdown_table(header, body)
    lines.append("")
    if table["auc_extrapolated"].any():
        lines.append(
            f"{EXTRAPOLATED_MARK} The measured K̄ does not bracket [{low:.0f}, {high:.0f}] for "
            "this run: the AUC uses a linear extrapolation from the two nearest points at the "
            "unbracketed end (docs/protocol.md §8) and is less reliable."
        )
        lines.append("")
    lines += ["Runs (weights provenance and loss settings):", ""]
    cols = ["model", "weights", "train_steps", "budget", "use_lap", "use_msd", "use_wr"]
    cols.append("lambda_lap")
    for rec in table[[*cols, "msd_mode", "seeds"]].drop_duplicates(cols).to_dict("records"):
        lap = _onoff(rec["use_lap"])
        if lap == "on":
            lap += f" (λ_LAP = {rec['lambda_lap']})"
        # Untrained rows (references, published weights) say what they are in `weights`.
        steps = f"{rec['train_steps']} training steps; " if rec["train_steps"] else ""
        if rec["train_steps"] and rec["budget"] != 1:
            steps += f"{budget_label(rec['budget'])}; "
        lines.append(
            f"- {rec['model']}: {rec['weights']}; {steps}"
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
        .replace(r"λ\_LAP", r"$\lambda_{\mathrm{LAP}}$")
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
            f"{data_description(table)}. BP is the paper's B. Paper values from a secondary "
            "summary of the paper; Delta = ours - paper; --: no paper number for that row"
            f"{_subset_note(table, PAPER_COLUMNS).replace('Δ', 'Delta')}."
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


TABLE3_METRICS: tuple[str, ...] = ("asa", "co", "bp", "br", "xc", "stray")
"""Metric columns of Table 3."""

TABLE3_PAPER_COLUMNS: tuple[str, ...] = ("asa", "co", "bp", "xc")
"""Metrics the paper's Table 3 reports."""

_SWITCHES = (("use_lap", "LAP"), ("use_msd", "MSD"), ("use_wr", "WR"))
_COMBO_ORDER = [
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, True, False),
    (True, False, True),
    (False, True, True),
    (True, True, True),
]


def switch_configuration(use_lap: bool, use_msd: bool, use_wr: bool) -> str:
    """Name a loss-switch combination: ``"baseline"``, ``"LAP only"``, ``"LAP+MSD+WR"`` ...

    Parameters
    ----------
    use_lap, use_msd, use_wr
        The run's loss switches.

    Returns
    -------
    str
        ``"baseline"`` if all are off, ``"<X> only"`` for one switch, else the switched-on
        losses joined with ``+`` in the order LAP, MSD, WR.
    """
    flags = (use_lap, use_msd, use_wr)
    on = [name for flag, (_, name) in zip(flags, _SWITCHES, strict=True) if flag]
    if not on:
        return "baseline"
    if len(on) == 1:
        return f"{on[0]} only"
    return "+".join(on)


def _has_bool_switches(rec: dict) -> bool:
    return all(isinstance(rec[c], (bool, np.bool_)) for c, _ in _SWITCHES)


def table3_frame(summary: pd.DataFrame, *, method: str) -> pd.DataFrame:
    """Table 3: the loss-switch ablation (LAP / MSD / WR) of one method, without EC.

    Every run of ``method`` without EC is one row, named by its switches
    (:func:`switch_configuration`: "baseline", "LAP only", "LAP+MSD+WR" ...); runs that share
    their switches (e.g. a λ_LAP sweep) get `` (λ_LAP = x)`` appended, and the variant name if that
    is still ambiguous. Rows are ordered baseline, single switches, pairs, all three, then by
    λ_LAP. Works for the full 2³ factorial and for the default pair ``base``/``lap``.

    The paper's Table 3 (CDS ablation, BSDS500 test) is placed beside a row whose switches match
    a paper configuration: ``use_lap`` and ``use_msd`` must agree, and ``use_wr`` too where the
    paper's row states it (its "LAP only" row does not, ``docs/method.md`` §7, so it matches both
    "LAP only" and "LAP+WR"). Paper numbers are given only for ``cds`` on BSDS500 test.

    Parameters
    ----------
    summary
        Output of :func:`spbench.report.aggregate.summarise_seeds`.
    method
        The ablated method (``config.ablation.method``), named by the caller: the table never
        guesses it from the scores.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, variant) of the method without EC: ``configuration``,
        ``model``, ``method``, ``variant``, ``dataset``, ``split``, ``use_lap``, ``use_msd``,
        ``use_wr``, ``lambda_lap``, ``n_seeds``, ``seeds``, per metric of
        :data:`TABLE3_METRICS` ``<m>``, ``<m>_std``, ``<m>_extrapolated``; per metric of
        :data:`TABLE3_PAPER_COLUMNS` ``<m>_paper`` and ``<m>_delta`` (ours − paper, NaN without
        a paper row); ``paper_configuration`` (the matched paper row's label or ""),
        ``auc_low``, ``auc_high``, ``auc_extrapolated``; untrained reference methods (SLIC)
        follow as rows configured "reference (no training)". Empty (with these columns) if the
        method has no run without EC.
    """
    cols = [
        "configuration", "model", "method", "variant", "dataset", "split",
        "use_lap", "use_msd", "use_wr", "lambda_lap", "n_seeds", "seeds",
    ]  # fmt: skip
    extra = [f"{m}{s}" for m in TABLE3_METRICS for s in ("", "_std", "_extrapolated")]
    extra += [f"{m}{s}" for m in TABLE3_PAPER_COLUMNS for s in ("_paper", "_delta")]
    tail = ["paper_configuration", "auc_low", "auc_high", "auc_extrapolated", *_SCORED_ON]
    empty = pd.DataFrame(columns=[*cols, *extra, *tail])
    if summary.empty:
        return empty
    noec = summary[~summary["ec"].astype(bool)]
    sel = [r for r in noec[noec["method"] == method].to_dict("records") if _has_bool_switches(r)]
    if not sel:
        return empty
    _name_configurations(sel)
    sel.sort(
        key=lambda r: (
            str(r["dataset"]), str(r["split"]), _COMBO_ORDER.index(r["_combo"]), r["_lambda"],
            _VARIANT_ORDER.get(r["variant"], 2), r["variant"],
        )
    )  # fmt: skip
    rows = [_table3_row(rec, cols, _paper_table3_row(rec, method)) for rec in sel]
    # Untrained reference methods (SLIC, the grid) close the table, as in every table.
    refs = noec[(noec["method"] != method) & (noec.get("train_steps", 1) == 0)]
    for rec in refs.to_dict("records"):
        row = _table3_row(rec, cols, None)
        row["configuration"] = "reference (no training)"
        row["model"] = model_label(rec["method"], rec["variant"])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*cols, *extra, *tail])


def _name_configurations(records: list[dict]) -> None:
    """Set each record's ``configuration`` (and ``_combo``, ``_lambda``), unique per dataset/split.

    Runs that share their switches get `` (λ_LAP = x)`` appended, and `` [variant]`` if that is
    still ambiguous (or LAP is off, where λ says nothing).
    """
    for rec in records:
        rec["_combo"] = tuple(bool(rec[c]) for c, _ in _SWITCHES)
        lam = rec["lambda_lap"]
        rec["_lambda"] = float(lam) if rec["use_lap"] and _is_number(lam) else 0.0
        rec["configuration"] = switch_configuration(*rec["_combo"])
    by_name: dict[tuple, list[dict]] = {}
    for rec in records:
        by_name.setdefault((rec["dataset"], rec["split"], rec["configuration"]), []).append(rec)
    for group in by_name.values():
        if len(group) < 2:
            continue
        lambdas = [r["_lambda"] for r in group]
        for rec in group:
            if rec["use_lap"] and len(set(lambdas)) > 1:
                rec["configuration"] += f" (λ_LAP = {rec['_lambda']:g})"
            if lambdas.count(rec["_lambda"]) > 1 or not rec["use_lap"]:
                rec["configuration"] += f" [{rec['variant']}]"


def _paper_table3_row(rec: dict, method: str) -> Table3Row | None:
    """Return the paper's Table 3 row with ``rec``'s switches, or None (not CDS on BSDS500 test).

    ``use_lap`` and ``use_msd`` must agree, and ``use_wr`` where the paper's row states it.
    """
    if not (method == "cds" and scored_as_paper(rec)):
        return None
    lap, msd, wr = rec["_combo"]
    for candidate in TABLE3:
        if (lap, msd) == (candidate.use_lap, candidate.use_msd) and candidate.use_wr in (None, wr):
            return candidate
    return None


def _table3_row(rec: dict, cols: list[str], paper: Table3Row | None) -> dict:
    """Return one Table 3 row: ``rec``'s identity and metrics, the paper's beside them."""
    row = {c: rec.get(c) for c in cols}
    row["lambda_lap"] = effective_lambda_lap(rec)
    for name in TABLE3_METRICS:
        for suffix in ("", "_std", "_extrapolated"):
            row[f"{name}{suffix}"] = rec[f"{name}{suffix}"]
    for name in TABLE3_PAPER_COLUMNS:
        value = getattr(paper, name) if paper is not None else np.nan
        row[f"{name}_paper"] = value
        row[f"{name}_delta"] = rec[name] - value
    row["paper_configuration"] = paper.configuration if paper is not None else ""
    for col in ("auc_low", "auc_high", "auc_extrapolated", *_SCORED_ON):
        row[col] = rec[col]
    return row


def effective_lambda_lap(rec: dict) -> object:
    """Return the λ_LAP a run trained with: its ``lambda_lap``, NaN where LAP was off (the
    score rows carry the configured λ whatever the switch); as given where seeds disagree."""
    use_lap = rec.get("use_lap")
    if isinstance(use_lap, (bool, np.bool_)) and not use_lap:
        return math.nan
    return rec.get("lambda_lap")


#: What a row was scored on (:func:`data_description`), carried into Table 3's CSV.
_SCORED_ON = ("n_images", "n_pairs", "gt_cap50", "max_annotations")


def _is_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _table3_rows(table: pd.DataFrame, *, pm: str, mark: str) -> tuple[list[str], list[list[str]]]:
    multi = table[["dataset", "split"]].drop_duplicates().shape[0] > 1
    header = ["Configuration", "Model", "LAP/MSD/WR", "λ_LAP", "seeds"]
    if multi:
        header.insert(0, "Data")
    for fact in map(metric, TABLE3_METRICS):
        header.append(fact.header)
        if fact.name in TABLE3_PAPER_COLUMNS:
            header += [f"{fact.label} (paper)", f"Δ{fact.label}"]
    header.append("paper row")
    body = []
    for _, row in table.iterrows():
        switches = "/".join(_onoff(row[c]) for c, _ in _SWITCHES)
        lam = (
            f"{float(row['lambda_lap']):g}"
            if row["use_lap"] and _is_number(row["lambda_lap"])
            else "—"
        )
        cells = [
            str(row["configuration"]),
            str(row["model"]),
            switches,
            lam,
            str(int(row["n_seeds"])),
        ]
        if multi:
            cells.insert(0, f"{row['dataset']}/{row['split']}")
        for fact in map(metric, TABLE3_METRICS):
            cells.append(format_cell(row, fact.name, fact.decimals, pm=pm, mark=mark))
            if fact.name in TABLE3_PAPER_COLUMNS:
                paper_decimals = min(fact.decimals, 3)  # the paper's Table 3 prints 3 decimals
                cells += [
                    format_number(row[f"{fact.name}_paper"], paper_decimals),
                    format_number(row[f"{fact.name}_delta"], fact.decimals, sign=True),
                ]
        cells.append(row["paper_configuration"] or "—")
        body.append(cells)
    return header, body


def format_table3_markdown(table: pd.DataFrame, *, title: str = "Table 3") -> str:
    """Render :func:`table3_frame` as Markdown (ours ± sd over seeds, paper, Δ).

    Returns
    -------
    str
        The Markdown document, ending with a newline.
    """
    lines = [f"# {title}", ""]
    if table.empty:
        lines.append("The ablated method has no run without EC: no ablation to tabulate.")
        return "\n".join(lines) + "\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    method = str(table["method"].iloc[0])
    lines += [
        f"- Loss-switch ablation of **{model_label_for(method)}** without EC: every run of the "
        "method is a row, named by its switches (baseline = LAP, MSD and WR off).",
        f"- Numbers: normalised AUC over K̄ ∈ [{low:.0f}, {high:.0f}] as in Table 2 (mean over "
        "(image, annotation) pairs per scale, actual K̄; docs/protocol.md §6, §8); mean over seeds "
        "± sample standard deviation when there are several. BP is the paper's “B”.",
        _table3_paper_line(table, method),
        f"- Data: {data_description(table)}.",
        "",
    ]
    header, body = _table3_rows(table, pm=" ± ", mark=EXTRAPOLATED_MARK)
    lines += markdown_table(header, body)
    if table["auc_extrapolated"].any():
        lines += [
            "",
            f"{EXTRAPOLATED_MARK} AUC extrapolated at an unbracketed end of "
            f"[{low:.0f}, {high:.0f}] (docs/protocol.md §8).",
        ]
    return "\n".join(lines) + "\n"


def _table3_paper_line(table: pd.DataFrame, method: str) -> str:
    """The caption's line on the paper's Table 3: beside which rows it stands, or why none."""
    if method != "cds":
        return (
            f"- Paper: its Table 3 ablates CDS (docs/paper.md §4); this is an ablation of "
            f"{model_label_for(method)}, so no paper numbers stand beside it."
        )
    return (
        "- Paper: its Table 3 (CDS ablation, no EC; 3 decimals; from a *secondary summary* of the "
        "paper, docs/paper.md §4), shown beside the run whose switches match. Its “LAP only” row "
        "does not state WR (docs/method.md §7), so it is shown beside both “LAP only” and "
        f"“LAP+WR”. Δ = ours − paper; {_paper_note(table, TABLE3_PAPER_COLUMNS)}"
    )


def format_table3_latex(table: pd.DataFrame, *, caption: str | None = None) -> str:
    """Render :func:`table3_frame` as a LaTeX ``table`` with booktabs rules.

    Parameters
    ----------
    table
        Output of :func:`table3_frame`.
    caption
        Plain-text caption (escaped here); a default describing the numbers if ``None``.

    Returns
    -------
    str
        LaTeX source needing ``\\usepackage{booktabs}``.
    """
    if table.empty:
        return "% Table 3: no loss-switch ablation in the score rows\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    header, body = _table3_rows(table, pm=" ± ", mark=EXTRAPOLATED_MARK)
    if caption is None:
        subset = _subset_note(table, TABLE3_PAPER_COLUMNS).replace("Δ", "Delta")
        caption = (
            f"Loss-switch ablation of {model_label_for(str(table['method'].iloc[0]))} without "
            f"EC: normalised AUC over K in [{low:.0f}, {high:.0f}] against the actual mean number "
            f"of superpixels; {data_description(table)}; mean (+- sd) over seeds. Paper values "
            "(CDS, Table 3) from a secondary summary of the paper; Delta = ours - paper; --: no "
            f"paper number for that row{subset}. BP is the paper's B."
        )
        if table["auc_extrapolated"].any():
            caption += " Dagger: AUC extrapolated at an unbracketed end of the range."
    n_left = 6 if "Data" in header else 5
    spec = "l" * n_left + "r" * (len(header) - n_left - 1) + "l"
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\resizebox{\linewidth}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(_latex_cell(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex_cell(c) for c in cells) + r" \\" for cells in body]
    lines += [
        r"\bottomrule",
        r"\end{tabular}}",
        rf"\caption{{{latex_escape(caption)}}}",
        r"\label{tab:spbench-table3}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def model_label_for(method: str) -> str:
    """Display name of a method (``"cds"`` → ``"CDS"``)."""
    return model_label(method, "base")
