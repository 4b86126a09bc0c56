"""Tests of the superpixel losses (``docs/method.md`` §2–§7)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch.autograd import gradcheck

from spbench import grid
from spbench import losses as L

D64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny float64 ops (gradcheck) are ~10× slower with intra-op threads on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _logits(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 9, h, w, generator=g, dtype=D64)


def _labels(b, h, w, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (b, h, w), generator=g)


# --------------------------------------------------------------------------- reconstruction


def test_semantic_loss_hand_case():
    # Hard grid, stride 2, 2×3 cells; one cell has two pixels of class 0 and two of class 1, so
    # each of its pixels reconstructs to (0.5, 0.5) and costs log 2; other cells cost ≈ 0.
    labels = torch.zeros(2, 4, 6, dtype=torch.long)
    labels[:, 0, 2:4] = 1
    onehot = grid.label_to_onehot(labels, 3, dtype=D64)
    q = grid.initial_grid_assignment(2, 4, 6, 2, dtype=D64)
    loss = L.semantic_reconstruction_loss(q, onehot, stride=2)
    torch.testing.assert_close(loss, torch.tensor(4 * math.log(2), dtype=D64), atol=1e-6, rtol=0)


def test_position_loss_hand_case():
    # Hard grid, stride 2: each cell's mean position is (r+0.5, c+0.5) pixels off by 0.5 in y and
    # x from every one of its pixels, so each pixel costs √0.5 (the norm, not squared).
    q = grid.initial_grid_assignment(3, 4, 6, 2, dtype=D64)
    coords = grid.pixel_coordinates(3, 4, 6, dtype=D64)
    loss = L.position_reconstruction_loss(q, coords, stride=2)
    torch.testing.assert_close(loss, torch.tensor(24 * math.sqrt(0.5), dtype=D64))


def test_reconstruction_gradcheck():
    labels = _labels(1, 6, 4, 3)
    onehot = grid.label_to_onehot(labels, 3, dtype=D64)
    coords = grid.pixel_coordinates(1, 6, 4, dtype=D64)
    logits = _logits(1, 6, 4).requires_grad_()
    assert gradcheck(lambda x: L.semantic_reconstruction_loss(x.softmax(1), onehot, 2), (logits,))
    assert gradcheck(lambda x: L.position_reconstruction_loss(x.softmax(1), coords, 2), (logits,))
    assert gradcheck(
        lambda x: L.weighted_reconstruction_loss(x.softmax(1), onehot, labels, 2), (logits,)
    )


# --------------------------------------------------------------------------- weighted (L_WR)


def test_mixed_cell_weights():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, 0] = 1  # cell (0, 0) mixed, the other three single-class
    w = L.mixed_cell_weights(labels, stride=2)
    assert w.shape == (1, 1, 4, 4)
    assert not w.requires_grad
    torch.testing.assert_close(w.mean(), torch.tensor(1.0))
    raw_sum = 4 * 1.0 + 12 * 0.1
    torch.testing.assert_close(w[0, 0, 0, 0], torch.tensor(16 / raw_sum))
    torch.testing.assert_close(w[0, 0, 3, 3], torch.tensor(0.1 * 16 / raw_sum))


@pytest.mark.parametrize("kind", ["single", "mixed"])
def test_wr_equals_sem_when_cells_uniform(kind):
    if kind == "single":  # every cell single-class (a class per cell)
        labels = torch.arange(6).reshape(1, 2, 3).repeat_interleave(2, 1).repeat_interleave(2, 2)
        labels = labels.expand(2, -1, -1).contiguous()
    else:  # every cell mixed (checkerboard)
        yy, xx = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
        labels = ((yy + xx) % 2).expand(2, -1, -1).contiguous()
    onehot = grid.label_to_onehot(labels, 6, dtype=D64)
    q = _logits(2, 4, 6).softmax(1)
    torch.testing.assert_close(
        L.weighted_reconstruction_loss(q, onehot, labels, 2),
        L.semantic_reconstruction_loss(q, onehot, 2),
    )


def test_wr_weights_are_normalised_per_image():
    """Each image's weights have mean 1 on their own: a batch of images with different shares
    of mixed cells gives each image the weights it has alone, and the loss is their mean."""
    labels = torch.zeros(2, 4, 6, dtype=torch.long)
    labels[0, 0, 0] = 1  # one mixed cell of six
    labels[1, :2, 1::2] = 1  # stripes across the top row of cells: three mixed of six
    weights = L.mixed_cell_weights(labels, stride=2)
    for b in range(2):
        torch.testing.assert_close(weights[b], L.mixed_cell_weights(labels[b : b + 1], 2)[0])
        torch.testing.assert_close(weights[b].mean(), torch.tensor(1.0))
    assert not torch.allclose(weights[0], weights[1])
    onehot = grid.label_to_onehot(labels, 2, dtype=D64)
    q = _logits(2, 4, 6).softmax(1)
    alone = [
        L.weighted_reconstruction_loss(q[b : b + 1], onehot[b : b + 1], labels[b : b + 1], 2)
        for b in range(2)
    ]
    torch.testing.assert_close(
        L.weighted_reconstruction_loss(q, onehot, labels, 2), torch.stack(alone).mean()
    )


def test_wr_differs_for_mixed_and_single_cells():
    labels = torch.zeros(1, 4, 6, dtype=torch.long)
    labels[0, 0, 0] = 1
    onehot = grid.label_to_onehot(labels, 2, dtype=D64)
    q = _logits(1, 4, 6).softmax(1)
    wr = L.weighted_reconstruction_loss(q, onehot, labels, 2)
    sem = L.semantic_reconstruction_loss(q, onehot, 2)
    assert not torch.allclose(wr, sem)


# --------------------------------------------------------------------------- Laplacian


def test_normalisers():
    assert L.laplacian_normaliser(16) == 17860
    assert L.laplacian_normaliser(8) == 4324
    assert L.laplacian_normaliser(32) == 72580
    assert L.laplacian_normaliser(16, "eight_ns") == 18432
    with pytest.raises(ValueError):
        L.laplacian_normaliser(16, "bogus")


@pytest.mark.parametrize(("h", "w"), [(16, 16), (32, 48), (64, 32)])
def test_laplacian_hard_grid_reference(h, w):
    # Every window holds one all-ones 16×16 block: tr = 4(S − 1)(2S − 1) = 1860 and
    # Z_16 = 17860 (docs/method.md §3.5 gives L_LAP = 0.89586 for any image size).
    q = grid.initial_grid_assignment(2, h, w, 16, dtype=D64)
    loss = L.laplacian_loss(q, 16)
    torch.testing.assert_close(loss, torch.tensor(1 - 1860 / 17860, dtype=D64))
    assert loss.item() == pytest.approx(0.89586, abs=5e-6)


@pytest.mark.parametrize("s", [2, 4])
def test_laplacian_hard_grid_other_strides(s):
    q = grid.initial_grid_assignment(1, 3 * s, 2 * s, s, dtype=D64)
    tr = 4 * (s - 1) * (2 * s - 1)  # one all-ones S×S block per window
    torch.testing.assert_close(
        L.laplacian_loss(q, s), torch.tensor(1 - tr / L.laplacian_normaliser(s), dtype=D64)
    )


def test_laplacian_uniform_interior_window():
    # 3×3 cells: the centre superpixel's window lies entirely inside the image.
    s = 16
    q = torch.full((1, 9, 3 * s, 3 * s), 1.0 / 9, dtype=D64)
    traces = L.laplacian_window_traces(q, s)
    torch.testing.assert_close(traces[0, 4], torch.tensor(17860 / 81, dtype=D64))
    # Border windows have smaller traces, so the loss exceeds 1 − 1/81.
    assert L.laplacian_loss(q, s) > 1 - 1 / 81


def test_window_trace_matches_dense_laplacian():
    # Build L = D − A explicitly for every window (8-neighbourhood, w_ij = x_i x_j).
    s = 2
    q = _logits(1, 6, 4, seed=3).softmax(1)
    win = L.superpixel_windows(q, s)[0]  # [M, 6, 6]
    n = 3 * s
    traces = []
    for x in win:
        xv = x.reshape(-1)
        adj = torch.zeros(n * n, n * n, dtype=D64)
        for i in range(n * n):
            for j in range(n * n):
                yi, xi, yj, xj = i // n, i % n, j // n, j % n
                if i != j and abs(yi - yj) <= 1 and abs(xi - xj) <= 1:
                    adj[i, j] = xv[i] * xv[j]
        lap = torch.diag(adj.sum(1)) - adj
        traces.append(torch.trace(lap))
    torch.testing.assert_close(L.laplacian_window_traces(q, s)[0], torch.stack(traces))


def test_superpixel_windows_content():
    s = 2
    q = _logits(1, 6, 8, seed=4).softmax(1)
    win = L.superpixel_windows(q, s)  # [1, 12, 6, 6]
    n_h, n_w = 3, 4
    for r in range(n_h):
        for c in range(n_w):
            for j, (dr, dc) in enumerate(grid.OFFSETS):
                block = win[
                    0, r * n_w + c, (dr + 1) * s : (dr + 2) * s, (dc + 1) * s : (dc + 2) * s
                ]
                rr, cc = r + dr, c + dc
                if 0 <= rr < n_h and 0 <= cc < n_w:
                    ref = q[0, 8 - j, rr * s : (rr + 1) * s, cc * s : (cc + 1) * s]
                else:
                    ref = torch.zeros(s, s, dtype=D64)
                assert torch.equal(block, ref)


def test_laplacian_hard_assignment_counts_same_label_pairs():
    # Random hard assignment to in-grid candidates: Σ_s tr = 2 × #8-adjacent same-label pairs.
    s, h, w = 4, 12, 16
    g = torch.Generator().manual_seed(5)
    n_h, n_w = h // s, w // s
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    q = torch.zeros(2, 9, h, w, dtype=D64)
    for b in range(2):
        k = torch.randint(0, 9, (h, w), generator=g)
        dy, dx = k // 3 - 1, k % 3 - 1
        valid = (
            (ys // s + dy >= 0) & (ys // s + dy < n_h) & (xs // s + dx >= 0) & (xs // s + dx < n_w)
        )
        k = torch.where(valid, k, torch.full_like(k, 4))
        q[b].scatter_(0, k[None], 1.0)
    labels = grid.hard_labels(q, s)
    pairs = 0
    for dy, dx in [(0, 1), (1, 0), (1, 1), (1, -1)]:  # each unordered 8-neighbour pair once
        ys0, ys1 = slice(0, h - dy), slice(dy, h)
        xs0, xs1 = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(1, w), slice(0, w - 1))
        pairs += int((labels[:, ys0, xs0] == labels[:, ys1, xs1]).sum())
    total_trace = L.laplacian_window_traces(q, s).sum()
    assert total_trace.item() == 2 * pairs


def test_laplacian_gradcheck_and_normaliser_option():
    logits = _logits(1, 6, 4, seed=6).requires_grad_()
    assert gradcheck(lambda x: L.laplacian_loss(x.softmax(1), 2), (logits,))
    q = logits.detach().softmax(1)
    a = 1 - L.laplacian_loss(q, 2, "trace_max")
    b = 1 - L.laplacian_loss(q, 2, "eight_ns")
    torch.testing.assert_close(a / b, torch.tensor(8 * 36 / L.laplacian_normaliser(2), dtype=D64))


# --------------------------------------------------------------------------- MSD


def _two_class_batch(b=2, h=8, w=8):
    labels = torch.zeros(b, h, w, dtype=torch.long)
    labels[:, :, w // 2 :] = 1
    return labels


def test_msd_hand_case_per_image():
    labels = _two_class_batch()
    z = torch.zeros(2, 3, 8, 8, dtype=D64)
    z[:, 0] = labels.to(D64)  # class 1 sits at distance 1 from class 0
    loss = L.min_semantic_distance_loss(z, labels, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, torch.tensor(0.25, dtype=D64))  # (1.5 − 1)²
    # Beyond the margin the hinge is 0.
    assert L.min_semantic_distance_loss(2 * z, labels) == 0


def test_msd_single_class_image_counts_zero():
    labels = _two_class_batch()
    labels[1] = 3  # image 1 has one class: ρ_1 = 0 pulls the batch mean to 0.5
    z = torch.zeros(2, 3, 8, 8, dtype=D64)
    z[:, 0] = labels.to(D64)
    loss = L.min_semantic_distance_loss(z, labels, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, torch.tensor(1.0, dtype=D64))  # (1.5 − 0.5)²


def test_msd_min_over_pairs():
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[0, :, 2:4] = 1
    labels[0, :, 4:] = 2
    z = torch.zeros(1, 2, 6, 6, dtype=D64)
    z[0, 0] = labels[0].to(D64) * 0.6  # δ(0,1) = δ(1,2) = 0.6, δ(0,2) = 1.2
    loss = L.min_semantic_distance_loss(z, labels, margin=1.0)
    torch.testing.assert_close(loss, torch.tensor(0.16, dtype=D64))


def test_msd_pairs_the_kth_samples_of_two_classes():
    """δ is the minimum over k of |z(c_i[k]) − z(c_j[k])| (the k-th samples paired, as the
    released code does), not the minimum over all 100 × 100 cross pairs."""
    from spbench.losses.msd import sample_class_pixels_dense

    labels = _two_class_batch(b=1)
    z = torch.randn(1, 3, 8, 8, dtype=D64, generator=torch.Generator().manual_seed(5))
    coords, _ = sample_class_pixels_dense(labels, 2, 100, torch.Generator().manual_seed(0))
    pixels = z.reshape(3, 64).T
    first, second = pixels[coords[0, 0]], pixels[coords[0, 1]]
    paired = (first - second).norm(dim=1).min()
    assert torch.cdist(first, second).min() < paired - 0.1  # the two definitions differ here
    loss = L.min_semantic_distance_loss(
        z, labels, margin=10.0, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(loss, (10.0 - paired) ** 2)


def test_msd_original_mode_bug():
    # Identical embeddings in both images, both with classes {0, 1}. Original indexing makes
    # image 1 compare flat entries 1 and 2: image 0's class 1 read from z_0 and from z_1 at the
    # same coordinates, so ρ_1 = 0 (§4.3).
    labels = _two_class_batch()
    z = torch.zeros(2, 3, 8, 8, dtype=D64)
    z[:, 0] = labels.to(D64)
    per_image = L.min_semantic_distance_loss(z, labels, mode="per_image")
    original = L.min_semantic_distance_loss(z, labels, mode="original")
    torch.testing.assert_close(per_image, torch.tensor(0.25, dtype=D64))
    torch.testing.assert_close(original, torch.tensor(1.0, dtype=D64))  # (1.5 − 0.5)²


def test_msd_modes_agree_when_earlier_images_have_one_class():
    # o_b = b for every b iff every image before the last has exactly one class.
    labels = _labels(3, 8, 8, 4, seed=7)
    labels[0] = 2
    labels[1] = 0
    z = torch.randn(3, 4, 8, 8, dtype=D64, generator=torch.Generator().manual_seed(8)) * 0.1
    a = L.min_semantic_distance_loss(z, labels, generator=torch.Generator().manual_seed(1))
    b = L.min_semantic_distance_loss(
        z, labels, mode="original", generator=torch.Generator().manual_seed(1)
    )
    assert a > 0
    assert torch.equal(a, b)
    # ... and differ in general.
    labels = _labels(3, 8, 8, 4, seed=9)
    a = L.min_semantic_distance_loss(z, labels, generator=torch.Generator().manual_seed(1))
    b = L.min_semantic_distance_loss(
        z, labels, mode="original", generator=torch.Generator().manual_seed(1)
    )
    assert not torch.equal(a, b)
    with pytest.raises(ValueError):
        L.min_semantic_distance_loss(z, labels, mode="all_pairs")


def test_msd_sampling_scheme():
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, :5, :10] = 1  # 50 pixels  (< 100: with replacement)
    labels[0, 5:15, :10] = 2  # 100 pixels (= 100: a permutation of all)
    # class 0: 256 − 150 = 106 pixels (> 100: distinct)
    coords, owner, n_cls = L.sample_class_pixels(labels, 100, torch.Generator().manual_seed(0))
    assert coords.shape == (3, 100)
    assert owner.tolist() == [0, 0, 0] and n_cls.tolist() == [3]
    flat = labels.reshape(-1)
    for c in range(3):
        assert torch.all(flat[coords[c]] == c)  # classes ascending, samples of the right class
    assert coords[0].unique().numel() == 100
    # 100 independent draws from 50 pixels: uneven counts (a tiled sampler gives each pixel
    # exactly 2) and, on average, 50·(1 − 0.98¹⁰⁰) ≈ 43 distinct pixels
    drawn = torch.bincount(coords[1], minlength=flat.numel())[flat == 1]
    assert drawn.sum() == 100 and drawn.max() > 2 and (drawn == 0).any()
    assert sorted(coords[2].tolist()) == torch.nonzero(flat == 2).flatten().tolist()
    # Reproducible with the run's generator, different without reseeding.
    again, _, _ = L.sample_class_pixels(labels, 100, torch.Generator().manual_seed(0))
    assert torch.equal(coords, again)


def test_msd_gradcheck():
    labels = _labels(2, 4, 4, 3, seed=10)
    z = (0.1 * torch.randn(2, 3, 4, 4, dtype=D64)).requires_grad_()
    for mode in ("per_image", "original"):
        assert gradcheck(
            lambda x, m=mode: L.min_semantic_distance_loss(
                x, labels, n_samples=5, mode=m, generator=torch.Generator().manual_seed(2)
            ),
            (z,),
        )


# --------------------------------------------------------------------------- recipe


class _Out:
    def __init__(self, assignment, embedding):
        self.assignment = assignment
        self.embedding = embedding


def test_superpixel_loss_baseline_and_dlm():
    labels = _labels(2, 32, 48, 5, seed=11)
    q = _logits(2, 32, 48, seed=12).softmax(1)
    z = 0.05 * torch.randn(2, 16, 32, 48, dtype=D64)
    out = _Out(q, z)
    onehot = grid.label_to_onehot(labels, 50, dtype=D64)
    coords = grid.pixel_coordinates(2, 32, 48, dtype=D64)
    sem = L.semantic_reconstruction_loss(q, onehot, 16)
    pos = L.position_reconstruction_loss(q, coords, 16)

    base = L.superpixel_loss(out, labels, L.LossConfig())
    assert set(base) == set(L.LOSS_KEYS)
    torch.testing.assert_close(base["recon"], 0.005 * sem)
    torch.testing.assert_close(base["pos"], 0.005 * 1.875e-4 * pos)
    assert base["lap"] == 0 and base["msd"] == 0
    torch.testing.assert_close(base["total"], base["recon"] + base["pos"])
    # λ_WR weighs R_w only: with WR off it leaves the plain R alone
    unweighted = L.superpixel_loss(out, labels, L.LossConfig(lambda_wr=2.0))
    torch.testing.assert_close(unweighted["recon"], 0.005 * sem)

    cfg = L.LossConfig.dlm(lambda_wr=2.0)
    gen = torch.Generator().manual_seed(3)
    dlm = L.superpixel_loss((q, z), labels, cfg, generator=gen)
    wr = L.weighted_reconstruction_loss(q, onehot, labels, 16)
    torch.testing.assert_close(dlm["recon"], 2.0 * 0.005 * wr)
    torch.testing.assert_close(dlm["lap"], 360 * L.laplacian_loss(q, 16))
    msd = L.min_semantic_distance_loss(z, labels, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(dlm["msd"], 1e-3 * msd)
    torch.testing.assert_close(dlm["total"], dlm["recon"] + dlm["pos"] + dlm["lap"] + dlm["msd"])
    assert cfg.to_dict()["lambda_lap"] == 360.0
    with pytest.raises(ValueError):
        L.LossConfig(msd_mode="bogus")


def test_superpixel_loss_backward():
    labels = _labels(1, 16, 32, 3, seed=13)
    logits = _logits(1, 16, 32, seed=14).requires_grad_()
    z = (0.05 * torch.randn(1, 4, 16, 32, dtype=D64)).requires_grad_()
    res = L.superpixel_loss((logits.softmax(1), z), labels, L.LossConfig.dlm())
    res["total"].backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert z.grad.abs().sum() > 0


def test_losses_do_not_import_models_or_data():
    code = (
        "import sys, spbench.losses; "
        "bad = [m for m in sys.modules if m.startswith(('spbench.models', 'spbench.data'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_laplacian_stays_fp32_under_autocast():
    """The neighbour sums run in fp32 under bf16 autocast: the loss and gradient equal fp32's."""
    logits = torch.randn(2, 9, 32, 48, requires_grad=True)
    plain = L.laplacian_loss(logits.softmax(1), 16)
    (grad,) = torch.autograd.grad(plain, logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = L.laplacian_loss(logits.softmax(1), 16)
    (mixed_grad,) = torch.autograd.grad(mixed, logits)
    assert mixed.dtype == torch.float32
    assert torch.equal(plain, mixed) and torch.equal(grad, mixed_grad)
