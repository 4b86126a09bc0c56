"""Tests of SSMamba (``docs/baselines.md`` §5), L_edge and the SSM augmentation helpers."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import spbench.models.ssm as ssm_pkg
from spbench.data.augment import (
    apply_photometric,
    consensus_edges,
    cv_bgr_to_hsv,
    cv_hsv_to_bgr,
    photometric_distortion,
    photometric_params,
)
from spbench.losses import LossConfig
from spbench.losses.edge import edge_loss, edge_weights
from spbench.models.registry import get_method, parameter_groups
from spbench.models.ssm.scan import (
    linear_scan,
    linear_scan_reference,
    selective_scan,
    selective_scan_reference,
)
from spbench.models.ssm.ssmamba import GEncoder, LEncoder, _quadrants, ssm, ssm_training_loss
from spbench.models.ssm.vmamba import cross_merge, cross_scan, lelu

#: Reduced-width configuration for behaviour tests (same code paths, every stage present).
TINY = {"dims": 8, "depths": (1, 1, 1, 0), "dulbrn": 8}


# ----------------------------------------------------------------------------- scan
@pytest.mark.parametrize("length,chunk", [(37, 8), (20, 128), (16, 4)])
def test_selective_scan_matches_sequential_forward_and_grad(length, chunk):
    g = torch.Generator().manual_seed(length)
    b, k, d = 2, 4, 3
    f64 = torch.float64

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=f64).requires_grad_()

    u, delta = rnd(b, k * d, length), rnd(b, k * d, length)
    a = (-torch.rand(k * d, 1, generator=g, dtype=f64) * 2 - 0.05).requires_grad_()
    bm, cm = rnd(b, k, 1, length), rnd(b, k, 1, length)
    dm, bias = rnd(k * d), rnd(k * d)
    args = (u, delta, a, bm, cm, dm, bias)
    y = selective_scan(*args, chunk=chunk)
    y_ref = selective_scan_reference(*args)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    w = torch.randn(y.shape, generator=g, dtype=f64)
    grads = torch.autograd.grad((y * w).sum(), args)
    grads_ref = torch.autograd.grad((y_ref * w).sum(), args)
    for got, ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-10)


def test_linear_scan_gradcheck_and_long_decay():
    g = torch.Generator().manual_seed(0)
    la = (-torch.rand(2, 13, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.randn(2, 13, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: linear_scan(x, y, 5), (la, b))
    # Strong decay over a long sequence in float32: no overflow (all exponents ≤ 0).
    la32 = torch.full((1, 300), -30.0)
    b32 = torch.ones(1, 300)
    h = linear_scan(la32, b32, chunk=128)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, linear_scan_reference(la32, b32))


def test_cross_scan_merge_are_adjoint():
    g = torch.Generator().manual_seed(1)
    b, c, h, w = 2, 3, 4, 5
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    y = torch.randn(b, 4, c, h * w, generator=g, dtype=torch.float64)
    lhs = (cross_scan(x) * y).sum()
    rhs = (x.flatten(2) * cross_merge(y.view(b, 4, c, h, w))).sum()
    torch.testing.assert_close(lhs, rhs)
    # Direction 1 is column-major, 2 and 3 are the reversals.
    xs = cross_scan(x)
    torch.testing.assert_close(xs[:, 1], x.transpose(2, 3).flatten(2))
    torch.testing.assert_close(xs[:, 3], xs[:, 1].flip(-1))


def test_lelu_formula():
    x = torch.linspace(-30, 30, 101, dtype=torch.float64)
    sp = torch.log1p(torch.exp(x))
    ref = x * sp / (-torch.log(torch.sigmoid(x)) + sp)
    torch.testing.assert_close(lelu(x), ref)
    assert torch.isfinite(lelu(torch.tensor([-200.0, 200.0]))).all()


# ----------------------------------------------------------------------------- model size
@pytest.fixture(scope="module")
def meta_stage2():
    with torch.device("meta"):
        return ssm(stage="stage2")


def _count(params) -> int:
    return sum(p.numel() for p in params)


def test_parameter_count_and_ungrouped(meta_stage2):
    m = meta_stage2
    counts = {
        "total": _count(m.parameters()),
        "global_encoder": _count(m.global_encoder.parameters()),
        "local_model": _count(m.local_model.parameters()),
        "requires_grad": _count(p for p in m.parameters() if p.requires_grad),
    }
    assert counts == {
        "total": 72_826_870,
        "global_encoder": 36_395_218,
        "local_model": 33_945_168,
        "requires_grad": 36_431_652,
    }, counts
    grouped = {id(p) for group in parameter_groups(m, 4e-4) for p in group["params"]}
    ungrouped = [
        (n, p) for n, p in m.named_parameters() if p.requires_grad and id(p) not in grouped
    ]
    assert _count(p for _, p in ungrouped) == 101_378
    names = {n.rsplit(".", 1)[-1] for n, _ in ungrouped}
    assert names == {"A_logs", "Ds", "global_rate", "local_rate"}
    assert len(ungrouped) == 2 * 19 + 2
    assert _count(p for p in m.parameters() if p.requires_grad and id(p) in grouped) == 36_330_274


def test_stage1_parameter_count_and_ungrouped():
    with torch.device("meta"):
        g = ssm(stage="stage1")
    assert isinstance(g, GEncoder)
    assert _count(g.parameters()) == 36_395_218
    grouped = {id(p) for group in parameter_groups(g, 4e-4) for p in group["params"]}
    ungrouped = [n for n, p in g.named_parameters() if id(p) not in grouped]
    assert len(ungrouped) == 38
    assert all(n.startswith("encoder.layers.") and n.endswith(("A_logs", "Ds")) for n in ungrouped)


def test_upstream_state_dict_names(meta_stage2):
    shapes = {k: tuple(v.shape) for k, v in meta_stage2.state_dict().items()}
    expected = {
        "local_model.patch_embed.0.weight": (48, 3, 3, 3),
        "local_model.patch_embed.2.weight": (48,),
        "local_model.patch_embed.5.weight": (96, 48, 3, 3),
        "local_model.patch_embed.7.bias": (96,),
        "local_model.layers.0.blocks.0.op.in_proj.weight": (192, 96),
        "local_model.layers.0.blocks.0.op.conv2d.weight": (192, 1, 3, 3),
        "local_model.layers.0.blocks.0.op.x_proj_weight": (4, 8, 192),
        "local_model.layers.0.blocks.0.op.dt_projs_weight": (4, 192, 6),
        "local_model.layers.0.blocks.0.op.dt_projs_bias": (4, 192),
        "local_model.layers.0.blocks.0.op.A_logs": (768, 1),
        "local_model.layers.0.blocks.0.op.Ds": (768,),
        "local_model.layers.0.blocks.0.op.out_norm.weight": (192,),
        "local_model.layers.0.blocks.0.op.out_proj.weight": (96, 192),
        "local_model.layers.2.blocks.14.mlp.fc1.weight": (1536, 384),
        "local_model.layers.2.blocks.14.norm2.bias": (384,),
        "local_model.layers.2.downsample.1.weight": (768, 384, 3, 3),
        "local_model.layers.2.downsample.3.weight": (768,),
        "local_model.npt_conv1.0.weight": (24, 3, 3, 3),
        "local_model.npt_conv2.0.bias": (48,),
        "local_model.outnorm2.weight": (384,),
        "global_encoder.encoder.layers.1.blocks.1.op.x_proj_weight": (4, 14, 384),
        "global_encoder.up_concat4.up.0.weight": (384, 192, 4, 4),
        "global_encoder.up_concat1.conv1.1.running_mean": (24,),
        "global_encoder.sup.weight": (9, 24, 1, 1),
        "global_encoder.edge.bias": (1,),
        "fuse_head.SFT_head.SFT_scale_conv0.weight": (24, 24, 1, 1),
        "fuse_head.SFT_head1.SFT_shift_conv1.bias": (24,),
        "fuse_head.edge_head.6.weight": (1, 48, 1, 1),
        "fuse_head.superpixel_head.6.weight": (9, 48, 1, 1),
        "fuse_head.global_rate": (1,),
        "fuse_head.local_rate": (1,),
        "up_concat2.conv1.0.weight": (48, 96, 3, 3),
    }
    for key, shape in expected.items():
        assert shapes.get(key) == shape, key
    assert not any(k.startswith("local_model.layers.3.blocks.") for k in shapes)


# ----------------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    stage1 = ssm(stage="stage1", **TINY)
    stage2 = ssm(stage="stage2", quadrant_rng=random.Random(0), **TINY)
    return stage1, stage2


def test_quadrant_split_sizes():
    x = torch.zeros(1, 3, 416, 416)
    sizes = [tuple(q.shape[-2:]) for q in _quadrants(x)]
    assert sizes == [(209, 209), (209, 207), (207, 209), (207, 207)]


def test_quadrant_choice_randint_inclusive():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def randint(self, a, b):
            assert (a, b) == (0, 4)
            return self.value

    with torch.device("meta"):
        m = LEncoder(**TINY)
    for draw, quadrant in [(0, 0), (1, 1), (2, 2), (3, 3), (4, 3)]:
        m.quadrant_rng = Fixed(draw)
        assert m._choose_quadrant() == quadrant


def test_only_chosen_quadrant_gets_gradient(tiny_models):
    _, m = tiny_models
    m.train()
    for seed in range(3):
        m.quadrant_rng = random.Random(seed)
        x2 = torch.randn(1, 3, 64, 64, requires_grad=True)
        feats = m._local_features(x2)
        sum(f.sum() for level in feats for f in level).backward()
        q = m.last_quadrant
        grad = x2.grad.abs().sum(dim=(0, 1))
        r = c = 64 // 2 + 1
        regions = [grad[:r, :c], grad[:r, c:], grad[r:, :c], grad[r:, c:]]
        for k, region in enumerate(regions):
            assert (region.sum() > 0) == (k == q), (k, q)
        assert all(f.requires_grad == (k == q) for k, level in enumerate(feats) for f in level)


@pytest.mark.parametrize("stage", [0, 1])
def test_a_size_off_the_grid_is_refused_by_name(tiny_models, stage):
    """72×72 died in the decoder ("Sizes of tensors must match"); SCN's error now, for both."""
    with torch.no_grad(), pytest.raises(ValueError, match="multiple of the grid stride 16"):
        tiny_models[stage].eval()(torch.zeros(1, 3, 72, 72))


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
@pytest.mark.parametrize("training", [True, False])
def test_outputs_are_distributions(tiny_models, stage, training):
    model = tiny_models[0] if stage == "stage1" else tiny_models[1]
    model.train(training)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
    q = out.assignment
    assert q.shape == (2, 9, 32, 32)
    assert (q >= 0).all()
    torch.testing.assert_close(q.sum(1), torch.ones(2, 32, 32))
    assert out.embedding.shape == (2, 8, 32, 32)
    if training:
        assert out.extras["edge_logits"].shape == (2, 1, 32, 32)
    else:
        assert out.extras is None


