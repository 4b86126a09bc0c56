"""The training step (``spbench.step``): fast-mode switches, non-finite tracking, capturability.

CUDA graphs cannot be captured on the CPU. What makes a step capturable (static shapes, no host
reads of device tensors, no host-to-device copies) is checked here by tracing the step's loss
with ``torch.compile(fullgraph=True)``, which fails on exactly those; the tests marked ``cuda``
capture and replay for real wherever a GPU is present.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
import torch

from spbench.bench import synthetic_batch, term_check, term_tolerance
from spbench.losses import LossConfig, superpixel_loss
from spbench.losses.msd import min_semantic_distance_loss, sample_class_pixels_dense
from spbench.models import create_model, get_method
from spbench.step import FastModes, TrainStep, build_optimizers


def cuda(test):
    """Mark a test that needs a CUDA device: skipped elsewhere, selected on a GPU by ``-m gpu``
    (``benchmarks/gpu_session.sh`` runs them)."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    return pytest.mark.gpu(skip(test))


def _batch(batch_size: int = 2, crop: int = 32, seed: int = 0, device: str = "cpu"):
    return synthetic_batch(
        batch_size,
        crop,
        n_classes=50,
        device=device,
        generator=torch.Generator().manual_seed(seed),
    )


def _scn_step(
    modes: FastModes | None = None, device: str = "cpu", seed: int | None = 0
) -> TrainStep:
    torch.manual_seed(0)
    device = torch.device(device)
    model = create_model("scn").to(device).train()
    spec, config = get_method("scn"), LossConfig.dlm()
    return TrainStep.create(
        model,
        lambda net, batch, gen: spec.loss(net, batch, config, generator=gen),
        spec.recipe,
        device=device,
        modes=modes,
        seed=seed,
    )


# --------------------------------------------------------------------------- capturability


def test_dlm_step_traces_as_one_graph():
    """SCN forward + the full DLM loss (WR, LAP, MSD) and their backward trace with no graph
    break: no host reads and no data-dependent shapes, which a CUDA graph capture needs. The
    traced step computes the same loss and gradients as eager."""
    model = create_model("scn").train()
    config = LossConfig.dlm()
    batch = _batch()

    def step_loss(images, labels):
        return superpixel_loss(model(images), labels, config)["total"]

    def loss_and_grads(fn):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        loss = fn(batch.images, batch.labels)
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    traced, traced_grads = loss_and_grads(
        torch.compile(step_loss, fullgraph=True, backend="aot_eager")
    )
    eager, eager_grads = loss_and_grads(step_loss)
    torch.testing.assert_close(traced, eager)
    assert traced_grads.keys() == eager_grads.keys() and len(eager_grads) > 40
    for name, grad in eager_grads.items():
        torch.testing.assert_close(traced_grads[name], grad, msg=name)


def test_msd_per_image_traces_but_original_needs_the_host():
    z = torch.randn(2, 4, 16, 16)
    labels = torch.randint(0, 3, (2, 16, 16))

    def per_image(z, labels):
        return min_semantic_distance_loss(z, labels, n_classes=3)

    torch.compile(per_image, fullgraph=True, backend="eager")(z, labels)

    def original(z, labels):
        return min_semantic_distance_loss(z, labels, n_classes=3, mode="original")

    with pytest.raises(torch._dynamo.exc.TorchDynamoException):  # flat list's length: host
        torch.compile(original, fullgraph=True, backend="eager")(z, labels)


def test_dense_sampling_slots():
    labels = torch.zeros(2, 12, 12, dtype=torch.long)
    labels[0, :, 6:] = 3  # image 0: classes {0, 3}; image 1: class 0 only
    coords, present = sample_class_pixels_dense(labels, 5, 10, torch.Generator().manual_seed(0))
    assert coords.shape == (2, 5, 10) and present.dtype == torch.bool
    assert present.tolist() == [
        [True, False, False, True, False],
        [True, False, False, False, False],
    ]
    flat = labels.reshape(2, -1)
    for b, c in present.nonzero().tolist():
        assert (flat[b, coords[b, c]] == c).all()
        assert coords[b, c].unique().numel() == 10  # 72 or 144 pixels: distinct samples
    assert ((coords >= 0) & (coords < 144)).all()  # absent slots still index real pixels


