"""Real BSDS500, trivial method: the plain 16-px grid through train, predict, score and report.

The grid needs no training and its cells are rectangles, so several numbers are known exactly:
its no-EC labels are connected (XC = Stray = 0) and it has exactly the nominal number of
superpixels, ``int(600·s²)`` (docs/protocol.md §2), at every scale.
"""

import numpy as np
import pandas as pd
import pytest

from spbench.config import validate_config
from spbench.data.prepared import load_split
from spbench.jobs import train_settings
from spbench.predict import predict
from spbench.report import build_table2
from spbench.score import score_predictions
from spbench.train import train

SCALES = (0.6, 1.0)


@pytest.mark.slow
def test_grid_method_on_real_test_images(prepared_bsds500, tmp_path):
    config = validate_config(
        {
            "run_name": "t",
            "dataset": {"name": "bsds500"},
            "methods": ["grid"],
            "train": {"steps": 1, "device": "cpu", "train_splits": ["train"]},
        }
    )
    ckpt = train(
        prepared_bsds500,
        tmp_path / "grid.pt",
        method="grid",
        variant="base",
        seed=0,
        **train_settings(config, "grid", "base"),
        progress=False,
    )
    outputs = {s: tmp_path / f"scale{s}.npz" for s in SCALES}
    predict(
        ckpt,
        prepared_bsds500,
        outputs,
        settings={"split": "test", "base_size": [320, 480], "max_images": 4, "device": "cpu"},
    )
    scores = score_predictions(
        list(outputs.values()),
        prepared_bsds500,
        tmp_path / "s.parquet",
        settings={"gt_cap50": True, "max_annotations": None},
    )

    test = load_split(prepared_bsds500, "test")
    pairs = sum(s.n_annotations for s in test.samples[:4])
    assert len(scores) == pairs * len(SCALES) * 2
    noec = scores[~scores["ec"]]
    assert set(noec.groupby("scale")["n_superpixels"].unique().map(tuple)) == {(216,), (600,)}
    assert (noec[["xc", "stray"]] == 0).all().all()
    assert (scores.loc[scores["ec"], ["xc", "stray"]] == 0).all().all()
    assert scores["asa"].between(0.7, 1.0).all()
    # A finer grid adheres better: ASA and BR rise from 216 to 600 cells on every pair.
    wide = noec.pivot_table(index=["image_id", "annotation"], columns="scale", values=["asa", "br"])
    assert (wide[("asa", 1.0)] >= wide[("asa", 0.6)]).all()
    assert (wide[("br", 1.0)] > wide[("br", 0.6)]).mean() > 0.9
    # Grid CO is the compactness of 16x16 squares (pi/4) except at the cropped image border.
    assert np.allclose(noec["co"], np.pi / 4, atol=0.06)

    paths = build_table2([tmp_path / "s.parquet"], tmp_path / "report", auc_range=(216, 600))
    table = pd.read_csv(paths["table2_csv"])
    assert set(table["model"]) == {"GRID"}
    auc = pd.read_parquet(paths["auc"])
    no_ec_asa = auc.loc[~auc["ec"], "asa"].item()
    curve = noec.groupby("scale")["asa"].mean()
    assert no_ec_asa == pytest.approx((curve[0.6] + curve[1.0]) / 2, rel=1e-9)
