"""spbench: regenerate the tables and plots of *Differentiable Laplacian Matrix Guided Superpixel
Segmentation* (CVPR 2026) on BSDS500, and extend them with new methods."""

__version__ = "0.1.0"
