"""Tests of spbench.report on hand-built score tables (see conftest for the construction)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from spbench.report import (
    MissingColumnsError,
    aggregate_curves,
    build_table2,
    compute_auc,
    load_scores,
    summarise_seeds,
)
from spbench.report.aggregate import markdown_table, model_label
from spbench.report.artefacts import artefact_paths
from spbench.report.figures import plot_metrics_vs_k, save_figure
from spbench.report.paper import SSM_PUBLISHED_AUC, TABLE2
from spbench.report.tables import (
    format_table2_latex,
    format_table2_markdown,
    format_table3_markdown,
    table2_frame,
    table3_frame,
)

from ._synth import (
    HIGH,
    IMAGES,
    K_EC,
    K_NOEC,
    LOW,
    METRIC_NAMES,
    N_ROWS,
    SCALES,
    SEED_SHIFT,
    coefficients,
    expected_auc,
    make_scores,
    ssm_published_curves,
)

RANGE = (LOW, HIGH)


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    assert mask.sum() == 1, (where, int(mask.sum()))
    return frame[mask].iloc[0]


# ---------------------------------------------------------------------------------------------
# aggregation


def test_model_label():
    assert model_label("scn", "base") == "SCN"
    assert model_label("scn", "lap") == "SCN-LAP"
    assert model_label("ainet", "lap") == "AINet-LAP"
    assert model_label("newnet", "lap_only") == "NEWNET-LAP_ONLY"


def test_markdown_table():
    rows = [["SCN", "0.95"], ["CDS-LAP", "—"]]
    assert markdown_table(["Model", "ASA"], rows) == [
        "| Model | ASA |",
        "|---|---|",
        "| SCN | 0.95 |",
        "| CDS-LAP | — |",
    ]
    assert markdown_table(("A", "B", "C"), iter([])) == ["| A | B | C |", "|---|---|---|"]


def test_per_scale_means(scores):
    curves = aggregate_curves(scores)
    # 2 methods × 2 variants × 2 EC × 5 scales, plus one extra seed of scn-base (2 EC × 5)
    assert len(curves) == 2 * 2 * 2 * 5 + 2 * 5
    for scale, k in zip(SCALES, K_NOEC, strict=True):
        row = _row(curves, method="cds", variant="lap", ec=False, seed=0, scale=scale)
        assert row["n_rows"] == N_ROWS and row["n_images"] == len(IMAGES)
        assert row["k_mean"] == pytest.approx(k)
        assert row["n_nominal"] == int(600 * scale * scale)
        for metric in METRIC_NAMES:
            a, b = coefficients("cds", "lap", False, metric)
            assert row[metric] == pytest.approx(a + b * k, abs=1e-12), metric
        # per-image mean: images weigh once; offsets +3, -1, -3 average to -1/3
        a, b = coefficients("cds", "lap", False, "xc")
        assert row["xc_per_image"] == pytest.approx(a + b * (k - 1 / 3), abs=1e-12)
        assert row["xc_per_image"] != pytest.approx(row["xc"])
    assert _row(curves, method="scn", variant="lap", ec=True, seed=0, scale=1.0)["model"] == (
        "SCN-LAP"
    )


def test_auc_per_seed_and_summary(scores):
    auc = compute_auc(aggregate_curves(scores), auc_range=RANGE)
    assert len(auc) == 2 * 2 * 2 + 2
    for metric in METRIC_NAMES:
        row = _row(auc, method="cds", variant="base", ec=True, seed=0)
        assert row[metric] == pytest.approx(expected_auc("cds", "base", True, metric), abs=1e-10)
        row = _row(auc, method="scn", variant="base", ec=False, seed=1)
        assert row[metric] == pytest.approx(
            expected_auc("scn", "base", False, metric, seed=1), abs=1e-10
        )
    bracketed = _row(auc, method="cds", variant="base", ec=False, seed=0)
    assert not bracketed["auc_extrapolated"]
    assert bracketed["k_min"] == K_NOEC[0] and bracketed["k_max"] == K_NOEC[-1]
    unbracketed = _row(auc, method="scn", variant="lap", ec=False, seed=0)
    assert unbracketed["auc_extrapolated"] and unbracketed["asa_extrapolated"]
    # linear data: extrapolation is exact too
    assert unbracketed["asa"] == pytest.approx(expected_auc("scn", "lap", False, "asa"))

    summary = summarise_seeds(auc)
    two = _row(summary, method="scn", variant="base", ec=True)
    assert two["n_seeds"] == 2 and two["seeds"] == "0,1"
    assert two["asa"] == pytest.approx(expected_auc("scn", "base", True, "asa") + SEED_SHIFT / 2)
    assert two["asa_std"] == pytest.approx(SEED_SHIFT / np.sqrt(2))
    one = _row(summary, method="cds", variant="lap", ec=True)
    assert one["n_seeds"] == 1 and np.isnan(one["asa_std"])


def test_seeds_scored_on_different_protocols_are_not_averaged(scores):
    """A seed scored without the GT cap (or on other images) was averaged into the row of one
    scored with it; the protocol says such rows are reported separately."""
    from spbench.report.aggregate import MixedProtocolError

    uncapped = scores.copy()
    seed1 = (uncapped["method"] == "scn") & (uncapped["variant"] == "base")
    seed1 &= uncapped["seed"] == 1
    uncapped.loc[seed1, "gt_cap50"] = False
    with pytest.raises(MixedProtocolError, match=r"(?s)SCN \(EC .*gt_cap50"):
        summarise_seeds(compute_auc(aggregate_curves(uncapped), auc_range=RANGE))
    fewer = scores[~(seed1 & (scores["image_id"] == IMAGES[0][0]))]
    with pytest.raises(MixedProtocolError, match="n_images, n_pairs"):
        summarise_seeds(compute_auc(aggregate_curves(fewer), auc_range=RANGE))
    # a seed without one interior scale: its AUC interpolates over the gap, another curve
    gap = scores[~(seed1 & (scores["scale"] == SCALES[2]))]
    with pytest.raises(MixedProtocolError, match=r"(?s)SCN \(EC .*n_scales"):
        summarise_seeds(compute_auc(aggregate_curves(gap), auc_range=RANGE))


def test_auc_interior_point_weight(scores):
    """Raising one row by d moves that scale's mean by d/N_ROWS and the AUC by that times the
    hat-function area of the point, (K_{j+1} - K_{j-1})/2 / (high - low)."""
    base = summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE))
    bumped = scores.copy()
    mask = (
        (bumped["method"] == "cds")
        & (bumped["variant"] == "base")
        & bumped["ec"]
        & (bumped["scale"] == SCALES[2])
        & (bumped["image_id"] == "img_b")
        & (bumped["annotation"] == 1)
    )
    assert mask.sum() == 1
    d = 0.06
    bumped.loc[mask, "asa"] += d
    new = summarise_seeds(compute_auc(aggregate_curves(bumped), auc_range=RANGE))
    weight = (K_EC[3] - K_EC[1]) / 2 / (HIGH - LOW)
    before = _row(base, method="cds", variant="base", ec=True)["asa"]
    after = _row(new, method="cds", variant="base", ec=True)["asa"]
    assert after - before == pytest.approx(d / N_ROWS * weight, abs=1e-12)
    untouched = _row(new, method="cds", variant="lap", ec=True)["asa"]
    assert untouched == _row(base, method="cds", variant="lap", ec=True)["asa"]


def test_a_metric_undefined_at_a_whole_scale_has_no_auc(scores):
    """No curve point at one interior scale: the AUC is missing ("—"), not bridged over the
    gap; one NaN pair among many still leaves that scale its mean over the others."""
    gap = scores.copy()
    at_scale = (gap["method"] == "cds") & (gap["variant"] == "base") & gap["ec"]
    gap.loc[at_scale & (gap["scale"] == SCALES[2]), "asa"] = np.nan
    with pytest.warns(RuntimeWarning, match="NaN"):
        curves = aggregate_curves(gap)
    summary = summarise_seeds(compute_auc(curves, auc_range=RANGE))
    row = _row(summary, method="cds", variant="base", ec=True)
    assert np.isnan(row["asa"]) and np.isfinite(row["co"])
    assert "| —" in format_table2_markdown(table2_frame(summary))
    one = scores.copy()
    one.loc[at_scale & (one["scale"] == SCALES[2]) & (one["image_id"] == "img_c"), "asa"] = np.nan
    with pytest.warns(RuntimeWarning, match="NaN"):
        curves = aggregate_curves(one)
    assert np.isfinite(
        _row(
            summarise_seeds(compute_auc(curves, auc_range=RANGE)),
            method="cds",
            variant="base",
            ec=True,
        )["asa"]
    )


def test_a_curve_at_one_k_has_no_auc_and_stops_nothing(scores):
    """Two scales whose K̄ coincide (SLIC's floored grid step at its top scales) give one
    point: the AUC is missing, not an error that stops the whole report."""
    two = scores[scores["scale"].isin(SCALES[-2:])].copy()
    two["n_superpixels"] = 1000
    auc = compute_auc(aggregate_curves(two), auc_range=RANGE)
    assert auc["asa"].isna().all()


def test_ssm_published_test_vector():
    """docs/protocol.md §8: the published SSM curve gives the published normalised AUCs."""
    curve = ssm_published_curves()
    auc = compute_auc(curve, auc_range=RANGE, metrics=list(SSM_PUBLISHED_AUC))
    for metric, value in SSM_PUBLISHED_AUC.items():
        # docs/protocol.md §8 names ASA, BR, BP and CO as the 4-decimal test vector; UE_np and EV
        # from the rounded per-scale means land within 1e-4 (UE_np: 0.05085 vs 0.0509).
        tol = 5e-5 if metric in ("asa", "br", "bp", "co") else 1e-4
        assert auc[metric].iloc[0] == pytest.approx(value, abs=tol), metric
    assert not auc["auc_extrapolated"].iloc[0]


# ---------------------------------------------------------------------------------------------
# input checks


def test_missing_column_names_file(tmp_path, scores):
    bad = tmp_path / "bad_scores.parquet"
    scores.drop(columns=["bp", "n_superpixels"]).to_parquet(bad, index=False)
    with pytest.raises(
        MissingColumnsError,
        match=r"bad_scores\.parquet.*n_superpixels.*bp|"
        r"bad_scores\.parquet.*bp.*n_superpixels",
    ):
        load_scores([bad])
    with pytest.raises(MissingColumnsError, match=r"bad_scores\.parquet"):
        build_table2([bad], tmp_path / "out")


def test_duplicate_file_rejected(score_file):
    with pytest.raises(ValueError, match="passed twice"):
        load_scores([score_file, score_file])


def test_inconsistent_run_attributes_rejected(scores):
    scores.loc[scores.index[0], "train_steps"] = 5
    with pytest.raises(ValueError, match="train_steps"):
        aggregate_curves(scores)


def test_empty_file_rejected(tmp_path, scores):
    path = tmp_path / "empty.parquet"
    scores.iloc[:0].to_parquet(path, index=False)
    with pytest.raises(ValueError, match=r"no rows.*empty\.parquet"):
        load_scores([path])


def test_seeds_differing_in_attributes_still_write(tmp_path, scores):
    seed1 = scores["seed"] == 1
    scores.loc[seed1, "train_steps"] = 2000
    scores.loc[seed1, "use_wr"] = True
    summary = summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE))
    row = _row(summary, method="scn", variant="base", ec=True)
    assert row["train_steps"] == "1000; 2000" and row["use_wr"] == "False; True"
    summary.to_parquet(tmp_path / "s.parquet")  # mixed types would make pyarrow fail


def test_files_are_concatenated(tmp_path, scores):
    parts = []
    for i, (_, part) in enumerate(scores.groupby(["method", "variant"])):
        path = tmp_path / f"part{i}.parquet"
        part.to_parquet(path, index=False)
        parts.append(path)
    loaded = load_scores(parts)
    assert len(loaded) == len(scores)
    assert set(loaded["source_file"]) == {str(p) for p in parts}


# ---------------------------------------------------------------------------------------------
# tables


def test_table2_rows_order_and_paper_columns(scores):
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE)))
    assert list(zip(table["model"], table["ec"], strict=True)) == [
        ("CDS", True),
        ("CDS-LAP", True),
        ("CDS", False),
        ("CDS-LAP", False),
        ("SCN", True),
        ("SCN-LAP", True),
        ("SCN", False),
        ("SCN-LAP", False),
    ]
    paper = {(r.method, r.variant, r.ec): r for r in TABLE2}
    for _, row in table[table["method"] == "cds"].iterrows():
        ref = paper[("cds", row["variant"], row["ec"])]
        for metric in ("asa", "co", "bp", "xc", "stray"):
            assert row[f"{metric}_paper"] == getattr(ref, metric)
            assert row[f"{metric}_delta"] == pytest.approx(row[metric] - getattr(ref, metric))
    assert table.loc[table["method"] == "scn", "asa_paper"].isna().all()
    # UE column is ue_np
    cds = _row(table, method="cds", variant="base", ec=True)
    assert cds["ue_np"] == pytest.approx(expected_auc("cds", "base", True, "ue_np"))


def test_paper_columns_only_for_bsds_test(scores):
    scores = scores.assign(dataset="synthetic")
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE)))
    assert table["asa_paper"].isna().all()


@pytest.mark.parametrize(
    "change", [{"gt_cap50": False}, {"max_annotations": 5}], ids=["raw_gt", "five_annotations"]
)
def test_paper_columns_only_for_the_papers_scoring(scores, change):
    """Rows scored against the raw GT or fewer annotations get no paper number (nor Δ)."""
    table = table2_frame(
        summarise_seeds(compute_auc(aggregate_curves(scores.assign(**change)), auc_range=RANGE))
    )
    assert table["asa_paper"].isna().all() and table["asa_delta"].isna().all()
    md = format_table2_markdown(table, title="T")
    assert "not scored as the paper was" in md
    assert ("GT capped: False" in md) == ("gt_cap50" in change)
    assert ("at most 5 annotations" in md) == ("max_annotations" in change)


def test_published_weights_meet_the_papers_row(scores):
    """Run cds/pub_lap (released checkpoints) is compared with the paper's CDS-LAP row."""
    published = scores[scores["method"] == "cds"].replace({"variant": {"lap": "pub_lap"}})
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(published), auc_range=RANGE)))
    paper = {(r.method, r.variant, r.ec): r for r in TABLE2}
    row = _row(table, method="cds", variant="pub_lap", ec=True)
    assert row["asa_paper"] == paper[("cds", "lap", True)].asa


