"""SSMamba (Jia et al., IEEE SPL 2025): global and local encoders (``docs/baselines.md`` §5).

Follows ``jiaxhm/SSMamba: models/Global_Model.py`` (``GEncoder``) and
``models/Local_Model.py`` (``unetUp``, ``SFTLayer``, ``SFTLayerl``, ``Local8x8_fuse_head``,
``LEncoder``), with DLM's training-mode outputs (``models/ssm/local_model.py``: the fused
feature is returned as the MSD embedding). Module names are upstream's, so the SSMamba
stage-1 (``GEncoder``) and final (``LEncoder``) checkpoints load by state-dict name.

Two stages (``docs/baselines.md`` §6.1, §7 item 4):

- ``build(stage="stage1")`` → :class:`GEncoder`, trained with SCN loss + L_edge;
- ``build(stage="stage2")`` → :class:`LEncoder`: the stage-1 model frozen inside
  (:meth:`LEncoder.init_from_previous`), a local VMamba on the four quadrants of the ×2 input,
  and the fusion head.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spbench.catalogue import SSM_RECIPE, SSM_STAGES
from spbench.checkpoint import state_dict_of
from spbench.constants import CELL_SIZE
from spbench.grid import grid_shape
from spbench.losses.edge import edge_loss
from spbench.losses.recipe import superpixel_loss
from spbench.models.registry import (
    SuperpixelOutput,
    TrainingBatch,
    register_method,
)
from spbench.models.ssm.vmamba import LELU, Backbone_VSSM, lelu

__all__ = [
    "SSM_RECIPE",
    "SSM_STAGES",
    "GEncoder",
    "LEncoder",
    "Local8x8_fuse_head",
    "SFTLayer",
    "SFTLayerl",
    "load_vmamba_weights",
    "ssm",
    "ssm_training_loss",
    "unetUp",
]

log = logging.getLogger(__name__)

#: Keys of an ImageNet VMamba checkpoint that SSMamba's backbone does not have.
_VMAMBA_UNEXPECTED = (re.compile(r"^classifier\."), re.compile(r"^layers\.3\.blocks\."))
#: Keys of SSMamba's backbone that an ImageNet VMamba checkpoint does not have (§5.5).
_VMAMBA_MISSING = (re.compile(r"^npt_conv[12]\."), re.compile(r"^outnorm\d+\."))

# The SSMamba backbone configuration (docs/baselines.md §5.2).
_BACKBONE_DEFAULTS: dict[str, Any] = {
    "dims": 96,
    "depths": (2, 2, 15, 0),
    "drop_path_rate": 0.3,
    "out_indices": (0, 1, 2),
    "mlp_ratio": 4.0,
    "d_state": 1,
    "ssm_ratio": 2.0,
    "dt_rank": "auto",
    "d_conv": 3,
    "conv_bias": False,
}


# ---------------------------------------------------------------------------------------------
# Weight files
# ---------------------------------------------------------------------------------------------
def _legacy_vmamba_names(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Renames of ``VSSM._load_from_state_dict`` for old VMamba checkpoints."""
    rules = [(r"^patch_embed\.proj", "patch_embed.0"), (r"^patch_embed\.norm", "patch_embed.2")]
    rules += [
        (r"^(layers\.\d+\.blocks\.\d+)\.ln_1", r"\1.norm"),
        (r"^(layers\.\d+\.blocks\.\d+)\.self_attention", r"\1.op"),
        (r"^norm\.", "classifier.norm."),
        (r"^head\.", "classifier.head."),
    ]
    out = {}
    for k, v in sd.items():
        for pattern, repl in rules:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


