"""How each checkpoint of a run was made: code, device, date, steps, wall time, fast modes.

The table goes beside the report (``report/provenance.md`` and ``.csv``), so a results folder
that is committed says what produced it. Each checkpoint records the git commit of the code
that trained it (``git_commit``, column ``commit``): ``SPBENCH_GIT_COMMIT`` when set (a machine
with a copy of the tree and no ``.git``), else ``git`` in spbench's own folder. The table's
header gives the commit it was written at, which may be later.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from spbench.io import atomic_path, git_commit
from spbench.report.aggregate import format_number, markdown_table

__all__ = ["checkpoint_provenance", "git_commit", "write_provenance"]

COLUMNS = (
    "method",
    "variant",
    "seed",
    "stage",
    "weights",
    "weights_sha256",
    "steps",
    "budget",
    "wall_time_s",
    "ms_per_step",
    "device",
    "device_name",
    "fast_modes",
    "finished",
    "commit",
    "spbench_version",
    "torch_version",
    "checkpoint",
)


def checkpoint_provenance(checkpoints: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Return one row per checkpoint with the columns of :data:`COLUMNS`.

    ``wall_time_s`` is the training time of that stage in seconds (resumed runs included),
    ``ms_per_step`` = wall time / steps in milliseconds (validation and checkpointing
    included); ``budget`` is the ``train.budget`` the steps were scaled by (1: the profile's
    full step counts); ``weights_sha256`` is the sha256 of the file published weights were imported
    from; fields an older checkpoint lacks are empty.
    """
    from spbench.checkpoint import load_checkpoint

    rows = []
    for path in checkpoints:
        ckpt = load_checkpoint(path)
        steps = int(ckpt.get("step") or 0)
        wall = float(ckpt.get("wall_time_s") or 0.0)
        rows.append(
            {
                "method": ckpt.get("method"),
                "variant": ckpt.get("variant"),
                "seed": ckpt.get("seed"),
                "stage": ckpt.get("stage"),
                "weights": ckpt.get("weights"),
                "weights_sha256": ckpt.get("weights_sha256", ""),
                "steps": steps,
                "budget": (ckpt.get("settings") or {}).get("budget", 1),
                "wall_time_s": wall,
                "ms_per_step": 1000.0 * wall / steps if steps else float("nan"),
                "device": ckpt.get("device"),
                "device_name": ckpt.get("device_name", ""),
                "fast_modes": ckpt.get("fast_modes", ""),
                "finished": ckpt.get("finished", ""),
                "commit": ckpt.get("git_commit", ""),
                "spbench_version": ckpt.get("spbench_version"),
                "torch_version": ckpt.get("torch_version"),
                "checkpoint": str(path),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_provenance(
    checkpoints: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Write the provenance of ``checkpoints`` as Markdown (``out``) and CSV beside it.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The Markdown and CSV paths.
    """
    out = Path(out)
    frame = checkpoint_provenance(checkpoints)
    csv = out.with_suffix(".csv")
    with atomic_path(csv) as tmp:
        frame.to_csv(tmp, index=False)
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    total = frame["wall_time_s"].sum()
    shown = ["method", "variant", "seed", "stage", "steps", "budget", "wall_time_s", "ms_per_step"]
    shown += ["device", "device_name", "fast_modes", "finished", "commit"]
    rows = [
        [
            format_number(rec[col], 1) if col in ("wall_time_s", "ms_per_step") else str(rec[col])
            for col in shown
        ]
        for rec in frame.to_dict("records")
    ]
    versions = sorted(set(zip(frame["spbench_version"], frame["torch_version"], strict=True)))
    imported = frame[frame["weights_sha256"].fillna("") != ""]
    published = sorted(set(zip(imported["weights"], imported["weights_sha256"], strict=True)))
    lines = [
        "# Provenance",
        "",
        f"- code: git commit `{git_commit()}` when this table was written; each checkpoint's "
        "own (the code that trained it) is in its row",
        f"- versions (spbench, torch): {', '.join(f'{s}, {t}' for s, t in versions) or '-'}",
        f"- table written: {now}",
        f"- checkpoints: {len(frame)}, total training wall time {total / 60:.1f} min",
        *(f"- {weights}: sha256 `{sha}`" for weights, sha in published),
        "",
        *markdown_table(shown, rows),
        "",
    ]
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return out, csv
