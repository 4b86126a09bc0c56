"""Tests of the report extensions: paired bootstrap, Table 3 ablation, λ sweep, EC change,
qualitative figure, figure styles and the builders of Table 2 and the sweep."""

from __future__ import annotations

import itertools
import json

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from spbench.errors import UserError
from spbench.metrics import enforce_connectivity, stray_pixels
from spbench.report import (
    aggregate_curves,
    build_sweep,
    build_table2,
    build_table3,
    compute_auc,
    qualitative,
    summarise_seeds,
)
from spbench.report.artefacts import artefact_paths
from spbench.report.ec_change import ec_change_frame, format_ec_change_markdown, plot_ec_change
from spbench.report.figures import (
    line_style,
    method_colours,
    plot_asa_co_tradeoff,
    plot_metrics_vs_k,
)
from spbench.report.qualitative import build_qualitative, stray_mask
from spbench.report.stats import (
    auc_weights,
    bootstrap_mean_ci,
    format_paired_markdown,
    paired_differences,
)
from spbench.report.sweep import SWEEP_METRICS, find_sweeps, format_sweep_markdown, sweep_frame
from spbench.report.tables import (
    format_table2_latex,
    format_table3_latex,
    format_table3_markdown,
    table2_frame,
    table3_frame,
)

from ._synth import HIGH, K_EC, LOW, MID, N_ROWS, SCALES, expected_auc, make_scores

RANGE = (LOW, HIGH)


def _summary(scores):
    curves = aggregate_curves(scores)
    auc = compute_auc(curves, auc_range=RANGE)
    return curves, auc, summarise_seeds(auc)


# ---------------------------------------------------------------------------------------------
# paired comparison


def _pair_scores(shift: float, n_images: int = 40, seed: int = 1) -> pd.DataFrame:
    """Two variants of one method, no EC; variant = base + shift + per-pair noise (constant
    over scales, so the per-pair AUC difference is shift + noise exactly)."""
    rng = np.random.default_rng(seed)
    template = make_scores(methods=("cds",), variants=("base",))
    template = template[~template["ec"]].iloc[:1]
    rows = []
    ks = (300.0, 500.0, 800.0, 1100.0, 1400.0)
    for i in range(n_images):
        n_ann = 1 + i % 3
        for ann in range(n_ann):
            level = rng.normal(0.9, 0.02)
            noise = rng.normal(0.0, 0.01)
            for scale, k in zip(SCALES, ks, strict=True):
                for variant, add in (("base", 0.0), ("lap", shift + noise)):
                    rows.append(
                        {
                            "variant": variant,
                            "image_id": f"im{i:03d}",
                            "annotation": ann,
                            "scale": scale,
                            "n_nominal": int(600 * scale * scale),
                            "n_superpixels": int(k),
                            "asa": level + 1e-5 * k + add,
                        }
                    )
    frame = pd.DataFrame(rows)
    for col in template.columns:
        if col not in frame:
            frame[col] = template[col].iloc[0]
    frame["use_lap"] = frame["variant"] == "lap"
    return frame


def test_paired_reports_seed_matched_deltas():
    """Two seeds per model: seed 1's variant is worse than its base, seed 0's better. The image
    bootstrap of the pooled Δ calls +0.01 significant; the seed-matched Δ (+0.03 and −0.01)
    show the seeds disagree."""
    one = _pair_scores(0.0)
    frames = []
    for seed, shift in ((0, 0.03), (1, -0.01)):
        run = one.assign(seed=seed)
        run.loc[run["variant"] == "lap", "asa"] += shift
        frames.append(run)
    row = paired_differences(pd.concat(frames), auc_range=RANGE, metrics=["asa"]).iloc[0]
    assert row["significant"] and row["mean_delta"] == pytest.approx(0.01, abs=0.004)
    assert row["n_seeds_matched"] == 2 and not row["seeds_agree"]
    assert row["seed_delta_min"] == pytest.approx(-0.01, abs=0.004)
    assert row["seed_delta_max"] == pytest.approx(0.03, abs=0.004)
    md = format_paired_markdown(
        paired_differences(pd.concat(frames), auc_range=RANGE, metrics=["asa"])
    )
    line = next(x for x in md.splitlines() if x.startswith("| CDS-LAP vs CDS"))
    low, high = f"{row['seed_delta_min']:+.4f}", f"{row['seed_delta_max']:+.4f}"
    assert line.rstrip().endswith(f"| yes | {low} … {high} | no |")