def load_vmamba_weights(backbone: Backbone_VSSM, weights: Any) -> tuple[list[str], list[str]]:
    """Load ImageNet VMamba-S weights into a backbone with ``strict=False`` (§5.5).

    Parameters
    ----------
    backbone : Backbone_VSSM
    weights : str, path or mapping
        ``vssm_small_0229_ckpt_epoch_222.pth`` (``checkpoint["model"]``; read by
        :func:`spbench.checkpoint.read_checkpoint`, so no code in it runs) or a state dict.

    Returns
    -------
    (missing, unexpected) : tuple of list of str

    Raises
    ------
    RuntimeError
        If a key other than the stem ``npt_conv1/2.*`` and ``outnorm0–2.*`` is missing.
    """
    sd = _legacy_vmamba_names(state_dict_of(weights))
    result = backbone.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if not any(p.match(k) for p in _VMAMBA_MISSING)]
    if missing:
        raise RuntimeError(f"VMamba weights lack backbone keys: {missing[:10]} ...")
    unexplained = [
        k for k in result.unexpected_keys if not any(p.match(k) for p in _VMAMBA_UNEXPECTED)
    ]
    log.info(
        "VMamba weights loaded: %d expected missing (stem, outnorm), %d unexpected ignored "
        "(classifier, stage 3)",
        len(result.missing_keys),
        len(result.unexpected_keys),
    )
    if unexplained:
        log.warning("VMamba weights: unexplained unexpected keys ignored: %s", unexplained)
    return list(result.missing_keys), list(result.unexpected_keys)


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------
class unetUp(nn.Module):
    """``ConvT(up → mid, 4, 2, 1) → BN → LELU`` on the deep input, concat, ``Conv3×3 → BN → LELU``.

    Parameters
    ----------
    in_size, out_size : int
        Channels of the concatenation ``[skip, up]`` and of the output.
    upsize, mid_size : int
        Channels of the deep input and of its upsampled version.
    """

    def __init__(self, in_size: int, out_size: int, upsize: int, mid_size: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(upsize, mid_size, 4, 2, 1, bias=False),
            nn.BatchNorm2d(mid_size),
            LELU(),
        )
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_size, out_size, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_size),
            LELU(),
        )

    def forward(self, inputs1: Tensor, inputs2: Tensor) -> Tensor:
        """``conv1(cat([skip, up(deep)]))`` at the skip's resolution (twice the deep one)."""
        return self.conv1(torch.cat([inputs1, self.up(inputs2)], 1))


def _decoders(chans: Sequence[int]) -> list[unetUp]:
    """``up_concat4..1`` for feature channels ``chans`` (finest first; 24, 48, 96, 192, 384)."""
    c0, c1, c2, c3, c4 = chans
    return [
        unetUp(2 * c3, c3, c4, c3),  # (384, 192, 384, 192)
        unetUp(2 * c2, c2, c3, c2),  # (192, 96, 192, 96)
        unetUp(2 * c1, c1, c2, c1),  # (96, 48, 96, 48)
        unetUp(2 * c0, c0, c1, c0),  # (48, 24, 48, 24)
    ]


def _backbone(config: Mapping[str, Any], dulbrn: int, scan_chunk: int) -> Backbone_VSSM:
    return Backbone_VSSM(dulbrn=dulbrn, scan_chunk=scan_chunk, **config)


