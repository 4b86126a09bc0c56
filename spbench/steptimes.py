"""The step-time table: what one unit of each job's work costs on a named device.

``spbench plan`` estimates a profile's jobs from it; ``spbench bench train --record`` adds the
rows it measures. It is a small CSV with one row per measured figure:

``kind``
    ``train`` (``ms`` per optimiser step), ``predict`` (``ms`` per (image, scale) of
    ``spbench predict``, averaged over the scales measured, writing included) or ``score``
    (``ms`` of one pair-score — one (image, annotation, scale, EC) row — on one core).
``method, stage, variant, mode``
    What was timed: the stage, the loss variant of :data:`VARIANTS` (the cost depends on the
    loss switches, not on λ), the fast-mode label (``fp32``, ``bf16+cuda_graph``, ...);
    ``*`` where a kind does not depend on it.
``device, device_name``
    ``cpu`` or ``cuda`` and the readable name (``NVIDIA H100 80GB HBM3``, ``AMD EPYC (2
    threads)``): figures are only used for the device they were measured on.
``batch_size, size``
    Batch and crop side in pixels (train), the network input at scale 1 (predict, ``320x480``).
``ms, date, source``
    The figure, when it was measured (ISO date) and by what.

Two tables are read: the one spbench ships (``spbench/resources/step_times.csv``, measured by the
project, each row with its device and date) and the user's own (:func:`user_table`), whose rows
win over shipped ones with the same key. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from spbench.errors import UserError
from spbench.io import atomic_path

__all__ = [
    "COLUMNS",
    "VARIANTS",
    "Figure",
    "bench_variant",
    "fast_label",
    "lookup",
    "read_table",
    "record",
    "shipped_table",
    "user_table",
]

COLUMNS = (
    "kind",
    "method",
    "stage",
    "variant",
    "mode",
    "device",
    "device_name",
    "batch_size",
    "size",
    "ms",
    "date",
    "source",
)

#: The row fields that name a figure; a recorded row replaces an older one with the same key.
KEY = COLUMNS[:9]

#: Loss variants the training benchmark times and their switches (use_lap, use_msd, use_wr):
#: every combination, so that each run of Table 3's factorial and the λ sweep can be priced.
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "base": (False, False, False),
    "lap": (True, True, True),
    "lap_only": (True, False, False),
    "msd_only": (False, True, False),
    "wr_only": (False, False, True),
    "lap_msd": (True, True, False),
    "lap_wr": (True, False, True),
    "msd_wr": (False, True, True),
}

#: Environment variable that names the user's table instead of the default path.
ENV = "SPBENCH_STEP_TIMES"


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the table, typed (see the module docstring for the fields)."""

    kind: str
    method: str
    stage: str
    variant: str
    mode: str
    device: str
    device_name: str
    batch_size: int
    size: str
    ms: float
    date: str
    source: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Figure:
        """Build from a CSV row (strings), converting the numeric fields."""
        values = {name: str(row[name]) for name in COLUMNS}
        return cls(**{**values, "batch_size": int(row["batch_size"]), "ms": float(row["ms"])})


def shipped_table() -> Path:
    """Return the path of the figures spbench ships (measured by the project)."""
    return Path(str(resources.files("spbench").joinpath("resources/step_times.csv")))


def user_table() -> Path:
    """Return the user's table: ``$SPBENCH_STEP_TIMES``, else
    ``$XDG_DATA_HOME/spbench/step_times.csv`` (``~/.local/share/spbench/step_times.csv``)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "spbench" / "step_times.csv"


def read_table(paths: Sequence[str | os.PathLike[str]] | None = None) -> list[Figure]:
    """Read step-time tables, earlier paths winning on equal keys.

    Parameters
    ----------
    paths
        Tables to read, each of which must exist (default: the user's, if it exists, then the
        shipped one).

    Raises
    ------
    UserError
        Naming a file whose header or values are not a step-time table's, or a path given in
        ``paths`` that is not a file.
    """
    if paths is None:
        paths = [p for p in (user_table(), shipped_table()) if p.is_file()]
    figures: dict[tuple, Figure] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(
                f"step-time table {path} not found; check the path (a table is written by "
                "`spbench bench train --record`)"
            )
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or set(COLUMNS) - set(reader.fieldnames):
                raise UserError(f"{path}: not a step-time table (columns {', '.join(COLUMNS)})")
            try:
                rows = [Figure.from_row(row) for row in reader]
            except (TypeError, ValueError) as err:
                raise UserError(f"{path}: bad value ({err}); fix or delete the row") from None
        for figure in rows:
            figures.setdefault(_key(figure), figure)
    return list(figures.values())


def _key(figure: Figure) -> tuple:
    return tuple(getattr(figure, name) for name in KEY)


def record(figures: Iterable[Figure], path: str | os.PathLike[str]) -> Path:
    """Add ``figures`` to the table at ``path`` (created if missing), replacing older rows with
    the same key, and return the path."""
    path = Path(path)
    kept = {_key(f): f for f in read_table([path])} if path.is_file() else {}
    kept.update({_key(f): f for f in figures})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for figure in sorted(kept.values(), key=_key):
            writer.writerow(dataclasses.asdict(figure))
    return path


def fast_label(fast: Mapping[str, Any] | None) -> str:
    """Return the label of the fast modes in ``train.fast``, e.g. ``"bf16+cuda_graph"`` or
    ``"fp32"`` (the label :class:`spbench.step.FastModes` gives and the table is keyed by)."""
    fast = dict(fast or {})
    parts = [
        name
        for name, on in (
            ("tf32", fast.get("tf32")),
            ("bf16", fast.get("amp") == "bf16"),
            ("channels_last", fast.get("channels_last")),
            ("compile", fast.get("compile")),
            ("cuda_graph", fast.get("cuda_graph")),
        )
        if on
    ]
    return "+".join(parts) or "fp32"


def bench_variant(losses: Mapping[str, Any]) -> str:
    """Return the :data:`VARIANTS` name with a job's loss switches (``use_lap``, ...)."""
    switches = (bool(losses["use_lap"]), bool(losses["use_msd"]), bool(losses["use_wr"]))
    return next(name for name, s in VARIANTS.items() if s == switches)


def lookup(
    figures: Iterable[Figure],
    *,
    kind: str,
    device_name: str,
    method: str = "*",
    stage: str = "*",
    variant: str = "*",
    mode: str = "*",
    batch_size: int | None = None,
    size: str = "*",
) -> tuple[float, str] | None:
    """Return ``(ms, note)`` of one unit of work, or None when the table has no such figure.

    A figure at the same size but another batch size is scaled per image (``ms × batch /
    figure's batch``) and the note says so; any other difference (device, mode, variant, size)
    is unknown rather than guessed. Among equal candidates the newest wins.
    """
    wanted = {
        "kind": kind,
        "device_name": device_name,
        "method": method,
        "stage": stage,
        "variant": variant,
        "mode": mode,
        "size": size,
    }
    matches = [
        f for f in figures if all(getattr(f, name) == value for name, value in wanted.items())
    ]
    if not matches:
        return None
    exact = [f for f in matches if batch_size is None or f.batch_size == batch_size]
    if exact:
        return max(exact, key=lambda f: f.date).ms, ""
    nearest = max(matches, key=lambda f: (f.batch_size, f.date))
    note = f"per image from batch {nearest.batch_size}"
    return nearest.ms * batch_size / nearest.batch_size, note
