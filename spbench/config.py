"""Configuration: loading, validation against the JSON schema, defaults, and per-stage settings.

The schema (``spbench/resources/config.schema.yaml``, also reachable as
``workflow/schemas/config.schema.yaml``) is the single description of every key. The workflow and
the command line both go through :func:`validate_config`, so a bad key or value fails the same way
everywhere: at start, with the key path in the message.

Each job receives only the settings that can change its output, resolved for that job
(:mod:`spbench.jobs`); the workflow passes them as rule ``params``, so changing the report range
reruns the report and nothing else.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from spbench.catalogue import PUBLISHED_PREFIX
from spbench.errors import UserError


class ConfigError(UserError, ValueError):
    """An invalid configuration; the message names the key path and what to change."""


@cache
def schema() -> dict:
    """Return the configuration JSON schema (parsed from the packaged YAML file)."""
    text = resources.files("spbench").joinpath("resources/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _fill_defaults(instance: Any, node: dict, root: dict) -> None:
    """Insert schema defaults into ``instance`` in place (deep copies, never shared objects)."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if not isinstance(instance, dict):
        return
    for key, sub in node.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in node.get("properties", {}):
                _fill_defaults(value, extra, root)


def section_defaults(section: str) -> dict[str, Any]:
    """Return the schema's defaults of one top-level section (e.g. ``"losses"``), a fresh dict."""
    filled: dict[str, Any] = {}
    _fill_defaults(filled, schema()["properties"][section], schema())
    return filled


#: Why a number can arrive as a string: Snakemake reads the nested values of ``--config`` verbatim.
STRING_HINT = (
    "(a value inside a mapping given with `snakemake --config key={...}` arrives as a string: "
    "Snakemake reads nested values verbatim. Put those keys in a YAML file and pass it after "
    "the profile, `--configfile PROFILE.yaml OVERRIDES.yaml`, e.g. config/full-protocol.yaml)"
)


OVERLAY_HINT = (
    "(no run_name, dataset or methods: an overlay such as "
    "config/full-protocol.yaml goes after a profile, `--configfile config/cpu-short.yaml "
    "OVERLAY.yaml`)"
)


def _quoted_scalar(error: jsonschema.ValidationError) -> bool:
    """Whether a type error's value is a string that YAML would read as a number, bool or null."""
    if error.validator != "type" or not isinstance(error.instance, str):
        return False
    try:
        return not isinstance(yaml.safe_load(error.instance), str)
    except yaml.YAMLError:
        return False


def _key_path(error: jsonschema.ValidationError, prefix: str = "config") -> str:
    return prefix + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
    )


def _is_integer(_checker: Any, instance: Any) -> bool:
    """Whether ``instance`` is an integer as spbench reads one: ``3`` but not ``3.0`` (which
    jsonschema counts as an integer, and which would reach the jobs as a float) nor ``true``."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator_class() -> type[jsonschema.protocols.Validator]:
    """Return the schema's validator class, with :func:`_is_integer` as its ``integer`` type."""
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", _is_integer)
    return jsonschema.validators.extend(base, type_checker=checker)


def validate_section(values: Any, key: str, *, prefix: str | None = None) -> None:
    """Validate settings given outside a profile against the schema of one key, its one home.

    Parameters
    ----------
    values
        The key's value, e.g. ``{"seed": -1, ...}`` for ``dataset.synthetic`` (from
        ``spbench data synthetic --seed``) or a list of scales for ``predict.scales``.
    key
        The dotted key path, e.g. ``"dataset.synthetic"`` or ``"predict.scales"``.
    prefix
        How the messages name the key (default ``config.<key>``); a key path follows it.

    Raises
    ------
    ConfigError
        Listing every value the schema refuses, with its key path.
    """
    spec = schema()
    node = spec
    for part in key.split("."):
        node = node["properties"][part]
    sub = {**node, "definitions": spec["definitions"]}
    errors = sorted(
        _validator_class()(sub).iter_errors(values), key=lambda e: list(e.absolute_path)
    )
    if errors:
        name = f"config.{key}" if prefix is None else prefix
        lines = [f"{_key_path(e, name)}: {e.message}" for e in errors[:10]]
        raise ConfigError("\n  ".join(lines) if len(lines) > 1 else lines[0])