def test_paired_known_shift_and_no_shift():
    shifted = paired_differences(_pair_scores(0.02), auc_range=RANGE, metrics=["asa"], n_boot=2000)
    row = shifted.iloc[0]
    assert row["model"] == "CDS-LAP" and row["base_model"] == "CDS" and not row["ec"]
    assert row["ci_low"] < 0.02 < row["ci_high"]
    assert row["ci_low"] > 0 and row["significant"]
    assert row["n_images"] == 40 and row["n_pairs"] == sum(1 + i % 3 for i in range(40))
    assert row["mean_delta"] == pytest.approx(0.02, abs=0.005)
    null = paired_differences(_pair_scores(0.0), auc_range=RANGE, metrics=["asa"]).iloc[0]
    assert null["ci_low"] < 0 < null["ci_high"] and not null["significant"]
    # same seed → same interval; n_boot changes it
    again = paired_differences(_pair_scores(0.02), auc_range=RANGE, metrics=["asa"]).iloc[0]
    assert (again["ci_low"], again["ci_high"]) == (row["ci_low"], row["ci_high"])


def test_paired_level_sets_the_interval_and_its_label():
    """`level` reaches the bootstrap (it was ignored: every interval was 95 %) and the header."""
    wide = paired_differences(_pair_scores(0.02), auc_range=RANGE, metrics=["asa"])
    narrow = paired_differences(_pair_scores(0.02), auc_range=RANGE, metrics=["asa"], level=0.5)
    w, n = wide.iloc[0], narrow.iloc[0]
    assert w["ci_low"] < n["ci_low"] < n["ci_high"] < w["ci_high"]
    assert (w["level"], n["level"]) == (0.95, 0.5)
    assert "**50 % CI**" in format_paired_markdown(narrow)
    assert "**95 % CI**" in format_paired_markdown(wide)


def test_paired_marks_extrapolated_aucs(scores):
    """A comparison whose runs' K̄ do not bracket the range is marked † with its footnote."""
    paired = paired_differences(scores, auc_range=RANGE, n_boot=50)
    assert paired["auc_extrapolated"].any() and not paired["auc_extrapolated"].all()
    md = format_paired_markdown(paired)
    body = [line for line in md.splitlines() if line.startswith("| ") and " vs " in line]
    flagged = paired["auc_extrapolated"].to_numpy()
    assert ["†" in line for line in body] == list(flagged)
    assert "does not bracket" in md


def test_paired_mean_equals_table2_difference_and_moves_with_a_row(scores):
    _, _, summary = _summary(scores)
    paired = paired_differences(scores, auc_range=RANGE, n_boot=200)
    for method, ec in itertools.product(("cds", "scn"), (True, False)):
        row = paired[(paired["method"] == method) & (paired["ec"] == ec)]
        row = row[row["metric"] == "co"].iloc[0]
        s = summary[(summary["method"] == method) & (summary["ec"] == ec)].set_index("variant")
        # seeds pooled: the mean of per-pair AUCs averaged over seeds is the seed-mean AUC
        assert row["mean_delta"] == pytest.approx(s.loc["lap", "co"] - s.loc["base", "co"])
        assert row["base_mean"] == pytest.approx(s.loc["base", "co"])
    # raise one base row at the third scale: mean Δ drops by d·w_3/N_ROWS
    bumped = scores.copy()
    mask = (
        (bumped["method"] == "cds")
        & (bumped["variant"] == "base")
        & bumped["ec"]
        & (bumped["scale"] == SCALES[2])
        & (bumped["image_id"] == "img_b")
        & (bumped["annotation"] == 0)
    )
    bumped.loc[mask, "co"] += 0.3
    after = paired_differences(bumped, auc_range=RANGE, n_boot=200)
    pick = (paired["method"] == "cds") & paired["ec"] & (paired["metric"] == "co")
    weights, _ = auc_weights(K_EC, LOW, HIGH)
    assert weights[2] == pytest.approx((K_EC[3] - K_EC[1]) / 2 / (HIGH - LOW))
    moved = after.loc[pick, "mean_delta"].iloc[0] - paired.loc[pick, "mean_delta"].iloc[0]
    assert moved == pytest.approx(-0.3 * weights[2] / N_ROWS, abs=1e-12)
    md = format_paired_markdown(paired)
    assert "bootstrap over *images*" in md and "| CDS-LAP vs CDS | no | CO |" in md