def test_published_weights_are_paired_with_the_published_base(tmp_path, scores):
    """The published experiment pairs pub_lap with pub_base (it looked for `base`: always empty)
    and labels its rows as published weights."""
    published = scores[scores["method"] == "cds"].replace(
        {"variant": {"lap": "pub_lap", "base": "pub_base"}}
    )
    path = tmp_path / "published.parquet"
    published.to_parquet(path, index=False)
    out = build_table2([path], tmp_path / "report", experiment="published", auc_range=RANGE)
    paired = pd.read_parquet(out["paired"])
    assert len(paired) and set(paired["variant"]) == {"pub_lap"}
    assert set(paired["base_model"]) == {"CDS (published)"}
    assert set(paired["model"]) == {"CDS-LAP (published)"}
    assert "paired comparison with pub_base" in out["paired_md"].read_text()
    assert "| CDS-LAP (published) | yes |" in out["table2_md"].read_text()


def test_markdown_states_images_pairs_and_a_subset(scores):
    """The Data line counts images and pairs; Δ against the paper on fewer than its 200 test
    images says that it compares a subset."""
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE)))
    md = format_table2_markdown(table, title="T")
    images = scores["image_id"].nunique()
    pairs = len(scores[["image_id", "annotation"]].drop_duplicates())
    assert f"bsds500 / test, {images} images, {pairs} (image, annotation) pairs" in md
    assert "GT capped at 50 labels, every annotation" in md
    assert f"these rows score {images} of the 200 test images" in md
    # No row with a paper number (SCN's rows only): nothing is compared, no subset note.
    scn = table2_frame(
        summarise_seeds(
            compute_auc(aggregate_curves(scores[scores["method"] == "scn"]), auc_range=RANGE)
        )
    )
    assert "test images, so Δ compares" not in format_table2_markdown(scn, title="T")