class GEncoder(nn.Module):
    """SSMamba's global encoder–decoder (``models/Global_Model.py: GEncoder``).

    Parameters
    ----------
    dulbrn : int
        CNN-stem width and decoder output channels (24).
    vmamba_weights : str, optional
        ImageNet VMamba-S checkpoint loaded into ``encoder`` with ``strict=False``.
    scan_chunk : int
        Chunk length of the parallel scan.
    **backbone
        Overrides of the backbone configuration (``dims``, ``depths``, ...; tests use a
        reduced width).

    Notes
    -----
    Two explicit forward modes (``docs/baselines.md`` §8 item 18): :meth:`forward` is stage 1
    (superpixel and edge heads), :meth:`features` the feature list used by
    :class:`LEncoder`.
    """

    def __init__(
        self,
        dulbrn: int = 24,
        vmamba_weights: str | None = None,
        scan_chunk: int = 32,
        **backbone: Any,
    ) -> None:
        super().__init__()
        config = {**_BACKBONE_DEFAULTS, **backbone}
        self.encoder = _backbone(config, dulbrn, scan_chunk)
        if vmamba_weights is not None:
            load_vmamba_weights(self.encoder, vmamba_weights)
        self.up_concat4, self.up_concat3, self.up_concat2, self.up_concat1 = _decoders(
            self.encoder.out_channels
        )
        self.sup = nn.Conv2d(dulbrn, 9, 1)
        self.softmax = nn.Softmax(1)
        self.edge = nn.Conv2d(dulbrn, 1, 1)

    def features(self, x: Tensor) -> list[Tensor]:
        """Stage-2 mode: ``[up1, up2, up3, up4, f4]`` (24 @ 1, 48 @ ½, 96 @ ¼, 192 @ ⅛, 384 @ ¹⁄₁₆).

        Parameters
        ----------
        x : Tensor
            ``[B, 3, H, W]`` normalised RGB, ``H`` and ``W`` multiples of 16 (else
            ``ValueError``, as every model's).
        """
        grid_shape(x.shape[-2], x.shape[-1], CELL_SIZE)  # a clear error, not a decoder mismatch
        f = self.encoder(x)
        up4 = self.up_concat4(f[3], f[4])
        up3 = self.up_concat3(f[2], up4)
        up2 = self.up_concat2(f[1], up3)
        up1 = self.up_concat1(f[0], up2)
        return [up1, up2, up3, up4, f[4]]

    def heads(self, up1: Tensor) -> tuple[Tensor, Tensor]:
        """Stage-1 heads: softmax assignment ``[B, 9, H, W]`` and edge logits ``[B, 1, H, W]``."""
        return self.softmax(self.sup(up1)), self.edge(up1)

    def forward(self, x: Tensor) -> SuperpixelOutput:
        """Stage-1 mode.

        Returns
        -------
        SuperpixelOutput
            ``assignment`` ``[B, 9, H, W]`` (softmax), ``embedding`` = ``up1``
            ``[B, 24, H, W]``; in training mode ``extras={"edge_logits": [B, 1, H, W]}``.
        """
        up1 = self.features(x)[0]
        sup, edge = self.heads(up1)
        if self.training:
            return SuperpixelOutput(sup, up1, {"edge_logits": edge})
        return SuperpixelOutput(sup, up1)


class SFTLayer(nn.Module):
    """``local·(scale(global) + 1) + shift(global)``; scale/shift = ``Conv1×1 → LELU → Conv1×1``."""

    def __init__(self, head_channels: int) -> None:
        super().__init__()
        c = head_channels
        self.SFT_scale_conv0 = nn.Conv2d(c, c, 1)
        self.SFT_scale_conv1 = nn.Conv2d(c, c, 1)
        self.SFT_shift_conv0 = nn.Conv2d(c, c, 1)
        self.SFT_shift_conv1 = nn.Conv2d(c, c, 1)

    def _modulate(self, target: Tensor, cond: Tensor) -> Tensor:
        scale = self.SFT_scale_conv1(lelu(self.SFT_scale_conv0(cond)))
        shift = self.SFT_shift_conv1(lelu(self.SFT_shift_conv0(cond)))
        return target * (scale + 1) + shift

    def forward(self, local_features: Tensor, global_features: Tensor) -> Tensor:
        """F1: the local feature modulated by the global one."""
        return self._modulate(local_features, global_features)


class SFTLayerl(SFTLayer):
    """``global·(scale(local) + 1) + shift(local)`` (F2)."""

    def forward(self, local_features: Tensor, global_features: Tensor) -> Tensor:
        """F2: the global feature modulated by the local one."""
        return self._modulate(global_features, local_features)


def _head(c: int, out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        LELU(),
        nn.Conv2d(c, 48, 3, padding=1, bias=False),
        nn.BatchNorm2d(48),
        LELU(),
        nn.Conv2d(48, out, 1),
    ]


