"""Constants shared by torch code and torch-free code (the config, the metrics, the report).

Only plain Python here: importing this module must not import torch.
"""

CELL_SIZE: int = 16
"""Side of a superpixel grid cell in pixels (``S`` of ``docs/method.md`` §0).

Every method predicts an assignment to the 3 × 3 cells around a pixel's own cell of this grid;
the network inputs, the losses' pooling windows, the prediction sizes (``predict.base_size`` ×
scale) and the nominal number of superpixels (image area / S²) all follow from it.
"""