def validate_config(config: dict, *, check_methods: bool = True) -> dict:
    """Validate a configuration and return a copy with every default filled in.

    Parameters
    ----------
    config
        The raw configuration mapping (as read from YAML, or Snakemake's ``config``).
    check_methods
        Also check that every method named is in the catalogue (:mod:`spbench.catalogue`,
        which needs no torch) or registered by a module of ``method_modules``.

    Returns
    -------
    dict
        The validated configuration with defaults.

    Raises
    ------
    ConfigError
        Naming the offending key path, e.g. ``config.predict.scales[2]: 5 is greater than the
        maximum of 4``, or listing the registered methods for an unknown one.
    """
    full = copy.deepcopy(dict(config))
    spec = schema()
    _fill_defaults(full, spec, spec)
    validator = _validator_class()(spec)
    errors = sorted(validator.iter_errors(full), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_key_path(e)}: {e.message}" for e in errors[:10]]
        if any(_quoted_scalar(e) for e in errors):
            lines.append(STRING_HINT)
        if not {"run_name", "dataset", "methods"} & set(config):
            lines.append(OVERLAY_HINT)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    if not full["dataset"]["root"]:
        full["dataset"]["root"] = f"data/{full['dataset']['name']}/prepared"
    import_method_modules(full["method_modules"])
    _check_consistency(full)
    if check_methods:
        _check_methods(full)
    return full


def method_name_pattern() -> str:
    """Return the pattern every method name must match: the schema's for ``methods``."""
    return schema()["properties"]["methods"]["items"]["pattern"]


def check_method_name(name: str) -> None:
    """Raise :class:`ConfigError` when ``name`` is not a method name a profile can list.

    ``spbench.models.register_method`` calls it, so that a method is never registered under a
    name that ``config.methods`` would refuse.
    """
    pattern = method_name_pattern()
    if not isinstance(name, str) or not re.fullmatch(pattern, name):
        raise ConfigError(
            f"method name {name!r} cannot be listed in config.methods (pattern {pattern}: "
            "lower-case letters, digits and _); register the method under such a name"
        )


#: Prefixes of the run names spbench derives (Table 3, the sweep, published weights).
RESERVED_VARIANT_PREFIXES = ("abl_", "lap_l", PUBLISHED_PREFIX)


def _check_consistency(full: dict) -> None:
    """Raise :class:`ConfigError` for what the schema cannot see: keys that contradict others."""
    for name in full["variants"]:
        if name.startswith(RESERVED_VARIANT_PREFIXES):
            raise ConfigError(
                f"config.variants.{name}: names starting with "
                f"{', '.join(RESERVED_VARIANT_PREFIXES)} are kept for the runs spbench derives "
                "(Table 3, the lambda sweep, published weights); rename the variant"
            )
    for i, entry in enumerate(full["published"]):
        if entry["variant"] not in full["variants"]:
            raise ConfigError(
                f"config.published[{i}].variant: {entry['variant']!r} is not a configured variant "
                f"({sorted(full['variants'])})"
            )
    check_scale_names(full["predict"]["scales"])
    check_scales_on_grid(full["predict"]["scales"], full["predict"]["base_size"])
    low, high = full["report"]["auc_range"]
    if not low < high:
        raise ConfigError(
            f"config.report.auc_range: [{low}, {high}] is not an interval; give [low, high] "
            "with low < high (superpixel counts, e.g. [384, 1200])"
        )


def check_scales_on_grid(
    scales: Sequence[float], base_size: Sequence[int], option: str = "config.predict.scales"
) -> None:
    """Raise :class:`ConfigError` for a scale whose network input is off the 16-px grid (it
    would stop the prediction job, after the training).

    ``base_size`` is ``predict.base_size``, the image's (short, long) sides in pixels.
    """
    from spbench.predictions import off_grid

    for i, scale in enumerate(scales):
        problem = off_grid(scale, base_size)
        if problem:
            raise ConfigError(f"{option}[{i}]: {problem}")