def test_markdown_and_latex_render(scores):
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE)))
    md = format_table2_markdown(table, title="T")
    assert "normalised AUC over K̄ ∈ [384, 1200]" in md
    assert "BP is the paper's “B”" in md and "secondary summary" in md
    assert "bsds500 / test" in md
    cds_no_ec = next(line for line in md.splitlines() if line.startswith("| CDS | no |"))
    cells = [c.strip() for c in cds_no_ec.strip("|").split("|")]
    asa = expected_auc("cds", "base", False, "asa")
    assert cells[2] == f"{asa:.4f}"
    assert cells[3] == "0.9741" and cells[4] == f"{asa - 0.9741:+.4f}"
    xc = expected_auc("cds", "base", False, "xc")
    assert f"{xc:.1f}" in cells and "218.7" in cells
    # extrapolated row carries the marker, and the footnote is present
    scn_lap = next(line for line in md.splitlines() if line.startswith("| SCN-LAP | no |"))
    assert "†" in scn_lap and "\n† " in md
    # two seeds: mean ± std
    scn_ec = next(line for line in md.splitlines() if line.startswith("| SCN | yes |"))
    assert " ± " in scn_ec

    tex = format_table2_latex(table)
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in tex
    assert "CDS-LAP & yes" in tex and r"$^\dagger$" in tex
    assert "±" not in tex and "—" not in tex