def test_init_from_previous_freezes_global_encoder(tiny_models):
    stage1, _ = tiny_models
    with torch.no_grad():
        for p in stage1.parameters():
            p.add_(0.01)
    torch.manual_seed(1)
    m = LEncoder(**TINY)
    m.init_from_previous(stage1.state_dict())
    for k, v in stage1.state_dict().items():
        torch.testing.assert_close(m.global_encoder.state_dict()[k], v)
    assert not any(p.requires_grad for p in m.global_encoder.parameters())
    assert not m.global_encoder.training
    assert any(p.requires_grad for p in m.local_model.parameters())
    m.train()  # upstream quirk: the frozen encoder returns to training mode (§8 item 12)
    assert m.global_encoder.training
    m2 = LEncoder(freeze_global_bn=True, **TINY)
    m2.train()
    assert not m2.global_encoder.training and m2.local_model.training


def test_fusion_adds_local_rate():
    head = ssm_pkg.ssmamba.Local8x8_fuse_head(4, 4)
    loc, glo = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    with torch.no_grad():
        head.local_rate.fill_(0.5)
        _, _, fuse = head(loc, glo)
        f1, f2 = head.SFT_head(loc, glo), head.SFT_head1(loc, glo)
    torch.testing.assert_close(fuse, f1 + 0.5 + f2)


