"""Every base method, base and LAP variants, through train (all stages), predict, score, report.

Tiny crops and two steps per stage on the CPU: this checks the plumbing of each recipe (stages,
initialisation from the previous stage, augmentation, auxiliary optimiser, edge targets), not
the numbers.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from spbench.checkpoint import load_checkpoint
from spbench.config import validate_config
from spbench.data.synthetic import generate_synthetic
from spbench.jobs import train_settings
from spbench.models import get_method
from spbench.predict import predict
from spbench.report import build_table2
from spbench.score import score_predictions
from spbench.train import train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    generate_synthetic(root, seed=5, n_train=2, n_val=1, n_test=1, height=64, width=96)
    return root


def settings(method: str, variant: str, stage: str) -> dict:
    """Two CPU steps of one stage at 32² crops: ``train``'s ``job`` and ``runtime``."""
    config = validate_config(
        {
            "run_name": "t",
            "dataset": {"name": "synthetic"},
            "methods": [method],
            "train": {
                "steps": 2,
                "batch_size": 2,
                "crop": 32,
                "val_crop": 32,
                "device": "cpu",
                "threads": 1,
                "log_every": 1,
                "val_every": 2,
                "val_batches": 1,
                "checkpoint_every": 100,
            },
        }
    )
    return train_settings(config, method, variant, stage)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ainet", "cds", "ssm"])
def test_method_runs_through_every_stage(method, data, tmp_path):
    threads = torch.get_num_threads()
    stages = get_method(method).stages
    predictions = []
    try:
        for variant in ("base", "lap"):
            previous = None
            for stage in stages:
                out = tmp_path / variant / f"{stage.name}.pt"
                train(
                    data,
                    out,
                    method=method,
                    variant=variant,
                    seed=0,
                    **settings(method, variant, stage.name),
                    stage=stage.name,
                    init=previous,
                    progress=False,
                )
                ckpt = load_checkpoint(out)
                assert ckpt["stage"] == stage.name and ckpt["step"] == 2
                # Stages without the variant's losses train the base loss whatever the variant.
                assert ckpt["loss_config"]["use_lap"] == (variant == "lap" and stage.uses_variant)
                previous = out
            file = tmp_path / variant / "scale1.npz"
            predict(
                previous,
                data,
                {1.0: file},
                settings={"split": "test", "base_size": [32, 48], "device": "cpu"},
            )
            predictions.append(file)
    finally:
        torch.set_num_threads(threads)
    scores = score_predictions(
        predictions,
        data,
        tmp_path / "scores.parquet",
        settings={"gt_cap50": True, "max_annotations": None},
    )
    assert set(scores["variant"]) == {"base", "lap"}
    assert scores.loc[scores["ec"], "xc"].eq(0).all()
    paths = build_table2([tmp_path / "scores.parquet"], tmp_path / "report", auc_range=(6, 24))
    table = pd.read_csv(paths["table2_csv"])
    assert len(table) == 4  # base and LAP, with and without EC


def test_a_classical_method_predicts_the_same_on_more_threads(tmp_path):
    """SLIC segments several images at once with ``threads`` > 1: the files do not change."""
    generate_synthetic(tmp_path / "data", seed=6, n_train=1, n_val=1, n_test=5, height=64, width=96)
    checkpoint = tmp_path / "slic.pt"
    train(
        tmp_path / "data",
        checkpoint,
        method="slic",
        variant="base",
        seed=0,
        **settings("slic", "base", "main"),
        stage="main",
        progress=False,
    )
    threads = torch.get_num_threads()
    maps = {}
    try:
        for n in (1, 3):
            outputs = {scale: tmp_path / f"threads{n}_scale{scale}.npz" for scale in (1.0, 2.0)}
            predict(
                checkpoint,
                tmp_path / "data",
                outputs,
                settings={"split": "test", "base_size": [32, 48], "device": "cpu", "threads": n},
            )
            for scale, file in outputs.items():
                with np.load(file) as npz:
                    maps[n, scale] = {k: npz[k] for k in npz.files if k != "meta"}
    finally:
        torch.set_num_threads(threads)
    for scale in (1.0, 2.0):
        one, three = maps[1, scale], maps[3, scale]
        assert len(one) == 10 and one.keys() == three.keys()  # 5 images, no EC and EC
        for key in one:
            np.testing.assert_array_equal(one[key], three[key], err_msg=f"{scale} {key}")