def check_scale_names(scales: Sequence[float], option: str = "config.predict.scales") -> None:
    """Raise :class:`ConfigError` for two scales whose file names would be the same.

    A prediction file is named by :func:`spbench.predictions.format_scale` (4 decimals), so
    ``0.5`` and ``0.50001`` would both write ``scale0.5.npz``.
    """
    from spbench.predictions import format_scale

    seen: dict[str, float] = {}
    for i, scale in enumerate(scales):
        name = format_scale(scale)
        if name in seen:
            raise ConfigError(
                f"{option}[{i}]: {scale!r} and {seen[name]!r} are the same scale "
                f"to 4 decimals (both scale{name}.npz); keep one of them"
            )
        seen[name] = scale


def _check_methods(full: dict) -> None:
    """Raise :class:`ConfigError` for a method name that is not registered, anywhere."""
    from spbench.catalogue import list_methods

    known = list_methods()
    named = {
        "config.methods": full["methods"],
        "config.references": full["references"],
        "config.ablation.method": [full["ablation"]["method"]]
        if full["ablation"]["enabled"]
        else [],
        "config.sweep.method": [full["sweep"]["method"]] if full["sweep"]["enabled"] else [],
        "config.published": [p["method"] for p in full["published"]],
    }
    for key, names in named.items():
        unknown = [m for m in names if m not in known]
        if unknown:
            raise ConfigError(
                f"{key}: unknown method(s) {unknown}; registered methods are {known}. "
                "A method of your own is registered with @register_method in a module that "
                "config.method_modules names (README: Adding a base method)."
            )
    _check_per_method(full, known)


def _check_per_method(full: dict, known: list[str]) -> None:
    """Raise :class:`ConfigError` for a ``train.per_method`` method or stage that does not exist.

    A misspelt name would otherwise be ignored and the stage trained with ``train.steps``.
    """
    from spbench.catalogue import get_card

    for method, stages in full["train"]["per_method"].items():
        if method not in known:
            raise ConfigError(
                f"config.train.per_method.{method}: unknown method; registered methods are {known}"
            )
        names = [stage.name for stage in get_card(method).stages]
        for stage in stages:
            if stage not in names:
                raise ConfigError(
                    f"config.train.per_method.{method}.{stage}: {method} has no stage "
                    f"{stage!r}; its stages are {names} (`spbench methods` lists them)"
                )


#: The factorial of Table 3 as (use_lap, use_msd, use_wr), baseline first.
FACTORIAL = tuple(
    (lap, msd, wr) for lap in (False, True) for msd in (False, True) for wr in (False, True)
)


def _switch_name(lap: bool, msd: bool, wr: bool) -> str:
    on = [name for name, flag in (("lap", lap), ("msd", msd), ("wr", wr)) if flag]
    return "abl_" + "_".join(on) if on else "abl_none"


def _training_key(switches: dict, default_lambda: float) -> tuple:
    """Return what of a variant's switches can change its training: λ_LAP only with LAP on.

    ``lambda_lap`` None means the profile's ``losses.lambda_lap``. Without LAP, λ weighs a term
    that is not computed (the train job's params leave it out too, ``spbench.jobs``), so the
    sweep's λ = 0 is the same run as the factorial's LAP-off row with MSD and WR.
    """
    lam = switches.get("lambda_lap")
    lam = default_lambda if lam is None else float(lam)
    return (
        switches["use_lap"],
        switches["use_msd"],
        switches["use_wr"],
        lam if switches["use_lap"] else None,
    )


def _derived_name(key: tuple, default_lambda: float) -> str:
    """Return the name of a derived run from its training key alone.

    ``abl_<switches>`` when λ is the profile's (or LAP is off), ``lap_l<λ>`` otherwise; so a
    run's name never depends on which experiments are enabled, and enabling Table 3 beside the
    sweep renames (and so retrains) nothing.
    """
    lap, msd, wr, lam = key
    if lam is None or lam == float(default_lambda):
        return _switch_name(lap, msd, wr)
    return "lap_l" + lambda_label(lam)