def test_msd_ignores_absent_class_slots():
    """Extra class slots (n_classes beyond the labels) change neither the value nor the grad.

    With fewer samples than any class has pixels, the samples are a prefix of the shuffle, so
    both calls draw the same pixels."""
    labels = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    z = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    a = min_semantic_distance_loss(
        z, labels, n_classes=3, n_samples=5, generator=torch.Generator().manual_seed(4), margin=10
    )
    (grad_a,) = torch.autograd.grad(a, z)
    b = min_semantic_distance_loss(
        z, labels, n_classes=50, n_samples=5, generator=torch.Generator().manual_seed(4), margin=10
    )
    (grad_b,) = torch.autograd.grad(b, z)
    assert a > 0
    assert torch.equal(a, b)
    assert torch.isfinite(grad_b).all()
    torch.testing.assert_close(grad_a, grad_b, rtol=0, atol=0)


# --------------------------------------------------------------------------- TrainStep


def test_eager_step_is_the_plain_training_step():
    """FastModes() runs forward, loss, backward and Adam exactly as a hand-written loop."""
    batch = _batch()
    step = _scn_step()
    reference = copy.deepcopy(step.model)
    optimizer, _ = build_optimizers(reference, get_method("scn").recipe)
    generator = torch.Generator().manual_seed(0)
    config = LossConfig.dlm()
    for _ in range(2):
        terms = step(batch)
        ref_terms = superpixel_loss(
            reference(batch.images), batch.labels, config, generator=generator
        )
        optimizer.zero_grad(set_to_none=True)
        ref_terms["total"].backward()
        optimizer.step()
        assert torch.equal(terms["total"].detach(), ref_terms["total"].detach())
    for (name, got), want in zip(
        step.model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), name


def test_set_lr_applies_to_every_group():
    step = _scn_step()
    step.set_lr(1e-3)
    assert step.lr == 1e-3
    assert {g["lr"] for g in step.optimizer.param_groups} == {1e-3}


def test_first_nonfinite_names_the_step_and_its_terms():
    calls = {"n": 0}

    def loss(net, batch, gen):
        terms = superpixel_loss(net(batch.images), batch.labels, LossConfig())
        calls["n"] += 1
        if calls["n"] == 2:
            terms["total"] = terms["total"] * float("nan")
        return terms

    model = create_model("scn").train()
    optimizer, _ = build_optimizers(model, get_method("scn").recipe)
    step = TrainStep(model, loss, optimizer, device=torch.device("cpu"))
    batch = _batch()
    step(batch)
    assert step.first_nonfinite() is None
    step(batch)
    step(batch)  # later steps do not move the record
    bad_step, terms = step.first_nonfinite()
    assert bad_step == 2
    assert set(terms) == {"recon", "pos", "lap", "msd", "total"}
    assert terms["total"] != terms["total"] and terms["recon"] > 0


def test_fast_modes_from_config_and_device():
    assert FastModes.from_config(None) == FastModes()
    assert FastModes.from_config({"amp": False}).amp == "off"  # YAML's bare `off`
    modes = FastModes.from_config({"amp": "bf16", "cuda_graph": True, "tf32": True})
    assert modes.label == "tf32+bf16+cuda_graph"
    with pytest.raises(ValueError, match=r"unknown train\.fast keys"):
        FastModes.from_config({"cudagraph": True})
    on_cpu = modes.for_device(torch.device("cpu"))
    assert on_cpu == FastModes(amp="bf16")
    with pytest.raises(ValueError, match="default CUDA generator"):
        TrainStep(
            create_model("scn"),
            lambda *a: {},
            None,
            device=torch.device("cuda"),
            modes=FastModes(cuda_graph=True),
            generator=torch.Generator(),
        )