def test_bootstrap_resamples_whole_images():
    # image 0: three pairs with Δ = 1; image 1: one pair with Δ = 0 → pair-weighted mean 0.75;
    # a resample holds each image 0, 1 or 2 times, so its mean is 0, 0.75 or 1
    sums, counts = np.array([3.0, 0.0]), np.array([3.0, 1.0])
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 2, size=(500, 2))
    low, high = bootstrap_mean_ci(sums, counts, n_boot=500, indices=indices)
    assert low == 0.0 and high == 1.0
    low, high = bootstrap_mean_ci(sums, counts, n_boot=500, indices=indices, level=0.4)
    assert low == high == 0.75


def test_paired_skips_methods_without_base(scores):
    only_lap = scores[scores["variant"] == "lap"]
    assert paired_differences(only_lap, auc_range=RANGE).empty
    assert "nothing to compare" in format_paired_markdown(paired_differences(only_lap))


# ---------------------------------------------------------------------------------------------
# Table 3


def _factorial(scores: pd.DataFrame) -> pd.DataFrame:
    base = scores[(scores["method"] == "cds") & (scores["variant"] == "base")]
    parts = []
    for i, (lap, msd, wr) in enumerate(itertools.product((False, True), repeat=3)):
        name = (
            "base"
            if not (lap or msd or wr)
            else "f" + "".join(c for c, f in zip("lmw", (lap, msd, wr), strict=True) if f)
        )
        part = base.assign(variant=name, use_lap=lap, use_msd=msd, use_wr=wr)
        part = part.assign(co=part["co"] + 0.01 * i, xc=part["xc"] + i)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_table3_full_factorial(scores):
    data = _factorial(scores)
    _, _, summary = _summary(data)
    table = table3_frame(summary, method="cds")
    assert list(table["configuration"]) == [
        "baseline", "LAP only", "MSD only", "WR only", "LAP+MSD", "LAP+WR", "MSD+WR",
        "LAP+MSD+WR",
    ]  # fmt: skip
    assert list(table["paper_configuration"]) == [
        "Baseline", "LAP only", "", "", "", "LAP only", "", "LAP + MSD + WR (full)",
    ]  # fmt: skip
    # every cell is the row's AUC: CO of combination i is base CO + 0.01·i
    base_co = expected_auc("cds", "base", False, "co")
    order = list(itertools.product((False, True), repeat=3))
    for _, row in table.iterrows():
        i = order.index((row["use_lap"], row["use_msd"], row["use_wr"]))
        assert row["co"] == pytest.approx(base_co + 0.01 * i)
        assert row["xc"] == pytest.approx(expected_auc("cds", "base", False, "xc") + i)
    full = table[table["configuration"] == "LAP+MSD+WR"].iloc[0]
    assert full["co_delta"] == pytest.approx(full["co"] - 0.434)
    assert np.isnan(table[table["configuration"] == "MSD only"]["co_paper"].iloc[0])
    # change one score row of the MSD-only run: only its CO cell moves
    mask = (data["variant"] == "fm") & ~data["ec"] & (data["scale"] == SCALES[2])
    mask &= (data["image_id"] == "img_a") & (data["annotation"] == 1)
    data.loc[mask, "co"] += 0.6
    moved = table3_frame(_summary(data)[2], method="cds")
    diff = (moved["co"] - table["co"]).to_numpy()
    assert np.count_nonzero(np.abs(diff) > 1e-12) == 1
    assert diff[2] > 0
    md = format_table3_markdown(table)
    assert "| MSD only | CDS-FM | off/on/off | — | 1 |" in md
    tex = format_table3_latex(table)
    assert r"\toprule" in tex and "CDS-FLMW" in tex and r"$\lambda_{\mathrm{LAP}}$" in tex