def test_runs_line_says_what_an_untrained_reference_is(scores):
    """A reference row (SLIC) reads as its method's description, with no "0 training steps";
    trained rows keep their step count."""
    from spbench.models import get_method

    slic_label = get_method("slic").description
    slic = scores[(scores["method"] == "cds") & (scores["variant"] == "base")].assign(
        method="slic", weights=slic_label, train_steps=0
    )
    frame = pd.concat([scores, slic], ignore_index=True)
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(frame), auc_range=RANGE)))
    runs = format_table2_markdown(table).split("Runs (weights provenance")[1].splitlines()
    reference = next(line for line in runs if line.startswith("- SLIC: "))
    assert reference.startswith(f"- SLIC: {slic_label}; LAP off")
    assert "classical method, no training" in reference and "compactness 10" in reference
    assert "training steps" not in reference and "trained here" not in reference
    assert any(
        line.startswith("- SCN: trained here, random init; 1000 training steps;") for line in runs
    )


def test_a_partial_budget_is_stated_in_the_runs_and_the_csv(scores):
    """Runs trained at train.budget 0.1 say so in Table 2's Runs line and carry it in the CSV
    rows; full-budget runs say nothing of it."""
    frame = scores.assign(budget=np.where(scores["method"] == "scn", 0.1, 1.0))
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(frame), auc_range=RANGE)))
    assert set(table.loc[table["model"].str.startswith("SCN"), "budget"]) == {0.1}
    runs = format_table2_markdown(table).split("Runs (weights provenance")[1].splitlines()
    scn = next(line for line in runs if line.startswith("- SCN: "))
    cds = next(line for line in runs if line.startswith("- CDS: "))
    assert "1000 training steps; training budget 10 %;" in scn
    assert "training budget" not in cds