# bf16 keeps 8 significant bits: unit roundoff u = 2⁻⁸. Over seeds 0–3 the CPU terms differ from
# fp32 by at most 4.8e-3 (recon, pos, lap) and 2.1e-3 (total), so 2u bounds them; MSD, a mean of
# minimum distances between sampled pixels, loses relative precision by cancellation (observed
# 4.1e-2). fp32 with another memory layout only reorders sums (observed ≤ 1.4e-5).
BF16_U = 2.0**-8
CPU_BOUNDS = {
    "bf16": {"recon": 2 * BF16_U, "pos": 2 * BF16_U, "lap": 2 * BF16_U, "total": 2 * BF16_U},
    "fp32": {"recon": 1e-4, "pos": 1e-4, "lap": 1e-4, "msd": 1e-4, "total": 1e-4},
}


@pytest.mark.parametrize(
    "modes", [FastModes(amp="bf16"), FastModes(channels_last=True)], ids=lambda m: m.label
)
def test_cpu_fast_modes_bound_every_term(modes):
    """The fast modes CI can run (on the CPU) keep each DLM term within the precision's bound,
    and bf16 is really in use (its differences exceed anything fp32 reordering gives)."""
    diffs = term_check("scn", "lap", modes=modes, batch_size=2, crop=32, device="cpu")
    bounds = CPU_BOUNDS["bf16" if modes.amp == "bf16" else "fp32"]
    assert set(diffs) == {"recon", "pos", "lap", "msd", "total"}
    for term, bound in bounds.items():
        assert diffs[term] < bound, (term, diffs)
    if modes.amp == "bf16":
        assert diffs["msd"] < 0.05, diffs
        # LAP's neighbour sums run in fp32 under autocast and dominate the total (λ = 360),
        # so only the reconstruction term shows bf16 at work.
        assert diffs["recon"] > 1e-4, diffs


def test_train_records_its_fast_modes(tmp_path: Path, caplog):
    """``train.fast`` reaches the step; CUDA-only modes fall back on the CPU with a log line."""
    from spbench.checkpoint import load_checkpoint
    from spbench.config import load_config
    from spbench.data.synthetic import generate_synthetic
    from spbench.jobs import train_settings
    from spbench.train import train

    root = Path(__file__).resolve().parents[1]
    data = tmp_path / "data"
    generate_synthetic(data, seed=0, n_train=2, n_val=1, n_test=1, height=48, width=48)
    config = load_config(root / ".test/config/config.yaml")
    config["train"].update(
        steps=2,
        batch_size=2,
        crop=32,
        val_crop=32,
        val_batches=1,
        device="cpu",
        train_splits=["train"],
        fast={"amp": "bf16", "channels_last": True, "cuda_graph": True},
    )
    with caplog.at_level(logging.WARNING):
        out = train(
            data,
            tmp_path / "ckpt.pt",
            method="scn",
            variant="lap",
            seed=0,
            **train_settings(config, "scn", "lap"),
            progress=False,
        )
    assert "cuda_graph and tf32 need a CUDA device" in caplog.text
    ckpt = load_checkpoint(out)
    assert ckpt["fast_modes"] == "bf16+channels_last"
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


# --------------------------------------------------------------------------- on a GPU


@cuda
@pytest.mark.parametrize(
    "modes",
    [
        FastModes(tf32=True),
        FastModes(channels_last=True),
        FastModes(amp="bf16", channels_last=True),
        FastModes(cuda_graph=True),
        FastModes(amp="bf16", channels_last=True, cuda_graph=True),
        FastModes(compile=True),
    ],
    ids=lambda v: v.label,
)
def test_fast_mode_terms_match_fp32_on_cuda(modes):
    """Every fast mode computes each DLM term as fp32 eager does (torch.compile once did not),
    within the tolerance the step benchmark's ``term_ok`` uses."""
    diffs = term_check("scn", "lap", modes=modes, batch_size=8, crop=208, device="cuda")
    assert max(diffs.values()) <= term_tolerance(modes), diffs