def lambda_label(lam: float) -> str:
    """Return λ as it appears in a run name: positional digits, ``.`` as ``p`` (``0.5`` → ``0p5``).

    Never an exponent (``1e+06`` would not be a valid run name).
    """
    return format(Decimal(repr(float(lam))).normalize(), "f").replace(".", "p")


def _derived_switches(config: dict) -> list[dict]:
    """Return the switches of every run Table 3's factorial and the λ sweep ask for."""
    derived = []
    if config["ablation"]["enabled"]:
        derived += [
            dict(zip(("use_lap", "use_msd", "use_wr"), s, strict=True), lambda_lap=None)
            for s in FACTORIAL
        ]
    if config["sweep"]["enabled"]:
        derived += [
            {"use_lap": lam > 0, "use_msd": True, "use_wr": True, "lambda_lap": float(lam)}
            for lam in config["sweep"]["lambdas"]
        ]
    return derived


def all_variants(config: dict) -> dict[str, dict]:
    """Return every variant the profile trains: the configured ones plus the derived ones.

    Table 3's factorial and the λ sweep reuse a configured variant whose switches (and λ) are
    identical, so the same run is never trained twice; the others are named by their settings
    alone (:func:`_derived_name`): ``abl_<switches>`` (``abl_lap``, ``abl_msd_wr``: the sweep's
    λ = 0 too) and ``lap_l<λ>``.
    """
    variants = {name: dict(v) for name, v in config["variants"].items()}
    default_lambda = config["losses"]["lambda_lap"]
    known: dict[tuple, str] = {}
    for name, v in variants.items():
        known.setdefault(_training_key(v, default_lambda), name)
    for switches in _derived_switches(config):
        key = _training_key(switches, default_lambda)
        if key not in known:
            known[key] = _derived_name(key, default_lambda)
            variants[known[key]] = switches
    return variants


def experiment_variants(config: dict) -> dict[str, list[str]]:
    """Return the variant names each experiment needs: ``table2``, ``table3``, ``sweep``."""
    variants = all_variants(config)
    default_lambda = config["losses"]["lambda_lap"]

    by_key: dict[tuple, str] = {}
    for name, v in variants.items():  # the first of identical variants, as all_variants keeps
        by_key.setdefault(_training_key(v, default_lambda), name)

    def find(lap: bool, msd: bool, wr: bool, lam: float) -> str:
        switches = {"use_lap": lap, "use_msd": msd, "use_wr": wr, "lambda_lap": lam}
        return by_key[_training_key(switches, default_lambda)]

    out = {"table2": list(config["variants"]), "table3": [], "sweep": []}
    if config["ablation"]["enabled"]:
        out["table3"] = [find(*s, default_lambda) for s in FACTORIAL]
    if config["sweep"]["enabled"]:
        out["sweep"] = [find(lam > 0, True, True, float(lam)) for lam in config["sweep"]["lambdas"]]
    return out


def experiment_runs(config: dict) -> dict[str, list[tuple[str, str, int]]]:
    """Return the (method, variant, seed) runs of each experiment.

    ``table2``: every method × configured variant × seed; ``table3``: the ablation method × the
    factorial; ``sweep``: the sweep method × the λ variants; each plus every reference method
    (variant ``base``, first seed only: SLIC and the grid are deterministic). A run shared by
    several experiments appears in each list. ``published``: one run per released checkpoint,
    variant ``pub_<variant>``, evaluated without training.
    """
    names = experiment_variants(config)
    seeds = config["seeds"]
    # Reference methods are deterministic: one seed, and a row in every table.
    references = [(m, "base", seeds[0]) for m in config["references"]]
    ablation, sweep = config["ablation"]["method"], config["sweep"]["method"]
    table3 = [(ablation, v, s) for v in names["table3"] for s in seeds]
    sweep_runs = [(sweep, v, s) for v in names["sweep"] for s in seeds]
    return {
        # A reference also listed in methods (methods: [slic]) is one run, not two.
        "table2": list(
            dict.fromkeys(
                [(m, v, s) for m in config["methods"] for v in names["table2"] for s in seeds]
                + references
            )
        ),
        "table3": table3 + references if table3 else [],
        "sweep": sweep_runs + references if sweep_runs else [],
        "published": [
            (p["method"], f"{PUBLISHED_PREFIX}{p['variant']}", 0) for p in config["published"]
        ],
    }


