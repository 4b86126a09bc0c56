"""Tests of the training-step benchmark (``spbench.bench``) on the CPU, tiny sizes."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from spbench.bench import (
    FastModes,
    bench_train,
    format_table,
    record_rows,
    synthetic_batch,
    term_check,
    term_tolerance,
)
from spbench.steptimes import read_table


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return bench_train(
        ["scn"], ("base", "lap"), batch_size=2, crop=32, steps=2, warmup=1, device="cpu"
    )


def test_columns_and_times(frame: pd.DataFrame) -> None:
    expected = {
        "method",
        "variant",
        "mode",
        "device",
        "batch_size",
        "crop",
        "median_ms",
        "p10_ms",
        "p90_ms",
        "images_per_s",
        "peak_mem_mb",
        "overhead_pct",
        "reldiff_total",
        "reldiff_max",
        "error",
    }
    assert expected <= set(frame.columns)
    assert list(frame["variant"]) == ["base", "lap"]
    assert (frame["error"] == "").all(), frame["error"].tolist()
    assert (frame["median_ms"] > 0).all() and (frame["p10_ms"] <= frame["p90_ms"]).all()
    assert frame["peak_mem_mb"].isna().all()  # CPU
    assert frame["images_per_s"].iloc[0] == pytest.approx(2 / (frame["median_ms"].iloc[0] / 1e3))
    assert (frame["mode"] == "fp32").all()
    assert frame["term_ok"].all() and (frame["tolerance"] == 1e-4).all()
    assert "median_ms" in format_table(frame)


def test_record_rows_add_the_step_times_to_the_table(frame: pd.DataFrame, tmp_path) -> None:
    dated = frame.assign(date="2026-12-04T18:00:00+00:00")
    path = record_rows(dated, tmp_path / "times.csv")
    figures = {f.variant: f for f in read_table([path])}
    assert set(figures) == {"base", "lap"}
    base = figures["base"]
    assert (base.kind, base.method, base.stage, base.mode) == ("train", "scn", "main", "fp32")
    assert (base.device, base.batch_size, base.size) == ("cpu", 2, "32")
    assert base.ms == pytest.approx(frame.loc[frame["variant"] == "base", "median_ms"].iloc[0])
    # Measuring again replaces the rows of the same key.
    record_rows(dated.assign(median_ms=1.0), path)
    assert sorted(f.ms for f in read_table([path])) == [1.0, 1.0]


def test_fp32_term_check_is_exact(frame: pd.DataFrame) -> None:
    diffs = [c for c in frame.columns if c.startswith("reldiff_")]
    assert {"reldiff_recon", "reldiff_lap", "reldiff_msd"} <= set(diffs)
    assert (frame[diffs] == 0).all().all()


def test_overhead_from_the_two_rows(frame: pd.DataFrame) -> None:
    base, lap = frame["median_ms"]
    assert math.isnan(frame["overhead_pct"].iloc[0])
    assert frame["overhead_pct"].iloc[1] == pytest.approx((lap / base - 1) * 100)


def test_bad_requests() -> None:
    with pytest.raises(ValueError, match="cuda_graph needs a CUDA device"):
        bench_train(["scn"], device="cpu", modes=[FastModes(cuda_graph=True)], steps=1, crop=32)
    # A method whose step cannot be captured gets its row's error note (checked per row).
    from spbench.bench import _check_supported

    with pytest.raises(ValueError, match="ssm's training step cannot be captured"):
        _check_supported("ssm", FastModes(cuda_graph=True))
    _check_supported("scn", FastModes(cuda_graph=True))
    _check_supported("ssm", FastModes(amp="bf16"))


def test_every_finished_row_reaches_the_caller():
    """on_row sees the checked rows after each one, so a time limit loses no finished row."""
    seen = []
    frame = bench_train(
        ["scn"], ["base", "lap"], device="cpu", steps=1, warmup=0, crop=32, batch_size=2,
        on_row=lambda rows: seen.append(len(rows)),
    )  # fmt: skip
    assert seen == [1, 2] and len(frame) == 2
    with pytest.raises(ValueError, match="unknown variant"):
        bench_train(["scn"], ("nope",), device="cpu", steps=1, crop=32)
    with pytest.raises(ValueError, match="amp"):
        FastModes(amp="fp16")


def test_synthetic_batch_has_a_few_regions() -> None:
    batch = synthetic_batch(
        3, 32, n_classes=50, device="cpu", generator=torch.Generator().manual_seed(0)
    )
    assert batch.images.shape == (3, 3, 32, 32) and batch.images.dtype == torch.float32
    assert batch.labels.shape == (3, 32, 32) and batch.labels.dtype == torch.int64
    for labels in batch.labels:
        assert 2 <= labels.unique().numel() <= 8


def test_fp32_term_check_is_exact_with_drop_path() -> None:
    """SSM trains with drop-path (global RNG): both computations draw the same numbers."""
    diffs = term_check("ssm", "base", batch_size=1, crop=32, device="cpu")
    assert diffs and all(v == 0 for v in diffs.values()), diffs


def test_several_modes_in_one_call_with_a_profile() -> None:
    """Each mode is a set of rows with its own term check; profiled steps say where time goes."""
    modes = [FastModes(), FastModes(amp="bf16", channels_last=True)]
    frame = bench_train(
        ["scn"],
        ("lap",),
        modes=modes,
        batch_size=1,
        crop=32,
        steps=1,
        warmup=0,
        device="cpu",
        profile_steps=1,
    )
    assert list(frame["mode"]) == ["fp32", "bf16+channels_last"]
    assert list(frame["tolerance"]) == [1e-4, 5e-2]
    assert frame.loc[1, "reldiff_recon"] > 0 and frame.loc[0, "reldiff_max"] == 0
    assert frame["term_ok"].iloc[0]
    assert frame["gpu_busy_ms"].isna().all()  # no kernels on the CPU
    text = format_table(frame)
    assert "where the time goes, scn/lap bf16+channels_last" in text
    assert "aten::convolution" in text or "aten::conv2d" in text


@pytest.mark.parametrize("label", ["fp32", "tf32", "bf16+channels_last", "tf32+bf16+cuda_graph"])
def test_mode_labels_round_trip(label: str) -> None:
    assert FastModes.from_label(label).label == label


def test_mode_tolerance_and_bad_labels() -> None:
    assert term_tolerance(FastModes(cuda_graph=True)) == 1e-4
    assert term_tolerance(FastModes(tf32=True, amp="bf16")) == 5e-2
    with pytest.raises(ValueError, match="unknown fast mode 'fp16'"):
        FastModes.from_label("fp16")
    with pytest.raises(ValueError, match="unknown fast mode"):
        FastModes.from_label("")


def test_cli_bench_train_passes_its_options_and_writes_the_csv(tmp_path, capsys) -> None:
    """``spbench bench train`` (the CLI wrapper) reaches bench_train with its options."""
    from spbench.cli import main

    out = tmp_path / "bench/train.csv"
    argv = ["bench", "train", "--methods", "scn", "--variants", "lap", "--device", "cpu"]
    argv += ["--steps", "1", "--warmup", "0", "--crop", "32", "--batch-size", "2"]
    assert main([*argv, "--modes", "bf16", "--out", str(out)]) == 0
    row = pd.read_csv(out, keep_default_na=False).iloc[0]
    assert (row["method"], row["variant"], row["mode"], row["device"]) == (
        "scn",
        "lap",
        "bf16",
        "cpu",
    )
    assert (row["batch_size"], row["crop"]) == (2, 32) and row["error"] == ""
    assert row["date"] and f"wrote {out}" in capsys.readouterr().out


def test_cli_bench_train_fails_when_no_row_ran(tmp_path, capsys) -> None:
    """Every row failing (a method whose loss cannot be called) exited 0, so scripts and CI
    could not see it; the CSV still holds the rows and their errors."""
    from spbench.cli import main
    from spbench.models import get_method, register_method, registry

    scn = get_method("scn")

    def broken_loss(model, batch, config):  # no generator/stage keywords: cannot be called
        raise AssertionError("not reached")

    register_method("broken_loss", recipe=scn.recipe, loss=broken_loss)(scn.build)
    try:
        out = tmp_path / "rows.csv"
        argv = ["bench", "train", "--methods", "broken_loss", "--variants", "base"]
        argv += ["--device", "cpu", "--steps", "1", "--warmup", "0", "--crop", "32"]
        assert main([*argv, "--out", str(out)]) == 2
        assert "no row ran" in capsys.readouterr().err
        assert "unexpected keyword argument" in pd.read_csv(out)["error"].iloc[0]
    finally:
        registry.unregister_method("broken_loss")


def test_a_stage_without_variants_is_timed_once() -> None:
    """AINet's stage 1 trains the same for every variant: one base row, not a lap row with a
    meaningless overhead against it."""
    frame = bench_train(
        ["ainet"], ["base", "lap"], stage="stage1", steps=1, warmup=0, crop=32, batch_size=1
    )
    assert list(frame["variant"]) == ["base"] and list(frame["stage"]) == ["stage1"]
