"""The training schedule: per-method step counts, the learning-rate multiplier, and the rates
training actually applies (read back from its log)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spbench.catalogue import get_stage
from spbench.config import load_config
from spbench.jobs import stage_steps, train_settings
from spbench.models import get_method
from spbench.train import lr_factor

ROOT = Path(__file__).resolve().parents[1]

# Iterations per epoch with drop_last (docs/protocol.md §1.3): 1087 train and 546 val annotations.
TRAIN, TRAIN_VAL = 1087, 1087 + 546


def test_paper_step_counts_follow_the_upstream_epochs():
    """config/config.yaml's steps are DLM's epochs × iterations per epoch (docs/baselines.md §6.1),
    or upstream's own step counts where the run follows upstream."""
    train = load_config(ROOT / "config/config.yaml")["train"]
    expected = {
        ("scn", "main"): 1500 * (TRAIN_VAL // 8),  # tv, batch 8
        ("ainet", "stage1"): 3000 * (TRAIN // 16),  # t_sep_v on train, batch 16
        ("ainet", "stage2"): 1500 * (TRAIN_VAL // 16),  # tv, batch 16
        ("cds", "main"): 150_000,  # upstream's poly length: the LR is 0 from there on
        ("ssm", "stage1"): 300_000,  # upstream SSMamba's global-encoder run
        ("ssm", "stage2"): 750 * (TRAIN_VAL // 16),  # tv, base's 750 epochs (LAP's 1125 not)
    }
    got = {(m, s): stage_steps(train, m, get_stage(m, s)) for m, s in expected}
    assert got == expected
    assert expected[("scn", "main")] == 306_000 and expected[("ainet", "stage1")] == 201_000
    # SCN's StepLR halves after 1000 of its 1500 tv epochs.
    per_method = train["per_method"]["scn"]["main"]
    assert per_method["lr_halve_at"] == 1000 * (TRAIN_VAL // 8) == 204_000


def test_lr_factor_constant_halved_and_poly():
    scn = get_method("scn").recipe
    assert [lr_factor(scn, s, 204_000) for s in (0, 203_999, 204_000, 305_999)] == [
        1.0,
        1.0,
        0.5,
        0.5,
    ]
    assert lr_factor(scn, 10**6) == 1.0  # no halving unless asked
    cds = get_method("cds").recipe
    assert (cds.schedule, cds.schedule_steps, cds.schedule_power) == ("poly", 150_000, 0.9)
    assert lr_factor(cds, 0) == 1.0
    assert lr_factor(cds, 75_000) == pytest.approx(0.5**0.9, rel=1e-15)
    assert lr_factor(cds, 149_999) == pytest.approx((1 / 150_000) ** 0.9, rel=1e-12)
    assert lr_factor(cds, 150_000) == lr_factor(cds, 306_000) == 0.0  # clamped (CDS-LAP runs on)
    assert lr_factor(cds, 75_000, 75_000) == pytest.approx(0.5 * 0.5**0.9, rel=1e-15)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from spbench.data.synthetic import generate_synthetic

    out = tmp_path_factory.mktemp("schedule") / "data"
    generate_synthetic(out, seed=0, n_train=2, n_val=1, n_test=1, height=48, width=48)
    return out


def _logged_lrs(data: Path, folder: Path, method: str, **train_overrides) -> list[float]:
    from spbench.train import train

    config = load_config(ROOT / ".test/config/config.yaml")
    config["train"].update(
        batch_size=2,
        crop=32,
        val_crop=32,
        val_every=100,
        val_batches=1,
        log_every=1,
        checkpoint_every=100,
        device="cpu",
        threads=1,
        train_splits=["train"],
        **train_overrides,
    )
    log = folder / "log.jsonl"
    train(
        data,
        folder / "ckpt.pt",
        method=method,
        variant="lap",
        seed=0,
        **train_settings(config, method, "lap"),
        log_path=log,
        progress=False,
    )
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["lr"] for r in records if r["kind"] == "train"]


def test_training_halves_the_lr_where_the_config_says(data, tmp_path):
    lrs = _logged_lrs(data, tmp_path, "scn", steps=4, lr=1e-3, lr_halve_at=2)
    assert lrs == [1e-3, 1e-3, 5e-4, 5e-4]


def test_cds_training_follows_the_poly_schedule(data, tmp_path):
    lrs = _logged_lrs(data, tmp_path, "cds", steps=3, lr=1e-3)
    # logged after step d (1-based), i.e. the rate step d − 1 ran with
    expected = [1e-3 * (1 - step / 150_000) ** 0.9 for step in range(3)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=0)
    assert lrs[1] < lrs[0]  # not constant: the schedule is applied, not only defined