def test_table3_states_its_data_and_a_subset_against_the_paper(scores):
    """Paper numbers beside a 3-image run say it is a subset of the paper's 200 images, in the
    Markdown and the LaTeX caption, and the CSV carries what the rows were scored on."""
    table = table3_frame(_summary(_factorial(scores))[2], method="cds")
    # λ_LAP is the one trained with: NaN where LAP was off (score rows carry the configured λ)
    assert table["lambda_lap"].isna().tolist() == (~table["use_lap"].astype(bool)).tolist()
    assert table["co_paper"].notna().any()
    assert {"n_images", "n_pairs", "gt_cap50", "max_annotations"} <= set(table.columns)
    md = format_table3_markdown(table)
    assert "- Data: bsds500 / test, 3 images" in md
    assert "these rows score 3 of the 200 test images, so Δ compares a subset" in md
    tex = format_table3_latex(table)
    assert "these rows score 3 of the 200 test images, so Delta compares a subset" in tex
    table2 = table2_frame(_summary(scores)[2])
    assert "so Delta compares a subset" in format_table2_latex(table2)
    assert table2.loc[table2["variant"] == "base", "lambda_lap"].isna().all()


def test_table3_paired_with_the_baseline(tmp_path, scores):
    path = tmp_path / "scores.parquet"
    _factorial(scores).to_parquet(path, index=False)
    out = build_table3([path], tmp_path / "t3", method="cds", auc_range=RANGE, bootstrap=50)
    paired = pd.read_parquet(out["table3_paired"])
    # In Table 3's order; combination i has CO + 0.01·i and XC + i on every pair.
    assert list(dict.fromkeys(paired["variant"])) == ["fl", "fm", "fw", "flm", "flw", "fmw", "flmw"]
    assert set(paired["base_model"]) == {"CDS"} and not paired["ec"].any()
    # i is the (lap, msd, wr) switches read as bits: fw is 1, fm 2, fl 4 ...
    index = {v: i for i, v in enumerate(["base", "fw", "fm", "fmw", "fl", "flw", "flm", "flmw"])}
    for name, steps in (("co", 0.01), ("xc", 1.0)):
        rows = paired[paired["metric"] == name]
        expected = [steps * index[v] for v in rows["variant"]]
        assert list(rows["mean_delta"]) == pytest.approx(expected)
        assert list(rows["ci_low"]) == pytest.approx(expected)  # a constant Δ has no spread
    md = out["table3_paired_md"].read_text()
    assert "each configuration against the baseline" in md and "CDS-FLMW vs CDS" in md
    # Without an all-off run there is nothing to compare with, and the file says so.
    no_base = _factorial(scores).query("variant != 'base'")
    no_base.to_parquet(path, index=False)
    out = build_table3([path], tmp_path / "t3b", method="cds", auc_range=RANGE, bootstrap=50)
    assert pd.read_parquet(out["table3_paired"]).empty
    assert "No cds run with every loss switch off" in out["table3_paired_md"].read_text()


def test_table3_tabulates_the_named_method_only(scores):
    _, _, summary = _summary(scores)
    table = table3_frame(summary, method="cds")
    assert list(table["configuration"]) == ["baseline", "LAP+MSD+WR"]
    assert set(table["method"]) == {"cds"}
    scn = table3_frame(summary, method="scn")
    assert list(scn["model"]) == ["SCN", "SCN-LAP"] and scn["asa_paper"].isna().all()
    assert scn.iloc[0]["n_seeds"] == 2
    # named, not guessed: a method with only a baseline is still that method's table
    only_base = table3_frame(_summary(scores[scores["variant"] == "base"])[2], method="cds")
    assert list(only_base["configuration"]) == ["baseline"]
    assert "this is an ablation of SCN, so no paper numbers" in format_table3_markdown(scn)
    absent = table3_frame(summary, method="ainet")
    assert absent.empty and "no ablation" in format_table3_markdown(absent)
    assert format_table3_latex(absent).startswith("%")


