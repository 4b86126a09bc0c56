"""Tests of spbench.report.secondary: the nominal-count AUC and the average metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spbench.metrics import average_metric
from spbench.report import aggregate_curves, build_table2, compute_auc, summarise_seeds
from spbench.report.paper import SSM_PUBLISHED_AUC_NOMINAL
from spbench.report.secondary import (
    AVERAGE_METRICS,
    NOMINAL_METRICS,
    format_secondary_markdown,
    secondary_frame,
)
from spbench.report.tables import table2_frame

from ._synth import HIGH, LOW, ssm_published_curves

RANGE = (LOW, HIGH)


def test_ssm_published_nominal_test_vector():
    """docs/paper.md §5: the published SSM curve against the nominal count."""
    frame = secondary_frame(ssm_published_curves(), auc_range=RANGE)
    assert len(frame) == 1
    for name, value in SSM_PUBLISHED_AUC_NOMINAL.items():
        assert frame[f"{name}_nominal"].iloc[0] == pytest.approx(value, abs=5e-5), name


def test_ssm_published_average_metrics_follow_the_benchmark():
    """Each average metric is the benchmark's rule on the actual-K curve of its source metric."""
    curve = ssm_published_curves()
    row = secondary_frame(curve, auc_range=RANGE).iloc[0]
    k = curve["k_mean"].to_numpy()
    assert row["amr"] == pytest.approx(average_metric(k, curve["br"]), rel=1e-6)
    assert row["aue"] == pytest.approx(average_metric(k, curve["ue_np"], lower_is_better=True))
    assert row["auv"] == pytest.approx(average_metric(k, curve["ev"]), rel=1e-6)
    # The published curve reaches K = 2179 < 5200: the benchmark holds its last value, flagged.
    assert row["amr_extrapolated"] and row["aue_extrapolated"] and row["auv_extrapolated"]
    # A plausible magnitude: 100 − BR ≈ 4–10 over the upper range, the last BR is 0.9592.
    assert 4.0 < row["amr"] < 10.0


def test_constant_curves(scores):
    """A run whose metrics are constant in K: every view returns the constant."""
    curves = aggregate_curves(scores)
    for name in {*NOMINAL_METRICS, *(a.source for a in AVERAGE_METRICS)}:
        curves[name] = 0.9
    frame = secondary_frame(curves, auc_range=RANGE)
    for name in NOMINAL_METRICS:
        np.testing.assert_allclose(frame[f"{name}_nominal"], 0.9, atol=1e-12)
    np.testing.assert_allclose(frame["amr"], 10.0, rtol=1e-5)  # 100 · (1 − 0.9)
    np.testing.assert_allclose(frame["auv"], 10.0, rtol=1e-5)
    np.testing.assert_allclose(frame["aue"], 90.0, rtol=1e-5)  # 100 · UE, lower is better


def test_nominal_view_uses_the_nominal_count(scores):
    """Moving K̄ leaves the nominal view unchanged; moving the nominal count changes it."""
    curves = aggregate_curves(scores)
    base = secondary_frame(curves, auc_range=RANGE)
    moved_k = secondary_frame(curves.assign(k_mean=curves["k_mean"] * 1.3), auc_range=RANGE)
    pd.testing.assert_series_equal(base["asa_nominal"], moved_k["asa_nominal"])
    moved_nominal = curves.assign(n_nominal=curves["n_nominal"] * 1.3)
    assert not np.allclose(
        secondary_frame(moved_nominal, auc_range=RANGE)["asa_nominal"], base["asa_nominal"]
    )


def test_rows_follow_table2_and_seeds_are_summarised(scores):
    curves = aggregate_curves(scores)
    frame = secondary_frame(curves, auc_range=RANGE)
    table = table2_frame(summarise_seeds(compute_auc(curves, auc_range=RANGE)))
    keys = ["method", "variant", "ec"]
    assert frame[keys].values.tolist() == table[keys].values.tolist()
    scn = frame[(frame["model"] == "SCN") & frame["ec"]].iloc[0]
    assert scn["n_seeds"] == 2 and np.isfinite(scn["amr_std"]) and scn["amr_std"] > 0


def test_markdown_labels_the_views_and_marks_extrapolation(scores):
    frame = secondary_frame(aggregate_curves(scores), auc_range=RANGE)
    text = format_secondary_markdown(frame)
    assert "Not Table 2's numbers" in text
    assert "ASA ↑ (nominal)" in text and "AMR ↓" in text and "AUE ↓" in text
    assert "- Data: bsds500 / test, 3 images, 6 (image, annotation) pairs" in text
    assert f"The largest measured K̄ here is {curves_k_max(scores):.0f};" in text
    body = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert len(body) == len(frame)
    assert all("†" in line for line in body)  # average metrics never span [200, 5200] here


def test_average_metrics_undefined_below_the_range(scores):
    """Every K̄ below 200 (the CI profile's small images): NaN and a note, not an error."""
    curves = aggregate_curves(scores)
    frame = secondary_frame(curves.assign(k_mean=curves["k_mean"] / 10), auc_range=RANGE)
    assert frame[["amr", "aue", "auv"]].isna().all().all()
    assert not frame[["amr_extrapolated", "aue_extrapolated", "auv_extrapolated"]].any().any()
    assert frame["asa_nominal"].notna().all()  # the nominal view does not use K̄
    text = format_secondary_markdown(frame)
    assert "undefined by the benchmark's rules" in text
    assert "†" not in text  # nothing shown is extrapolated: no mark, no footnote


def curves_k_max(scores) -> float:
    return float(aggregate_curves(scores)["k_mean"].max())


def test_table2_artefact_writes_the_secondary_views(tmp_path, score_file):
    out = build_table2([score_file], tmp_path / "report", auc_range=RANGE, title="synthetic")
    assert out["secondary_md"].name == "secondary.md"
    csv = pd.read_csv(out["secondary_csv"])
    assert {"model", "ec", "asa_nominal", "amr", "aue", "auv"} <= set(csv.columns)
    assert "synthetic: Table 2: secondary views" in out["secondary_md"].read_text()