@cuda
def test_cuda_graph_trains_like_eager():
    """Replays follow the eager trajectory: same weights after a few steps with a schedule."""
    batches = [_batch(8, 96, seed=s, device="cuda") for s in range(3)]
    eager = _scn_step(device="cuda", seed=None)
    graphed = _scn_step(FastModes(cuda_graph=True), device="cuda")
    graphed.load_weights(eager.model.state_dict())
    for step, batch in enumerate(batches * 2):
        for runner in (eager, graphed):
            runner.set_lr(5e-5 * (1 - step / 10))
        torch.manual_seed(step)
        a = {k: float(v) for k, v in eager(batch).items()}
        torch.manual_seed(step)
        b = {k: float(v) for k, v in graphed(batch).items()}
        assert a == pytest.approx(b, rel=1e-4), step
    for (name, got), want in zip(
        graphed.model.state_dict().items(), eager.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-6, msg=name)


@cuda
def test_capture_leaves_the_state_untouched():
    step = _scn_step(FastModes(cuda_graph=True), device="cuda")
    before = {k: v.clone() for k, v in step.model.state_dict().items()}
    step.capture(_batch(8, 64, device="cuda"))
    for name, tensor in step.model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert step.first_nonfinite() is None
    assert all(float(s["step"]) == 0 for s in step.optimizer.state.values())  # Adam starts afresh


def test_restore_undoes_warmup_steps():
    """What capture() relies on: after warm-up steps, restoring the snapshot gives back the
    weights, buffers and counters, and Adam starts afresh (its new state zeroed), so the next
    step equals a first step."""
    batch = _batch()
    step = _scn_step()
    fresh = _scn_step()
    saved = step._snapshot()
    for _ in range(2):
        step(batch)
    step._restore(saved)
    for (name, got), want in zip(
        step.model.state_dict().items(), fresh.model.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), name
    assert int(step._count) == 0 and int(step._first_bad) == -1
    assert all(float(s["step"]) == 0 for s in step.optimizer.state.values())
    step.generator.manual_seed(0)
    a = step(batch)
    b = fresh(batch)
    assert torch.equal(a["total"], b["total"])
    for (name, got), want in zip(
        step.model.state_dict().items(), fresh.model.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), name


def test_tf32_flags_are_set_for_the_block_and_restored():
    from spbench.step import _tf32

    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with _tf32(True):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with pytest.raises(RuntimeError), _tf32(False):
        assert not torch.backends.cudnn.allow_tf32  # off means off for convolutions too
        raise RuntimeError
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == flags


def test_optimizer_state_round_trip():
    """What a resume checkpoint stores of the optimisers loads back into a fresh step."""
    batch = _batch()
    step = _scn_step()
    step(batch)
    saved = step.optimizer_state()
    other = _scn_step()
    other.load_optimizer_state(saved)
    first = next(iter(step.optimizer.state.values()))
    loaded = next(iter(other.optimizer.state.values()))
    assert float(loaded["step"]) == float(first["step"]) == 1
    assert torch.equal(loaded["exp_avg"], first["exp_avg"])


def test_methods_whose_step_cannot_be_captured_train_without_the_graph():
    """SSM draws its quadrant on the host in forward (a graph would replay one quadrant
    forever) and AINet's boundary patches have data-dependent shapes: train.fast.cuda_graph
    leaves them eager, and the other fast modes on."""
    from spbench.models import get_method

    capturable = {m: get_method(m).graph_capturable for m in ("scn", "cds", "ainet", "ssm")}
    assert capturable == {"scn": True, "cds": True, "ainet": False, "ssm": False}
    modes = FastModes(cuda_graph=True, tf32=True, amp="bf16")
    assert modes.for_method("ssm", capturable=False) == FastModes(tf32=True, amp="bf16")
    assert modes.for_method("scn", capturable=True) is modes


def test_cuda_requested_without_a_gpu_is_a_user_error():
    """train.device: cuda with no visible GPU (e.g. under --resources gpu=0) says what to do
    instead of a bare RuntimeError traceback."""
    import torch

    from spbench.errors import UserError
    from spbench.train import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(UserError, match=r"set train\.device to auto or cpu"):
        resolve_device("cuda")