# ----------------------------------------------------------------------------- edge loss
def test_edge_loss_hand_case():
    targets = torch.tensor([[[1, 0], [0, 2]], [[0, 0], [1, 0]]], dtype=torch.uint8)  # 2 pos, 5 neg
    logits = torch.tensor([[[0.5, -1.0], [2.0, 3.0]], [[0.0, 1.0], [-2.0, 0.3]]])
    w = edge_weights(targets)
    w_pos, w_neg = 5 / 7, 1.1 * 2 / 7
    expected_w = torch.tensor([[[w_pos, w_neg], [w_neg, 0.0]], [[w_neg, w_neg], [w_pos, w_neg]]])
    torch.testing.assert_close(w, expected_w)
    t = targets.float()
    bce = torch.clamp(logits, min=0) - logits * t + torch.log1p(torch.exp(-logits.abs()))
    expected = 10 * (expected_w * bce).sum() / 8  # mean over all 8 pixels, ignored included
    torch.testing.assert_close(edge_loss(logits.unsqueeze(1), targets), expected)
    # Ignored pixels do not influence the loss.
    logits2 = logits.clone()
    logits2[0, 1, 1] = 100.0
    torch.testing.assert_close(edge_loss(logits2, targets), expected)


# ----------------------------------------------------------------------------- augmentation
def _cv_pipeline(img: np.ndarray, p: dict) -> np.ndarray:
    """Upstream ``PhotometricDistort`` with given draws (HWC float32, OpenCV conversions)."""
    import cv2

    im = img.copy() + np.float32(p["brightness"])
    if p["contrast_first"]:
        im = im * np.float32(p["contrast1"])
    im = cv2.cvtColor(im.astype(np.float32), cv2.COLOR_BGR2HSV)
    im[:, :, 1] *= np.float32(p["saturation"])
    if p["hue_on"]:
        im[:, :, 0] += np.float32(p["hue"])
        im[:, :, 0][im[:, :, 0] > 360.0] -= 360.0
        im[:, :, 0][im[:, :, 0] < 0.0] += 360.0
    im = cv2.cvtColor(im, cv2.COLOR_HSV2BGR)
    if not p["contrast_first"]:
        im = im * np.float32(p["contrast2"])
    return im


