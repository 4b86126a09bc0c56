"""Tests of the shared superpixel grid ops (``docs/method.md`` §0–§1)."""

from __future__ import annotations

import pytest
import torch

from spbench import grid


def _brute_pool(f: torch.Tensor, q: torch.Tensor, s: int) -> torch.Tensor:
    """Reference poolfeat by explicit loops over cells (raw sums, ε scaled by S²)."""
    b, c, h, w = f.shape
    n_h, n_w = h // s, w // s
    out = torch.zeros(b, c, n_h, n_w, dtype=f.dtype)
    for r in range(n_h):
        for cc in range(n_w):
            num = torch.zeros(b, c, dtype=f.dtype)
            den = torch.zeros(b, 1, dtype=f.dtype)
            for k, (dy, dx) in enumerate(grid.OFFSETS):
                # Pixels of cell (r - dy, cc - dx) reach (r, cc) through channel k.
                pr, pc = r - dy, cc - dx
                if not (0 <= pr < n_h and 0 <= pc < n_w):
                    continue
                qq = q[:, k : k + 1, pr * s : (pr + 1) * s, pc * s : (pc + 1) * s]
                ff = f[:, :, pr * s : (pr + 1) * s, pc * s : (pc + 1) * s]
                num += (qq * ff).sum(dim=(2, 3))
                den += qq.sum(dim=(2, 3))
            out[:, :, r, cc] = num / (den + s * s * grid.EPS_POOL)
    return out


def _brute_up(sp: torch.Tensor, q: torch.Tensor, s: int) -> torch.Tensor:
    """Reference upfeat by explicit loops over pixels."""
    b, c, n_h, n_w = sp.shape
    out = torch.zeros(b, c, n_h * s, n_w * s, dtype=sp.dtype)
    for y in range(n_h * s):
        for x in range(n_w * s):
            for k, (dy, dx) in enumerate(grid.OFFSETS):
                r, cc = y // s + dy, x // s + dx
                if 0 <= r < n_h and 0 <= cc < n_w:
                    out[:, :, y, x] += q[:, k, y, x, None] * sp[:, :, r, cc]
    return out


def _random_q(b: int, h: int, w: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 9, h, w, generator=g, dtype=dtype).softmax(1)


def test_offsets_convention():
    assert grid.OFFSETS[0] == (-1, -1)
    assert grid.OFFSETS[1] == (-1, 0)
    assert grid.OFFSETS[4] == (0, 0)
    assert grid.OFFSETS[5] == (0, 1)
    assert grid.OFFSETS[7] == (1, 0)
    assert grid.OFFSETS[8] == (1, 1)
    for k in range(9):
        dy, dx = grid.channel_offset(k)
        assert grid.channel_offset(8 - k) == (-dy, -dx)  # opposite channel
    with pytest.raises(ValueError):
        grid.channel_offset(9)


def test_grid_shape():
    assert grid.grid_shape(208, 208, 16) == (13, 13)
    assert grid.grid_shape(32, 48, 16) == (2, 3)
    for bad in [(30, 48, 16), (32, 50, 16), (0, 16, 16)]:
        with pytest.raises(ValueError, match="multiple"):
            grid.grid_shape(*bad)
    with pytest.raises(ValueError):
        grid.grid_shape(32, 32, 0)


def test_candidate_ids_hand_case():
    # 2×3 cells, stride 2: ids [[0, 1, 2], [3, 4, 5]], edge-replicated at the border.
    ids = grid.candidate_ids(2, 3, 2)
    assert ids.shape == (9, 4, 6)
    assert ids.dtype == torch.long
    cells = ids[:, ::2, ::2]  # one pixel per cell
    expected = {
        0: [[0, 0, 1], [0, 0, 1]],  # top-left
        1: [[0, 1, 2], [0, 1, 2]],  # top
        2: [[1, 2, 2], [1, 2, 2]],  # top-right
        3: [[0, 0, 1], [3, 3, 4]],  # left
        4: [[0, 1, 2], [3, 4, 5]],  # centre
        5: [[1, 2, 2], [4, 5, 5]],  # right
        6: [[3, 3, 4], [3, 3, 4]],  # bottom-left
        7: [[3, 4, 5], [3, 4, 5]],  # bottom
        8: [[4, 5, 5], [4, 5, 5]],  # bottom-right
    }
    for k, exp in expected.items():
        assert cells[k].tolist() == exp, k
    # Constant within each S×S cell.
    assert torch.equal(ids, cells.repeat_interleave(2, 1).repeat_interleave(2, 2))


def test_poolfeat_hard_grid_is_cell_mean():
    f = torch.arange(2 * 3 * 8 * 12, dtype=torch.float64).reshape(2, 3, 8, 12) ** 0.5
    q = grid.initial_grid_assignment(2, 8, 12, 4, dtype=torch.float64)
    pooled = grid.poolfeat(f, q, 4)
    assert pooled.shape == (2, 3, 2, 3)
    mean = torch.nn.functional.avg_pool2d(f, 4)
    torch.testing.assert_close(pooled, mean / (1 + 1e-8), rtol=1e-12, atol=0)


