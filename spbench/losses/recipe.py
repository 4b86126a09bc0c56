"""The total superpixel loss of a method, assembled from switches (``docs/method.md`` §7, SCN row).

- baseline: ``R + Pos`` with ``R = 0.005·L_sem`` and ``Pos = 0.005·1.875e-4·L_pos``;
- DLM (LAP variant): ``R_w + Pos + LAP + MSD`` with ``R_w = λ_WR·0.005·L_WR``,
  ``LAP = 360·L_LAP`` and ``MSD = 0.001·L_MSD``.

``use_wr``, ``use_lap`` and ``use_msd`` switch the three DLM terms independently (paper Table 3
ablations); every weight is a field of :class:`LossConfig` so that it can be recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from spbench.constants import CELL_SIZE
from spbench.grid import as_label_map, label_to_onehot, pixel_coordinates
from spbench.losses.laplacian import NORMALISERS, laplacian_loss
from spbench.losses.msd import MSD_MODES, min_semantic_distance_loss
from spbench.losses.reconstruction import pixel_cross_entropy, reconstruct
from spbench.losses.weighted_reconstruction import mixed_cell_weights

__all__ = ["LOSS_KEYS", "LossConfig", "superpixel_loss"]

#: Keys of the dict returned by :func:`superpixel_loss`.
LOSS_KEYS = ("recon", "pos", "lap", "msd", "total")


@dataclass(frozen=True)
class LossConfig:
    """Switches and weights of the superpixel loss; the defaults are the paper's.

    Attributes
    ----------
    use_lap, use_msd, use_wr : bool
        Add ``λ_LAP·L_LAP``, add ``λ_MSD·L_MSD``, replace ``L_sem`` by ``L_WR``.
    lambda_lap, lambda_msd, lambda_wr : float
        ``λ_LAP = 360``, ``λ_MSD = 1e-3``, ``λ_WR = 1`` (``R_w = λ_WR·recon_weight·L_WR``).
    recon_weight : float
        Weight of ``L_sem`` (SCN's 0.005).
    pos_weight : float
        Weight of ``L_pos``, ``0.005·m/S = 0.005·1.875e-4`` (includes SCN's 0.005).
    stride : int
        Grid cell size in pixels.
    n_classes : int
        One-hot channels (50; AINet 51).
    msd_margin, msd_samples, msd_mode : float, int, str
        MSD margin, samples per (image, class), ``"per_image"`` or ``"original"``.
    lap_normaliser : str
        ``"trace_max"`` (``Z_S``) or ``"eight_ns"`` (``8·(3S)²``).
    """

    use_lap: bool = False
    use_msd: bool = False
    use_wr: bool = False
    lambda_lap: float = 360.0
    lambda_msd: float = 1e-3
    lambda_wr: float = 1.0
    recon_weight: float = 0.005
    pos_weight: float = 0.005 * 1.875e-4
    stride: int = CELL_SIZE
    n_classes: int = 50
    msd_margin: float = 1.5
    msd_samples: int = 100
    msd_mode: str = "per_image"
    lap_normaliser: str = "trace_max"

    def __post_init__(self) -> None:
        if self.msd_mode not in MSD_MODES:
            raise ValueError(f"msd_mode must be one of {MSD_MODES}, got {self.msd_mode!r}")
        if self.lap_normaliser not in NORMALISERS:
            raise ValueError(
                f"lap_normaliser must be one of {NORMALISERS}, got {self.lap_normaliser!r}"
            )
        if self.stride <= 0 or self.n_classes <= 0 or self.msd_samples <= 0:
            raise ValueError("stride, n_classes and msd_samples must be positive")

    def to_dict(self) -> dict[str, Any]:
        """Return every field as a plain dict (for result rows and checkpoints)."""
        return asdict(self)

    @classmethod
    def dlm(cls, **overrides: Any) -> LossConfig:
        """The DLM (LAP variant) configuration: WR, LAP and MSD all on."""
        return cls(**{"use_lap": True, "use_msd": True, "use_wr": True, **overrides})


def _get(output: Any, name: str, index: int) -> Tensor:
    """Read a field of a ``SuperpixelOutput``-like object (named tuple, object or tuple)."""
    if hasattr(output, name):
        return getattr(output, name)
    return output[index]


def superpixel_loss(
    output: Any,
    labels: Tensor,
    config: LossConfig,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Total loss of the SCN row of ``docs/method.md`` §7, from the switches of ``config``.

    Parameters
    ----------
    output : SuperpixelOutput-like
        Has ``assignment`` (``Q``, ``[B, 9, H, W]``) and ``embedding`` (``z``, ``[B, D, H, W]``;
        only read when MSD is on), as attributes or as items 0 and 1.
    labels : LongTensor
        ``[B, H, W]`` integer ground truth in ``0..n_classes-1``.
    config : LossConfig
        Switches and weights.
    generator : torch.Generator, optional
        The run's seeded generator (MSD sampling).

    Returns
    -------
    dict of str to Tensor
        Scalars, each already weighted: ``"recon"`` (``R`` or ``R_w``), ``"pos"``, ``"lap"``
        and ``"msd"`` (zero tensors when switched off), and ``"total"`` = their sum.
    """
    q = _get(output, "assignment", 0)
    labels = as_label_map(labels).to(q.device)
    b, _, h, w = q.shape
    s = config.stride
    onehot = label_to_onehot(labels, config.n_classes, dtype=q.dtype)
    coords = pixel_coordinates(b, h, w, device=q.device, dtype=q.dtype)
    # One pool/unpool pass for [Y, P]: channels are independent, so this equals separate passes.
    recon_all = reconstruct(torch.cat([onehot, coords], dim=1), q, s)
    y_hat, p_hat = recon_all[:, : config.n_classes], recon_all[:, config.n_classes :]

    ce = pixel_cross_entropy(onehot, y_hat)  # [B, 1, H, W]
    if config.use_wr:
        weights = mixed_cell_weights(labels, s, dtype=q.dtype)
        recon = config.lambda_wr * config.recon_weight * (ce * weights).sum() / b
    else:
        recon = config.recon_weight * ce.sum() / b
    l_pos = torch.linalg.vector_norm(p_hat - coords, ord=2, dim=1).sum() / b
    pos = config.pos_weight * l_pos

    zero = q.new_zeros(())
    lap = (
        config.lambda_lap * laplacian_loss(q, s, config.lap_normaliser) if config.use_lap else zero
    )
    if config.use_msd:
        z = _get(output, "embedding", 1)
        msd = config.lambda_msd * min_semantic_distance_loss(
            z,
            labels,
            margin=config.msd_margin,
            n_samples=config.msd_samples,
            mode=config.msd_mode,
            generator=generator,
            n_classes=config.n_classes,
        )
    else:
        msd = zero
    total = recon + pos + lap + msd
    return {"recon": recon, "pos": pos, "lap": lap, "msd": msd, "total": total}
