"""The two dependency lists (pyproject.toml for pip, environment.yml for conda) say the same."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: pyproject extras that environment.yml installs as well (its comment says "the same").
EXTRAS = ("test", "slurm")


def _split(requirement: str) -> tuple[str, str]:
    """``"snakemake[reports]>=9.12"`` → ``("snakemake", ">=9.12")``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(.*)", requirement)
    assert match, requirement
    return match.group(1).lower(), match.group(2).replace(" ", "")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_requirements() -> dict[str, str]:
    env = _environment()
    found: dict[str, str] = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-") or item == "pip":
                continue
            # conda's "python=3.11" is pip's "python==3.11"
            name, spec = _split(re.sub(r"(?<=[\w])=(?=\d)", "==", item))
            found[name] = spec
    return found


def test_environment_has_every_pyproject_requirement_with_its_bounds():
    project = _pyproject()
    wanted = dict(map(_split, project["dependencies"]))
    for extra in EXTRAS:
        wanted.update(dict(map(_split, project["optional-dependencies"][extra])))
    conda = _conda_requirements()
    missing = sorted(set(wanted) - set(conda))
    assert not missing, f"environment.yml lacks {missing}"
    differ = {n: (wanted[n], conda[n]) for n in wanted if wanted[n] != conda[n]}
    assert not differ, f"bounds differ (pyproject, environment.yml): {differ}"


def test_environment_python_meets_requires_python():
    floor = _split("python" + _pyproject()["requires-python"].split("#")[0])[1]
    assert floor.startswith(">="), floor
    python = _conda_requirements()["python"]
    assert python.startswith("=="), python

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:2])

    assert version(python[2:]) >= version(floor[2:])


def test_environment_channels_hold_the_snakemake_packages():
    """snakemake-executor-plugin-slurm and snakefmt are on bioconda only."""
    assert _environment()["channels"][:2] == ["conda-forge", "bioconda"]
