"""Tests of CDS (``docs/baselines.md`` §4) and its CLUB / KL terms (``spbench.losses.club``)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from spbench.losses import LossConfig
from spbench.losses.club import (
    alignment_kl,
    club_learning_loss,
    club_log_likelihood,
    club_upper_bound,
)
from spbench.models import cds as C
from spbench.models import registry


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module single-threaded: on a busy 2-core runner, intra-op threads of these tiny
    convolutions spin against each other and the module takes minutes instead of seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(params) -> int:
    return sum(p.numel() for p in params)


@pytest.fixture(scope="module")
def model() -> C.CDSpixelNet:
    torch.manual_seed(0)
    return C.cds()


def _batch(b: int = 2, h: int = 64, w: int = 64, seed: int = 0) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, 3, h, w, generator=g) * 0.3
    # Four rectangles per image (blocky, several classes per cell at the boundaries).
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    labels = ((yy >= h // 2 - 5).long() * 2 + (xx >= w // 3 + 3).long()).expand(b, h, w)
    images = images + labels[:, None].float() * 0.5  # make the classes visible in the image
    return SimpleNamespace(images=images, labels=labels.clone(), edges=None)


# -- architecture -------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, bias: bool = False) -> int:
    """Parameters of a 3×3 Conv2d (with or without bias) followed by BatchNorm (γ, β)."""
    return 9 * cin * cout + (cout if bias else 0) + 2 * cout


# From rookiie/CDSpixel's layer shapes (models/model_util.py, models/espixel.py): Embedder =
# conv0a 3→64, five 64→64, head0 192→32, head1 35→32 (with bias), all conv+BN; Diffusion =
# log2(16) = 4 water_diffusion stages of a 4×4 ConvTranspose 32→32 (bias) and a conv+BN 64→32;
# Disentangle = two bias-free Linear 32→32; head = 3×3 Conv2d 32→9 with bias.
EMBEDDER = _conv_bn(3, 64) + 5 * _conv_bn(64, 64) + _conv_bn(192, 32) + _conv_bn(35, 32, True)
DIFFUSION = 4 * (16 * 32 * 32 + 32 + _conv_bn(64, 32))
DISENTANGLE = 2 * 32 * 32
HEAD = 9 * 32 * 9 + 9


def test_parameter_counts(model):
    aux = {id(p) for p in model.auxiliary_parameters()}
    main = [p for p in model.parameters() if id(p) not in aux]
    inference = [p for m in model.inference_modules() for p in m.parameters()]
    assert _count(model.encoder.parameters()) == EMBEDDER == 252_352
    assert _count(model.encoder_assit.parameters()) == EMBEDDER
    assert _count(model.MI.parameters()) == DISENTANGLE == 2_048
    assert _count(model.decoder.parameters()) == DIFFUSION == 139_648
    assert _count(model.head.parameters()) == HEAD == 2_601
    assert _count(inference) == EMBEDDER + DISENTANGLE + DIFFUSION + HEAD == 396_649
    assert _count(main) == 2 * EMBEDDER + DISENTANGLE + DIFFUSION + HEAD == 649_001  # training
    assert _count(model.auxiliary_parameters()) == 584  # CLUB
    assert _count(model.parameters()) == 649_001 + 584  # parameters() still includes CLUB
    assert aux == {id(p) for p in model.mi_estimator.parameters()}


def test_state_dict_keys_match_upstream(model):
    keys = set(model.state_dict())
    for key in [
        "encoder.conv0a.0.weight",
        "encoder.conv0a.1.running_mean",
        "encoder.head1.0.bias",  # head1's conv has a bias
        "encoder.head1.1.weight",
        "encoder_assit.conv2b.0.weight",
        "MI.fc.0.weight",
        "MI.fc.2.weight",
        "decoder.up.0.conv_up.0.weight",
        "decoder.up.3.fusion.1.running_var",
        "head.0.weight",
        "head.0.bias",
        "mi_estimator.p_mu.0.weight",
        "mi_estimator.p_logvar.2.bias",
    ]:
        assert key in keys, key
    assert "encoder.conv0a.0.bias" not in keys and "MI.fc.0.bias" not in keys
    assert not any("sobel" in k for k in keys)  # the Sobel buffer is not persistent
    assert len([k for k in keys if k.startswith("decoder.up.")]) == 4 * 8


def test_init(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
            assert torch.all(m.bias == 0)
    # Linear layers keep PyTorch's default init: CLUB biases are not zeroed.
    assert model.mi_estimator.p_mu[0].bias.abs().sum() > 0


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 32, 48)])
def test_forward_train_and_eval(model, shape):
    x = torch.randn(*shape)
    b, _, h, w = shape
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            out = model(x)
        assert out.assignment.shape == (b, 9, h, w)
        assert out.embedding.shape == (b, 32, h, w)
        probs = [out.assignment]
        if train:
            ex = out.extras
            probs.append(ex["assist_assignment"])
            assert ex["unique"].shape == ex["unique_assist"].shape == (b, 32, h, w)
            assert ex["common"].shape == ex["common_assist"].shape == (b, 32)
            assert ex["assist_embedding"].shape == (b, 32, h, w)
        else:
            assert out.extras is None
        for q in probs:
            assert torch.all(q >= 0)
            torch.testing.assert_close(q.sum(1), torch.ones(b, h, w))
    model.train()


def test_eval_forward_skips_encoder_assit(model):
    calls = {"assist": 0, "rgb": 0}
    hooks = [
        model.encoder_assit.register_forward_hook(lambda *_: calls.__setitem__("assist", 1)),
        model.encoder.register_forward_hook(lambda *_: calls.__setitem__("rgb", 1)),
    ]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(1, 3, 32, 32))
        assert calls == {"assist": 0, "rgb": 1}
        model.train()
        with torch.no_grad():
            model(torch.randn(2, 3, 32, 32))
        assert calls == {"assist": 1, "rgb": 1}
    finally:
        for hk in hooks:
            hk.remove()
        model.train()


def test_rejects_bad_input(model):
    with pytest.raises(ValueError, match="multiple"):
        model(torch.randn(1, 3, 40, 48))
    with pytest.raises(TypeError):
        C.cds(n_classes=50)


# -- Sobel map ----------------------------------------------------------------------------


def test_sobel_map_hand_computation():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 4, 5, generator=g, dtype=torch.float64)
    ky = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)
    kernel = ky + ky.T  # signed sum of Sobel-y and Sobel-x
    xp = np.pad(x[0].numpy(), ((0, 0), (1, 1), (1, 1)))  # zero padding 1
    expected = np.zeros((4, 5))
    for yy in range(4):
        for xx in range(5):
            expected[yy, xx] = (kernel[None] * xp[:, yy : yy + 3, xx : xx + 3]).sum()
    got = C.sobel_map(x)
    assert got.shape == (1, 3, 4, 5)
    for c in range(3):
        np.testing.assert_allclose(got[0, c].numpy(), expected, rtol=1e-12, atol=1e-12)
    # A flipped convolution gives the negated map.
    flipped = sum(
        ndimage.convolve(x[0, c].numpy(), k, mode="constant", cval=0.0)
        for c in range(3)
        for k in (ky, ky.T)
    )
    np.testing.assert_allclose(got[0, 0].numpy(), -flipped, rtol=1e-12, atol=1e-12)
    # The model's buffer gives the same map, and a linear ramp gives the analytic value.
    model = C.CDSpixelNet()
    torch.testing.assert_close(model.sobel(x.float()), C.sobel_map(x).float())
    ramp = torch.arange(6.0).repeat(5, 1)[None, None].repeat(1, 3, 1, 1)  # x_c(y, x) = x
    # Interior: Sobel-x of a unit ramp is 8 per channel, Sobel-y 0 → 3·8 = 24.
    assert torch.all(C.sobel_map(ramp)[0, :, 1:-1, 1:-1] == 24)


# -- CLUB and KL --------------------------------------------------------------------------


def test_club_hand_checked():
    mu = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [2.0]])
    logvar = torch.zeros(2, 1)
    # positive: 0, −0.5; negative: −mean(0, 4)/2 = −1, −mean(1, 1)/2 = −0.5 → mean(1, 0).
    assert club_upper_bound(mu, logvar, y).item() == pytest.approx(0.5)
    assert club_log_likelihood(mu, logvar, y).item() == pytest.approx(-0.5)
    assert club_learning_loss(mu, logvar, y).item() == pytest.approx(0.5)
    logvar = torch.tensor([[0.0], [math.log(2.0)]])
    assert club_upper_bound(mu, logvar, y).item() == pytest.approx(0.5)
    assert club_learning_loss(mu, logvar, y).item() == pytest.approx((0.5 + math.log(2)) / 2)
    # One sample: the positive pair is the whole mean, the bound is zero.
    assert club_upper_bound(mu[:1], logvar[:1], y[:1]).item() == 0.0


def test_club_module_matches_functions():
    torch.manual_seed(0)
    club = C.CLUB()
    assert _count(club.parameters()) == 584
    x, y = torch.randn(8, 32), torch.randn(8, 32)
    mu, logvar = club.p_mu(x), club.p_logvar(x)
    assert torch.all(logvar.abs() <= 1)  # tanh
    torch.testing.assert_close(club(x, y), club_upper_bound(mu, logvar, y))
    torch.testing.assert_close(club(x, y, frozen=True), club(x, y))
    torch.testing.assert_close(club.learning_loss(x, y), -club_log_likelihood(mu, logvar, y))
    # frozen: gradient into x, none into the estimator.
    x.requires_grad_(True)
    club(x, y, frozen=True).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in club.parameters())


def test_alignment_kl_hand_checked():
    a = torch.zeros(1, 2, 16, 16, dtype=torch.float64)
    a[:, 1] = math.log(3.0)  # P_A = (1/4, 3/4)
    b = torch.zeros(1, 2, 16, 16, dtype=torch.float64)  # P_B = (1/2, 1/2)
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert alignment_kl(a, b).item() == pytest.approx(expected, rel=1e-6)
    assert alignment_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)
    # Per-cell means, averaged over cells: a second cell with equal distributions halves it.
    a2, b2 = torch.cat([a, b], dim=3), torch.cat([b, b], dim=3)
    assert alignment_kl(a2, b2).item() == pytest.approx(expected / 2, rel=1e-6)
    # Same as upstream's unfold formulation.
    g = torch.Generator().manual_seed(1)
    u, v = torch.randn(2, 32, 32, 48, generator=g), torch.randn(2, 32, 32, 48, generator=g)
    ua = nn.functional.unfold(u, 16, stride=16).permute(0, 2, 1).reshape(2, -1, 32, 256).mean(3)
    va = nn.functional.unfold(v, 16, stride=16).permute(0, 2, 1).reshape(2, -1, 32, 256).mean(3)
    pa, pb = ua.softmax(2), va.softmax(2)
    torch.testing.assert_close(alignment_kl(u, v), (pa * torch.log(pa / pb)).sum(2).mean())


def test_club_and_kl_gradcheck():
    g = torch.Generator().manual_seed(2)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)

    mu, logvar, y = rand(4, 3), rand(4, 3), rand(4, 3)
    assert torch.autograd.gradcheck(club_upper_bound, (mu, logvar, y))
    assert torch.autograd.gradcheck(club_learning_loss, (mu, logvar, y))
    a, b = rand(2, 3, 4, 8), rand(2, 3, 4, 8)
    assert torch.autograd.gradcheck(lambda p, q: alignment_kl(p, q, cell=4), (a, b))
    club = C.CLUB(x_dim=3, y_dim=3).double()
    x = rand(4, 3)
    assert torch.autograd.gradcheck(lambda p, q: club(p, q, frozen=True), (x, y))


# -- training loss ------------------------------------------------------------------------


def test_loss_keys_train_and_eval():
    torch.manual_seed(0)
    model = C.cds()
    batch = _batch()
    cfg = LossConfig.dlm()
    terms = C.cds_training_loss(model, batch, cfg, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {*C.CDS_LOSS_KEYS, "aux_total"}
    assert all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    parts = sum(terms[k] for k in C.CDS_LOSS_KEYS if k != "total")
    torch.testing.assert_close(terms["total"], parts)
    # The main branch is the variant's loss on Q (same MSD draws); the Sobel branch is the plain
    # SCN loss on Q_a: R (not R_w) and Pos, no LAP or MSD (recomputed from the outputs here).
    with torch.no_grad():
        out = model(batch.images)
        main = C.superpixel_loss(out, batch.labels, cfg, generator=torch.Generator().manual_seed(0))
        assist = C.superpixel_loss(
            C.SuperpixelOutput(out.extras["assist_assignment"], out.extras["assist_embedding"]),
            batch.labels,
            LossConfig(),
        )
    for key in ("recon", "pos", "lap", "msd"):
        torch.testing.assert_close(terms[key], main[key])
    assert terms["lap"] > 0  # LAP is on in the DLM variant (0 in the base one, below)
    torch.testing.assert_close(terms["assist_recon"], assist["recon"])
    torch.testing.assert_close(terms["assist_pos"], assist["pos"])
    assert assist["lap"] == 0 and assist["msd"] == 0
    # Eval (validation): the main branch only, no aux_total.
    model.eval()
    with torch.no_grad():
        ev = C.cds_training_loss(model, batch, cfg, generator=torch.Generator().manual_seed(0))
    assert set(ev) == set(C.CDS_LOSS_KEYS)
    for key in ("assist_recon", "assist_pos", "club", "kl"):
        assert ev[key].item() == 0.0
    torch.testing.assert_close(ev["total"], ev["recon"] + ev["pos"] + ev["lap"] + ev["msd"])
    base = C.cds_training_loss(model, batch, LossConfig())
    assert base["lap"].item() == 0.0 and base["msd"].item() == 0.0
    with pytest.raises(ValueError):
        C.cds_training_loss(model, batch, cfg, stage="stage2")


def test_assist_branch_uses_base_config(monkeypatch):
    seen = []
    real = C.superpixel_loss

    def spy(output, labels, config, **kw):
        seen.append(config)
        return real(output, labels, config, **kw)

    monkeypatch.setattr(C, "superpixel_loss", spy)
    torch.manual_seed(0)
    cfg = LossConfig.dlm(lambda_lap=100.0)
    C.cds_training_loss(C.cds(), _batch(1, 32, 32), cfg)
    assert seen == [cfg, dataclasses.replace(cfg, use_lap=False, use_msd=False, use_wr=False)]


def test_aux_total_reaches_only_club():
    torch.manual_seed(0)
    model = C.cds()
    terms = C.cds_training_loss(model, _batch(2, 32, 32), LossConfig.dlm())
    terms["aux_total"].backward(retain_graph=True)
    aux = {id(p) for p in model.auxiliary_parameters()}
    for name, p in model.named_parameters():
        if id(p) in aux:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None or p.grad.abs().sum() == 0, name
    model.zero_grad(set_to_none=True)
    # The model step's total reaches both encoders but not CLUB (frozen upper bound).
    terms["total"].backward()
    assert all(p.grad is None for p in model.auxiliary_parameters())
    assert model.encoder.conv0a[0].weight.grad.abs().sum() > 0
    assert model.encoder_assit.conv0a[0].weight.grad.abs().sum() > 0
    assert model.MI.fc[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("config", [LossConfig(), LossConfig.dlm()], ids=["base", "dlm"])
def test_overfits_one_batch(config):
    torch.manual_seed(0)
    model = C.cds()
    model.train()
    batch = _batch(2, 32, 32)
    aux = {id(p) for p in model.auxiliary_parameters()}
    # As the trainer builds them: name-filtered groups, CLUB excluded by identity.
    groups = registry.parameter_groups(model, C.CDS_RECIPE.weight_decay)
    for group in groups:
        group["params"] = [p for p in group["params"] if id(p) not in aux]
    opt = torch.optim.Adam(groups, lr=2e-3)
    opt_club = torch.optim.Adam(model.auxiliary_parameters(), C.CLUB_LR)
    club_before = [p.detach().clone() for p in model.auxiliary_parameters()]

    def losses() -> dict[str, torch.Tensor]:
        # The same MSD sample every step, so the values are comparable.
        return C.cds_training_loss(model, batch, config, generator=torch.Generator().manual_seed(7))

    def main_total(terms: dict[str, torch.Tensor]) -> tuple[float, float]:
        total = terms["recon"] + terms["pos"] + terms["lap"] + terms["msd"]
        return float(total.detach()), float(terms["recon"].detach())

    first = None
    for _ in range(15):
        terms = losses()
        first = main_total(terms) if first is None else first
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()  # model step (the trainer steps the poly scheduler here)
        opt_club.zero_grad(set_to_none=True)
        terms["aux_total"].backward()  # CLUB step on detached features
        opt_club.step()
    with torch.no_grad():
        last = main_total(losses())
    # LAP dominates the DLM total and cannot drop far on a 2×2-cell image (most windows reach
    # into the zero padding), so the total must drop by 5 % and the reconstruction by 30 %.
    assert math.isfinite(last[0]) and last[0] < 0.95 * first[0], (first, last)
    assert last[1] < 0.7 * first[1], (first, last)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(club_before, model.auxiliary_parameters(), strict=True)
    )


# -- registry -----------------------------------------------------------------------------


def test_registered_recipe():
    method = registry.get_method("cds")
    assert method.loss is C.cds_training_loss
    assert method.augment == "rescale_bicubic"
    assert [s.name for s in method.stages] == ["main"]
    r = method.recipe
    assert (r.lr, r.weight_decay, r.batch_size, r.crop, r.val_crop, r.seed) == (
        5e-4,
        4e-4,
        8,
        208,
        320,
        42,
    )
    assert (C.CDS_POLY_STEPS, C.CDS_POLY_POWER, C.CLUB_LR) == (150_000, 0.9, 5e-4)
    assert (r.schedule, r.schedule_steps, r.schedule_power, r.aux_lr) == (
        "poly",
        150_000,
        0.9,
        5e-4,
    )
    assert isinstance(registry.create_model("cds", stage="main"), C.CDSpixelNet)


def test_club_stays_fp32_under_autocast():
    """The bound is a small difference of log-likelihoods: bf16 autocast must not touch it."""
    torch.manual_seed(0)
    club = C.CLUB()
    x, y = torch.randn(6, 32), torch.randn(6, 32)
    plain = (club(x, y), club(x, y, frozen=True), club.learning_loss(x, y))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = (club(x, y), club(x, y, frozen=True), club.learning_loss(x, y))
        # A bf16 input (the encoders' output under autocast) is computed in fp32 too.
        from_bf16 = club(x.bfloat16(), y.bfloat16())
    for a, b in zip(plain, mixed, strict=True):
        assert b.dtype == torch.float32 and torch.equal(a, b)
    assert from_bf16.dtype == torch.float32
