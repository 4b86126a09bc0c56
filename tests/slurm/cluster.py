"""A throwaway single-node SLURM cluster on 127.0.0.1 (munged, slurmctld, slurmd), for tests.

Everything lives under one folder: a fresh munge key and socket, ``slurm.conf`` made from
``slurm.conf.in`` beside this file, state, spool, pid and log files. The daemons run as root
without cgroups (``proctrack/linuxproc``, ``task/none``) and without an accounting database, so
``sacct`` does not work and job states come from ``squeue`` (kept ``MinJobAge`` = 600 s).

By hand (as root, with Debian's ``slurm-wlm`` and ``munge`` installed)::

    python tests/slurm/cluster.py start /tmp/slurm   # prints `export SLURM_CONF=...`
    python tests/slurm/cluster.py stop /tmp/slurm

Used by ``tests/test_slurm.py`` through :func:`start` and :func:`stop`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

TEMPLATE = Path(__file__).with_name("slurm.conf.in")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun", "sinfo", "scancel")


class ClusterError(RuntimeError):
    """The cluster did not come up; the message holds the failing command and its output."""


def missing_binaries() -> list[str]:
    """The SLURM/munge programs not on ``PATH`` (``/usr/sbin`` included)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [name for name in BINARIES if shutil.which(name, path=path) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    """Memory SLURM may hand out: the machine's, less 1 GiB for the daemons and the test."""
    with open("/proc/meminfo") as handle:
        total_kb = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal:"))
    return max(1024, total_kb // 1024 - 1024)


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ClusterError(
            f"`{' '.join(command)}` exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} was not written)"


def _srun_shim(folder: Path) -> Path:
    """A ``bin/srun`` that sets ``SLURM_CONF`` and runs the real ``srun``; returns ``bin``.

    snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every ``SLURM_*`` variable but the
    job's identity from the environment of its nested ``srun``, ``SLURM_CONF`` included, so on a
    cluster whose ``slurm.conf`` is not at the compiled-in ``/etc/slurm/slurm.conf`` that ``srun``
    fails with "Could not establish a configuration source". The shim puts it back.
    """
    real = shutil.which("srun")
    if real is None:
        raise ClusterError("srun is not installed")
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "srun"
    shim.write_text(f'#!/bin/sh\nexport SLURM_CONF="{folder / "slurm.conf"}"\nexec {real} "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def environment(folder: Path) -> dict[str, str]:
    """The environment for SLURM clients of the cluster in ``folder``: ``SLURM_CONF`` set, and
    ``PATH`` starting with the ``srun`` shim (see :func:`_srun_shim`)."""
    env = dict(os.environ)
    env["SLURM_CONF"] = str(folder / "slurm.conf")
    env["PATH"] = f"{folder / 'bin'}:{env.get('PATH', '')}:/usr/sbin:/sbin"
    return env


def start(folder: str | os.PathLike[str], timeout: float = 60.0) -> dict[str, str]:
    """Start munged, slurmctld and slurmd with their files in ``folder``; wait for the node.

    Returns
    -------
    dict
        The environment for clients (``sbatch``, ``squeue``, Snakemake's executor plugin).

    Raises
    ------
    ClusterError
        When a daemon does not start or the node is not idle within ``timeout`` seconds; the
        message holds the daemon logs' last lines.
    """
    folder = Path(folder).resolve()
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    munge = folder / "munge"
    munge.chmod(0o700)
    key = munge / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    socket_path = munge / "munge.socket"
    values = {
        "@DIR@": str(folder),
        "@CTLD_PORT@": str(_free_port()),
        "@SLURMD_PORT@": str(_free_port()),
        "@MUNGE_SOCKET@": str(socket_path),
        "@CPUS@": str(os.cpu_count() or 1),
        "@MEM_MB@": str(_memory_mb()),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(name, value)
    conf = folder / "slurm.conf"
    conf.write_text(text)
    _srun_shim(folder)
    env = environment(folder)

    _run(
        [
            "munged",
            "--force",
            f"--socket={socket_path}",
            f"--key-file={key}",
            f"--log-file={munge / 'munged.log'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}",
        ],
        env,
    )
    try:
        _run(["slurmctld", "-f", str(conf)], env)
        _run(["slurmd", "-f", str(conf), "-N", "localhost"], env)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["sinfo", "--noheader", "--format=%T", "--nodes=localhost"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            state = probe.stdout.strip() or probe.stderr.strip()
            if probe.returncode == 0 and state == "idle":
                return env
            time.sleep(0.5)
        raise ClusterError(
            f"node not idle after {timeout:.0f} s (sinfo: {state!r})\n"
            f"slurmctld.log:\n{_log_tail(folder / 'slurmctld.log')}\n"
            f"slurmd.log:\n{_log_tail(folder / 'slurmd.log')}"
        )
    except Exception:
        stop(folder)
        raise


def stop(folder: str | os.PathLike[str]) -> None:
    """Stop the daemons started by :func:`start` in ``folder`` (by their pid files)."""
    folder = Path(folder).resolve()
    for pid_file in (
        folder / "slurmd.pid",
        folder / "slurmctld.pid",
        folder / "munge/munged.pid",
    ):
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):  # up to 10 s
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.action == "start":
        env = start(args.folder)
        print(f"export SLURM_CONF={env['SLURM_CONF']}")
    else:
        stop(args.folder)


if __name__ == "__main__":
    main()
