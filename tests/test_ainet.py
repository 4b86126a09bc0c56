"""Tests of AINet and its boundary-perceiving loss.

See ``docs/baselines.md`` §3 and ``docs/method.md`` §6–7.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.segmentation import find_boundaries

import spbench.models as M
from spbench.losses.boundary_perceiving import (
    DUMMY_PATCH_LOSS,
    BoundaryPatches,
    boundary_perceiving_loss,
    bpl_from_labels,
    sample_boundary_patches,
    thick_boundaries,
)
from spbench.losses.recipe import LossConfig
from spbench.models.ainet import (
    AINET_STAGES,
    BPL_WEIGHT,
    AINet,
    ainet_training_loss,
    expand_pixel,
    expand_sp,
)

# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def model() -> AINet:
    torch.manual_seed(0)
    return M.create_model("ainet")


def _block_labels(b: int, h: int, w: int, cell: int, n: int, seed: int) -> torch.Tensor:
    """Random piecewise-constant labels ``[B, H, W]`` with ``cell``-pixel blocks of ``n`` values."""
    g = torch.Generator().manual_seed(seed)
    small = torch.randint(0, n, (b, 1, h // cell, w // cell), generator=g).float()
    return F.interpolate(small, size=(h, w), mode="nearest")[:, 0].long()


def _region_labels(b: int, h: int, w: int) -> torch.Tensor:
    """2–4 smooth-edged regions per image (like crop-size GT)."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    lab = torch.zeros(b, h, w, dtype=torch.long)
    lab[0][xx > w // 2 + (yy // 5)] = 1
    lab[0][(yy - h // 3) ** 2 + (xx - w // 4) ** 2 < (h // 6) ** 2] = 2
    if b > 1:
        lab[1][yy + xx > h] = 3
        lab[1][yy < h // 4] = 1
        lab[1][(yy > 2 * h // 3) & (xx < w // 3)] = 7
    return lab


def _upstream_select_label(patch: np.ndarray) -> np.ndarray:
    """``datasets/data_util.py: select_label`` (A1, A2, B1, B2 from np.where raster order)."""
    labels = np.unique(patch)
    out = np.zeros((4, *patch.shape), dtype=bool)
    for i, value in enumerate(labels[:2]):
        idx = np.where(patch == value)
        n = idx[0].size
        out[2 * i][idx[0][: n // 2], idx[1][: n // 2]] = True
        out[2 * i + 1][idx[0][n // 2 :], idx[1][n // 2 :]] = True
    return out


def _sequential_sampler(labels: torch.Tensor, seed: int, max_patches: int = 500) -> list[list]:
    """Upstream's sequential loop (``local_patch_sampler``) fed with the same i.i.d. draws.

    Computed with skimage/NumPy independently of the module under test; the draw stream is
    regenerated with the same generator calls (``rand(B, max N) → floor(u·N_b)``).
    """
    lab = labels.numpy()
    b = lab.shape[0]
    bds, nums = [], []
    for i in range(b):
        bd = find_boundaries(lab[i]).astype(int)
        nums.append(min(max_patches, int(bd.sum()) // 5))
        bd[:5], bd[-5:], bd[:, :5], bd[:, -5:] = 0, 0, 0, 0
        bds.append(np.where(bd == 1))
    n_max = max(max(idx[0].size for idx in bds), 1)
    u = torch.rand(b, n_max, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    kept = []
    for i in range(b):
        rows, cols = bds[i]
        total = rows.size
        out = []
        for t in range(total):  # upstream: for i in range(total_bs_pixels)
            j = min(int(u[i, t] * total), total - 1)
            r, c = rows[j], cols[j]
            patch = lab[i, r - 2 : r + 3, c - 2 : c + 3]
            if np.unique(patch).size == 2:
                out.append(((r - 2, c - 2), _upstream_select_label(patch)))
            if len(out) >= nums[i]:
                break
        kept.append(out)
    return kept


def _naive_bpl(z: torch.Tensor, patches: BoundaryPatches) -> torch.Tensor:
    """Upstream ``boundary_perceiving_loss`` + ``patch_classify``: a Python loop over patches."""

    def simi(a, b):
        return 2.0 / (1 + torch.exp(torch.sum(torch.abs(a - b), dim=-1)).clamp(1e-8, 1e15))

    total = z.new_zeros(())
    for i in range(z.shape[0]):
        feats, labs = [], []
        for k in range(patches.valid.shape[1]):
            if not patches.valid[i, k]:
                continue
            r, c = (int(v) for v in patches.positions[i, k])
            feats.append(z[i].narrow(1, r, 5).narrow(2, c, 5))
            labs.append(patches.masks[i, k].to(z.dtype))
        feat, label = torch.stack(feats), torch.stack(labs)
        num = label.sum(dim=(-1, -2))
        means = [
            (feat * label[:, m : m + 1]).sum(dim=(-1, -2)) / (num[:, m : m + 1] + 1)
            for m in range(4)
        ]
        same = (
            -(
                torch.log(simi(means[0], means[1]) + 1e-8)
                + torch.log(simi(means[2], means[3]) + 1e-8)
            )
            / 2
        )
        cross = (
            -(
                torch.log(1 - simi(means[0], means[2]) + 1e-8)
                + torch.log(1 - simi(means[1], means[3]) + 1e-8)
            )
            / 2
        )
        total = total + same.mean() + cross.mean()
    return total / z.shape[0]


# ----------------------------------------------------------------------------- network


def _conv_bn(cin: int, cout: int) -> int:
    """Parameters of a 3×3 Conv2d without bias followed by BatchNorm (γ, β)."""
    return 9 * cin * cout + 2 * cout


def test_parameter_count(model):
    """SCN plus the modules YanFangCS/AINET adds (models/Spixel_single_layer.py): Recurrent_Attn's
    six 256→256 conv+BN (Q/K/V, plain and dilated), bridge_sp1/2 (256→64→16) and merge_sp's two
    16→16 conv+BN. SCN's own count is derived from its layer shapes in test_models."""
    added = {
        "sp_pred.": 6 * _conv_bn(256, 256),
        "bridge_sp": _conv_bn(256, 64) + _conv_bn(64, 16),
        "merge_sp.": 2 * _conv_bn(16, 16),
    }
    count = {
        prefix: sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))
        for prefix in added
    }
    assert count == added == {"sp_pred.": 3_542_016, "bridge_sp": 156_832, "merge_sp.": 4_672}
    scn = sum(p.numel() for p in M.create_model("scn").parameters())
    total = sum(p.numel() for p in model.parameters())
    assert total == scn + sum(added.values()) == 5_991_476


def test_state_dict_names_match_upstream(model):
    scn_keys = set(M.create_model("scn").state_dict())
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    extra = set()
    for qkv in "QKV":
        for r in (1, 2):
            extra |= {f"sp_pred.{qkv}Conv{r}.0.weight"} | {
                f"sp_pred.{qkv}Conv{r}.1.{s}" for s in bn
            }
    for name in ("bridge_sp1", "bridge_sp2"):
        extra |= {f"{name}.0.weight"} | {f"{name}.1.{s}" for s in bn}
    extra |= {"merge_sp.0.weight", "merge_sp.3.weight"}
    extra |= {f"merge_sp.{i}.{s}" for i in (1, 4) for s in bn}
    sd = model.state_dict()
    assert set(sd) == scn_keys | extra
    assert "mask_select" not in sd  # upstream keeps it as a plain attribute, not in the state dict
    assert sd["sp_pred.QConv2.0.weight"].shape == (256, 256, 3, 3)
    assert model.sp_pred.QConv2[0].dilation == (2, 2) and model.sp_pred.QConv2[0].bias is None
    assert sd["bridge_sp1.0.weight"].shape == (64, 256, 3, 3)
    assert sd["bridge_sp2.0.weight"].shape == (16, 64, 3, 3)
    merge = model.merge_sp[0]
    assert (merge.stride, merge.padding, merge.bias) == ((3, 3), (1, 1), None)
    assert sd["pred_mask0.weight"].shape == (9, 16, 3, 3)


@pytest.mark.parametrize(("shape", "train"), [((2, 3, 32, 48), True), ((1, 3, 48, 32), False)])
def test_output_is_distribution(model, shape, train):
    model.train(train)
    with torch.no_grad():
        out = model(torch.randn(*shape))
    model.train()
    b, _, h, w = shape
    assert out.assignment.shape == (b, 9, h, w)
    assert out.embedding.shape == (b, 16, h, w)
    assert torch.isfinite(out.assignment).all() and (out.assignment >= 0).all()
    assert torch.allclose(out.assignment.sum(1), torch.ones(b, h, w), atol=1e-5)


def test_rejects_bad_input(model):
    with pytest.raises(ValueError):
        model(torch.randn(1, 3, 40, 48))
    with pytest.raises(TypeError):
        M.create_model("ainet", width=3)


def test_expand_sp_matches_upstream_loop():
    sp = torch.randn(2, 3, 2, 3)

    padded = F.pad(sp, [1, 1, 1, 1])  # upstream expand_sp, L156–172
    rows_out = []
    for i in range(1, padded.shape[2] - 1):
        row = [
            padded[:, :, i - 1 : i + 2, j - 1 : j + 2].repeat(1, 1, 16, 16)
            for j in range(1, padded.shape[3] - 1)
        ]
        rows_out.append(torch.cat(row, dim=-1))
    ref = torch.cat(rows_out, dim=-2)
    assert torch.equal(expand_sp(sp), ref)


def test_expand_pixel_matches_centre_mask():
    z = torch.randn(2, 4, 32, 48)
    b, c, h, w = z.shape
    mask = torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0]]).repeat(h, w).view(1, 1, 3 * h, 3 * w)
    ref = z.view(b, c, h, 1, w, 1).repeat(1, 1, 1, 3, 1, 3).reshape(b, c, 3 * h, 3 * w) * mask
    assert torch.equal(expand_pixel(z), ref)


def test_merge_sp_window_taps(model):
    """The stride-3/padding-1 window sees the nine taps listed in docs/baselines.md §3.1."""
    h, w = 32, 48
    sp = (100.0 * torch.arange(1, 7, dtype=torch.float64)).view(1, 1, 2, 3)
    z = (1e-3 * torch.arange(1, h * w + 1, dtype=torch.float64)).view(1, 1, h, w)
    merged = expand_sp(sp) + expand_pixel(z)
    conv = model.merge_sp[0]
    weight = torch.eye(9, dtype=torch.float64).view(9, 1, 3, 3)
    taps = F.conv2d(merged, weight, stride=conv.stride, padding=conv.padding)[0]
    assert taps.shape == (9, h, w)

    pos = {"TL": (0, 0), "T": (0, 1), "TR": (0, 2), "L": (1, 0), "C": (1, 1), "R": (1, 2)}
    pos |= {"BL": (2, 0), "B": (2, 1), "BR": (2, 2)}
    # (pixel whose block is read, entry of that block), row by row as in the spec.
    spec = [
        ((-1, -1), "BR"), ((-1, 0), "BL"), ((-1, 0), "B"),
        ((0, -1), "TR"), ((0, 0), "TL"), ((0, 0), "T"),
        ((0, -1), "R"), ((0, 0), "L"), ((0, 0), "C"),
    ]  # fmt: skip

    def block_entry(y: int, x: int, name: str) -> float:
        if y < 0 or x < 0:
            return 0.0  # zero padding of the expanded map
        r, c = pos[name]
        cy, cx = y // 16 + r - 1, x // 16 + c - 1
        value = float(sp[0, 0, cy, cx]) if 0 <= cy < 2 and 0 <= cx < 3 else 0.0
        return value + (float(z[0, 0, y, x]) if name == "C" else 0.0)

    expected = torch.tensor(
        [
            [[block_entry(o + dy, p + dx, name) for p in range(w)] for o in range(h)]
            for (dy, dx), name in spec
        ],
        dtype=torch.float64,
    )
    assert torch.equal(taps, expected)
    # Only the own-centre tap carries the pixel feature.
    assert torch.equal(taps[:8] % 100, torch.zeros_like(taps[:8]))


# ----------------------------------------------------------------------------- sampler


def test_thick_boundaries_match_skimage():
    labels = torch.cat([_block_labels(2, 32, 48, 4, 3, 0), _region_labels(2, 32, 48)])
    ref = np.stack([find_boundaries(lab) for lab in labels.numpy()])
    assert np.array_equal(thick_boundaries(labels).numpy(), ref)


def test_sampler_patches_have_two_labels_and_raster_halves():
    labels = torch.cat([_block_labels(1, 64, 64, 2, 3, 1), _region_labels(2, 64, 64)])
    p = sample_boundary_patches(labels, generator=torch.Generator().manual_seed(3))
    bd = np.stack([find_boundaries(lab) for lab in labels.numpy()])
    assert p.patch_num.tolist() == [min(500, int(s) // 5) for s in bd.sum(axis=(1, 2))]
    assert p.patch_num[0] == 500  # the cap applies
    assert p.masks.shape == (3, p.valid.shape[1], 4, 5, 5) and not p.dummy.any()
    n_valid = p.valid.sum(1)
    assert (n_valid <= p.patch_num).all() and (n_valid > 0).all()
    for i in range(3):
        for k in range(int(n_valid[i])):
            assert p.valid[i, k]
            r, c = (int(v) for v in p.positions[i, k])
            # Centred on a boundary pixel outside the zeroed 5-pixel border.
            assert 5 <= r + 2 < 64 - 5 and 5 <= c + 2 < 64 - 5 and bd[i, r + 2, c + 2]
            patch = labels[i, r : r + 5, c : c + 5].numpy()
            assert np.unique(patch).size == 2
            assert np.array_equal(p.masks[i, k].numpy(), _upstream_select_label(patch))
        assert not p.valid[i, int(n_valid[i]) :].any()  # kept draws come first
        assert not p.masks[i, int(n_valid[i]) :].any()


@pytest.mark.parametrize("max_patches", [500, 7, 0])
def test_sampler_equals_sequential_loop(max_patches):
    """Drawing all candidates at once keeps exactly what upstream's sequential loop keeps."""
    labels = torch.cat([_block_labels(1, 48, 64, 4, 3, 5), _region_labels(2, 48, 64)])
    p = sample_boundary_patches(
        labels, generator=torch.Generator().manual_seed(11), max_patches=max_patches
    )
    ref = _sequential_sampler(labels, seed=11, max_patches=max_patches)
    for i, kept in enumerate(ref):
        assert int(p.valid[i].sum()) - int(p.dummy[i]) == len(kept)
        assert bool(p.dummy[i]) == (not kept)
        assert len(kept) <= max(max_patches, 1)  # patch_num = 0: stop test after one draw
        for k, (posi, masks) in enumerate(kept):
            assert tuple(p.positions[i, k].tolist()) == posi
            assert np.array_equal(p.masks[i, k].numpy(), masks)


def test_sampler_dummy_patch_and_constant_labels():
    constant = torch.full((1, 32, 32), 4, dtype=torch.long)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    three = ((yy + xx) % 3)[None]  # every 5×5 window holds three labels: no valid patch
    for labels in (constant, three):
        p = sample_boundary_patches(labels, generator=torch.Generator().manual_seed(0))
        assert p.dummy.tolist() == [True] and p.valid.tolist() == [[True]]
        assert p.positions.tolist() == [[[1, 1]]] and p.masks.all()
    assert sample_boundary_patches(constant).patch_num.tolist() == [0]
    z = torch.randn(1, 16, 32, 32, requires_grad=True)
    loss = boundary_perceiving_loss(z, sample_boundary_patches(constant))
    assert loss.item() == pytest.approx(DUMMY_PATCH_LOSS, rel=1e-6)
    assert loss.item() == pytest.approx(18.4207, abs=1e-4)
    loss.backward()
    assert torch.count_nonzero(z.grad) == 0


def test_sampler_reproducible_with_generator():
    labels = _region_labels(2, 64, 64)
    a = sample_boundary_patches(labels, generator=torch.Generator().manual_seed(7))
    b = sample_boundary_patches(labels, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ----------------------------------------------------------------------------- loss


def test_bpl_hand_computed_value():
    # One 5×5 patch: label A on columns 0–1 (10 px), B on columns 2–4 (15 px); z = 0 on A, 1 on B.
    lab = torch.zeros(5, 5, dtype=torch.long)
    lab[:, 2:] = 1
    masks = torch.from_numpy(_upstream_select_label(lab.numpy()))
    assert masks.sum(dim=(1, 2)).tolist() == [5, 5, 7, 8]
    z = lab.to(torch.float64)[None, None]
    patches = BoundaryPatches(
        positions=torch.zeros(1, 1, 2, dtype=torch.long),
        masks=masks[None, None],
        valid=torch.ones(1, 1, dtype=torch.bool),
        dummy=torch.zeros(1, dtype=torch.bool),
        patch_num=torch.ones(1, dtype=torch.long),
    )
    a1, a2, b1, b2 = 0.0, 0.0, 7 / 8, 8 / 9  # Σ z·mask / (Σ mask + 1)

    def sim(u, v):
        return 2 / (1 + math.exp(abs(u - v)))

    same = -(math.log(sim(a1, a2) + 1e-8) + math.log(sim(b1, b2) + 1e-8)) / 2
    cross = -(math.log(1 - sim(a1, b1) + 1e-8) + math.log(1 - sim(a2, b2) + 1e-8)) / 2
    assert boundary_perceiving_loss(z, patches).item() == pytest.approx(same + cross, rel=1e-12)
    # Two images: the sum over images is divided by B.
    two = BoundaryPatches(*(torch.cat([t, t]) for t in patches))
    zz = torch.cat([z, 3 * z])
    expected = (same + cross + _naive_bpl(3 * z, patches).item()) / 2
    assert boundary_perceiving_loss(zz, two).item() == pytest.approx(expected, rel=1e-12)


def test_bpl_matches_naive_loop_and_gradcheck():
    labels = _region_labels(2, 32, 32)
    patches = sample_boundary_patches(labels, generator=torch.Generator().manual_seed(2))
    z = torch.randn(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(boundary_perceiving_loss(z, patches), _naive_bpl(z, patches))
    split = (torch.arange(16) >= 8).long().expand(1, 16, 16)  # one vertical edge
    small = sample_boundary_patches(split, generator=torch.Generator().manual_seed(0))
    assert not small.dummy.any()
    z_small = torch.randn(1, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: boundary_perceiving_loss(t, small), (z_small,))


def test_bpl_stays_fp32_under_autocast():
    """−log(1 − sim + ε) amplifies bf16 rounding of small distances (10–40 % gradient error
    in bf16): the loss and its gradient under bf16 autocast equal fp32's."""
    labels = _region_labels(2, 32, 32)
    patches = sample_boundary_patches(labels, generator=torch.Generator().manual_seed(2))
    z = (0.05 * torch.randn(2, 8, 32, 32)).requires_grad_()
    plain = boundary_perceiving_loss(z, patches)
    (grad,) = torch.autograd.grad(plain, z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = boundary_perceiving_loss(z, patches)
        from_bf16 = boundary_perceiving_loss(z.bfloat16(), patches)
    (mixed_grad,) = torch.autograd.grad(mixed, z)
    assert mixed.dtype == from_bf16.dtype == torch.float32
    assert torch.equal(plain, mixed) and torch.equal(grad, mixed_grad)


# ----------------------------------------------------------------------------- registry / loss


def test_registered_recipe_and_stages():
    method = M.get_method("ainet")
    assert method.loss is ainet_training_loss
    r = method.recipe
    assert (r.lr, r.weight_decay, r.batch_size, r.crop, r.val_crop, r.n_classes, r.seed) == (
        4e-5,
        4e-4,
        16,
        208,
        208,
        51,
        2020,
    )
    assert method.stages == AINET_STAGES
    s1, s2 = method.stages
    assert (s1.name, s1.uses_variant, s1.splits) == ("stage1", False, ("train",))
    assert dict(s1.overrides) == {"lr": 8e-5, "weight_decay": 0.0}
    assert (s2.name, s2.uses_variant, s2.splits) == ("stage2", True, ("train", "val"))
    assert isinstance(M.create_model("ainet", stage="stage1"), AINet)


def test_training_loss_terms(model):
    labels = _region_labels(2, 32, 32)
    batch = SimpleNamespace(images=torch.randn(2, 3, 32, 32), labels=labels, edges=None)
    config = LossConfig(n_classes=51)
    terms = ainet_training_loss(model, batch, config, generator=torch.Generator().manual_seed(4))
    assert set(terms) == {"recon", "pos", "lap", "msd", "bpl", "total"}
    parts = terms["recon"] + terms["pos"] + terms["lap"] + terms["msd"] + terms["bpl"]
    assert torch.allclose(terms["total"], parts)
    model.eval()  # same BN statistics for the reference forward
    with torch.no_grad():
        terms = ainet_training_loss(
            model, batch, config, generator=torch.Generator().manual_seed(4)
        )
        z = model(batch.images).embedding
        ref = BPL_WEIGHT * bpl_from_labels(z, labels, generator=torch.Generator().manual_seed(4))
    model.train()
    assert torch.allclose(terms["bpl"], ref)


@pytest.mark.parametrize(
    "config",
    [LossConfig(n_classes=51), LossConfig(use_lap=True, use_msd=True, use_wr=True, n_classes=51)],
    ids=["base", "dlm"],
)
def test_overfits_one_batch(config):
    torch.manual_seed(0)
    net = AINet()
    images = torch.randn(2, 3, 64, 64)
    batch = SimpleNamespace(images=images, labels=_region_labels(2, 64, 64), edges=None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    totals = []
    for _ in range(5):
        terms = ainet_training_loss(net, batch, config, generator=g)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        totals.append(terms["total"].item())
        assert all(math.isfinite(v.item()) for v in terms.values())
    assert totals[-1] < totals[0] and min(totals[1:]) < totals[0]
