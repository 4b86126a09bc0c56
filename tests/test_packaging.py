"""The two dependency lists (pyproject.toml for pip, environment.yml for conda) say the same."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

#: What environment.yml lists besides the requirements: the interpreter and pip itself.
CONDA_ONLY = {"python", "pip"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject_requirements() -> list[Requirement]:
    """The core requirements and those of every extra (environment.yml installs them all)."""
    project = _pyproject()
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts += extra
    return [Requirement(text) for text in texts]


def _conda_requirements() -> list[Requirement]:
    found = []
    for dep in _environment()["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if item.startswith("-"):  # pip options such as "-e ."
                continue
            found.append(Requirement(re.sub(r"(?<=\w)=(?=\d)", "==", item)))  # conda's "=3.11"
    return found


def _bounds(requirements: list[Requirement]) -> dict[str, set[str]]:
    bounds: dict[str, set[str]] = {}
    for req in requirements:
        bounds.setdefault(canonicalize_name(req.name), set()).add(str(req.specifier))
    return bounds


def test_each_file_names_a_requirement_with_one_bound():
    """A package listed twice (or with two bounds across extras) has no single meaning."""
    for requirements in (_pyproject_requirements(), _conda_requirements()):
        bounds = _bounds(requirements)
        assert not {n: b for n, b in bounds.items() if len(b) > 1}
    names = Counter(canonicalize_name(r.name) for r in _conda_requirements())
    assert not [name for name, n in names.items() if n > 1], names


def test_environment_and_pyproject_name_the_same_packages_with_the_same_bounds():
    pip = {n: b.pop() for n, b in _bounds(_pyproject_requirements()).items()}
    conda = {n: b.pop() for n, b in _bounds(_conda_requirements()).items() if n not in CONDA_ONLY}
    assert sorted(set(pip) - set(conda)) == [], "missing from environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "missing from pyproject.toml"
    assert {n: (pip[n], conda[n]) for n in pip if pip[n] != conda[n]} == {}


def test_environment_python_meets_requires_python():
    python = {canonicalize_name(r.name): r for r in _conda_requirements()}["python"]
    (pin,) = python.specifier  # one "==3.11"
    assert pin.operator == "==", python
    assert SpecifierSet(_pyproject()["requires-python"]).contains(pin.version), pin


def test_environment_channels_hold_the_snakemake_packages():
    """snakemake-executor-plugin-slurm and snakefmt are published on bioconda."""
    assert _environment()["channels"][:2] == ["conda-forge", "bioconda"]