def test_photometric_matches_opencv_pipeline():
    g = torch.Generator().manual_seed(5)
    n = 8
    images = torch.rand(n, 3, 9, 11, generator=g) * 255
    params = photometric_params(n, torch.Generator().manual_seed(7), probability=0.9)
    assert 0 < int(params["contrast_first"].sum()) < n  # both orders are exercised
    assert bool(params["hue_on"].any()) and bool((params["saturation"] != 1).any())
    out = apply_photometric(images, params)
    for i in range(n):
        p = {k: v[i].item() for k, v in params.items()}
        ref = _cv_pipeline(images[i].permute(1, 2, 0).numpy(), p)
        np.testing.assert_allclose(out[i].permute(1, 2, 0).numpy(), ref, rtol=1e-4, atol=2e-3)


def test_photometric_deterministic_and_identity():
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255
    a = photometric_distortion(images, torch.Generator().manual_seed(3))
    b = photometric_distortion(images, torch.Generator().manual_seed(3))
    c = photometric_distortion(images, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, images)
    ident = photometric_distortion(images, torch.Generator().manual_seed(3), probability=0.0)
    torch.testing.assert_close(ident, images, rtol=0, atol=1e-3)


def test_hsv_conversions_match_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    img = rng.uniform(-40, 300, (8, 10, 3)).astype(np.float32)
    img[0, 0] = [5, 5, 5]
    img[0, 1] = [-5, -10, -20]
    hsv = cv_bgr_to_hsv(torch.from_numpy(img).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(hsv, cv2.cvtColor(img, cv2.COLOR_BGR2HSV), rtol=1e-5, atol=1e-4)
    back = cv_hsv_to_bgr(torch.from_numpy(hsv).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), rtol=1e-5, atol=1e-3)


