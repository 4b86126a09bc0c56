"""Prediction geometry (``docs/protocol.md`` §2): network input sizes, portrait images, bad
scales and the nearest upsampling back to the original size, against values derived here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spbench.constants import CELL_SIZE
from spbench.errors import UserError
from spbench.metrics import enforce_connectivity
from spbench.models import SuperpixelOutput
from spbench.predict import label_maps, network_size, predict_image, upsample_labels

SCALES = [round(0.3 + 0.1 * k, 1) for k in range(13)]
# docs/protocol.md §2: the nominal superpixel count int(600·s²) of each scale (in exact arithmetic:
# float int(600·1.4²) is 1175)
NOMINAL = [54, 96, 150, 216, 294, 384, 486, 600, 726, 864, 1014, 1176, 1350]
BSDS = (320, 480)


def _legacy_nearest(n_out: int, n_in: int) -> np.ndarray:
    """Source index min(⌊fl32(dst·fl32(in/out))⌋, in − 1) of PyTorch's legacy ``nearest``."""
    scale = np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(int), n_in - 1)


@pytest.mark.parametrize(("scale", "nominal"), list(zip(SCALES, NOMINAL, strict=True)))
def test_network_size_landscape_and_portrait(scale, nominal):
    landscape = network_size(321, 481, scale, BSDS)
    portrait = network_size(481, 321, scale, BSDS)
    assert landscape == (round(320 * scale), round(480 * scale))
    assert portrait == landscape[::-1]
    assert (landscape[0] // CELL_SIZE) * (landscape[1] // CELL_SIZE) == nominal


@pytest.mark.parametrize("scale", [0.35, 0.33, 1.55, 0.05])
def test_a_scale_off_the_16_px_grid_is_refused(scale):
    # a UserError: the command line prints one line, not a traceback
    with pytest.raises(UserError, match=r"predict\.scales: scale .* multiples of 16$"):
        network_size(321, 481, scale, BSDS)


def test_a_square_image_counts_as_landscape():
    assert network_size(100, 100, 1.0, (32, 48)) == (32, 48)


@pytest.mark.parametrize("scale", SCALES)
def test_upsample_labels_is_the_legacy_nearest_index(scale):
    h_in, w_in = network_size(321, 481, scale, BSDS)
    ramp = torch.arange(h_in * w_in).reshape(h_in, w_in)
    got = upsample_labels(ramp, 321, 481)
    rows, cols = _legacy_nearest(321, h_in), _legacy_nearest(481, w_in)
    np.testing.assert_array_equal(got, ramp.numpy()[np.ix_(rows, cols)])
    portrait = upsample_labels(ramp.T.contiguous(), 481, 321)
    np.testing.assert_array_equal(portrait, ramp.numpy().T[np.ix_(cols, rows)])


def test_upsample_labels_differs_from_the_exact_index_where_the_protocol_says():
    """⌊dst·in/out⌋ in exact arithmetic vs the float32 index: rows 107 and 214 of 321 for
    s = 0.3, 0.6, 1.2; columns 37, 74, 148, 185, 296, 333, 370 of 481 for s = 1.3."""

    def off_by_one(n_out: int, n_in: int) -> list[int]:
        ramp = torch.arange(n_in)[:, None].expand(n_in, 2)
        got = upsample_labels(ramp, n_out, 2)[:, 0]
        exact = np.arange(n_out) * n_in // n_out
        assert np.all((exact - got) >= 0) and np.all((exact - got) <= 1)
        return np.flatnonzero(got != exact).tolist()

    for scale in SCALES:
        h_in, w_in = network_size(321, 481, scale, BSDS)
        rows = [107, 214] if scale in (0.3, 0.6, 1.2) else []
        cols = [37, 74, 148, 185, 296, 333, 370] if scale == 1.3 else []
        assert off_by_one(321, h_in) == rows, scale
        assert off_by_one(481, w_in) == cols, scale


class _CentreCandidate(torch.nn.Module):
    """Assigns every pixel to its own cell (candidate 4 of the 3×3 neighbourhood)."""

    def forward(self, x: torch.Tensor) -> SuperpixelOutput:
        q = torch.zeros(x.shape[0], 9, *x.shape[2:])
        q[:, 4] = 1.0
        return SuperpixelOutput(q, x)


@pytest.mark.parametrize(("height", "width"), [(33, 49), (49, 33)], ids=["landscape", "portrait"])
def test_predict_image_gives_the_grid_at_the_original_size(height, width):
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    labels, n_cells = predict_image(_CentreCandidate(), image, 1.0, (32, 48), torch.device("cpu"))
    h_in, w_in = (32, 48) if width >= height else (48, 32)
    assert n_cells == (h_in // 16) * (w_in // 16) == 6
    assert labels.shape == (height, width)
    rows, cols = _legacy_nearest(height, h_in), _legacy_nearest(width, w_in)
    expected = (rows[:, None] // 16) * (w_in // 16) + cols[None, :] // 16
    np.testing.assert_array_equal(labels, expected)


def test_a_checkpoint_of_an_older_network_says_to_retrain(tmp_path):
    """A method's code changed after training (a layer's width): prediction names the
    checkpoint and says to retrain, instead of torch's bare size-mismatch traceback."""
    import pytest

    from spbench.checkpoint import CheckpointMeta, save_checkpoint
    from spbench.data.synthetic import generate_synthetic
    from spbench.errors import UserError
    from spbench.models import create_model
    from spbench.predict import predict

    data = tmp_path / "data"
    generate_synthetic(data, seed=0, n_train=1, n_val=1, n_test=1, height=32, width=48)
    model = create_model("scn")
    state = model.state_dict()
    name = next(k for k, v in state.items() if v.dim() == 4)
    state[name] = state[name][:, :1]  # a narrower layer than today's network
    meta = CheckpointMeta("scn", "base", "main", ["main"], seed=0, weights="trained here")
    save_checkpoint(tmp_path / "old.pt", {**meta.payload(model, 1), "model": state})
    settings = {"split": "test", "device": "cpu", "scales": [1.0]}
    with pytest.raises(UserError, match=r"old\.pt does not fit today's scn network .*retrain"):
        predict(tmp_path / "old.pt", data, {1.0: tmp_path / "p.npz"}, settings=settings)


def _quadrants(height: int, width: int, ids: tuple[int, int, int, int]) -> np.ndarray:
    labels = np.empty((height, width), dtype=np.int64)
    h, w = height // 2, width // 2
    labels[:h, :w], labels[:h, w:], labels[h:, :w], labels[h:, w:] = ids
    return labels


@pytest.mark.parametrize("ids", [(0, 7, 65536, 65543), (2**40, 3, 0, 2**40 + 1)])
def test_ids_a_uint16_file_cannot_hold_are_renumbered_not_merged(ids):
    """A plug-in method's sparse ids (65536 wraps to 0 in uint16) keep their four regions."""
    from types import SimpleNamespace

    sample = SimpleNamespace(image_id="a", image=np.zeros((64, 96, 3), dtype=np.uint8))
    segment = lambda image, n: _quadrants(*image.shape[:2], ids)  # noqa: E731
    [(noec, ec)], _ = label_maps(
        [sample], 1.0, (64, 96), model=None, device=torch.device("cpu"), segment=segment
    )
    assert noec.dtype == ec.dtype == np.uint16
    contiguous = _quadrants(64, 96, tuple(np.unique(ids, return_inverse=True)[1]))
    np.testing.assert_array_equal(noec, contiguous)
    np.testing.assert_array_equal(ec, enforce_connectivity(contiguous, 24))


def test_more_superpixels_than_a_uint16_file_holds_is_refused():
    from types import SimpleNamespace

    from spbench.errors import UserError

    sample = SimpleNamespace(image_id="big", image=np.zeros((257, 256, 3), dtype=np.uint8))
    segment = lambda image, n: np.arange(257 * 256).reshape(257, 256) + 2**20  # noqa: E731
    with pytest.raises(UserError, match=r"image big: 65792 superpixels .* fewer"):
        label_maps(
            [sample], 1.0, (256, 256), model=None, device=torch.device("cpu"), segment=segment
        )
