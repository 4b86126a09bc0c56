"""The SLURM workflow profile: its YAML, the sbatch options it produces, and a real run.

The real run (``test_ci_profile_runs_through_slurm``) starts a throwaway single-node cluster on
127.0.0.1 (``tests/slurm/cluster.py``: munged, slurmctld, slurmd as root, no cgroups, no
accounting) and runs the ``.test`` profile with ``--executor slurm``. It needs Debian's
``slurm-wlm`` and ``munge`` (``.ci/slurm-setup.sh``), root, and snakemake-executor-plugin-slurm;
without them it is skipped with the reason, except under ``CI=true`` with ``SPBENCH_SLURM=1``,
where it fails.

The test node has no GPU, and a job that asks for one (``sbatch --gpus=1``) is rejected ("Invalid
generic resource (gres) specification"), so the test sets ``gpu=0`` on every rule the profile
gives a GPU (``--set-resources RULE:gpu=0``; the plugin then adds no ``--gpus``) and also caps
the run with ``--resources gpu=0`` for any GPU rule the profile does not name.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = ROOT / "workflow/profiles/slurm"
DEFAULT_PROFILE = ROOT / "workflow/profiles/default"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
GPU_RULES = ("train_stage", "predict_scales")


def _load_cluster_helpers():
    spec = importlib.util.spec_from_file_location(
        "spbench_slurm_cluster", ROOT / "tests/slurm/cluster.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


cluster = _load_cluster_helpers()


def profile(folder: Path) -> dict:
    return yaml.safe_load((folder / "config.yaml").read_text())


def uncommented_keys(text: str) -> list[str]:
    """Key lines with neither an inline comment nor a comment line right above them."""
    bad, previous = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            if "#" not in stripped and not previous.startswith("#"):
                bad.append(line)
        previous = stripped
    return bad


@pytest.mark.parametrize("folder", [SLURM_PROFILE, DEFAULT_PROFILE], ids=["slurm", "default"])
def test_profile_parses_and_every_entry_is_commented(folder):
    """The profile is a YAML mapping, every key line is explained by a comment, and it sets no
    global ``resources`` (a ``gpu`` cap there would cap every run, docs/workflow.md §2)."""
    text = (folder / "config.yaml").read_text()
    assert isinstance(yaml.safe_load(text), dict)
    assert uncommented_keys(text) == []
    assert "resources" not in profile(folder)


def test_slurm_profile_requests_gpus_for_the_gpu_rules():
    """Training and prediction ask SLURM for one GPU, CPUs per GPU, memory and a time limit."""
    settings = profile(SLURM_PROFILE)
    for key in ("mem_mb", "runtime"):
        assert key in settings["default-resources"]
    for rule in GPU_RULES:
        resources = settings["set-resources"][rule]
        assert resources["gpu"] == 1
        assert resources["cpus_per_gpu"] >= 1
        assert resources["mem_mb"] > 0 and resources["runtime"] > 0
        # the job uses the cores it is given (torch and OpenCV take the job's threads)
        assert settings["set-threads"][rule] == resources["cpus_per_gpu"]


class _Resources(dict):
    """Snakemake's job resources: ``.get`` and attribute access."""

    __getattr__ = dict.get


class _Job:
    def __init__(self, threads: int, **resources):
        self.threads = threads
        self.resources = _Resources(resources)


def sbatch_options(threads: int, **resources) -> str:
    """The ``sbatch`` options the SLURM executor plugin builds for a job with ``resources``."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = _Job(threads, **resources)
    params = {
        "run_uuid": "run",
        "slurm_logfile": "log/%j.log",
        "comment_str": "rule",
        "account": "",
        "partition": "",
        "workdir": "/work",
    }
    return get_submit_command(job, params) + set_gres_string(job)


@pytest.mark.parametrize("rule", GPU_RULES)
def test_gpu_rule_resources_become_sbatch_gpu_options(rule):
    """The profile's entries for a GPU rule become ``--gpus=1 --cpus-per-gpu=N --mem M -t T``."""
    resources = {**profile(SLURM_PROFILE)["default-resources"]}
    resources.update(profile(SLURM_PROFILE)["set-resources"][rule])
    options = sbatch_options(2, **resources)
    assert " --gpus=1" in options
    assert f"--cpus-per-gpu={resources['cpus_per_gpu']}" in options
    assert f"--mem {resources['mem_mb']}" in options
    assert f"-t {resources['runtime']}" in options
    assert "--cpus-per-task" not in options


def _slurm_run(folder: Path) -> list[str]:
    """Snakemake in ``folder`` with the SLURM executor and profile, on a CPU-only cluster."""
    return [
        *SNAKEMAKE,
        *("--directory", str(folder), "--executor", "slurm"),
        *("--workflow-profile", str(SLURM_PROFILE), "--resources", "gpu=0"),
    ]