class Local8x8_fuse_head(nn.Module):
    """Fusion head (``models/Local_Model.py: Local8x8_fuse_head``).

    ``fuse = global_rate·F1 + local_rate + F2``: ``local_rate`` is *added*, as upstream
    (L116; ``docs/baselines.md`` §8 item 10). ``fix_fusion=True`` multiplies it with F2 instead
    (ablation only, not checkpoint-behaviour compatible).

    Parameters
    ----------
    mla_channels, mlahead_channels : int
        Upstream's names; the feature width (24).
    fix_fusion : bool
        Use ``global_rate·F1 + local_rate·F2``.
    """

    def __init__(
        self, mla_channels: int = 24, mlahead_channels: int = 24, fix_fusion: bool = False
    ) -> None:
        super().__init__()
        self.channels = mla_channels
        self.head_channels = c = mlahead_channels
        self.fix_fusion = fix_fusion
        self.SFT_head = SFTLayer(c)
        self.SFT_head1 = SFTLayerl(c)
        self.edge_head = nn.Sequential(*_head(c, 1))
        self.superpixel_head = nn.Sequential(*_head(c, 9), nn.Softmax(dim=1))
        self.global_rate = nn.Parameter(torch.tensor([1.0]))
        self.local_rate = nn.Parameter(torch.tensor([1.0]))

    def forward(self, local_features: Tensor, global_features: Tensor) -> tuple[Tensor, ...]:
        """Fuse and predict.

        Returns
        -------
        (sup, edge, fuse) : tuple of Tensor
            Assignment ``[B, 9, H, W]`` (softmax), edge logits ``[B, 1, H, W]`` and the fused
            feature ``[B, 24, H, W]`` (the MSD embedding, ``docs/method.md`` §4.1).
        """
        f1 = self.SFT_head(local_features, global_features)
        f2 = self.SFT_head1(local_features, global_features)
        if self.fix_fusion:
            fuse = self.global_rate * f1 + self.local_rate * f2
        else:
            fuse = self.global_rate * f1 + self.local_rate + f2
        return self.superpixel_head(fuse), self.edge_head(fuse), fuse


def _quadrants(x: Tensor) -> list[Tensor]:
    """Split at row ``H//2 + 1`` and column ``W//2 + 1``: ``[00, 01, 10, 11]`` (unequal)."""
    h, w = x.shape[-2:]
    r, c = h // 2 + 1, w // 2 + 1
    return [x[..., :r, :c], x[..., :r, c:], x[..., r:, :c], x[..., r:, c:]]


def _cat_patch(parts: Sequence[Tensor], size: Sequence[int]) -> Tensor:
    """Tile four quadrant maps 2×2 and resize bilinearly to ``size`` (``LEncoder.cat_patch``)."""
    f00, f01, f10, f11 = parts
    tiled = torch.cat([torch.cat([f00, f01], dim=3), torch.cat([f10, f11], dim=3)], dim=2)
    return F.interpolate(tiled, size=tuple(size), mode="bilinear", align_corners=False)


