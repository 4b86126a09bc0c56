"""CDS's mutual-information and alignment terms (``docs/baselines.md`` §4.2), pure torch.

CDS (Xu et al., AAAI 2024, ``rookiie/CDSpixel: loss.py``) adds two terms to the SCN loss of its
two branches:

- **CLUB** (Cheng et al., ICML 2020, "CLUB: A Contrastive Log-ratio Upper Bound of Mutual
  Information"). A small network predicts a diagonal Gaussian ``q(y|x) = N(μ(x), e^{lv(x)})``
  of the auxiliary branch's common feature ``y`` from the RGB branch's common feature ``x``.
  The *upper bound* (:func:`club_upper_bound`) is minimised by the model with the estimator
  frozen; the estimator's own *learning loss* (:func:`club_learning_loss`, the negative
  unnormalised log-likelihood) is minimised by a second optimiser on detached features.
- **KL alignment** (:func:`alignment_kl`, upstream ``compute_alignment_loss``) between the
  per-cell channel distributions of the two branches' ``unique`` features.

The functions take the estimator's outputs ``μ`` and ``lv`` (not the estimator), so they can be
checked by hand and with :func:`torch.autograd.gradcheck`; the estimator module lives with the
model (``spbench.models.cds.CLUB``).

All inputs are ``[N, D]`` batches of feature vectors (``N`` samples, ``D`` = 32 for CDS); the
returned losses are unitless scalars (nats for the likelihood-based ones).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from spbench.constants import CELL_SIZE

__all__ = [
    "ALIGNMENT_CELL",
    "alignment_kl",
    "club_learning_loss",
    "club_log_likelihood",
    "club_upper_bound",
]

#: Side of the non-overlapping cells of the alignment term, in pixels: the grid cell (hard-coded
#: 16 upstream).
ALIGNMENT_CELL = CELL_SIZE


def _check_pair(mu: Tensor, logvar: Tensor, y: Tensor) -> None:
    if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape != y.shape:
        raise ValueError(
            "mu, logvar and y must all be [N, D]; got "
            f"{tuple(mu.shape)}, {tuple(logvar.shape)}, {tuple(y.shape)}"
        )


def club_upper_bound(mu: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """CLUB estimate of ``I(X; Y)`` (upstream ``CLUB.forward``).

    ``mean_i [ Σ_d −(μ_id − y_id)²/(2e^{lv_id}) − Σ_d −mean_j (y_jd − μ_id)²/(2e^{lv_id}) ]``:
    the log-likelihood of the positive pairs ``(x_i, y_i)`` minus its mean over all pairs
    ``(x_i, y_j)`` (the log-normaliser cancels). The ``N × N × D`` difference tensor is formed as
    upstream does (``N`` is the batch size, 8), so the sums run in the same order.

    Parameters
    ----------
    mu, logvar : Tensor
        ``[N, D]`` mean and log-variance of ``q(y | x_i)``.
    y : Tensor
        ``[N, D]`` samples of ``Y`` paired with the ``x_i``.

    Returns
    -------
    Tensor
        Scalar, in nats. Zero for ``N = 1`` (the only pair is also the mean over pairs).
    """
    _check_pair(mu, logvar, y)
    var = logvar.exp()
    positive = -((mu - y) ** 2) / 2.0 / var
    # [N, 1, D] − [1, N, D]: row i pairs μ_i with every y_j; the mean runs over j.
    negative = -((y.unsqueeze(0) - mu.unsqueeze(1)) ** 2).mean(dim=1) / 2.0 / var
    return (positive.sum(dim=-1) - negative.sum(dim=-1)).mean()


def club_log_likelihood(mu: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """Unnormalised log-likelihood of ``q(y | x)`` (upstream ``CLUB.loglikeli``).

    ``mean_i Σ_d [−(μ_id − y_id)²/e^{lv_id} − lv_id]``, i.e. twice the Gaussian log-density up
    to the constant ``−D·log 2π``.

    Parameters
    ----------
    mu, logvar, y : Tensor
        ``[N, D]``, as in :func:`club_upper_bound`.

    Returns
    -------
    Tensor
        Scalar (nats, ×2, without the constant).
    """
    _check_pair(mu, logvar, y)
    return (-((mu - y) ** 2) / logvar.exp() - logvar).sum(dim=1).mean(dim=0)


def club_learning_loss(mu: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """The estimator's training loss, ``−club_log_likelihood`` (upstream ``CLUB.learning_loss``).

    CDS minimises it with its own Adam over the estimator's parameters only, on *detached*
    features (``docs/baselines.md`` §4.2, "MI step").

    Returns
    -------
    Tensor
        Scalar.
    """
    return -club_log_likelihood(mu, logvar, y)


def alignment_kl(content_a: Tensor, content_b: Tensor, cell: int = ALIGNMENT_CELL) -> Tensor:
    """KL alignment of two feature maps per grid cell (upstream ``compute_alignment_loss``).

    Each map is split into non-overlapping ``cell × cell`` blocks (a remainder at the bottom or
    right is dropped, as ``F.unfold`` does); the per-block channel means go through a softmax
    over channels, giving ``P_A`` and ``P_B``; the loss is ``Σ_c P_A (log P_A − log P_B)``
    averaged over blocks and batch. Gradients flow into both maps.

    Upstream computes ``P_A · log(P_A / P_B)`` from the softmax outputs; this uses
    ``log_softmax`` for the logs, which is the same value without ``0/0`` when a probability
    underflows.

    Parameters
    ----------
    content_a, content_b : Tensor
        ``[B, C, H, W]`` feature maps (CDS: the RGB and Sobel branches' ``unique`` features,
        ``C = 32``).
    cell : int
        Block side in pixels (16).

    Returns
    -------
    Tensor
        Scalar KL divergence in nats, ``≥ 0``.
    """
    if content_a.shape != content_b.shape or content_a.dim() != 4:
        raise ValueError(
            "alignment_kl expects two [B, C, H, W] maps of equal shape; got "
            f"{tuple(content_a.shape)} and {tuple(content_b.shape)}"
        )
    if content_a.shape[2] < cell or content_a.shape[3] < cell:
        raise ValueError(f"maps smaller than one {cell}×{cell} cell: {tuple(content_a.shape)}")
    # Per-cell channel means, [B, C, n_h, n_w]; the softmax runs over channels (dim 1).
    mean_a = F.avg_pool2d(content_a, cell, cell)
    mean_b = F.avg_pool2d(content_b, cell, cell)
    log_pa = F.log_softmax(mean_a, dim=1)
    log_pb = F.log_softmax(mean_b, dim=1)
    return (log_pa.exp() * (log_pa - log_pb)).sum(dim=1).mean()
