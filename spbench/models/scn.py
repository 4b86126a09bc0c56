"""SCN, ``SpixelNet1l_bn`` of Yang et al., CVPR 2020 (``docs/baselines.md`` §2).

Module names follow ``fuy34/superpixel_fcn: models/Spixel_single_layer.py`` so that upstream
checkpoints (``checkpoint["state_dict"]``) load with ``load_state_dict``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spbench.catalogue import SCN_RECIPE
from spbench.constants import CELL_SIZE
from spbench.grid import grid_shape
from spbench.models.layers import conv, deconv, init_weights, predict_mask
from spbench.models.registry import SuperpixelOutput, register_method

__all__ = ["SCN_RECIPE", "SpixelNet", "scn"]


class SpixelNet(nn.Module):
    """SCN encoder–decoder with a 9-way assignment head.

    Parameters
    ----------
    batch_norm : bool
        ``True`` for ``SpixelNet1l_bn`` (the benchmarked model; 2,287,956 parameters).
    """

    def __init__(self, batch_norm: bool = True) -> None:
        super().__init__()
        bn = batch_norm
        self.assign_ch = 9
        self.conv0a = conv(3, 16, batch_norm=bn)
        self.conv0b = conv(16, 16, batch_norm=bn)
        self.conv1a = conv(16, 32, stride=2, batch_norm=bn)
        self.conv1b = conv(32, 32, batch_norm=bn)
        self.conv2a = conv(32, 64, stride=2, batch_norm=bn)
        self.conv2b = conv(64, 64, batch_norm=bn)
        self.conv3a = conv(64, 128, stride=2, batch_norm=bn)
        self.conv3b = conv(128, 128, batch_norm=bn)
        self.conv4a = conv(128, 256, stride=2, batch_norm=bn)
        self.conv4b = conv(256, 256, batch_norm=bn)

        self.deconv3 = deconv(256, 128)
        self.conv3_1 = conv(256, 128, batch_norm=bn)
        # pred_mask3/2/1 are never used in forward; kept for state-dict compatibility and
        # counted in the 2,287,956 parameters.
        self.pred_mask3 = predict_mask(128, self.assign_ch)
        self.deconv2 = deconv(128, 64)
        self.conv2_1 = conv(128, 64, batch_norm=bn)
        self.pred_mask2 = predict_mask(64, self.assign_ch)
        self.deconv1 = deconv(64, 32)
        self.conv1_1 = conv(64, 32, batch_norm=bn)
        self.pred_mask1 = predict_mask(32, self.assign_ch)
        self.deconv0 = deconv(32, 16)
        self.conv0_1 = conv(32, 16, batch_norm=bn)
        self.pred_mask0 = predict_mask(16, self.assign_ch)
        self.softmax = nn.Softmax(1)
        init_weights(self)

    def forward(self, x: Tensor) -> SuperpixelOutput:
        """Predict the assignment.

        Parameters
        ----------
        x : Tensor
            ``[B, 3, H, W]`` normalised RGB; ``H`` and ``W`` multiples of 16.

        Returns
        -------
        SuperpixelOutput
            ``assignment`` ``[B, 9, H, W]`` (softmax over dim 1) and ``embedding`` =
            ``out_conv0_1`` ``[B, 16, H, W]``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SCN expects [B, 3, H, W] input, got {tuple(x.shape)}")
        # Four stride-2 stages: H and W must be multiples of 16 for the skip connections.
        grid_shape(x.shape[2], x.shape[3], CELL_SIZE)
        out1 = self.conv0b(self.conv0a(x))
        out2 = self.conv1b(self.conv1a(out1))
        out3 = self.conv2b(self.conv2a(out2))
        out4 = self.conv3b(self.conv3a(out3))
        out5 = self.conv4b(self.conv4a(out4))
        # Skip connections concatenate the encoder feature first.
        out_conv3_1 = self.conv3_1(torch.cat((out4, self.deconv3(out5)), 1))
        out_conv2_1 = self.conv2_1(torch.cat((out3, self.deconv2(out_conv3_1)), 1))
        out_conv1_1 = self.conv1_1(torch.cat((out2, self.deconv1(out_conv2_1)), 1))
        out_conv0_1 = self.conv0_1(torch.cat((out1, self.deconv0(out_conv1_1)), 1))
        prob0 = self.softmax(self.pred_mask0(out_conv0_1))
        return SuperpixelOutput(assignment=prob0, embedding=out_conv0_1)


@register_method(
    "scn",
    recipe=SCN_RECIPE,
    description="SCN (SpixelNet1l_bn, Yang et al. CVPR 2020); DLM losses via LossConfig switches",
)
def scn(batch_norm: bool = True, **kwargs: object) -> SpixelNet:
    """Build SCN (``SpixelNet1l_bn``).

    Parameters
    ----------
    batch_norm : bool
        Use BatchNorm (the benchmarked ``SpixelNet1l_bn``).
    **kwargs
        Ignored keys are rejected so that config typos do not pass silently.

    Returns
    -------
    SpixelNet
    """
    if kwargs:
        raise TypeError(f"scn() got unexpected arguments: {sorted(kwargs)}")
    return SpixelNet(batch_norm=batch_norm)