def test_cpu_only_cluster_keeps_the_profiles_limits(tmp_path):
    """`--resources gpu=0`, README's advice for a CPU-only cluster, gives every GPU job gpu=0
    and keeps the profile's memory and time (a `--set-resources` on the command line
    replaced the profile's whole block: training got the 60-minute default)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    shutil.copytree(ROOT / ".test/config", tmp_path / "config")
    command = [
        *_slurm_run(tmp_path),
        *("--configfile", str(tmp_path / "config/config.yaml"), "--dry-run", "--forceall"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    settings = profile(SLURM_PROFILE)
    for rule in GPU_RULES:
        expected = settings["set-resources"][rule]
        jobs = re.findall(rf"rule {rule}:\n(?:    .*\n)*?    resources: (.*)", done.stdout)
        assert jobs, rule
        for resources in jobs:
            assert "gpu=0" in resources, resources
            assert f"mem_mb={expected['mem_mb']}" in resources
            assert f"runtime={expected['runtime']}" in resources


def test_gpu_zero_asks_slurm_for_no_gpu():
    """``gpu=0`` (how the CPU-only test cluster runs the profile) adds no ``--gpus`` option and
    falls back to ``--cpus-per-task`` = the rule's threads."""
    options = sbatch_options(2, gpu=0, cpus_per_gpu=4, mem_mb=1000, runtime=30)
    assert "--gpus" not in options
    assert "--cpus-per-task=2" in options


def _job_counts(output: str) -> dict[str, int]:
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_slurm_dry_run_lists_the_ci_jobs_with_their_gpu_requests(tmp_path):
    """``--executor slurm -n`` with the profile plans the whole CI DAG; GPU jobs carry gpu=1."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    shutil.copytree(ROOT / ".test/config", tmp_path / "config")
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "--directory",
            str(tmp_path),
            "--executor",
            "slurm",
            "--workflow-profile",
            str(SLURM_PROFILE),
            "--slurm-status-command",
            "squeue",
            "-n",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    counts = _job_counts(out)
    runs = counts["predict_scales"]  # one per (method, variant, seed)
    assert runs >= 2
    assert counts.get("train_stage", 0) >= runs
    assert sum(n for rule, n in counts.items() if rule.startswith("score")) >= runs
    assert {"report", "table2"} & set(counts), counts
    blocks = out.split("\nrule ")
    predict = next(b for b in blocks if b.startswith("predict_scales:"))
    assert re.search(r"resources: .*\bgpu=1\b", predict), predict
    assert "mem_mb=16000" in predict and "runtime=120" in predict


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true" and os.environ.get("SPBENCH_SLURM") == "1":
        pytest.fail(f"CI=true and SPBENCH_SLURM=1 but the test cluster is unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A single-node SLURM cluster on 127.0.0.1 for the session; stopped afterwards.

    Yields the environment for its clients (``SLURM_CONF``, ``PATH``).
    """
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    missing = cluster.missing_binaries()
    if missing:
        _unavailable(f"SLURM/munge not installed ({', '.join(missing)}); run .ci/slurm-setup.sh")
    if os.geteuid() != 0:
        _unavailable("the test cluster's daemons run as root (SlurmUser=root); not root here")
    folder = tmp_path_factory.mktemp("slurm")
    try:
        env = cluster.start(folder)
    except (cluster.ClusterError, OSError, subprocess.SubprocessError) as err:
        _unavailable(f"the test cluster did not start: {err}")
    try:
        yield env
    finally:
        cluster.stop(folder)


@pytest.mark.slow
def test_ci_profile_runs_through_slurm(slurm_cluster, tmp_path):
    """The CI DAG (two scales) runs with ``--executor slurm`` and the profile, the remote jobs
    as SLURM jobs on the test node, and writes the report."""
    shutil.copytree(ROOT / ".test/config", tmp_path / "config")
    config = tmp_path / "config/config.yaml"
    settings = yaml.safe_load(config.read_text())
    # Table 2 only (SCN, SCN-LAP, SLIC), one seed, two scales: every rule kind still runs.
    settings.update(seeds=[0], ablation={"enabled": False}, sweep={"enabled": False})
    settings["predict"]["scales"] = [0.6, 1.0]
    config.write_text(yaml.safe_dump(settings))
    cpu_only = [
        f"{rule}:{key}={value}"
        for rule in profile(SLURM_PROFILE)["set-resources"]
        for key, value in (("gpu", 0), ("mem_mb", 1000), ("runtime", 30))
    ]
    env = dict(slurm_cluster)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `spbench` inside the jobs
    command = [
        *_slurm_run(tmp_path),
        *("--default-resources", "mem_mb=500", "runtime=30", "--set-resources", *cpu_only),
        # the profile's 4 threads per GPU rule: more CPUs than a 2-core test node has
        "--set-threads",
        *(f"{rule}={min(2, os.cpu_count() or 1)}" for rule in GPU_RULES),
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "1",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    report = tmp_path / "results/test/report"
    for name in ("table2.md", "table2.csv", "table2.tex", "asa_co_tradeoff.png"):
        found = list(report.rglob(name))
        assert found and all(p.stat().st_size > 0 for p in found), name
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    assert len(submitted) >= 2 + 2 + 2  # train, predict and score jobs went through sbatch
    rules = {p.name for p in (tmp_path / ".snakemake/slurm_logs").iterdir()}
    assert "rule_predict_scales" in rules and any(r.startswith("rule_score") for r in rules)
    assert any(r.startswith("rule_train") for r in rules)