def test_table3_matches_by_switches(scores):
    lap_only = scores[(scores["method"] == "cds") & (scores["variant"] == "lap")].assign(
        variant="lap_only", use_msd=False
    )
    scores = pd.concat([scores, lap_only], ignore_index=True)
    summary = summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE))
    table = table3_frame(summary, method="cds")
    assert list(table["configuration"]) == ["baseline", "LAP+WR", "LAP+MSD+WR"]
    assert list(table["paper_configuration"]) == ["Baseline", "LAP only", "LAP + MSD + WR (full)"]
    assert list(table["model"]) == ["CDS", "CDS-LAP_ONLY", "CDS-LAP"]
    row = table.iloc[1]
    assert row["xc_paper"] == 61.6
    assert row["xc_delta"] == pytest.approx(expected_auc("cds", "lap", False, "xc") - 61.6)
    md = format_table3_markdown(table)
    assert "| LAP+WR | CDS-LAP_ONLY | on/off/on | 360 | 1 |" in md


def test_latex_escapes_underscores(scores):
    scores = scores.assign(variant=scores["variant"].replace({"lap": "lap_only"}))
    table = table2_frame(summarise_seeds(compute_auc(aggregate_curves(scores), auc_range=RANGE)))
    tex = format_table2_latex(table)
    assert r"CDS-LAP\_ONLY" in tex
    assert "LAP_ONLY" not in tex.replace(r"\_", "")


# ---------------------------------------------------------------------------------------------
# build_table2 end to end