# ---------------------------------------------------------------------------------------------
# λ sweep


def _sweep_scores() -> pd.DataFrame:
    """scn base/lap plus lap_l0/l90/l360/l1440 (no EC only), XC set per (image, scale)."""
    scores = make_scores(methods=("scn",))
    lap = scores[(scores["variant"] == "lap") & (scores["seed"] == 0)]
    parts = [scores]
    for lam in (0, 90, 360, 1440):
        part = lap.assign(variant=f"lap_l{lam}", lambda_lap=float(lam), use_lap=lam > 0)
        part = part.assign(asa=part["asa"] + lam * 1e-6)
        # XC = 0 on img_a at every scale for λ ≥ 90, and on img_b too at scale 1.0 for λ = 1440
        zero = part["image_id"].eq("img_a") & (lam >= 90)
        zero |= part["image_id"].eq("img_b") & part["scale"].eq(1.0) & (lam == 1440)
        part.loc[zero & ~part["ec"], "xc"] = 0.0
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_sweep_without_lambda_zero_has_nothing_to_pair(tmp_path):
    path = tmp_path / "scores.parquet"
    _sweep_scores().query("variant != 'lap_l0'").to_parquet(path, index=False)
    out = build_sweep([path], tmp_path / "sweep", method="scn", auc_range=RANGE)
    assert "| SCN-LAP_L90 | 90 |" in out["sweep_md"].read_text()  # still a sweep of 3 points
    assert pd.read_parquet(out["sweep_paired"]).empty
    assert "has no λ = 0 run" in out["sweep_paired_md"].read_text()


