"""The dependency lists: pyproject.toml (pip) and environment.yml (conda) say the same, and the
runtime list is what the package imports."""

from __future__ import annotations

import ast
import re
import sys
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

#: Runtime requirements whose import name differs from the distribution's.
IMPORT_NAMES = {
    "scikit-image": "skimage",
    "opencv-python-headless": "cv2",
    "pillow": "PIL",
    "pyyaml": "yaml",
}

#: Runtime requirements used without an import statement in spbench/, and why.
USED_WITHOUT_IMPORT = {
    "pyarrow": "pandas' Parquet engine",
    "snakemake": "runs the workflow (the rules call spbench, not the reverse)",
}


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


def _imported_top_level_modules() -> set[str]:
    """Top-level modules that spbench/ imports by absolute name (module level or in a function)."""
    found: set[str] = set()
    for path in (ROOT / "spbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"spbench"}


def test_runtime_requirements_are_what_the_package_imports():
    """An unused requirement costs every user an install; a missing one fails on first use."""
    declared = {canonicalize_name(Requirement(t).name) for t in _pyproject()["dependencies"]}
    imported = _imported_top_level_modules()
    module_of = {name: IMPORT_NAMES.get(name, name) for name in declared}
    unused = {n for n, m in module_of.items() if m not in imported} - set(USED_WITHOUT_IMPORT)
    assert sorted(unused) == [], "declared in pyproject.toml but never imported by spbench/"
    assert sorted(imported - set(module_of.values())) == [], "imported but not declared"
