"""Tests of the method registry and SCN (``baselines.md`` §1–§2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spbench.models as M
from spbench.losses import LossConfig, superpixel_loss
from spbench.models import registry
from spbench.models.registry import default_training_loss


@pytest.fixture(scope="module")
def scn_model():
    torch.manual_seed(0)
    return M.create_model("scn")


def test_scn_registered_with_dlm_recipe():
    assert "scn" in M.list_methods()
    method = M.get_method("scn")
    assert method.name == "scn"
    assert method.loss is default_training_loss
    r = method.recipe
    assert (r.lr, r.weight_decay, r.batch_size, r.crop, r.val_crop, r.seed) == (
        5e-5,
        4e-4,
        8,
        208,
        320,
        42,
    )
    assert r.n_classes == 50 and r.betas == (0.9, 0.999)


def test_unknown_method_lists_registered_names():
    with pytest.raises(KeyError, match="scn"):
        M.get_method("nope")
    with pytest.raises(KeyError):
        M.create_model("nope")


def test_register_duplicate_and_create():
    recipe = M.Recipe(lr=1e-3, weight_decay=0.0, batch_size=2, crop=32, val_crop=32)

    def custom_loss(output, labels, config, *, generator=None):
        return {"total": output.assignment.sum()}

    try:

        @M.register_method("_test_dummy", recipe=recipe, loss=custom_loss)
        def dummy(width: int = 4) -> nn.Module:
            """A dummy model."""
            return nn.Conv2d(3, width, 1)

        assert dummy(width=2).out_channels == 2  # the decorator returns the builder unchanged
        assert "_test_dummy" in M.list_methods()
        method = M.get_method("_test_dummy")
        assert method.loss is custom_loss
        assert method.description == "A dummy model."
        assert M.create_model("_test_dummy", width=5).out_channels == 5
        with pytest.raises(ValueError, match="already registered"):
            M.register_method("_test_dummy", recipe=recipe)(dummy)
        with pytest.raises(ValueError):
            M.register_method("scn", recipe=recipe)(dummy)
    finally:
        registry.unregister_method("_test_dummy")
    assert "_test_dummy" not in M.list_methods()


def test_scn_parameter_count_and_names(scn_model):
    assert sum(p.numel() for p in scn_model.parameters()) == 2_287_956
    unused = sum(
        p.numel()
        for n, p in scn_model.named_parameters()
        if n.startswith(("pred_mask1", "pred_mask2", "pred_mask3"))
    )
    assert 2_287_956 - unused == 2_269_785
    keys = set(scn_model.state_dict())
    for key in [
        "conv0a.0.weight",
        "conv0a.1.running_var",
        "conv4b.1.bias",
        "deconv3.0.weight",
        "deconv3.0.bias",
        "conv3_1.0.weight",
        "conv0_1.1.weight",
        "pred_mask0.weight",
        "pred_mask3.bias",
    ]:
        assert key in keys, key
    assert "conv0a.0.bias" not in keys  # conv before BN has no bias


def test_scn_init(scn_model):
    for m in scn_model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
            assert torch.all(m.bias == 0)


def test_scn_forward_non_square(scn_model):
    x = torch.randn(2, 3, 32, 48)
    for train in (True, False):
        scn_model.train(train)
        with torch.no_grad():
            out = scn_model(x)
        assert isinstance(out, M.SuperpixelOutput)
        assert out.assignment.shape == (2, 9, 32, 48)
        assert out.embedding.shape == (2, 16, 32, 48)
        assert torch.all(out.assignment >= 0)
        torch.testing.assert_close(out.assignment.sum(1), torch.ones(2, 32, 48))
    scn_model.train()


def test_scn_trains_through_superpixel_loss():
    torch.manual_seed(1)
    model = M.create_model("scn")
    x = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 4, (2, 32, 32))
    res = superpixel_loss(model(x), labels, LossConfig.dlm())
    res["total"].backward()
    assert model.pred_mask0.weight.grad.abs().sum() > 0
    assert model.conv0a[0].weight.grad.abs().sum() > 0
    assert model.pred_mask3.weight.grad is None  # unused head


def test_scn_rejects_bad_input(scn_model):
    with pytest.raises(ValueError, match="multiple"):
        scn_model(torch.randn(1, 3, 40, 48))


def test_scn_rejects_unknown_kwargs():
    with pytest.raises(TypeError):
        M.create_model("scn", n_classes=50)


def test_parameter_groups_name_filter(scn_model):
    groups = M.parameter_groups(scn_model, 4e-4)
    assert [g["weight_decay"] for g in groups] == [4e-4, 0.0]
    decay = {id(p) for p in groups[0]["params"]}
    no_decay = {id(p) for p in groups[1]["params"]}
    named = dict(scn_model.named_parameters())
    assert id(named["conv0a.1.weight"]) in decay  # BN γ is decayed, as upstream
    assert id(named["conv0a.1.bias"]) in no_decay
    assert decay.isdisjoint(no_decay)
    assert decay | no_decay == {id(p) for p in scn_model.parameters()}
    torch.optim.Adam(groups, lr=5e-5)  # valid optimiser groups

    class WithOthers(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.A_logs = nn.Parameter(torch.zeros(3))
            self.global_rate = nn.Parameter(torch.ones(1))

    m = WithOthers()
    groups = M.parameter_groups(m, 0.1)
    grouped = {id(p) for g in groups for p in g["params"]}
    assert id(m.A_logs) not in grouped and id(m.global_rate) not in grouped  # never optimised
    assert grouped == {id(m.lin.weight), id(m.lin.bias)}