def import_method_modules(modules: list[str], *, option: str = "config.method_modules") -> None:
    """Import the modules that register extra methods (``config.method_modules``).

    A module found neither installed nor on ``sys.path`` is looked for in the current folder,
    as ``python -m`` would find it (and Snakemake, run from the Snakefile's folder), so that
    ``spbench check-config`` and ``spbench methods`` run there see a module beside the
    Snakefile.

    Raises
    ------
    ConfigError
        Naming ``option`` and the module that cannot be imported.
    """
    for module in modules:
        try:
            _import_here_too(module)
        except ImportError as err:
            raise ConfigError(
                f"{option}: cannot import {module!r} ({err}); {_import_hint(module, err)}"
            ) from err


def _import_hint(module: str, err: ImportError) -> str:
    """Return what to do about ``err``: install a package ``module`` imports, or make
    ``module`` itself importable."""
    missing = getattr(err, "name", None)
    if isinstance(err, ModuleNotFoundError) and missing:
        own = module.split(".")
        parts = missing.split(".")
        if parts != own[: len(parts)]:  # neither the module nor one of its parent packages
            return (
                f"the module imports {missing!r}, which is not installed; install the "
                "package that provides it in this environment"
            )
    return "install it or put its folder on PYTHONPATH"


def add_method_module_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--module MOD`` (repeatable) to a command that lists or runs methods: modules to
    import first, as ``config.method_modules``; :func:`import_method_modules` takes the list."""
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="MOD",
        help="import this module first to register its methods, as config.method_modules "
        "(repeatable)",
    )


def _import_here_too(module: str) -> None:
    """Import ``module``; if its top package is missing, retry with the current folder on the
    path (after everything else)."""
    import sys

    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        here = os.getcwd()
        if err.name != module.split(".")[0] or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        importlib.import_module(module)


def module_roots(modules: list[str]) -> list[str]:
    """Return the folders from which the (imported) ``modules`` were imported.

    ``mymethods.tinyq`` imported from ``/p/mymethods/tinyq.py`` gives ``/p``: the folder a job
    needs on ``PYTHONPATH`` to import it as this process did (Snakemake puts the workflow's
    folder on its own path, not on its jobs').
    """
    import sys

    roots = []
    for name in modules:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if origin is None:
            continue
        path = Path(origin).resolve()
        depth = name.count(".") + (2 if path.name == "__init__.py" else 1)
        roots.append(str(path.parents[depth - 1]))
    return list(dict.fromkeys(roots))


def export_module_roots(modules: list[str]) -> list[str]:
    """Put :func:`module_roots` of ``modules`` first on this process's ``PYTHONPATH``, which
    the workflow's jobs inherit; return the folders added."""
    roots = module_roots(modules)
    if roots:
        rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*roots, *rest]))
    return roots


class _DuplicateKey(Exception):
    """A key given twice in one YAML mapping: ``(key, first line, second line)``."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the
    last one silently, so a second ``train:`` section would replace the first whole)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges are fine
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the base class reports it
                continue
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Return what a YAML configuration file holds, refusing what YAML would read silently.

    Raises
    ------
    ConfigError
        Naming the file: it does not exist, is not UTF-8 text (a binary file), is not valid
        YAML, or gives a key twice in one mapping (naming the key and both lines).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not a text (UTF-8) file ({err.reason} at byte {err.start}); "
            "give the YAML profile, not a binary file"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except _DuplicateKey as dup:
        key, first, second = dup.args
        raise ConfigError(
            f"{path}: key {key!r} is given twice in one mapping (lines {first} and {second}); "
            "YAML would keep only the last one: merge the two into one"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err


def check_yaml_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Check that each YAML file reads cleanly with :func:`read_yaml` (no key given twice, UTF-8,
    valid YAML), e.g. the workflow's ``--configfile`` files, which Snakemake reads itself.

    Raises
    ------
    ConfigError
        Naming the first file that does not (see :func:`read_yaml`).
    """
    for path in paths:
        read_yaml(path)


