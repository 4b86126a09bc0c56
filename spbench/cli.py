"""The ``spbench`` command line: one subcommand per pipeline stage.

Every Snakemake rule calls one of these; they can also be run by hand. A job takes its settings
either from a whole profile (``--config config/smoke.yaml``, validated and resolved for the job),
or, as the workflow does, already resolved as JSON (``--settings '{...}'``: what can change the
output; ``--runtime '{...}'``: device, cadences and the like, see :mod:`spbench.jobs`)::

    spbench data synthetic --config config/smoke.yaml --out data/synthetic/prepared
    spbench data bsds500 --archive BSR_bsds500.tgz --out data/bsds500/prepared
    spbench train --config config/smoke.yaml --data data/synthetic/prepared \\
        --method scn --variant lap --seed 0 --out ckpt.pt
    spbench predict --config config/smoke.yaml --data data/synthetic/prepared \\
        --checkpoint ckpt.pt --out-dir preds/
    spbench score --config config/smoke.yaml --data data/synthetic/prepared \\
        --predictions preds/*.npz --out scores.parquet
    spbench report table2 --config config/smoke.yaml --scores scores/*.parquet --out-dir report/
    spbench plan --config config/config.yaml --gpus 2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spbench import __version__

if TYPE_CHECKING:  # the session module is imported by its commands only
    from spbench.session import JobResult


def _json_option(option: str, text: str) -> dict:
    """Parse a JSON-object option; a malformed one is the user's error, named."""
    from spbench.errors import UserError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{option} is not valid JSON ({err}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise UserError(f"{option} must be a JSON object ({{...}}), got {text[:80]!r}")
    return value


def _settings(args: argparse.Namespace, pick: Callable[[dict], dict]) -> dict:
    """Return a stage's settings from ``--settings`` JSON or from the ``--config`` profile."""
    if args.settings:
        return _json_option("--settings", args.settings)
    if args.config:
        from spbench.config import load_config

        return pick(load_config(args.config))
    from spbench.errors import UserError

    raise UserError("give --config FILE (a profile) or --settings JSON (the job's settings)")


def _add_settings(parser: argparse.ArgumentParser, *, runtime: bool = False) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", type=Path, help="profile YAML (validated against the schema)")
    group.add_argument(
        "--settings", help="the job's settings as JSON, from spbench.jobs (used by the workflow)"
    )
    if runtime:
        parser.add_argument(
            "--runtime",
            help="only with --settings: settings that cannot change the output (device, "
            "cadences) as JSON; default: the schema's defaults (with --config they come from "
            "the profile)",
        )


def _dataset_section(args: argparse.Namespace, section: str) -> dict:
    """Return ``dataset.<section>`` from ``--settings`` JSON or the ``--config`` profile."""
    if getattr(args, "settings", None):
        return _json_option("--settings", args.settings)
    if args.config:
        from spbench.config import load_config

        return dict(load_config(args.config, check_methods=False)["dataset"][section])
    return {}


def _data(args: argparse.Namespace) -> None:
    if args.dataset == "synthetic":
        from spbench.data.synthetic import generate_synthetic

        options = _dataset_section(args, "synthetic")
        if args.seed is not None:
            options["seed"] = args.seed
        print(generate_synthetic(args.out, **options))
        return
    if args.dataset == "summary":
        from spbench.data.summary import summarize_dataset

        frame = summarize_dataset(args.root, args.parquet, args.figure)
        print(frame.groupby("split").size().rename("pairs").to_string())
        return

    from spbench.data import bsds500
    from spbench.errors import UserError

    source = _dataset_section(args, "bsds500")
    archive = args.archive if args.archive is not None else source.get("archive")
    download = {
        "archive": archive,
        "urls": args.url or source.get("urls", bsds500.OFFICIAL_URLS),
        "mirrors": args.mirror or source.get("mirrors", ()),
        "timeout": args.timeout if args.timeout is not None else source.get("timeout", 30.0),
        "retries": args.retries if args.retries is not None else source.get("retries", 3),
    }
    if args.dataset == "download-bsds500":
        if args.out.endswith(("/", os.sep)):  # a folder to create, not a file named like it
            Path(args.out).mkdir(parents=True, exist_ok=True)
        print(bsds500.download_bsds500(Path(args.out), **download))
    elif args.dataset == "prepare-bsds500":
        if archive is None:
            raise UserError(
                "--archive is required (or dataset.bsds500.archive in the --config profile)"
            )
        print(bsds500.prepare_bsds500(Path(archive), Path(args.out), workers=args.workers))
    else:  # bsds500: both steps, the archive kept beside the prepared folder
        out = Path(args.out)
        fetched = bsds500.download_bsds500(out.parent / "BSR_bsds500.tgz", **download)
        print(bsds500.prepare_bsds500(fetched, out, workers=args.workers))


def _runtime(args: argparse.Namespace, pick: Callable[[dict], dict]) -> dict | None:
    """Return a job's runtime settings: ``--runtime`` JSON, the ``--config`` profile, or None.

    ``--runtime`` goes with ``--settings`` only: with ``--config`` the profile's runtime keys
    would be replaced whole, silently, so the pair is refused.
    """
    if args.runtime and args.config:
        from spbench.errors import UserError

        raise UserError(
            "--runtime goes with --settings only; with --config the runtime settings (device, "
            "cadences) come from the profile: change them there, or give --settings and "
            "--runtime"
        )
    if args.runtime:
        return _json_option("--runtime", args.runtime)
    if args.config:
        from spbench.config import load_config

        return pick(load_config(args.config))
    return None


def _train(args: argparse.Namespace) -> None:
    from spbench.jobs import train_job, train_runtime
    from spbench.train import train

    job = _settings(args, lambda c: train_job(c, args.method, args.variant, args.stage))
    runtime = _runtime(args, lambda c: train_runtime(c, args.method, args.stage))
    train(
        args.data,
        args.out,
        method=args.method,
        variant=args.variant,
        seed=args.seed,
        job=job,
        runtime=runtime,
        stage=args.stage,
        init=args.init,
        log_path=args.log,
        progress=not args.no_progress,
    )


def _predict(args: argparse.Namespace) -> None:
    from spbench.jobs import predict_job, predict_runtime
    from spbench.predict import predict
    from spbench.predictions import format_scale

    settings = {**_settings(args, predict_job), **(_runtime(args, predict_runtime) or {})}
    if args.scales:
        _check_scales(args.scales, settings.get("base_size"))
    scales = args.scales or settings["scales"]
    outputs = {s: Path(args.out_dir) / f"scale{format_scale(s)}.npz" for s in scales}
    for path in predict(args.checkpoint, args.data, outputs, settings=settings):
        print(path)


def _check_scales(scales: list[float], base_size: list[int] | None) -> None:
    """Refuse ``--scales`` outside the schema's ``predict.scales`` (range, repeats, names) or
    off the 16-px grid for ``base_size`` (the settings' ``predict.base_size``, if given)."""
    from spbench.config import check_scale_names, check_scales_on_grid, validate_section

    validate_section(scales, "predict.scales", prefix="--scales")
    check_scale_names(scales, option="--scales")
    if base_size:
        check_scales_on_grid(scales, base_size, option="--scales")


def _score(args: argparse.Namespace) -> None:
    from spbench.jobs import score_job
    from spbench.score import score_predictions

    frame = score_predictions(
        args.predictions, args.data, args.out, settings=_settings(args, score_job)
    )
    print(f"{args.out}: {len(frame)} rows")


def _report(args: argparse.Namespace) -> None:
    from spbench.config import report_settings
    from spbench.report import build_sweep, build_table2, build_table3

    settings = _settings(args, lambda c: report_settings(c, args.artefact))
    common = {"auc_range": tuple(settings["auc_range"]), "title": settings["title"]}
    if args.artefact in ("table2", "published"):
        paths = build_table2(args.scores, args.out_dir, experiment=args.artefact, **common)
    elif args.artefact == "table3":
        paths = build_table3(args.scores, args.out_dir, method=settings["method"], **common)
    else:
        paths = build_sweep(args.scores, args.out_dir, method=settings["method"], **common)
    print(f"report {args.artefact} written:")
    for name, path in paths.items():
        print(f"  {name:<28} {path}")


def _report_provenance(args: argparse.Namespace) -> None:
    from spbench.report.artefacts import artefact_paths
    from spbench.report.provenance import write_provenance

    out = artefact_paths("provenance", args.out_dir)["provenance_md"]
    for path in write_provenance(args.checkpoints, out):
        print(f"wrote {path}")


def _report_figures(args: argparse.Namespace) -> None:
    from spbench.errors import UserError
    from spbench.report.artefacts import artefact_paths
    from spbench.report.qualitative import build_qualitative

    if args.n_images < 1:
        raise UserError(f"--n-images must be at least 1, got {args.n_images}")
    files = {}
    for item in args.prediction:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise UserError(f"--prediction expects LABEL=PATH, got {item!r}")
        files[label] = Path(path)
    out = artefact_paths("figures", args.out_dir)["qualitative_png"]
    paths = build_qualitative(
        files, args.data, out, image_ids=args.images, n_images=args.n_images, title=args.title
    )
    for path in paths.values():
        print(path)


def _import_weights(args: argparse.Namespace) -> None:
    from spbench.jobs import job_losses
    from spbench.models import get_method
    from spbench.train import loss_config
    from spbench.weights import import_weights

    losses = _settings(args, lambda c: job_losses(c, args.trained_as))
    config = loss_config(losses, get_method(args.method).recipe.n_classes)
    print(
        import_weights(
            args.source,
            args.out,
            method=args.method,
            variant=args.variant,
            loss_config=dataclasses.asdict(config),
            sha256=args.sha256,
        )
    )


def _adopt(args: argparse.Namespace) -> None:
    from spbench.jobs import train_job
    from spbench.weights import adopt_checkpoint

    job = _settings(args, lambda c: train_job(c, args.method, args.variant, args.stage))
    print(
        adopt_checkpoint(
            args.source,
            args.out,
            method=args.method,
            variant=args.variant,
            seed=args.seed,
            stage=args.stage,
            job=job,
        )
    )


def _bench(args: argparse.Namespace) -> None:
    # The benchmark's own parser lives beside it (it imports torch, which other commands skip).
    from spbench.bench import add_train_arguments, run_train

    parser = argparse.ArgumentParser(prog="spbench bench train")
    add_train_arguments(parser)
    run_train(parser.parse_args(args.options))


def _session(args: argparse.Namespace) -> None:
    # The one-command GPU session (benchmarks/gpu_session.sh), where Snakemake is missing.
    from spbench import session

    if args.action == "plan":
        _refuse_missing(args.bench, "--bench")
        lines = session.plan_profile(args.profile, args.bench, args.out)
    elif args.action == "calibrate":
        lines = session.calibrate(
            args.profile,
            args.data,
            args.work,
            until=args.until,
            steps=args.steps,
            max_steps=args.max_steps,
        )
    elif args.action == "record":
        record = session.session_record(args.work)
        args.out.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
        lines = [str(args.out)]
    elif args.action == "files":
        config = _load_profile(args.profile)
        lines = session.returned_files(config)
    else:
        results = session.run_jobs(
            _load_profile(args.profile), args.data, args.out_dir, args.log_dir, until=args.until
        )
        lines = [_session_job_line(r, session.keep_partial(r.checkpoint)) for r in results]
        if any(r.returncode != 0 for r in results):
            print("\n".join(lines))
            raise SystemExit(1)
    print("\n".join(lines))


def _session_job_line(result: JobResult, partial: tuple[Path, int, int] | None) -> str:
    """One line of ``spbench session train``: how a job ended, and the weights kept of one
    stopped before its end (:func:`spbench.session.keep_partial`)."""
    ended = "killed at the deadline" if result.returncode is None else f"exit {result.returncode}"
    line = f"{'/'.join(map(str, result.run))}: {ended} after {result.wall_s:.0f} s ({result.log})"
    if partial is not None:
        path, reached, planned = partial
        line += f"; its weights at step {reached} of {planned} kept as {path.name}"
    return line


def _refuse_missing(paths: Sequence[Path], option: str) -> None:
    """Raise :class:`~spbench.errors.UserError` for a path given with ``option`` that is not a
    file (a typo would otherwise count as a file without rows)."""
    from spbench.errors import UserError

    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{option}: no such file {', '.join(missing)}; check the path")


def _load_profile(path: Path) -> dict:
    from spbench.config import load_config

    return load_config(path, check_methods=False)


def _plan(args: argparse.Namespace) -> None:
    from spbench.config import load_config
    from spbench.errors import UserError
    from spbench.plan import plan_text

    if args.gpus < 1:
        raise UserError(f"--gpus must be at least 1, got {args.gpus}")
    config = load_config(*args.config)
    print(plan_text(config, args.gpus, device=args.device, tables=args.times))


def _methods(args: argparse.Namespace) -> None:
    from spbench.config import import_method_modules, load_config
    from spbench.models import get_method, list_methods

    if args.config:
        load_config(*args.config, check_methods=False)  # imports its method_modules
    import_method_modules(args.module, option="--module")

    for name in list_methods():
        method = get_method(name)
        stages = ", ".join(s.name for s in method.stages)
        print(f"{name:<10} stages: {stages:<16} {method.description}")


def _check(args: argparse.Namespace) -> None:
    from spbench.config import load_config

    config = load_config(*args.files)
    print(
        f"{' + '.join(map(str, args.files))}: valid ({len(config['methods'])} methods, "
        f"{len(config['variants'])} variants, {len(config['seeds'])} seeds)"
    )


_TABLE_ARTEFACTS = (
    ("table2", "Table 2 with its curves, AUCs, paired comparison, EC change and figures"),
    ("published", "Table 2 of the published weights (the files of table2)"),
    ("table3", "Table 3: the loss-switch ablation of the settings' method"),
    ("sweep", "the λ_LAP sweep of the settings' method: table and figure"),
)


def _add_data_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``spbench data``: the synthetic set, BSDS500's download and preparation, summaries."""
    data = sub.add_parser("data", help="make, download or prepare a dataset")
    data.set_defaults(func=_data)
    dsub = data.add_subparsers(dest="dataset", required=True)
    syn = dsub.add_parser("synthetic", help="generate the embedded synthetic dataset")
    syn.add_argument("--out", type=Path, required=True, help="prepared dataset folder")
    _add_settings(syn)
    syn.add_argument("--seed", type=int, help="override dataset.synthetic.seed")
    for name, text in (
        ("bsds500", "download (or copy) and prepare BSDS500"),
        ("download-bsds500", "only fetch and check the archive"),
        ("prepare-bsds500", "only extract, verify and prepare an archive"),
    ):
        p = dsub.add_parser(name, help=text)
        p.add_argument(
            "--out",
            required=True,  # a str: a trailing slash says "folder" to download-bsds500
            help="archive path or folder (download) or prepared folder (others)",
        )
        _add_settings(p)
        p.add_argument("--archive", type=Path, help="local archive; used without network access")
        p.add_argument("--url", action="append", help="source URL (repeatable; replaces config)")
        p.add_argument("--mirror", action="append", help="extra mirror URL (repeatable)")
        p.add_argument("--timeout", type=float, help="seconds per HTTP request")
        p.add_argument("--retries", type=int, help="retries per URL on transient errors")
        p.add_argument("--workers", type=int, default=1, help="processes reading .mat files")
    summ = dsub.add_parser("summary", help="per-pair summary Parquet and a figure")
    summ.add_argument("--root", type=Path, required=True)
    summ.add_argument("--parquet", type=Path, required=True)
    summ.add_argument("--figure", type=Path)
    summ.set_defaults(config=None)


def _add_run_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the commands of one run's jobs: ``train``, ``predict`` and ``score``."""
    train = sub.add_parser("train", help="train one (method, variant, seed) run")
    _add_settings(train, runtime=True)
    train.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    train.add_argument("--method", required=True)
    train.add_argument("--variant", required=True)
    train.add_argument("--seed", type=int, required=True)
    train.add_argument("--stage", help="stage of a multi-stage method (default: its last)")
    train.add_argument("--init", type=Path, help="previous stage's checkpoint to start from")
    train.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    train.add_argument("--log", type=Path, help="loss log (JSON lines)")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(func=_train)

    pred = sub.add_parser("predict", help="hard labels at every scale, with and without EC")
    _add_settings(pred, runtime=True)
    pred.add_argument("--checkpoint", type=Path, required=True)
    pred.add_argument("--data", type=Path, required=True)
    pred.add_argument("--out-dir", type=Path, required=True)
    pred.add_argument("--scales", type=float, nargs="+", help="override predict.scales")
    pred.set_defaults(func=_predict)

    score = sub.add_parser("score", help="metrics per (image, annotation, scale, EC) to Parquet")
    _add_settings(score)
    score.add_argument("--data", type=Path, required=True)
    score.add_argument("--predictions", type=Path, nargs="+", required=True)
    score.add_argument("--out", type=Path, required=True)
    score.set_defaults(func=_score)


def _add_weights_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``import-weights`` and ``adopt-checkpoint``: checkpoints from outside become runs."""
    imp = sub.add_parser("import-weights", help="published weights -> a spbench checkpoint")
    _add_settings(imp)
    imp.add_argument("--method", required=True)
    imp.add_argument("--variant", required=True, help="run variant name, e.g. pub_lap")
    imp.add_argument("--trained-as", required=True, help="configured variant, e.g. lap")
    imp.add_argument("--source", required=True, help="checkpoint path or HTTP(S) URL")
    imp.add_argument("--sha256", help="expected sha256 of the file")
    imp.add_argument("--out", type=Path, required=True)
    imp.set_defaults(func=_import_weights)

    adopt = sub.add_parser("adopt-checkpoint", help="a checkpoint trained elsewhere -> a run")
    _add_settings(adopt)
    adopt.add_argument("--source", type=Path, required=True, help="spbench checkpoint")
    adopt.add_argument("--method", required=True)
    adopt.add_argument("--variant", required=True)
    adopt.add_argument("--seed", type=int, required=True)
    adopt.add_argument("--stage", required=True)
    adopt.add_argument("--out", type=Path, required=True)
    adopt.set_defaults(func=_adopt)


def _add_session_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``bench``, ``plan`` and ``session``: timing, costing and the one-command GPU session."""
    bench = sub.add_parser("bench", help="benchmarks (spbench bench train --help)")
    bench.add_argument("benchmark", choices=["train"])
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options")
    bench.set_defaults(func=_bench)

    plan = sub.add_parser("plan", help="every job's work and estimated time, and the totals")
    plan.add_argument(
        "--config",
        type=Path,
        nargs="+",
        required=True,
        metavar="FILE",
        help="profile YAML (overlays after it, merged as snakemake --configfile A B)",
    )
    plan.add_argument("--gpus", type=int, default=1, help="GPUs for the wall time (default 1)")
    plan.add_argument(
        "--device", help="price the GPU jobs on this device (a part of its name, e.g. H100)"
    )
    plan.add_argument(
        "--times",
        type=Path,
        nargs="+",
        help="step-time tables to read, first wins; they replace the default ones, the user's "
        "table (if any) and then spbench's shipped one: list spbench/resources/step_times.csv "
        "too to keep its figures",
    )
    plan.set_defaults(func=_plan)

    sess = sub.add_parser("session", help="the one-command GPU session's planning and training")
    sess.set_defaults(func=_session)
    ssub = sess.add_subparsers(dest="action", required=True)
    splan = ssub.add_parser("plan", help="profile + step benchmark CSVs -> the profile to train")
    splan.add_argument("--profile", type=Path, required=True)
    splan.add_argument("--bench", type=Path, nargs="*", default=[], help="`bench train` CSVs")
    splan.add_argument("--out", type=Path, required=True, help="the profile to write")
    for name, text in (
        ("calibrate", "time the concurrent jobs briefly; set the profile's train.steps"),
        ("train", "train every (method, variant, seed) of the profile at once"),
    ):
        p = ssub.add_parser(name, help=text)
        p.add_argument("--profile", type=Path, required=True)
        p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
        p.add_argument("--until", type=float, required=True, help="deadline, epoch seconds")
    cal = ssub.choices["calibrate"]
    cal.add_argument("--work", type=Path, required=True, help="folder of the short runs")
    cal.add_argument("--steps", type=int, default=300, help="steps of each short run")
    cal.add_argument("--max-steps", type=int, help="train at most this many steps")
    run = ssub.choices["train"]
    run.add_argument("--out-dir", type=Path, required=True, help="checkpoints")
    run.add_argument("--log-dir", type=Path, required=True, help="loss logs and job output")
    rec = ssub.add_parser("record", help="a session's work folder -> session.json")
    rec.add_argument("--work", type=Path, required=True)
    rec.add_argument("--out", type=Path, required=True)
    files = ssub.add_parser("files", help="the files a session with this profile returns")
    files.add_argument("--profile", type=Path, required=True)


def _add_report_parsers(sub: argparse._SubParsersAction) -> None:
    """``spbench report <artefact>``: one subcommand per artefact, each writing only its files."""
    report = sub.add_parser("report", help="one report artefact (spbench report --help)")
    artefacts = report.add_subparsers(dest="artefact", required=True)
    for name, text in _TABLE_ARTEFACTS:
        table = artefacts.add_parser(name, help=text)
        _add_settings(table)
        table.add_argument("--scores", type=Path, nargs="+", required=True)
        table.add_argument("--out-dir", type=Path, required=True)
        table.set_defaults(func=_report)

    prov = artefacts.add_parser("provenance", help="how each checkpoint was made (MD + CSV)")
    prov.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    prov.add_argument("--out-dir", type=Path, required=True)
    prov.set_defaults(func=_report_provenance)

    qual = artefacts.add_parser("figures", help="segmentations of two models side by side")
    qual.add_argument(
        "--prediction",
        action="append",
        required=True,
        help="LABEL=PATH of a prediction file at one scale (repeatable, in order)",
    )
    qual.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    qual.add_argument("--out-dir", type=Path, required=True, help="folder of the PNG and PDF")
    qual.add_argument("--images", nargs="+", help="image ids (default: the most fragmented)")
    qual.add_argument("--n-images", type=int, default=3)
    qual.add_argument(
        "--title", default="", help="the run's title, before the scale and split (default: none)"
    )
    qual.set_defaults(func=_report_figures)


def _plain(text: str) -> str:
    """Return ``text`` without its reStructuredText literal markup (````spbench```` → spbench)."""
    return text.replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``spbench`` command."""
    parser = argparse.ArgumentParser(prog="spbench", description=_plain(__doc__.split("\n")[0]))
    parser.add_argument("--version", action="version", version=f"spbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_data_parsers(sub)
    _add_run_parsers(sub)
    _add_report_parsers(sub)
    _add_weights_parsers(sub)
    _add_session_parsers(sub)
    from spbench.config import add_method_module_option

    methods = sub.add_parser("methods", help="list the registered methods")
    methods.add_argument(
        "--config",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="also the methods of the profile's method_modules (overlays after it)",
    )
    add_method_module_option(methods)
    methods.set_defaults(func=_methods)
    check = sub.add_parser(
        "check-config",
        help="validate a profile (and overlays merged over it, as snakemake --configfile A B)",
    )
    check.add_argument("files", type=Path, nargs="+", metavar="FILE")
    check.set_defaults(func=_check)
    return parser


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` while the command runs, so that ``finally`` blocks
    run (an atomic write removes its temporary file) instead of the process vanishing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``spbench`` command line and return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from spbench.errors import UserError

    try:
        with _sigterm_exits():
            args.func(args)
    except KeyboardInterrupt:
        return 130
    except (UserError, OSError, UnicodeDecodeError) as err:
        # A user's or the data's mistake (a missing, unreadable or binary file, a folder given
        # for a file): one clear line, no traceback (unless --verbose). Anything else is a bug
        # and keeps its traceback.
        if args.verbose:
            raise
        print(f"spbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