def test_sweep_points_and_zero_xc_fraction():
    scores = _sweep_scores()
    curves, auc, summary = _summary(scores)
    points = find_sweeps(summary)
    # "lap" (λ 360) duplicates lap_l360 and is dropped; base differs in MSD/WR and is not part
    assert list(points["variant"]) == ["lap_l0", "lap_l90", "lap_l360", "lap_l1440"]
    table = sweep_frame(scores, curves, auc, summary, auc_range=RANGE)
    assert list(table["lambda_lap"]) == [0.0, 90.0, 360.0, 1440.0]
    # chosen by nominal count (384, 600, 864, 1176, 1350), not by K̄: scn-lap's no-EC K̄
    # (400 ... 1150) is inside [384, 1200] at all five scales, base's (290 ... 1300) at three
    assert set(table["n_scales_in_range"]) == {4}
    by_lam = table.set_index("lambda_lap")
    assert by_lam.loc[0.0, "zero_xc_fraction"] == 0.0
    assert by_lam.loc[90.0, "zero_xc_fraction"] == pytest.approx(1 / 3)  # img_a of 3 images
    assert by_lam.loc[1440.0, "zero_xc_fraction"] == pytest.approx((3 * 1 / 3 + 2 / 3) / 4)
    assert by_lam.loc[360.0, "asa"] == pytest.approx(
        expected_auc("scn", "lap", False, "asa") + 360e-6
    )
    # a narrower range keeps only the scales with nominal count in [550, 900]: 1.0 and 1.2
    narrow = sweep_frame(scores, curves, auc, summary, auc_range=(550.0, 900.0))
    row = narrow.set_index("lambda_lap").loc[1440.0]
    assert row["n_scales_in_range"] == 2
    assert row["zero_xc_fraction"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    md = format_sweep_markdown(table)
    assert "images with XC = 0" in md and "| SCN-LAP_L90 | 90 | 1 |" in md
    # both ends of these no-EC curves are extrapolated: each AUC cell is marked, the fraction not
    assert table["asa_extrapolated"].all() and not table["zero_xc_fraction_extrapolated"].any()
    line = next(x for x in md.splitlines() if x.startswith("| SCN-LAP_L90 |"))
    assert line.count("†") == sum(m.name != "zero_xc_fraction" for m in SWEEP_METRICS)
    assert "does not bracket [384, 1200]" in md


def test_no_sweep_in_default_runs(scores):
    curves, auc, summary = _summary(scores)
    assert sweep_frame(scores, curves, auc, summary).empty


# ---------------------------------------------------------------------------------------------
# EC change


def _with_ec_change(scores: pd.DataFrame) -> pd.DataFrame:
    # relabelled fraction = 0.1 + 1e-4·K for base, a tenth of it for lap (per prediction)
    factor = np.where(scores["variant"] == "lap", 0.1, 1.0)
    return scores.assign(ec_relabelled=factor * (0.1 + 1e-4 * scores["n_superpixels"]))


def test_ec_change_table(scores):
    data = _with_ec_change(scores)
    table = ec_change_frame(data, auc_range=RANGE)
    row = table[table["model"] == "CDS"].iloc[0]
    # mean over rows of 0.1 + 1e-4·(K + dk) = 0.1 + 1e-4·K̄ (EC K̄), linear → AUC at the mid
    assert row["ec_relabelled"] == pytest.approx(0.1 + 1e-4 * MID)
    assert row["at_k_k"] == 500.0 and row["at_k"] == pytest.approx(0.1 + 1e-4 * 500)
    lap = table[table["model"] == "CDS-LAP"].iloc[0]
    assert lap["ec_relabelled"] == pytest.approx(0.1 * (0.1 + 1e-4 * MID))
    # one row changed at the scale nearest 600: the value there moves by d/N_ROWS
    mask = (data["method"] == "cds") & (data["variant"] == "base") & (data["scale"] == 1.0)
    mask &= (data["image_id"] == "img_c") & data["ec"]
    data.loc[mask, "ec_relabelled"] += 0.06
    moved = ec_change_frame(data, auc_range=RANGE)
    assert moved[moved["model"] == "CDS"]["at_k"].iloc[0] - row["at_k"] == pytest.approx(
        0.06 / N_ROWS
    )
    assert "percent of pixels" in format_ec_change_markdown(table)
    assert ec_change_frame(scores).empty
    # one colour per method: base and LAP differ in marker too, not only in a dash the small
    # legend drew as a solid line
    fig = plot_ec_change(data, table, auc_range=RANGE)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert (lines["CDS"].get_marker(), lines["CDS-LAP"].get_marker()) == ("o", "^")


# ---------------------------------------------------------------------------------------------
# figures


def test_line_styles_and_slic_grey(scores):
    others: list[str] = []
    assert line_style("scn", "base", others) == "-"
    assert line_style("scn", "lap", others) == "--"
    assert line_style("slic", "base", others) == ":"
    assert line_style("grid", "base", others) == ":"  # the plain grid is a reference too
    greys = method_colours(["scn", "slic", "grid"])
    assert greys["slic"] != greys["grid"] and {greys["slic"], greys["grid"]} == {"0.45", "0.7"}
    a, b = line_style("cds", "f1", others), line_style("cds", "f2", others)
    assert a != b and a not in ("-", "--", ":") and b not in ("-", "--", ":")
    slic = scores[(scores["method"] == "cds") & (scores["variant"] == "base")].assign(
        method="slic", use_lap=False
    )
    ablation = scores[(scores["method"] == "cds") & (scores["variant"] == "lap")].assign(
        variant="lap_only", use_msd=False
    )
    curves = aggregate_curves(pd.concat([scores, slic, ablation], ignore_index=True))
    fig = plot_metrics_vs_k(curves, ec=True, auc_range=RANGE)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert mcolors.to_hex(lines["SLIC"].get_color()) == mcolors.to_hex("0.45")
    assert lines["SLIC"].get_linestyle() == ":"
    assert lines["SCN"].get_linestyle() == "-" and lines["SCN-LAP"].get_linestyle() == "--"
    assert (lines["SCN"].get_marker(), lines["SCN-LAP"].get_marker()) == ("o", "^")
    assert lines["CDS-LAP_ONLY"].get_linestyle() not in ("-", "--", ":")
    # SCN base has two seeds: a ± 1 sd band is drawn, and the legend's patch for it takes a
    # method's colour, not the AUC range's grey
    assert len(fig.axes[0].collections) >= 1
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    patches = dict(zip(texts, legend.legend_handles, strict=True))
    band = next(p for label, p in patches.items() if label.startswith("± 1 s.d."))
    shade = next(p for label, p in patches.items() if label.startswith("AUC range"))
    assert mcolors.to_hex(band.get_facecolor()) in {mcolors.to_hex(c) for c in greys.values()} | {
        mcolors.to_hex(c) for c in method_colours(["cds", "scn", "slic"]).values()
    }
    assert mcolors.to_hex(band.get_facecolor()) != mcolors.to_hex(shade.get_facecolor())


def test_tradeoff_labels_skip_a_point_on_top_of_the_last():
    """SLIC's last scales land on one spot: one K̄ label there, not two printed over each other."""
    scores = make_scores(methods=("scn",), variants=("base",))
    curves = aggregate_curves(scores)
    top = curves.groupby(["ec", "seed"])["k_mean"].transform("max")
    twin = curves[curves["k_mean"] == top].assign(scale=99.0)
    twin["k_mean"] += 10
    fig = plot_asa_co_tradeoff(pd.concat([curves, twin], ignore_index=True))
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.texts]
        n_points = len(ax.get_lines()[0].get_xdata())
        assert len(labels) == n_points - 1 and len(set(labels)) == len(labels)