class LEncoder(nn.Module):
    """SSMamba stage 2 (``models/Local_Model.py: LEncoder``).

    Parameters
    ----------
    dulbrn : int
        CNN-stem width and fused-feature channels (24).
    vmamba_weights : str, optional
        ImageNet VMamba-S checkpoint for the local backbone (``strict=False``; §5.5).
    global_weights : str, optional
        SSMamba stage-1 (``GEncoder``) checkpoint, loaded strictly into ``global_encoder``
        and frozen. Without it, :meth:`init_from_previous` loads spbench's own stage 1.
    freeze_global_bn : bool
        Keep the frozen global encoder in eval mode under ``model.train()``
        (``ssm.freeze_global_bn``). Default ``False`` reproduces upstream (§8 item 12): BN
        statistics drift and DropPath is active in it during stage 2.
    fix_fusion : bool
        See :class:`Local8x8_fuse_head`.
    quadrant_rng : random.Random, optional
        Source of ``randint(0, 4)``; default the global :mod:`random` module, as upstream.
    scan_chunk : int
        Chunk length of the parallel scan.
    **backbone
        Backbone configuration overrides (tests).
    """

    def __init__(
        self,
        dulbrn: int = 24,
        vmamba_weights: str | None = None,
        global_weights: str | None = None,
        freeze_global_bn: bool = False,
        fix_fusion: bool = False,
        quadrant_rng: random.Random | None = None,
        scan_chunk: int = 32,
        **backbone: Any,
    ) -> None:
        super().__init__()
        config = {**_BACKBONE_DEFAULTS, **backbone}
        self.local_model = _backbone(config, dulbrn, scan_chunk)
        if vmamba_weights is not None:
            load_vmamba_weights(self.local_model, vmamba_weights)
        self.global_encoder = GEncoder(dulbrn=dulbrn, scan_chunk=scan_chunk, **backbone)
        if global_weights is not None:
            self.global_encoder.load_state_dict(state_dict_of(global_weights))
            log.info("SSMamba stage-1 weights loaded from %s", global_weights)
        self._freeze_global()
        self.fuse_head = Local8x8_fuse_head(dulbrn, dulbrn, fix_fusion=fix_fusion)
        self.up_concat4, self.up_concat3, self.up_concat2, self.up_concat1 = _decoders(
            self.local_model.out_channels
        )
        self.freeze_global_bn = freeze_global_bn
        self.quadrant_rng = quadrant_rng
        #: The quadrant that received gradients in the last training forward (0..3).
        self.last_quadrant: int | None = None

    def _freeze_global(self) -> None:
        """``eval()`` and ``requires_grad = False`` on the global encoder (upstream constructor)."""
        self.global_encoder.eval()
        for p in self.global_encoder.parameters():
            p.requires_grad_(False)

    def init_from_previous(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a stage-1 :class:`GEncoder` state dict into ``global_encoder`` and freeze it.

        Parameters
        ----------
        state_dict : mapping
            Keys ``encoder.*``, ``up_concat*``, ``sup.*``, ``edge.*`` (leading ``module.`` or
            ``model.`` are stripped); loaded strictly.
        """
        self.global_encoder.load_state_dict(state_dict_of(state_dict))
        # eval() as upstream's constructor leaves it; a later model.train() flips it back
        # (docs/baselines.md §8 item 12) unless freeze_global_bn.
        self._freeze_global()

    def train(self, mode: bool = True) -> LEncoder:
        """``nn.Module.train``; with ``freeze_global_bn`` the global encoder stays in eval."""
        super().train(mode)
        if self.freeze_global_bn:
            self.global_encoder.eval()
        return self

    def _choose_quadrant(self) -> int:
        """``random.randint(0, 4)`` (inclusive: 3 and 4 both pick quadrant 3, 40 %)."""
        draw = (self.quadrant_rng or random).randint(0, 4)
        return min(draw, 3)

    def _local_features(self, x2: Tensor) -> list[list[Tensor]]:
        """Run the local backbone on the quadrants; per quadrant its 5-level feature list."""
        parts = _quadrants(x2)
        if not self.training:
            self.last_quadrant = None
            return [self.local_model(p) for p in parts]
        chosen = self._choose_quadrant()
        self.last_quadrant = chosen
        feats: list[list[Tensor] | None] = [None] * 4
        feats[chosen] = self.local_model(parts[chosen])
        with torch.no_grad():
            for q in range(4):
                if q != chosen:
                    feats[q] = self.local_model(parts[q])
        return feats  # type: ignore[return-value]

    def forward(self, x: Tensor) -> SuperpixelOutput:
        """Stage-2 forward.

        Parameters
        ----------
        x : Tensor
            ``[B, 3, H, W]`` normalised RGB, ``H`` and ``W`` multiples of 16.

        Returns
        -------
        SuperpixelOutput
            ``assignment`` Q ``[B, 9, H, W]`` (softmax), ``embedding`` = fused feature
            ``[B, 24, H, W]``; in training mode ``extras={"edge_logits": [B, 1, H, W]}``.
        """
        with torch.no_grad():
            g = self.global_encoder.features(x)
        x2 = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        q = self._local_features(x2)
        local = [_cat_patch([q[k][lvl] for k in range(4)], g[lvl].shape[-2:]) for lvl in range(5)]
        up4 = self.up_concat4(local[3], local[4])
        up3 = self.up_concat3(local[2], up4)
        up2 = self.up_concat2(local[1], up3)
        up1 = self.up_concat1(local[0], up2)
        sup, edge, fuse = self.fuse_head(up1, g[0])
        if self.training:
            return SuperpixelOutput(sup, fuse, {"edge_logits": edge})
        return SuperpixelOutput(sup, fuse)


# ---------------------------------------------------------------------------------------------
# Loss and registration
# ---------------------------------------------------------------------------------------------
def ssm_training_loss(
    model: nn.Module,
    batch: TrainingBatch,
    config: Any,
    *,
    generator: torch.Generator | None = None,
    stage: str = "stage2",
    **_: Any,
) -> dict[str, Tensor]:
    """SSMamba's loss: SCN row of ``docs/method.md`` §7 plus L_edge in training mode.

    Parameters
    ----------
    model : GEncoder or LEncoder
    batch : TrainingBatch
        ``images``, ``labels`` and (training) ``edges`` ``[B, H, W]`` in {0, 1, 2}.
    config : LossConfig
        Switches and weights of the superpixel loss.
    generator : torch.Generator, optional
        MSD sampling.
    stage : str
        ``"stage1"`` or ``"stage2"`` (same formula; recorded for symmetry).

    Returns
    -------
    dict of str to Tensor
        ``recon, pos, lap, msd, edge, total`` (unitless, weighted). ``edge`` is 0 in eval
        mode: DLM's SSM validation has no L_edge (``docs/method.md`` §7).
    """
    out = model(batch.images)
    losses = superpixel_loss(out, batch.labels, config, generator=generator)
    zero = losses["total"].new_zeros(())
    if model.training:
        edges = getattr(batch, "edges", None)
        if edges is None:
            raise ValueError(f"SSM {stage} training needs edge targets (batch.edges is None)")
        extras = out.extras or {}
        edge = edge_loss(extras["edge_logits"], edges.to(out.assignment.device))
    else:
        edge = zero
    losses["edge"] = edge
    losses["total"] = losses["total"] + edge
    return losses


@register_method(
    "ssm",
    recipe=SSM_RECIPE,
    loss=ssm_training_loss,
    augment="ssm",
    needs_edges=True,
    stages=SSM_STAGES,
    graph_capturable=False,  # the quadrant is drawn on the host in forward
    description="SSMamba (Jia et al., IEEE SPL 2025): frozen global + quadrant local VMamba",
)
def ssm(stage: str | None = None, **kwargs: Any) -> nn.Module:
    """Build SSMamba.

    Parameters
    ----------
    stage : str, optional
        ``"stage1"`` → :class:`GEncoder`; ``"stage2"`` or ``None`` → :class:`LEncoder`.
    **kwargs
        Constructor arguments (``vmamba_weights``, ``global_weights``, ``freeze_global_bn``,
        ``fix_fusion``, ``scan_chunk``, backbone overrides). ``global_weights``,
        ``freeze_global_bn``, ``fix_fusion`` are rejected in stage 1.

    Returns
    -------
    nn.Module
    """
    if stage in (None, "stage2"):
        return LEncoder(**kwargs)
    if stage == "stage1":
        bad = sorted(set(kwargs) & {"global_weights", "freeze_global_bn", "fix_fusion"})
        if bad:
            raise TypeError(f"ssm(stage='stage1') got stage-2 arguments: {bad}")
        return GEncoder(**kwargs)
    raise ValueError(f"unknown SSM stage {stage!r}; expected 'stage1' or 'stage2'")