def test_build_table2_writes_exactly_its_files(tmp_path, score_file):
    out = build_table2([score_file], tmp_path / "report", auc_range=RANGE, title="synthetic")
    assert out == artefact_paths("table2", tmp_path / "report")
    for path in out.values():
        assert path.is_file() and path.stat().st_size > 0, path
    written = {p for p in (tmp_path / "report").rglob("*") if p.is_file()}
    assert written == set(out.values())  # nothing else: no Table 3, no sweep, no temp files
    assert out["metrics_vs_k_ec_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["metrics_vs_k_noec_pdf"].read_bytes()[:5] == b"%PDF-"
    assert out["table2_md"].name == "table2.md"
    assert out["asa_co_tradeoff_png"].parent.name == "figures"

    csv = pd.read_csv(out["table2_csv"])
    frame = _table2_via_file(pd.read_parquet(score_file), tmp_path / "again.parquet")
    np.testing.assert_allclose(csv["asa"], frame["asa"], rtol=0, atol=1e-12)
    assert list(csv["model"]) == list(frame["model"])
    assert {"model", "ec", "asa", "asa_paper", "asa_delta", "xc", "stray", "n_seeds"} <= set(
        csv.columns
    )
    cds = csv[(csv["model"] == "CDS") & csv["ec"]].iloc[0]
    assert cds["asa_paper"] == 0.9739 and cds["co_paper"] == 0.3670
    assert cds["asa"] == pytest.approx(expected_auc("cds", "base", True, "asa"), abs=1e-12)
    curves = pd.read_parquet(out["curves"])
    assert {"k_mean", *METRIC_NAMES, "xc_per_image", "stray_per_image"} <= set(curves.columns)
    auc = pd.read_parquet(out["auc"])
    assert len(auc) == 10 and "auc_extrapolated" in auc
    tex = out["table2_tex"].read_text()
    assert r"\toprule" in tex and "CDS" in tex


def _table2_via_file(scores: pd.DataFrame, path) -> pd.DataFrame:
    """Parquet → load → aggregate → AUC → seeds → Table 2 (what build_table2 writes as CSV)."""
    scores.to_parquet(path, index=False)
    curves = aggregate_curves(load_scores([path]))
    return table2_frame(summarise_seeds(compute_auc(curves, auc_range=RANGE)))


def test_table_cell_moves_with_one_row(tmp_path, scores):
    """Change one score row: the corresponding table cell moves by the hand-computed amount."""
    before = _table2_via_file(scores, tmp_path / "before.parquet")
    mask = (
        (scores["method"] == "scn")
        & (scores["variant"] == "lap")
        & ~scores["ec"]
        & (scores["scale"] == SCALES[1])
        & (scores["image_id"] == "img_a")
        & (scores["annotation"] == 0)
    )
    scores.loc[mask, "co"] -= 0.12
    after = _table2_via_file(scores, tmp_path / "after.parquet")
    sel = (before["model"] == "SCN-LAP") & ~before["ec"]
    # scn-lap no EC: K = 400, 600, 800, ...; low end 384 is extrapolated from (400, 600): the point
    # at 600 has weight [(800-400)/2 + (400-384)·(-(400-384)/(600-400))/2 ... ] computed directly:
    k = np.array([400.0, 600.0, 800.0, 1000.0, 1150.0])
    e = np.zeros(5)
    e[1] = 1.0
    # hat function of point 1, integrated over [384, 1200] with linear extrapolation at both ends
    v384 = e[0] + (e[1] - e[0]) * (LOW - k[0]) / (k[1] - k[0])
    v1200 = e[3] + (e[4] - e[3]) * (HIGH - k[3]) / (k[4] - k[3])
    xs = np.r_[LOW, k, HIGH]
    ys = np.r_[v384, e, v1200]
    weight = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2)) / (HIGH - LOW)
    delta = after.loc[sel, "co"].iloc[0] - before.loc[sel, "co"].iloc[0]
    assert delta == pytest.approx(-0.12 / N_ROWS * weight, abs=1e-12)
    others = ~sel
    pd.testing.assert_series_equal(after.loc[others, "co"], before.loc[others, "co"])


def test_single_ec_setting_only(tmp_path):
    """Only EC rows: the no-EC figure is still drawn (with a note) and the table has EC rows."""
    scores = make_scores(methods=("scn",), variants=("base",))
    curves = aggregate_curves(scores[scores["ec"]])
    fig = plot_metrics_vs_k(curves, ec=False, auc_range=RANGE)
    paths = save_figure(fig, tmp_path / "noec")
    assert paths["png"].stat().st_size > 0 and paths["pdf"].stat().st_size > 0
    table = table2_frame(summarise_seeds(compute_auc(curves, auc_range=RANGE)))
    assert "| SCN | yes |" in format_table2_markdown(table)
    assert len(table) == 1


def test_report_does_not_import_torch():
    code = (
        "import sys; import spbench.report, spbench.report.build, spbench.report.stats, "
        "spbench.report.sweep, spbench.report.ec_change, spbench.report.qualitative, "
        "spbench.predictions; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
