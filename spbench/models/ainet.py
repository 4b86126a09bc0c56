"""AINet (Wang et al., ICCV 2021): SCN + superpixel context + Association Implantation (§3).

Module names follow ``YanFangCS/AINET: models/Spixel_single_layer.py`` (``SpixelNet`` with
``sp_pred`` = ``Recurrent_Attn``, ``bridge_sp1/2``, ``merge_sp``) so that upstream and DLM
(``models/AInet.py``, after stripping the leading ``model.``) checkpoints load with
``load_state_dict``. The SCN encoder/decoder and its layers are reused from
:class:`spbench.models.scn.SpixelNet`; total parameters **5,991,476** (``docs/baselines.md`` §3.1).

Differences from upstream that do not change any value:

- ``expand_sp`` is an unfold + reshape/expand instead of a Python double loop over cells
  (identical tensor, tested against the loop);
- ``expand_pixel`` scatters the pixel feature to the centre of its 3×3 block by zero-padding
  instead of ``repeat`` × a centre mask. The mask is built from the input size (upstream's
  ``Train=False`` path); upstream's ``Train=True`` model hard-codes it for 208×208 inputs, which
  gives the same tensor at 208 and fails at any other size (``docs/baselines.md`` §8 item 5);
- the initialisation follows the same scheme (kaiming a = 0.1, zero biases, BN 1/0), applied to
  the SCN part inside ``SpixelNet.__init__`` and to the AINet additions afterwards, so the RNG
  stream differs from upstream's single pass (the distribution does not).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spbench.catalogue import AINET_RECIPE, AINET_STAGES
from spbench.constants import CELL_SIZE
from spbench.grid import grid_shape
from spbench.losses.boundary_perceiving import bpl_from_labels
from spbench.losses.recipe import LossConfig, superpixel_loss
from spbench.models.layers import conv, init_weights
from spbench.models.registry import (
    SuperpixelOutput,
    TrainingBatch,
    register_method,
)
from spbench.models.scn import SpixelNet

__all__ = [
    "AINET_RECIPE",
    "AINET_STAGES",
    "BPL_WEIGHT",
    "AINet",
    "RecurrentAttention",
    "ainet",
    "ainet_training_loss",
    "expand_pixel",
    "expand_sp",
]

#: Weight of the BPL in DLM's total loss: 0.5 (AINet's α) × 0.005 (SCN's factor), from epoch 0.
BPL_WEIGHT = 0.5 * 0.005


def _dilated_conv(channels: int) -> nn.Sequential:
    """``Conv2d(3×3, dilation 2, padding 2, no bias) → BN → LeakyReLU(0.1)`` (``QConv2`` etc.)."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, stride=1, dilation=2, padding=2, bias=False),
        nn.BatchNorm2d(channels),
        nn.LeakyReLU(0.1),
    )


