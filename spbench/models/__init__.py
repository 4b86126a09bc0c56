"""Superpixel networks and their registry.

Importing this package registers every built-in method (``"scn"``, ...).
"""

from spbench.models import ainet as _ainet  # noqa: F401  (registers "ainet")
from spbench.models import cds as _cds  # noqa: F401  (registers "cds")
from spbench.models import grid_baseline as _grid_baseline  # noqa: F401  (registers "grid")
from spbench.models import scn as _scn  # noqa: F401  (registers "scn")
from spbench.models import slic as _slic  # noqa: F401  (registers "slic")
from spbench.models import ssm as _ssm  # noqa: F401  (registers "ssm")
from spbench.models.registry import (
    Method,
    Recipe,
    Stage,
    SuperpixelOutput,
    create_model,
    get_method,
    get_stage,
    list_methods,
    parameter_groups,
    register_method,
)
from spbench.models.scn import SpixelNet

__all__ = [
    "Method",
    "Recipe",
    "SpixelNet",
    "Stage",
    "SuperpixelOutput",
    "create_model",
    "get_method",
    "get_stage",
    "list_methods",
    "parameter_groups",
    "register_method",
]