# ---------------------------------------------------------------------------------------------
# qualitative


def _npz(path, meta, maps):
    arrays = {"meta": np.array(json.dumps(meta))}
    for image_id, labels in maps.items():
        arrays[f"noec/{image_id}"] = labels.astype(np.uint16)
        n = int(labels.max()) + 1
        arrays[f"ec/{image_id}"] = enforce_connectivity(labels.astype(np.int64), n).astype(
            np.uint16
        )
    np.savez_compressed(path, **arrays)


def test_stray_mask_matches_metric():
    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 4, size=(9, 11))
        assert stray_mask(labels).sum() == stray_pixels(labels)
    tie = np.array([[0, 1, 0]])  # two 1-pixel fragments of label 0: both stray (tie rule)
    assert stray_mask(tie).tolist() == [[True, False, True]]


def test_qualitative_figure_written(tmp_path, monkeypatch):
    from spbench.data.prepared import load_split
    from spbench.data.synthetic import generate_synthetic

    root = tmp_path / "data"
    generate_synthetic(root, n_train=1, n_val=1, n_test=2, height=32, width=48)
    split = load_split(root, "test")
    rng = np.random.default_rng(0)
    files = {}
    for name, noise in (("SCN", 0.1), ("SCN-LAP", 0.0)):
        maps = {}
        for sample in split.samples:
            h, w = sample.image.shape[:2]
            yy, xx = np.mgrid[0:h, 0:w]
            labels = (yy // 8) * 8 + xx // 8
            flip = rng.random((h, w)) < noise
            maps[sample.image_id] = np.where(flip, (labels + 1) % labels.max(), labels)
        meta = {"scale": 1.0, "n_nominal": 24, "split": "test", "dataset": "synthetic"}
        meta["image_ids"] = list(maps)
        files[name] = tmp_path / f"{name}.npz"
        _npz(files[name], meta, maps)
    out = build_qualitative(files, root, tmp_path / "fig" / "qual.s1.0.png", n_images=2)
    assert out["png"].name == "qual.s1.0.png" and out["pdf"].name == "qual.s1.0.pdf"
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["png"].stat().st_size > 1000
    assert out["pdf"].read_bytes()[:5] == b"%PDF-"
    ids = list(split.samples[i].image_id for i in range(2))
    titles = []
    plot = qualitative.plot_qualitative
    monkeypatch.setattr(
        qualitative, "plot_qualitative", lambda *a, **k: titles.append(k["title"]) or plot(*a, **k)
    )
    build_qualitative(files, root, tmp_path / "one.png", image_ids=ids[:1], title="run x")
    build_qualitative(files, root, tmp_path / "one.png", image_ids=ids[:1])
    where = "synthetic/test, scale 1 (nominal 24 superpixels)"
    assert titles == [f"run x: {where}", where]
    with pytest.raises(ValueError, match="not in every prediction file"):
        build_qualitative(files, root, tmp_path / "bad.png", image_ids=["nope"])
    other = dict(files)
    meta = {"scale": 1.2, "n_nominal": 24, "split": "test", "image_ids": ids}
    other["X"] = tmp_path / "x.npz"
    _npz(other["X"], meta, {i: np.zeros(split.samples[0].image.shape[:2], int) for i in ids})
    with pytest.raises(ValueError, match="differ in scale"):
        build_qualitative(other, root, tmp_path / "bad.png")


# ---------------------------------------------------------------------------------------------
# builders: each artefact writes exactly its own files


def _files_under(folder) -> set:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_each_builder_writes_exactly_its_files(tmp_path):
    scores = _with_ec_change(_sweep_scores())
    slic = scores[(scores["variant"] == "base") & (scores["seed"] == 0)].assign(
        method="slic", ec_relabelled=np.nan
    )
    path = tmp_path / "scores.parquet"
    pd.concat([scores, slic], ignore_index=True).to_parquet(path, index=False)
    out = build_table2([path], tmp_path / "table2", auc_range=RANGE, bootstrap=100)
    assert out == artefact_paths("table2", tmp_path / "table2")
    assert _files_under(tmp_path / "table2") == set(out.values())
    paired = pd.read_parquet(out["paired"])
    assert {"SCN-LAP", "SCN-LAP_L90"} <= set(paired["model"]) and "SLIC" not in set(paired["model"])
    # XC and Stray are 0 with EC by construction: compared without EC only
    assert set(paired.loc[paired["ec"], "metric"]) == {"asa", "co", "bp", "br", "ue_np"}
    assert {"xc", "stray"} <= set(paired.loc[~paired["ec"], "metric"])
    change = pd.read_csv(out["ec_change_csv"])
    assert "SLIC" not in set(change["model"])  # no ec_relabelled values for slic

    sweep = build_sweep([path], tmp_path / "sweep", method="scn", auc_range=RANGE)
    assert _files_under(tmp_path / "sweep") == set(sweep.values())
    assert sweep["lambda_sweep_png"].parent.name == "figures"
    assert "| SCN-LAP_L90 | 90 |" in sweep["sweep_md"].read_text()
    # Each λ against λ = 0 (its ASA is λ·1e-6 higher on every pair), without EC, in λ order.
    paired = pd.read_parquet(sweep["sweep_paired"])
    assert list(dict.fromkeys(paired["variant"])) == ["lap_l90", "lap_l360", "lap_l1440"]
    assert set(paired["base_model"]) == {"SCN-LAP_L0"} and not paired["ec"].any()
    asa = paired[paired["metric"] == "asa"].set_index("variant")
    assert asa["mean_delta"].to_dict() == pytest.approx(
        {"lap_l90": 90e-6, "lap_l360": 360e-6, "lap_l1440": 1440e-6}
    )
    assert (asa["ci_low"] > 0).all() and asa["significant"].all()
    assert "SCN-LAP_L1440 vs SCN-LAP_L0" in sweep["sweep_paired_md"].read_text()
    table3 = build_table3([path], tmp_path / "table3", method="scn", auc_range=RANGE)
    assert _files_under(tmp_path / "table3") == set(table3.values())
    assert "Loss-switch ablation of **SCN**" in table3["table3_md"].read_text()


def test_table2_builder_is_told_its_experiment(tmp_path, score_file):
    out = build_table2([score_file], tmp_path / "pub", experiment="published", title="t")
    assert out["table2_md"].read_text().startswith("# t: Table 2, published weights\n")
    with pytest.raises(UserError, match="sweep"):
        build_table2([score_file], tmp_path / "x", experiment="sweep")
    assert not (tmp_path / "x").exists()
    data = pd.read_parquet(score_file)
    curves, auc, summary = _summary(data)
    assert sweep_frame(data, curves, auc, summary, method="nothing").empty
