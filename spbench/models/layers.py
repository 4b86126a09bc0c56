"""Blocks shared by SCN, AINet and CDS (``docs/baselines.md`` §1; upstream ``model_util.py``)."""

from __future__ import annotations

from torch import nn

__all__ = ["conv", "deconv", "init_weights", "predict_mask"]


def conv(
    in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, batch_norm: bool = True
) -> nn.Sequential:
    """``Conv2d → BatchNorm2d → LeakyReLU(0.1)`` (no conv bias), or ``Conv2d(bias) → LeakyReLU``.

    Returns
    -------
    nn.Sequential
        Indices 0 (conv), 1 (BN or activation), 2 (activation) as upstream, so state-dict keys
        match (``conv0a.0.weight``, ``conv0a.1.running_mean``, ...).
    """
    padding = (kernel_size - 1) // 2
    if batch_norm:
        return nn.Sequential(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.LeakyReLU(0.1),
        )
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=True),
        nn.LeakyReLU(0.1),
    )


def deconv(in_planes: int, out_planes: int) -> nn.Sequential:
    """``ConvTranspose2d(k=4, s=2, p=1, bias) → LeakyReLU(0.1)``: doubles the resolution, no BN."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_planes, out_planes, kernel_size=4, stride=2, padding=1, bias=True),
        nn.LeakyReLU(0.1),
    )


def predict_mask(in_planes: int, channels: int = 9) -> nn.Conv2d:
    """Assignment logits: ``Conv2d(in → 9, 3×3, padding 1, bias)``; the model applies softmax."""
    return nn.Conv2d(in_planes, channels, kernel_size=3, stride=1, padding=1, bias=True)


def init_weights(model: nn.Module) -> None:
    """Upstream initialisation, in place.

    Conv2d / ConvTranspose2d weights: ``kaiming_normal_(a=0.1)`` (fan_in, leaky_relu), biases 0;
    BatchNorm2d γ = 1, β = 0. Linear layers keep PyTorch's default init.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, 0.1)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1.0)
            nn.init.constant_(m.bias, 0.0)
