"""Every metric against the reference tools' own outputs (``tests/fixtures/reference_vectors``).

The expected numbers come from davidstutz/superpixel-benchmark's ``eval_summary_cli`` (ASA, the
UE variants, OE, BR, BP, CO, EV, superpixel count), DLM's ``infer_newmetrics.py`` definitions (XC,
Stray) and scikit-image's connectivity step (EC), run on 6 BSDS500 test images × 4 label maps;
the fixture README says how they were made. Nothing here comes from code of this project.

Tolerances reflect how the tool computes, nothing looser. It prints 9 significant digits and
forms the ratios of integer counts in float32 (relative error ≤ 6e-8, so rel 1e-7 for ASA, UE,
UE_NP, OE, BR, BP); it sums the per-segment terms of UE_Levin (≈ 50 terms) and CO (≈ 1000 terms)
in float32 (observed relative differences 2e-7 and 2.6e-6), and EV's per-pixel sums of squares
over 154,401 pixels in float32 (observed absolute difference 8.7e-4, against EV ≈ 0.6–1).
Counts (superpixels, XC, Stray, EC sizes and labels, the EC maps) must match exactly.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from spbench.data.prepared import decode_image
from spbench.metrics import (
    LabelMapStats,
    PredictionScorer,
    ec_sizes,
    enforce_connectivity,
    fragmentation,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference_vectors"

# spbench key -> (reference column, relative tolerance, absolute tolerance)
TOLERANCES = {
    "asa": ("asa", 1e-7, 0.0),
    "ue": ("ue", 1e-7, 0.0),
    "ue_np": ("ue_np", 1e-7, 0.0),
    "oe": ("oe", 1e-7, 0.0),
    "br": ("rec", 1e-7, 0.0),
    "bp": ("pre", 1e-7, 0.0),
    "ue_levin": ("ue_levin", 1e-6, 0.0),
    "co": ("co", 5e-6, 0.0),
    "ev": ("ev", 0.0, 1e-3),
}


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(FIXTURES / name, newline="") as fh:
        return list(csv.DictReader(fh))


@cache
def _predictions() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "predictions.npz") as npz:
        return {key: npz[key] for key in npz.files}


@cache
def _images() -> dict[str, tuple[np.ndarray, list[LabelMapStats]]]:
    """Per image: the decoded RGB image and the annotations as the tool read them."""
    out = {}
    with np.load(FIXTURES / "bsds500_subset.npz") as npz:
        ids = {key.split("/")[0] for key in npz.files}
        for image_id in ids:
            gts = npz[f"{image_id}/gt"].astype(np.int64)
            # the tool's wrapper renumbered every map to 0..K-1 (only ue_levin's |G| notices)
            gts = [np.unique(g, return_inverse=True)[1].reshape(g.shape) for g in gts]
            out[image_id] = (
                decode_image(npz[f"{image_id}/jpeg"]),
                [LabelMapStats(g) for g in gts],
            )
    return out


BENCHMARK_ROWS = _read_csv("reference_benchmark.csv")
FRAGMENTATION_ROWS = _read_csv("fragmentation_ec.csv")
PREDICTION_NAMES = sorted({row["prediction"] for row in BENCHMARK_ROWS})


def test_fixture_covers_six_images_four_maps_five_annotations():
    assert len(PREDICTION_NAMES) == 24
    assert len(BENCHMARK_ROWS) == 24 * 5
    assert len(FRAGMENTATION_ROWS) == 24 * 3
    assert sorted(_images()) == sorted({name.split("_")[0] for name in PREDICTION_NAMES})


@pytest.mark.parametrize("name", PREDICTION_NAMES)
def test_benchmark_metrics_match_reference_tool(name):
    image, gts = _images()[name.split("_")[0]]
    scorer = PredictionScorer(_predictions()[name], image=image)
    rows = [row for row in BENCHMARK_ROWS if row["prediction"] == name]
    assert [int(row["annotation"]) for row in rows] == list(range(5))
    for row in rows:
        got = scorer.score(gts[int(row["annotation"])])
        assert got["n_superpixels"] == int(row["sp"])
        for key, (column, rel, abs_) in TOLERANCES.items():
            expected = float(row[column])
            assert got[key] == pytest.approx(expected, rel=rel, abs=abs_), (
                f"{name} annotation {row['annotation']}: {key}"
            )


@pytest.mark.parametrize("name", PREDICTION_NAMES)
def test_xc_stray_and_ec_match_reference_tools(name):
    labels = _predictions()[name]
    rows = [row for row in FRAGMENTATION_ROWS if row["prediction"] == name]
    assert fragmentation(labels) == (int(rows[0]["xc"]), int(rows[0]["stray"]))
    for row in rows:
        n_nominal = int(row["n_nominal"])
        sizes = ec_sizes(labels.shape, n_nominal)
        assert (sizes.min_size, sizes.max_size) == (
            int(row["ec_min_size"]),
            int(row["ec_max_size"]),
        )
        ec = enforce_connectivity(labels, n_nominal)
        assert np.unique(ec).size == int(row["ec_n_labels"]), f"n_nominal {n_nominal}"
        if n_nominal == 600:
            np.testing.assert_array_equal(ec, _predictions()[f"{name}_ec600"])
        # EC output labels are 4-connected, so 8-connected: no fragment, no stray pixel
        assert fragmentation(ec) == (0, 0)


@pytest.mark.parametrize("image_id", sorted({name.split("_")[0] for name in PREDICTION_NAMES}))
def test_slic_reference_method_gives_the_reference_slic_maps(image_id):
    """spbench's SLIC row (scikit-image SLIC, compactness 10, with its connectivity step) asked
    for 1200 segments reproduces the fixture's ``slic1200`` maps, made outside spbench: same
    labels, a segment count near the request, every label 4-connected and numbered 0..K−1."""
    from skimage.measure import label

    from spbench.models.slic import slic_segment

    image, _ = _images()[image_id]
    labels = slic_segment(image, 1200)
    np.testing.assert_array_equal(labels, _predictions()[f"{image_id}_slic1200"])
    k = np.unique(labels).size
    np.testing.assert_array_equal(np.unique(labels), np.arange(k))
    assert 0.8 * 1200 < k <= 1200
    assert label(labels + 1, connectivity=1, background=0).max() == k  # one 4-component each