def test_consensus_edges_hand_case():
    a1 = np.zeros((4, 6), dtype=np.int64)
    a1[:, 3:] = 1  # vertical boundary between columns 2 and 3
    a2 = a1.copy()
    a2[2:, :] = 2  # adds a horizontal boundary between rows 1 and 2
    out = consensus_edges(np.stack([a1, a2]))
    assert out.dtype == np.uint8 and out.shape == (4, 6)
    # Thick 4-connected boundaries: a1 marks columns 2-3 everywhere; a2 marks columns 2-3 in
    # rows 0-1 and rows 1-2 everywhere. Both → 1 (edge), one of two → 2 (ignore), none → 0.
    expected = np.array(
        [
            [0, 0, 1, 1, 0, 0],
            [2, 2, 1, 1, 2, 2],
            [2, 2, 1, 1, 2, 2],
            [0, 0, 2, 2, 0, 0],
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(out, expected)
    # Single annotation: every boundary pixel is a confident edge.
    single = consensus_edges(a1)
    assert set(np.unique(single)) == {0, 1}


# ----------------------------------------------------------------------------- loss, registry
def test_registration():
    method = get_method("ssm")
    r = method.recipe
    assert (r.lr, r.weight_decay, r.batch_size, r.crop, r.val_crop, r.seed) == (
        5e-4,
        4e-4,
        16,
        208,
        320,
        42,
    )
    assert method.loss is ssm_training_loss
    assert method.augment == "ssm" and method.needs_edges
    assert [(s.name, s.uses_variant, s.splits) for s in method.stages] == [
        ("stage1", False, ("train", "val")),
        ("stage2", True, ("train", "val")),
    ]
    with pytest.raises(ValueError):
        ssm(stage="stage3")


def _batch(seed: int = 0) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, :, 12:] = 1
    labels[:, 20:, :] = 2
    edges = torch.from_numpy(consensus_edges(labels.numpy()))[None]
    images = torch.randn(1, 3, 32, 32, generator=g) * 0.1
    images[:, 0] += labels.float() * 0.3
    return SimpleNamespace(images=images, labels=labels, edges=edges)


def test_training_loss_keys_and_eval_has_no_edge(tiny_models):
    stage1, _ = tiny_models
    batch = _batch()
    stage1.train()
    losses = ssm_training_loss(stage1, batch, LossConfig.dlm(), stage="stage1")
    assert set(losses) == {"recon", "pos", "lap", "msd", "edge", "total"}
    assert losses["edge"] > 0
    stage1.eval()
    with torch.no_grad():
        val = ssm_training_loss(stage1, batch, LossConfig.dlm(), stage="stage1")
    assert val["edge"] == 0
    parts = val["recon"] + val["pos"] + val["lap"] + val["msd"]
    torch.testing.assert_close(val["total"], parts)


def test_overfits_one_batch_with_dlm_losses():
    torch.manual_seed(0)
    model = ssm(stage="stage2", quadrant_rng=random.Random(0), **TINY)
    model.train()
    opt = torch.optim.Adam(parameter_groups(model, 0.0), lr=1e-2)
    batch = _batch()
    config = LossConfig.dlm()
    history = []
    for _ in range(10):
        losses = ssm_training_loss(model, batch, config, generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert all(np.isfinite(h["total"]) for h in history)
    assert last["total"] < 0.97 * first["total"], history
    # Every trained term moves down (LAP dominates the total on a 2×2 grid).
    for key in ("recon", "lap", "edge"):
        assert last[key] < first[key], (key, history)


# ----------------------------------------------------------------------------- weight files
def test_vmamba_and_global_weights_load_by_name(tmp_path, tiny_models):
    from spbench.models.ssm.ssmamba import load_vmamba_weights
    from spbench.models.ssm.vmamba import Backbone_VSSM

    torch.manual_seed(3)
    cfg = {"dims": 8, "depths": (1, 1, 1, 0), "dulbrn": 8}
    source = Backbone_VSSM(**cfg)
    # An ImageNet-style checkpoint: no stem/outnorm, plus classifier and stage-3 keys.
    sd = {
        k: v.clone()
        for k, v in source.state_dict().items()
        if not k.startswith(("npt_conv", "outnorm"))
    }
    sd["classifier.head.weight"] = torch.zeros(10, 64)
    sd["layers.3.blocks.0.norm.weight"] = torch.ones(64)
    path = tmp_path / "vssm.pth"
    torch.save({"model": sd}, path)
    target = Backbone_VSSM(**cfg)
    missing, unexpected = load_vmamba_weights(target, str(path))
    assert all(k.startswith(("npt_conv", "outnorm")) for k in missing) and missing
    assert sorted(unexpected) == ["classifier.head.weight", "layers.3.blocks.0.norm.weight"]
    for k, v in sd.items():
        if k in target.state_dict():
            torch.testing.assert_close(target.state_dict()[k], v)
    del sd["layers.0.blocks.0.op.A_logs"]
    with pytest.raises(RuntimeError, match="lack"):
        load_vmamba_weights(target, {"model": sd})

    # SSMamba stage-1 .tar with a DataParallel prefix → frozen global encoder.
    stage1, _ = tiny_models
    gpath = tmp_path / "model_best.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in stage1.state_dict().items()}}, gpath)
    m = ssm(stage="stage2", global_weights=str(gpath), **TINY)
    for k, v in stage1.state_dict().items():
        torch.testing.assert_close(m.global_encoder.state_dict()[k], v)
    assert not any(p.requires_grad for p in m.global_encoder.parameters())


def test_stage2_trains_with_the_global_encoder_in_train_mode(tmp_path, monkeypatch):
    """Stage 2 starts from stage 1 with its frozen encoder put in eval(); training flips it
    back from the first step (upstream does, §8 item 12). It once stayed in eval until the
    first validation, so the weights depended on val_every and a resumed run differed."""
    from spbench import step as step_module
    from spbench.config import load_config
    from spbench.data.synthetic import generate_synthetic
    from spbench.jobs import train_settings
    from spbench.train import train

    data = tmp_path / "data"
    generate_synthetic(data, seed=1, n_train=2, n_val=1, n_test=1, height=48, width=64)
    config = load_config("config/smoke.yaml")
    config["methods"] = ["ssm"]
    config["train"].update(
        steps=1, batch_size=2, crop=32, val_crop=32, val_every=100, checkpoint_every=100,
        device="cpu", threads=2, train_splits=["train"],
    )  # fmt: skip
    modes = []
    original = step_module.TrainStep.__call__

    def record(self, batch):
        modes.append(getattr(self.model, "global_encoder", self.model).training)
        return original(self, batch)

    monkeypatch.setattr(step_module.TrainStep, "__call__", record)
    init = tmp_path / "stage1.pt"
    for stage, out, start in (("stage1", init, None), ("stage2", tmp_path / "s2.pt", init)):
        settings = train_settings(config, "ssm", "base", stage)
        train(data, out, method="ssm", variant="base", seed=0, stage=stage, init=start,
              progress=False, **settings)  # fmt: skip
    assert modes == [True, True]
