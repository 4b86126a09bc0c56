"""Tests of the method registry and SCN (``docs/baselines.md`` §1–§2)."""

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


# SCN's layers as fuy34/superpixel_fcn builds them (models/Spixel_single_layer.py, SpixelNet with
# batchNorm=True; models/model_util.py): conv = 3×3 Conv2d without bias + BatchNorm (γ, β);
# deconv = 4×4 ConvTranspose2d with bias; predict_mask = 3×3 Conv2d to 9 channels with bias.
SCN_LAYERS = {
    **{
        name: ("conv", cin, cout)
        for name, cin, cout in [
            ("conv0a", 3, 16), ("conv0b", 16, 16), ("conv1a", 16, 32), ("conv1b", 32, 32),
            ("conv2a", 32, 64), ("conv2b", 64, 64), ("conv3a", 64, 128), ("conv3b", 128, 128),
            ("conv4a", 128, 256), ("conv4b", 256, 256), ("conv3_1", 256, 128),
            ("conv2_1", 128, 64), ("conv1_1", 64, 32), ("conv0_1", 32, 16),
        ]
    },
    **{f"deconv{i}": ("deconv", 2 * c, c) for i, c in enumerate((16, 32, 64, 128))},
    **{f"pred_mask{i}": ("mask", c, 9) for i, c in enumerate((16, 32, 64, 128))},
}  # fmt: skip


def _upstream_count(kind: str, cin: int, cout: int) -> int:
    kernel = 16 if kind == "deconv" else 9
    extra = 2 * cout if kind == "conv" else cout  # BatchNorm γ and β, or the bias
    return kernel * cin * cout + extra


def test_scn_parameter_count_and_names(scn_model):
    """Per layer and in total, the count the upstream layer shapes give (2,287,956; 2,269,785
    without the three unused coarse heads)."""
    got = {}
    for name, p in scn_model.named_parameters():
        got[name.split(".")[0]] = got.get(name.split(".")[0], 0) + p.numel()
    expected = {name: _upstream_count(*spec) for name, spec in SCN_LAYERS.items()}
    assert got == expected
    assert sum(expected.values()) == 2_287_956
    unused = sum(expected[f"pred_mask{i}"] for i in (1, 2, 3))
    assert sum(expected.values()) - unused == 2_269_785
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