class RecurrentAttention(nn.Module):
    """Two rounds of 3×3 local attention on the 1/16 feature (upstream ``Recurrent_Attn``).

    Round 1 projects with ``conv(256, 256)`` (``QConv1``, ``KConv1``, ``VConv1``), round 2 with
    dilated convs on round 1's output (``QConv2``, ...). Attention weights are a softmax over the
    9 zero-padded neighbours of the **element-wise, per-channel** product ``Q·K/√C`` (no sum over
    channels; padded neighbours take part). ``Spixel_single_layer.py`` L15–82.

    Parameters
    ----------
    channels : int
        Feature channels (256).
    """

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.QConv1 = conv(channels, channels)
        self.KConv1 = conv(channels, channels)
        self.VConv1 = conv(channels, channels)
        self.QConv2 = _dilated_conv(channels)
        self.KConv2 = _dilated_conv(channels)
        self.VConv2 = _dilated_conv(channels)

    @staticmethod
    def self_attn(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """One attention round.

        Parameters
        ----------
        q, k, v : Tensor
            ``[B, C, h, w]``.

        Returns
        -------
        Tensor
            ``[B, C, h, w]``, ``Σ_j softmax_j(q·k_j/√C)·v_j`` over the 3×3 neighbours ``j``.
        """
        b, c, h, w = q.shape
        k_unf = F.unfold(k, (3, 3), padding=1).view(b, c, 9, h, w)
        v_unf = F.unfold(v, (3, 3), padding=1).view(b, c, 9, h, w)
        dot = torch.softmax(q.unsqueeze(2) * k_unf / math.sqrt(c), dim=2)
        return (dot * v_unf).sum(dim=2)

    def forward(self, x: Tensor) -> Tensor:
        """Return the round-2 output (the caller adds it to ``x``)."""
        attn1 = self.self_attn(self.QConv1(x), self.KConv1(x), self.VConv1(x))
        return self.self_attn(self.QConv2(attn1), self.KConv2(attn1), self.VConv2(attn1))


def expand_sp(sp_feat: Tensor, cell: int = CELL_SIZE) -> Tensor:
    """Tile each cell's 3×3 zero-padded neighbourhood over its pixels (upstream ``expand_sp``).

    Parameters
    ----------
    sp_feat : Tensor
        ``[B, C, h, w]`` superpixel (cell) features.
    cell : int
        Cell size in pixels (16).

    Returns
    -------
    Tensor
        ``[B, C, 3·h·cell, 3·w·cell]``; entry ``(3y + r, 3x + c)`` is the feature of cell
        ``cell(y, x) + (r − 1, c − 1)`` (0 outside the grid), i.e. pixel ``(y, x)``'s nine
        candidates in the standard 3×3 arrangement. Same tensor as upstream's double loop
        (``Spixel_single_layer.py`` L156–172).
    """
    b, c, h, w = sp_feat.shape
    nb = F.unfold(sp_feat, (3, 3), padding=1).view(b, c, 3, 3, h, w)
    nb = nb.permute(0, 1, 4, 2, 5, 3)  # [B, C, h, r, w, c]
    nb = nb[:, :, :, None, :, :, None, :].expand(b, c, h, cell, 3, w, cell, 3)
    return nb.reshape(b, c, h * cell * 3, w * cell * 3)


def expand_pixel(pixel_feat: Tensor) -> Tensor:
    """Place each pixel feature at the centre of its 3×3 block (upstream ``expand_pixel``).

    Parameters
    ----------
    pixel_feat : Tensor
        ``[B, C, H, W]``.

    Returns
    -------
    Tensor
        ``[B, C, 3H, 3W]`` with ``pixel_feat[..., y, x]`` at ``(3y + 1, 3x + 1)`` and zeros
        elsewhere: upstream's ``repeat(3, 3)`` × centre mask with the mask built from the input
        size (``Spixel_single_layer.py`` L174–182, L184–188).
    """
    b, c, h, w = pixel_feat.shape
    out = F.pad(pixel_feat.view(b, c, h, 1, w, 1), (1, 1, 0, 0, 1, 1))
    return out.view(b, c, 3 * h, 3 * w)


class AINet(SpixelNet):
    """AINet: SCN with superpixel attention and the Association Implantation module.

    Forward returns ``SuperpixelOutput(assignment=Q after the AI module [B, 9, H, W],
    embedding=out_conv0_1 [B, 16, H, W])`` for any ``H, W`` multiples of 16. 5,991,476
    parameters (SCN 2,287,956 + attention 3,542,016 + bridge 156,832 + merge 4,672).
    """

    def __init__(self) -> None:
        super().__init__(batch_norm=True)
        self.sp_pred = RecurrentAttention(256)
        self.bridge_sp1 = conv(256, 64)
        self.bridge_sp2 = conv(64, 16)
        # Stride 3, padding 1: the window of output pixel (o, p) covers rows 3o−1..3o+1 and
        # columns 3p−1..3p+1 of the expanded map, one entry up-left of its own 3×3 block
        # (upstream quirk, docs/baselines.md §3.1 / §8 item 4; reproduced as is).
        self.merge_sp = nn.Sequential(
            nn.Conv2d(16, 16, kernel_size=3, stride=3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.1),
            nn.Conv2d(16, 16, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.1),
        )
        # SpixelNet.__init__ initialised the SCN part; initialise the additions the same way.
        for module in (self.sp_pred, self.bridge_sp1, self.bridge_sp2, self.merge_sp):
            init_weights(module)

    def forward(self, x: Tensor) -> SuperpixelOutput:
        """Predict the assignment (``Spixel_single_layer.py`` L184–240).

        Parameters
        ----------
        x : Tensor
            ``[B, 3, H, W]`` normalised RGB; ``H`` and ``W`` multiples of 16.

        Returns
        -------
        SuperpixelOutput
            ``assignment`` ``[B, 9, H, W]`` (softmax over dim 1, after the AI module) and
            ``embedding`` = ``out_conv0_1`` ``[B, 16, H, W]`` (the BPL and MSD input).
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"AINet expects [B, 3, H, W] input, got {tuple(x.shape)}")
        grid_shape(x.shape[2], x.shape[3], CELL_SIZE)
        out1 = self.conv0b(self.conv0a(x))
        out2 = self.conv1b(self.conv1a(out1))
        out3 = self.conv2b(self.conv2a(out2))
        out4 = self.conv3b(self.conv3a(out3))
        out5 = self.conv4b(self.conv4a(out4))
        out5 = out5 + self.sp_pred(out5)
        out_conv3_1 = self.conv3_1(torch.cat((out4, self.deconv3(out5)), 1))
        out_conv2_1 = self.conv2_1(torch.cat((out3, self.deconv2(out_conv3_1)), 1))
        out_conv1_1 = self.conv1_1(torch.cat((out2, self.deconv1(out_conv2_1)), 1))
        out_conv0_1 = self.conv0_1(torch.cat((out1, self.deconv0(out_conv1_1)), 1))
        sp_map = self.bridge_sp2(self.bridge_sp1(out5))
        merged = expand_sp(sp_map, CELL_SIZE) + expand_pixel(out_conv0_1)
        prob0 = self.softmax(self.pred_mask0(self.merge_sp(merged)))
        return SuperpixelOutput(assignment=prob0, embedding=out_conv0_1)


def ainet_training_loss(
    model: nn.Module,
    batch: TrainingBatch,
    config: LossConfig,
    *,
    generator: torch.Generator | None = None,
    stage: str = "stage2",
    **_: Any,
) -> dict[str, Tensor]:
    """DLM's AINet training loss (``docs/method.md`` §7, AINet row).

    Runs the model once and returns :func:`superpixel_loss` of its output (``recon``, ``pos``,
    ``lap``, ``msd``; ``config.n_classes`` is 51 for AINet) plus ``"bpl"`` =
    ``0.5·0.005·BPL`` on ``out_conv0_1`` from epoch 0 (DLM; upstream starts it at epoch 3000),
    added into ``"total"``. ``stage`` does not change the loss: the trainer passes the stage's
    ``LossConfig`` (plain in stage 1, the variant's in stage 2).

    Returns
    -------
    dict of str to Tensor
        Weighted, unitless scalar terms and their sum ``"total"``.
    """
    out = model(batch.images)
    terms = superpixel_loss(out, batch.labels, config, generator=generator)
    bpl = BPL_WEIGHT * bpl_from_labels(out.embedding, batch.labels, generator=generator)
    terms["bpl"] = bpl
    terms["total"] = terms["total"] + bpl
    return terms


@register_method(
    "ainet",
    recipe=AINET_RECIPE,
    loss=ainet_training_loss,
    stages=AINET_STAGES,
    graph_capturable=False,  # the boundary loss's patches have data-dependent shapes
    description="AINet (Wang et al. ICCV 2021): SCN + attention + AI module, BPL; DLM two-stage",
)
def ainet(*, stage: str | None = None, **kwargs: object) -> AINet:
    """Build AINet (the same network in both stages).

    Parameters
    ----------
    stage : str, optional
        Stage name (``"stage1"`` or ``"stage2"``); the architecture does not depend on it.
    **kwargs
        Rejected, so that config typos do not pass silently.

    Returns
    -------
    AINet
    """
    if kwargs:
        raise TypeError(f"ainet() got unexpected arguments: {sorted(kwargs)}")
    if stage is not None and stage not in {s.name for s in AINET_STAGES}:
        raise ValueError(f"unknown AINet stage {stage!r}")
    return AINet()
