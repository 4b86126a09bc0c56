"""CDS, "Content Disentangle Superpixel" of Xu et al., AAAI 2024 (``docs/baselines.md`` §4).

Follows ``rookiie/CDSpixel: models/espixel.py`` (``CDSpixelNet``, ``Disentangle``) and
``models/model_util.py`` (``Embedder``, ``water_diffusion``, ``Diffusion``), with DLM's
training forward (``models/CDSpixel.py``, which also returns the RGB decoder output ``flow``)
and DLM's CLUB estimator (``MyModules.py``: ``self.mi_estimator = CLUB(32, 32)``). Attribute
names are upstream's, so state-dict keys match:

- upstream ``.tar`` (``checkpoint["state_dict"]``): ``encoder.*``, ``encoder_assit.*``,
  ``MI.*``, ``decoder.*``, ``head.*``;
- DLM Lightning checkpoints, after stripping the leading ``model.``: the same keys plus
  ``mi_estimator.*`` (CLUB).

The Sobel map of the auxiliary branch is computed inside the model from the normalised input
(a non-persistent buffer, so it adds no state-dict key); the data loader does the random
rescale (``augment="rescale_bicubic"``).

Parameter counts (``docs/baselines.md`` §0, §4.1):

- 649,001 trainable by the main optimiser: both encoders, ``MI``, ``decoder``, ``head``;
- 396,649 used at inference: ``encoder``, ``MI``, ``decoder``, ``head``
  (``encoder_assit``'s 252,352 are training-only);
- +584 for CLUB (``mi_estimator``), optimised separately (:meth:`CDSpixelNet.auxiliary_parameters`),
  so ``model.parameters()`` holds 649,585.

Recipe (DLM's retraining, ``docs/baselines.md`` §6.1): Adam lr 5·10⁻⁴ on two name-filtered groups
(weight decay on "weight"), batch 8, crop 208 after a random bicubic rescale, val crop 320,
seed 42; **poly** LR ``lr·max(0, 1 − step/CDS_POLY_STEPS)^CDS_POLY_POWER`` on both groups,
stepped once per optimiser step and clamped at 0 after 150,000 steps (quirks 7–8); a second Adam
(lr :data:`CLUB_LR`, no schedule, no weight decay) over CLUB. Order of one iteration
(manual optimisation): model step on ``"total"`` → scheduler step → CLUB step on
``"aux_total"``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from spbench.catalogue import CDS_POLY_POWER, CDS_POLY_STEPS, CDS_RECIPE, CLUB_LR, Stage
from spbench.constants import CELL_SIZE
from spbench.grid import grid_shape
from spbench.losses.club import (
    alignment_kl,
    club_learning_loss,
    club_upper_bound,
)
from spbench.losses.recipe import LossConfig, superpixel_loss
from spbench.models.layers import conv, deconv, init_weights, predict_mask
from spbench.models.registry import (
    SuperpixelOutput,
    TrainingBatch,
    register_method,
)

__all__ = [
    "CDS_LOSS_KEYS",
    "CDS_POLY_POWER",
    "CDS_POLY_STEPS",
    "CDS_RECIPE",
    "CLUB",
    "CLUB_LR",
    "CLUB_WEIGHT",
    "KL_WEIGHT",
    "CDSpixelNet",
    "Diffusion",
    "Disentangle",
    "Embedder",
    "WaterDiffusion",
    "cds",
    "cds_training_loss",
    "sobel_kernels",
    "sobel_map",
]

#: Weight of the CLUB upper bound in the model step (upstream and DLM add it unweighted).
CLUB_WEIGHT = 1.0
#: Weight of the KL alignment term in the model step (unweighted upstream and in DLM).
KL_WEIGHT = 1.0
#: Keys returned by :func:`cds_training_loss` (``"aux_total"`` only in training mode).
CDS_LOSS_KEYS = (
    "recon",
    "pos",
    "lap",
    "msd",
    "assist_recon",
    "assist_pos",
    "club",
    "kl",
    "total",
)

#: Embedding width of the encoders, the decoder and CLUB (``x_dim = y_dim = 32``).
_DIM = 32


def sobel_kernels(dtype: torch.dtype = torch.float32) -> Tensor:
    """The two Sobel kernels of CDS's auxiliary input, replicated over the 3 input channels.

    Returns
    -------
    Tensor
        ``[2, 3, 3, 3]``: output 0 is Sobel-y ``[[−1,−2,−1],[0,0,0],[1,2,1]]``, output 1 is
        Sobel-x (its transpose), each repeated over the RGB channels (DLM
        ``datasets/BSD.py: _get_sobel``; ``rookiie/CDSpixel: datasets/listdataset.py``).
    """
    sobel_y = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], dtype=dtype)
    return torch.stack([sobel_y, sobel_y.T]).unsqueeze(1).repeat(1, 3, 1, 1)


def sobel_map(x: Tensor, kernels: Tensor | None = None) -> Tensor:
    """CDS's auxiliary input: the signed Sobel response of the normalised image.

    ``out(y, x) = Σ_k Σ_c Σ_{i,j} K_k[i, j]·x_c(y + i − 1, x + j − 1)`` (cross-correlation, as
    ``F.conv2d``; zero padding 1), summed over the RGB channels and over Sobel-y and Sobel-x
    (a signed sum, not a magnitude), repeated to 3 channels (``docs/protocol.md`` §1.7). A flipped
    convolution (``scipy.ndimage.convolve``) gives the negated map.

    Parameters
    ----------
    x : Tensor
        ``[B, 3, H, W]`` normalised RGB.
    kernels : Tensor, optional
        ``[2, 3, 3, 3]`` from :func:`sobel_kernels` (built on the fly if omitted).

    Returns
    -------
    Tensor
        ``[B, 3, H, W]``, the three channels identical.
    """
    if kernels is None:
        kernels = sobel_kernels(x.dtype).to(x.device)
    response = F.conv2d(x, kernels.to(x.dtype), stride=1, padding=1)  # [B, 2, H, W]
    return response.sum(dim=1, keepdim=True).repeat(1, 3, 1, 1)


class Embedder(nn.Module):
    """Three-scale feature extractor with a full-resolution 32-channel output.

    ``rookiie/CDSpixel: models/model_util.py: Embedder``; 252,352 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0a = conv(3, 64)
        self.conv0b = conv(64, 64)
        self.pool0 = nn.MaxPool2d(3, 2, 1)
        self.conv1a = conv(64, 64)
        self.conv1b = conv(64, 64)
        self.pool1 = nn.MaxPool2d(3, 2, 1)
        self.conv2a = conv(64, 64)
        self.conv2b = conv(64, 64)
        self.head0 = conv(64 * 3, _DIM)
        # Unlike the §1 block this conv has a bias (upstream builds it by hand).
        self.head1 = nn.Sequential(
            nn.Conv2d(_DIM + 3, _DIM, kernel_size=3, padding=1, stride=1),
            nn.BatchNorm2d(_DIM),
            nn.LeakyReLU(0.1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Embed ``[B, 3, H, W]`` (``H``, ``W`` multiples of 4) into ``[B, 32, H, W]``."""
        x0 = self.conv0b(self.conv0a(x))
        x1 = self.conv1b(self.conv1a(self.pool0(x0)))
        x2 = self.conv2b(self.conv2a(self.pool1(x1)))
        # Nearest upsampling by scale factor, as upstream.
        x1_up = F.interpolate(x1, scale_factor=2)
        x2_up = F.interpolate(x2, scale_factor=4)
        out = self.head0(torch.cat([x0, x1_up, x2_up], 1))
        return self.head1(torch.cat([out, x], dim=1))


class WaterDiffusion(nn.Module):
    """One decoder stage: ``deconv`` ×2, then fuse with the resized encoder feature.

    ``rookiie/CDSpixel: models/model_util.py: water_diffusion``; 34,912 parameters.
    """

    def __init__(self, dim: int = _DIM) -> None:
        super().__init__()
        self.conv_up = deconv(dim, dim)
        self.fusion = conv(dim * 2, dim)

    def forward(self, inp: Tensor, flow: Tensor) -> Tensor:
        """Upsample ``flow`` ×2 and fuse it with ``inp`` resized (bilinear) to its size."""
        flow = self.conv_up(flow)
        resized = F.interpolate(inp, size=flow.shape[2:], mode="bilinear", align_corners=False)
        return self.fusion(torch.cat([resized, flow], dim=1))


class Diffusion(nn.Module):
    """Decoder ``Diffusion``: ``log₂(grid)`` :class:`WaterDiffusion` stages from the grid size.

    ``rookiie/CDSpixel: models/model_util.py: Diffusion``; 139,648 parameters for grid 16.
    """

    def __init__(self, grid_size: int = CELL_SIZE) -> None:
        super().__init__()
        self.diffusion_step = int(math.log2(grid_size))
        self.up = nn.ModuleList([WaterDiffusion() for _ in range(self.diffusion_step)])

    def forward(self, x: Tensor) -> Tensor:
        """Decode ``[B, 32, H, W]`` to ``flow`` ``[B, 32, H, W]`` (``H``, ``W`` multiples of 16).

        Starts from ``x`` resized (bilinear) to one value per grid cell, ``(H // S, W // S)`` with
        S = 2^stages (16), as upstream (whose ``spixel`` default is hard-coded to 16 as well).
        """
        h, w = x.shape[2:]
        s = 2**self.diffusion_step
        flow = F.interpolate(x, size=(h // s, w // s), mode="bilinear", align_corners=False)
        for stage in self.up:
            flow = stage(x, flow)
        return flow


class Disentangle(nn.Module):
    """Channel gate splitting a feature into ``unique`` and ``common`` parts (``MI``).

    ``y = σ(FC₂(ReLU(FC₁(GAP(x)))))``, ``unique = x·(1 − y)``, ``common = x·y``
    (``rookiie/CDSpixel: models/espixel.py: Disentangle``); 2,048 parameters.
    """

    def __init__(self, dim: int = _DIM) -> None:
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Sequential(
            nn.Linear(dim, dim, bias=False),
            nn.ReLU(),
            nn.Linear(dim, dim, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(unique, common)``, both ``[B, C, H, W]``."""
        b, c = x.shape[:2]
        y = self.fc(self.gap(x).view(b, c)).view(b, c, 1, 1)
        return x * (1 - y), x * y


def _full_precision(t: Tensor) -> Tensor:
    """``t`` as float32 when it is half or bfloat16 (float32 and float64 are kept)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class CLUB(nn.Module):
    """CLUB estimator ``q(y|x) = N(μ(x), e^{lv(x)})`` (DLM ``models/CDSpixel.py: CLUB``).

    ``μ = Linear(x_dim → h/2) → ReLU → Linear(h/2 → y_dim)`` and
    ``lv = Linear(x_dim → h/2) → ReLU → Linear(h/2 → y_dim) → tanh``; with
    ``x_dim = y_dim = 32``, ``hidden_size = 8``: 584 parameters, PyTorch's default Linear init.
    """

    def __init__(self, x_dim: int = _DIM, y_dim: int = _DIM, hidden_size: int = 8) -> None:
        super().__init__()
        self.p_mu = nn.Sequential(
            nn.Linear(x_dim, hidden_size // 2), nn.ReLU(), nn.Linear(hidden_size // 2, y_dim)
        )
        self.p_logvar = nn.Sequential(
            nn.Linear(x_dim, hidden_size // 2),
            nn.ReLU(),
            nn.Linear(hidden_size // 2, y_dim),
            nn.Tanh(),
        )

    def get_mu_logvar(self, x: Tensor, *, frozen: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(μ, lv)``, each ``[N, y_dim]``.

        With ``frozen=True`` the estimator's parameters are used detached, so gradients reach
        ``x`` but not the estimator (DLM sets ``requires_grad_(False)`` for the model step).
        Always fp32, also under autocast: the bound is a small difference of log-likelihoods
        that bf16 rounds to noise (the term check saw it change by 100%).
        """
        x = _full_precision(x)
        with torch.autocast(x.device.type, enabled=False):
            if not frozen:
                return self.p_mu(x), self.p_logvar(x)

            def detached(module: nn.Module) -> dict[str, Tensor]:
                return {name: p.detach() for name, p in module.named_parameters()}

            return (
                functional_call(self.p_mu, detached(self.p_mu), (x,)),
                functional_call(self.p_logvar, detached(self.p_logvar), (x,)),
            )

    def forward(self, x: Tensor, y: Tensor, *, frozen: bool = False) -> Tensor:
        """CLUB upper bound of ``I(X; Y)`` (:func:`spbench.losses.club.club_upper_bound`), fp32."""
        mu, logvar = self.get_mu_logvar(x, frozen=frozen)
        with torch.autocast(mu.device.type, enabled=False):
            return club_upper_bound(mu, logvar, _full_precision(y))

    def learning_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Estimator training loss (:func:`spbench.losses.club.club_learning_loss`), fp32."""
        mu, logvar = self.get_mu_logvar(x)
        with torch.autocast(mu.device.type, enabled=False):
            return club_learning_loss(mu, logvar, _full_precision(y))


class CDSpixelNet(nn.Module):
    """CDS with its auxiliary Sobel branch and the CLUB estimator.

    Parameters
    ----------
    grid_size : int
        Superpixel grid cell size (16): the decoder has ``log₂(grid_size)`` stages.

    Notes
    -----
    ``encoder_assit`` is always built (upstream builds it under ``if self.training`` in the
    constructor, which is always true there, ``docs/baselines.md`` §8 quirk 9) and used only in
    training mode. Shared modules (``MI``, ``decoder``, ``head``) run the Sobel branch first,
    then the RGB branch, as upstream, so the shared BatchNorm running statistics see the same
    update order.
    """

    #: State-dict key prefixes that an inference-only checkpoint may lack.
    training_only_prefixes: tuple[str, ...] = ("encoder_assit.", "mi_estimator.")

    def __init__(self, grid_size: int = CELL_SIZE) -> None:
        super().__init__()
        self.assign_ch = 9
        self.grid_size = grid_size
        # Construction order follows upstream (it fixes the RNG stream of the initialisation).
        self.encoder_assit = Embedder()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.encoder = Embedder()
        self.MI = Disentangle()
        self.decoder = Diffusion(grid_size=grid_size)
        self.head = nn.Sequential(predict_mask(_DIM, self.assign_ch), nn.Softmax(1))
        init_weights(self)  # conv/deconv kaiming(a=0.1), biases 0, BN 1/0; Linear untouched
        # DLM builds CLUB after the network (AISuperpixModel.__init__).
        self.mi_estimator = CLUB(x_dim=_DIM, y_dim=_DIM)
        self.register_buffer("sobel_weight", sobel_kernels(), persistent=False)

    # -- parameter views --------------------------------------------------------------
    def auxiliary_parameters(self) -> Iterator[nn.Parameter]:
        """CLUB's parameters, optimised by their own Adam on ``"aux_total"``."""
        return self.mi_estimator.parameters()

    def inference_modules(self) -> tuple[nn.Module, ...]:
        """The submodules an eval-mode forward runs: ``encoder``, ``MI``, ``decoder``, ``head``."""
        return (self.encoder, self.MI, self.decoder, self.head)

    # -- forward ----------------------------------------------------------------------
    def sobel(self, x: Tensor) -> Tensor:
        """Auxiliary input of the Sobel branch (:func:`sobel_map`), ``[B, 3, H, W]``."""
        return sobel_map(x, self.sobel_weight)

    def _branch(self, encoder: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run one modality: ``(prob, flow, unique, common)``."""
        unique, common = self.MI(encoder(x))
        flow = self.decoder(unique)
        return self.head(flow), flow, unique, common

    def forward(self, x: Tensor) -> SuperpixelOutput:
        """Predict the assignment.

        Parameters
        ----------
        x : Tensor
            ``[B, 3, H, W]`` normalised RGB; ``H`` and ``W`` multiples of 16.

        Returns
        -------
        SuperpixelOutput
            ``assignment`` = main-branch ``prob`` ``[B, 9, H, W]`` (softmax over dim 1) and
            ``embedding`` = main-branch ``flow`` ``[B, 32, H, W]`` (the MSD embedding). In
            training mode ``extras`` holds ``"assist_assignment"`` ``[B, 9, H, W]`` and
            ``"assist_embedding"`` ``[B, 32, H, W]`` of the Sobel branch, ``"unique"`` and
            ``"unique_assist"`` ``[B, 32, H, W]`` (KL alignment), ``"common"`` and
            ``"common_assist"`` ``[B, 32]`` (GAP of the common parts, CLUB's ``x`` and ``y``).
            In eval mode only the RGB path runs and ``extras`` is ``None``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"CDS expects [B, 3, H, W] input, got {tuple(x.shape)}")
        grid_shape(x.shape[2], x.shape[3], CELL_SIZE)  # pooling and the decoder need whole cells
        if not self.training:
            prob, flow, _, _ = self._branch(self.encoder, x)
            return SuperpixelOutput(assignment=prob, embedding=flow)
        prob_a, flow_a, unique_a, common_a = self._branch(self.encoder_assit, self.sobel(x))
        prob, flow, unique, common = self._branch(self.encoder, x)
        extras = {
            "assist_assignment": prob_a,
            "assist_embedding": flow_a,
            "unique": unique,
            "unique_assist": unique_a,
            # Upstream squeezes [B, 32, 1, 1]; flatten keeps [1, 32] for a batch of one.
            "common": self.gap(common).flatten(1),
            "common_assist": self.gap(common_a).flatten(1),
        }
        return SuperpixelOutput(assignment=prob, embedding=flow, extras=extras)


def cds_training_loss(
    model: CDSpixelNet,
    batch: TrainingBatch,
    config: LossConfig,
    *,
    generator: torch.Generator | None = None,
    stage: str = "main",
) -> dict[str, Tensor]:
    """CDS's loss for one batch (``docs/baselines.md`` §4.2, ``docs/method.md`` §6–7).

    Training mode (model step, DLM ``_baseline_cds_pixel_train`` / ``_novel_cds_pixel_train``):
    ``total = R(Q)|R_w(Q) + Pos(Q) [+ LAP(Q) + MSD(flow)] + R(Q_a) + Pos(Q_a) + CLUB + KL`` where
    the main branch uses ``config`` and the Sobel branch the plain SCN loss (WR, LAP and MSD
    off); CLUB is the upper bound with the estimator frozen (weight :data:`CLUB_WEIGHT`), KL
    the alignment of the unique features (weight :data:`KL_WEIGHT`). ``"aux_total"`` is CLUB's
    learning loss on detached features; it reaches only ``model.auxiliary_parameters()``.

    Eval mode (validation, DLM ``_*_cds_pixel_val``): the main branch only (``R + Pos`` or
    ``R_w + Pos + LAP + MSD``); the other keys are zero and ``"aux_total"`` is absent.

    Parameters
    ----------
    model : CDSpixelNet
    batch : TrainingBatch
        ``images`` ``[B, 3, H, W]`` normalised RGB, ``labels`` ``[B, H, W]``.
    config : LossConfig
        The variant's switches and weights (main branch).
    generator : torch.Generator, optional
        MSD sampling.
    stage : str
        Only ``"main"``.

    Returns
    -------
    dict of str to Tensor
        Weighted scalars ``recon, pos, lap, msd, assist_recon, assist_pos, club, kl`` and their
        sum ``total``; plus ``aux_total`` in training mode.
    """
    if stage != "main":
        raise ValueError(f"CDS has a single stage 'main', got {stage!r}")
    out = model(batch.images)
    main = superpixel_loss(out, batch.labels, config, generator=generator)
    zero = main["total"].new_zeros(())
    terms = {key: main[key] for key in ("recon", "pos", "lap", "msd")}
    if not model.training or out.extras is None:
        terms.update(assist_recon=zero, assist_pos=zero, club=zero, kl=zero, total=main["total"])
        return terms
    extras = out.extras
    base = dataclasses.replace(config, use_lap=False, use_msd=False, use_wr=False)
    assist = superpixel_loss(
        SuperpixelOutput(extras["assist_assignment"], extras["assist_embedding"]),
        batch.labels,
        base,
    )
    x, y = extras["common"], extras["common_assist"]
    club = CLUB_WEIGHT * model.mi_estimator(x, y, frozen=True)
    kl = KL_WEIGHT * alignment_kl(extras["unique"], extras["unique_assist"])
    terms.update(
        assist_recon=assist["recon"],
        assist_pos=assist["pos"],
        club=club,
        kl=kl,
    )
    terms["total"] = main["total"] + assist["total"] + club + kl
    terms["aux_total"] = model.mi_estimator.learning_loss(x.detach(), y.detach())
    return terms


@register_method(
    "cds",
    recipe=CDS_RECIPE,
    loss=cds_training_loss,
    augment="rescale_bicubic",
    stages=(Stage("main"),),
    description=(
        "CDS (Content Disentangle Superpixel, Xu et al. AAAI 2024) with Sobel branch and CLUB; "
        f"poly LR over {CDS_POLY_STEPS} steps, CLUB Adam lr {CLUB_LR}"
    ),
)
def cds(*, stage: str | None = None, grid_size: int = CELL_SIZE, **kwargs: Any) -> CDSpixelNet:
    """Build CDS (``CDSpixelNet`` with ``encoder_assit`` and ``mi_estimator``).

    Parameters
    ----------
    stage : str, optional
        ``None`` or ``"main"`` (CDS trains in one stage).
    grid_size : int
        Grid cell size (16).
    **kwargs
        Rejected, so that config typos do not pass silently.

    Returns
    -------
    CDSpixelNet
    """
    if kwargs:
        raise TypeError(f"cds() got unexpected arguments: {sorted(kwargs)}")
    if stage not in (None, "main"):
        raise ValueError(f"CDS has a single stage 'main', got {stage!r}")
    return CDSpixelNet(grid_size=grid_size)