def _read_yaml(path: Path) -> dict:
    """Return the mapping a YAML configuration file holds; errors name the file."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of configuration keys")
    return raw


def merge_overlay(base: Any, overlay: dict) -> Any:
    """Return ``base`` updated by ``overlay`` as Snakemake merges ``--configfile A B``
    (``snakemake.utils.update_config``): nested mappings key by key, every other value (lists
    included) replaced whole; an empty mapping changes nothing."""
    if not overlay:
        return base
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in overlay.items():
        if isinstance(value, dict):
            merged[key] = merge_overlay(merged.get(key, {}), value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | os.PathLike[str],
    *overlays: str | os.PathLike[str],
    check_methods: bool = True,
) -> dict:
    """Read a YAML profile, merge any overlays over it (as ``snakemake --configfile path
    overlay ...`` does) and validate the result (see :func:`validate_config`)."""
    paths = [Path(path), *map(Path, overlays)]
    raw = _read_yaml(paths[0])
    for overlay in paths[1:]:
        raw = merge_overlay(raw, _read_yaml(overlay))
    try:
        return validate_config(raw, check_methods=check_methods)
    except ConfigError as err:
        raise ConfigError(f"{' + '.join(map(str, paths))}: {err}") from None


#: Variant name of training stages that do not depend on the variant (AINet's and SSM's first
#: stage): one checkpoint shared by every variant. User variant names cannot start with "_".
SHARED_VARIANT = "_shared"


def variant_switches(config: dict, variant: str) -> dict:
    """Return the loss switches of ``variant`` with its effective λ_LAP filled in.

    :data:`SHARED_VARIANT`, and ``base`` when the profile does not define it, have every switch
    off (the base loss).
    """
    variants = all_variants(config)
    if variant == SHARED_VARIANT or (variant == "base" and variant not in variants):
        # "base" always means the base loss, also for reference methods in a profile whose
        # variants leave it out.
        return {
            "use_lap": False,
            "use_msd": False,
            "use_wr": False,
            "lambda_lap": config["losses"]["lambda_lap"],
        }
    if variant not in variants:
        raise ConfigError(
            f"config.variants: no variant {variant!r}; defined are {sorted(variants)}"
        )
    switches = dict(variants[variant])
    if switches.get("lambda_lap") is None:
        switches["lambda_lap"] = config["losses"]["lambda_lap"]
    return switches


def training_budget(train: dict) -> float:
    """Return ``train.budget``: the fraction of every step count the profile trains (1 = all)."""
    return float(train.get("budget", 1))


def budget_label(budget: float) -> str:
    """Return how tables and titles state a training budget, e.g. ``"training budget 10 %"``."""
    return f"training budget {budget * 100:.3g} %"


def report_title(config: dict) -> str:
    """Return ``report.title``, with the training budget when it is not 1 (the paper at 10 % is
    not the paper, and every table and plot title says so)."""
    budget = training_budget(config["train"])
    title = config["report"]["title"]
    return title if budget == 1 else f"{title} ({budget_label(budget)})"


def report_settings(config: dict, artefact: str) -> dict:
    """Return the settings of ``spbench report <artefact>``: only what can change that artefact.

    The tables (``table2``, ``published``, ``table3``, ``sweep``) take the AUC range and the
    title; Table 3 and the sweep also the method of their experiment (``config.ablation.method``,
    ``config.sweep.method``). The qualitative figure takes the title alone, the provenance
    nothing from here.
    """
    if artefact == "provenance":
        return {}
    if artefact == "figures":
        return {"title": report_title(config)}
    settings = {"auc_range": config["report"]["auc_range"], "title": report_title(config)}
    if artefact == "table3":
        settings["method"] = config["ablation"]["method"]
    elif artefact == "sweep":
        settings["method"] = config["sweep"]["method"]
    elif artefact not in ("table2", "published"):
        raise ConfigError(f"no report artefact {artefact!r}")
    return settings
