"""The plain 16-px grid as a method: no network, no training, connected by construction.

It assigns every pixel to its own grid cell, so its superpixels are the grid's squares. It runs
through exactly the same predict, score and report code as the learned models, which makes it
the trivial reference row of every table and the method the real-data end-to-end test scores
without any training.
"""

from __future__ import annotations

import torch
from torch import nn

from spbench.catalogue import NO_TRAINING
from spbench.constants import CELL_SIZE
from spbench.grid import initial_grid_assignment
from spbench.models.registry import SuperpixelOutput, register_method


class GridAssignment(nn.Module):
    """Return the hard initial grid assignment for any input (all mass on the centre cell)."""

    def __init__(self, stride: int = CELL_SIZE) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, image: torch.Tensor) -> SuperpixelOutput:
        """Map ``[B, 3, H, W]`` images to the grid's ``Q`` and an all-zero 1-channel embedding."""
        b, _, h, w = image.shape
        q = initial_grid_assignment(b, h, w, self.stride, device=image.device, dtype=image.dtype)
        return SuperpixelOutput(q, image.new_zeros(b, 1, h, w))


@register_method(
    "grid",
    recipe=NO_TRAINING,
    description="no network, no training: the plain 16-px grid (the trivial reference)",
)
def grid(**kwargs: object) -> nn.Module:
    """Build the parameter-free grid method."""
    return GridAssignment(**kwargs)