def test_round_trip_hard_grid_is_per_cell_mean():
    f = torch.randn(2, 4, 8, 12, dtype=torch.float64)
    q = grid.initial_grid_assignment(2, 8, 12, 4, dtype=torch.float64)
    rec = grid.upfeat(grid.poolfeat(f, q, 4), q, 4)
    mean = torch.nn.functional.avg_pool2d(f, 4)
    expected = mean.repeat_interleave(4, 2).repeat_interleave(4, 3)
    torch.testing.assert_close(rec, expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize(("h", "w", "s"), [(4, 6, 2), (8, 12, 4), (12, 4, 2)])
def test_pool_and_unpool_match_brute_force(h, w, s):
    q = _random_q(2, h, w, seed=h * w)
    f = torch.randn(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pooled = grid.poolfeat(f, q, s)
    torch.testing.assert_close(pooled, _brute_pool(f, q, s), rtol=1e-10, atol=1e-12)
    sp = torch.randn(2, 3, h // s, w // s, dtype=torch.float64)
    torch.testing.assert_close(grid.upfeat(sp, q, s), _brute_up(sp, q, s), rtol=1e-12, atol=1e-12)


def test_upfeat_zero_padding_at_border():
    # Uniform Q and constant superpixel features 1: a pixel reconstructs to the fraction of its
    # nine candidates that lie inside the grid (corner 4/9, edge 6/9, interior 1).
    q = torch.full((1, 9, 6, 6), 1.0 / 9, dtype=torch.float64)
    rec = grid.upfeat(torch.ones(1, 1, 3, 3, dtype=torch.float64), q, 2)[0, 0]
    torch.testing.assert_close(rec[0, 0], torch.tensor(4 / 9, dtype=torch.float64))
    torch.testing.assert_close(rec[0, 2], torch.tensor(6 / 9, dtype=torch.float64))
    torch.testing.assert_close(rec[2, 2], torch.tensor(1.0, dtype=torch.float64))


def test_pool_unpool_shape_errors():
    q = _random_q(1, 8, 8)
    with pytest.raises(ValueError):
        grid.poolfeat(torch.zeros(1, 2, 8, 4, dtype=torch.float64), q, 4)
    with pytest.raises(ValueError):
        grid.upfeat(torch.zeros(1, 2, 3, 2), q, 4)
    with pytest.raises(ValueError):
        grid.poolfeat(torch.zeros(1, 2, 8, 8), torch.zeros(1, 4, 8, 8), 4)


def test_hard_labels():
    q = grid.initial_grid_assignment(2, 4, 6, 2)
    labels = grid.hard_labels(q, 2)
    assert labels.shape == (2, 4, 6)
    assert labels.dtype == torch.long
    assert labels[0, ::2, ::2].tolist() == [[0, 1, 2], [3, 4, 5]]
    # All mass on the top-left candidate: edge replication at the border (§1.1).
    q0 = torch.zeros(1, 9, 4, 6)
    q0[:, 0] = 1.0
    assert grid.hard_labels(q0, 2)[0, ::2, ::2].tolist() == [[0, 0, 1], [0, 0, 1]]
    # Exact tie between channels 1 and 7: the first maximum wins.
    qt = torch.zeros(1, 9, 4, 6)
    qt[:, 1] = 0.5
    qt[:, 7] = 0.5
    assert grid.hard_labels(qt, 2)[0, 2:, ::2][0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("shape", [(1, 2, 3), (3, 5, 4), (2, 1, 1)])
def test_hard_labels_is_the_candidate_id_of_the_argmax(shape):
    # Reference: gather the id map of candidate_ids at the first arg-max channel (§1.4).
    batch, n_h, n_w = shape
    stride = 4
    gen = torch.Generator().manual_seed(sum(shape))
    q = torch.rand(batch, 9, n_h * stride, n_w * stride, generator=gen)
    q[:, 5, :2] = q[:, 2, :2] = 2.0  # exact ties on two rows: channel 2 must win
    ids = grid.candidate_ids(n_h, n_w, stride).expand(batch, -1, -1, -1)
    expected = ids.gather(1, q.argmax(dim=1, keepdim=True)).squeeze(1)
    assert torch.equal(grid.hard_labels(q, stride), expected)
    assert torch.all(grid.hard_labels(q, stride)[:, :2] == ids[:, 2, :2])


def test_initial_grid_assignment():
    q = grid.initial_grid_assignment(3, 32, 48, 16, dtype=torch.float64)
    assert q.shape == (3, 9, 32, 48)
    assert q.dtype == torch.float64
    assert torch.all(q[:, 4] == 1) and q.sum() == 3 * 32 * 48
    with pytest.raises(ValueError):
        grid.initial_grid_assignment(1, 30, 48, 16)


def test_label_to_onehot():
    labels = torch.tensor([[[0, 2], [1, 2]]])
    oh = grid.label_to_onehot(labels, 3)
    assert oh.shape == (1, 3, 2, 2)
    assert oh.dtype == torch.get_default_dtype()
    assert oh[0, :, 0, 1].tolist() == [0, 0, 1]
    assert torch.equal(oh.argmax(1), labels)
    assert torch.equal(grid.label_to_onehot(labels[:, None], 3), oh)


def test_pixel_coordinates():
    p = grid.pixel_coordinates(2, 3, 4, dtype=torch.float64)
    assert p.shape == (2, 2, 3, 4)
    assert p[1, 0, 2, 3] == 2 and p[1, 1, 2, 3] == 3  # (y, x)
