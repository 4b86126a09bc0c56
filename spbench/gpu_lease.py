"""Node-local GPU lease: claim devices with ``flock``, then run a command.

See ``docs/workflow.md`` §2.1.

Snakemake caps *how many* GPU jobs run (``--resources gpu=N``) but never says *which* device a
job gets. A job therefore claims its devices itself::

    python -m spbench.gpu_lease --n {resources.gpu} -- spbench train ...

- one lock file per device, ``gpu<UUID>.lock`` (the id itself where ``nvidia-smi`` cannot
  name the GPU: a fake pool, MIG instances; see :func:`lock_names`), in a node-local folder
  (``$SPBENCH_GPU_LOCK_DIR``, else ``spbench-gpu-locks`` in ``/run/lock``, ``/dev/shm`` or
  the temporary folder, :func:`default_lock_dir`); never on NFS;
- a non-blocking ``fcntl.flock`` on each device of the pool, visited in random order, until ``n``
  are held; a job that cannot get all ``n`` releases what it holds, backs off with jitter and
  retries until ``--timeout``;
- the lock descriptors stay open (inheritable) across ``os.execvpe`` of the command, with
  ``CUDA_VISIBLE_DEVICES`` set to the claimed ids and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so the
  kernel frees the locks when the job ends, however it ends (exit, crash, SIGKILL, OOM kill).

Device pool, first found: ``$SPBENCH_GPU_POOL`` (comma-separated ids: a run limited to some
GPUs, a node whose ``nvidia-smi`` fails, or the tests' fake device list), an inherited
``CUDA_VISIBLE_DEVICES``, ``nvidia-smi --query-gpu=index`` (which does not initialise CUDA).
Inside a SLURM allocation that set ``CUDA_VISIBLE_DEVICES``, or in a Kubernetes pod, the
scheduler has chosen the pool: jobs lease among its devices with locks of that allocation alone
(a scheduler may number each allocation's devices from 0), so the SLURM executor's one job per
allocation always finds its devices free, and several jobs of a local Snakemake inside one
allocation (``salloc``, a pod) never share a device.
``--n 0`` or an empty pool runs the command on the CPU (``CUDA_VISIBLE_DEVICES=""``).

Small models leave a GPU mostly idle (SCN's eager step is launch-bound): with
``$SPBENCH_JOBS_PER_GPU=k`` each device has ``k`` slots (lock files ``gpu<id>.lock``,
``gpu<id>.slot1.lock``, ...) and a job takes one slot on each of its ``n`` distinct devices; run
Snakemake with ``--resources gpu=<devices × k>``. The default, 1, is one job per device.

Caveats: a background grandchild that outlives the job keeps its devices (``flock`` follows the
open file description); two Snakemake runs on one node share the lock folder, but each run's
``--resources gpu=N`` is counted separately.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path

from spbench.errors import UserError

__all__ = [
    "ENV_LOCK_DIR",
    "ENV_POOL",
    "ENV_SLOTS",
    "LOCK_ROOTS",
    "Lease",
    "LeaseError",
    "LeaseTimeout",
    "claim",
    "default_lock_dir",
    "discover_pool",
    "jobs_per_device",
    "lease_devices",
    "lock_names",
    "lock_path",
    "main",
    "scheduler_owner",
]

#: Explicit device pool (comma-separated ids), highest priority.
ENV_POOL = "SPBENCH_GPU_POOL"
#: Lock folder override; must be node-local.
ENV_LOCK_DIR = "SPBENCH_GPU_LOCK_DIR"
#: Jobs that may share one device (default 1).
ENV_SLOTS = "SPBENCH_JOBS_PER_GPU"
#: Exported to the command: the ids it leased (for logs and result rows).
ENV_LEASED = "SPBENCH_LEASED_GPUS"

PREFIX = "spbench.gpu_lease"
EXIT_USAGE = 2
EXIT_TIMEOUT = 75  # EX_TEMPFAIL
EXIT_NOT_FOUND = 127


class LeaseError(UserError, RuntimeError):
    """The devices cannot be leased (bad request, unusable lock folder)."""


class LeaseTimeout(LeaseError):
    """The devices stayed busy until the timeout; the message names the pool and the holders."""


@dataclasses.dataclass
class Lease:
    """Result of a lease.

    Attributes
    ----------
    devices : list of str
        Claimed device ids (empty on the CPU).
    mode : str
        ``"leased"`` or ``"cpu"`` (no device wanted or none present).
    env : dict
        Variables to export to the job (``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER``,
        ``SPBENCH_LEASED_GPUS``).
    pool : list of str
        The device pool considered.
    source : str
        Where the pool came from.
    lock_dir : pathlib.Path or None
        Lock folder used.
    fds : list of int
        Open, locked descriptors (closing them frees the devices).
    slots : int
        Jobs each device may hold at once (``$SPBENCH_JOBS_PER_GPU``).
    """

    devices: list[str]
    mode: str
    env: dict[str, str]
    pool: list[str]
    source: str
    lock_dir: Path | None = None
    fds: list[int] = dataclasses.field(default_factory=list)
    slots: int = 1

    def release(self) -> None:
        """Close the lock descriptors, freeing the devices."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


def _log(message: str) -> None:
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)


#: Node-local folders for the lock folder, first writable one wins: ``/run/lock`` (tmpfs,
#: cleared at boot, world-writable on Debian and Ubuntu) before ``/dev/shm``, whose files
#: systemd-logind deletes (``RemoveIPC=yes``) when their owner's last login session ends: a
#: ``nohup snakemake`` left behind at logout would then lease devices its running jobs hold.
LOCK_ROOTS = ("/run/lock", "/dev/shm")


def default_lock_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the node-local lock folder: ``$SPBENCH_GPU_LOCK_DIR``, else
    ``spbench-gpu-locks`` in the first writable folder of :data:`LOCK_ROOTS`, else in the
    system temporary folder."""
    env = os.environ if env is None else env
    if env.get(ENV_LOCK_DIR):
        return Path(env[ENV_LOCK_DIR])
    for root in LOCK_ROOTS:
        if os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
            return Path(root, "spbench-gpu-locks")
    return Path(tempfile.gettempdir()) / "spbench-gpu-locks"


def lock_path(lock_dir: Path, device: str, slot: int = 0) -> Path:
    """Return ``<lock_dir>/gpu<id>.lock`` (slot 0) or ``gpu<id>.slot<k>.lock``, the id
    sanitised (UUIDs, MIG names) for a file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", device.strip())
    return lock_dir / (f"gpu{safe}.lock" if slot == 0 else f"gpu{safe}.slot{slot}.lock")


def jobs_per_device(env: Mapping[str, str] | None = None) -> int:
    """Return ``$SPBENCH_JOBS_PER_GPU`` (default 1), the jobs one device may hold at once."""
    env = os.environ if env is None else env
    text = env.get(ENV_SLOTS, "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise LeaseError(f"{ENV_SLOTS} must be a whole number >= 1, got {text!r}")
    return int(text)


def _parse_ids(text: str) -> list[str]:
    """Split a comma-separated device list; CUDA stops at the first invalid (negative) id."""
    ids = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("-") or item == "NoDevFiles":
            break
        if item not in ids:
            ids.append(item)
    return ids


def _nvidia_smi(*, strict: bool = False) -> list[tuple[str, str, str]]:
    """Return ``(index, uuid, name)`` per GPU from ``nvidia-smi`` (no CUDA init); [] if absent.

    With ``strict``, a failing ``nvidia-smi``, or none where NVIDIA device files exist, raises
    :class:`LeaseError` rather than reading as "no GPU" (a GPU job would quietly run on the CPU).
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        if strict and glob.glob("/dev/nvidia[0-9]*"):
            raise LeaseError(
                "NVIDIA devices exist (/dev/nvidia*) but nvidia-smi is not on PATH: set "
                f"${ENV_POOL} to their ids (e.g. 0,1), or run GPU jobs on the CPU with "
                "--resources gpu=0"
            )
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,uuid,name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        if strict:
            raise LeaseError(
                f"nvidia-smi failed ({err}), so the GPUs cannot be listed: fix the driver, set "
                f"${ENV_POOL} to the device ids, or run GPU jobs on the CPU with --resources gpu=0"
            ) from err
        _log(f"nvidia-smi failed ({err}); no device labels")
        return []
    rows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) == 3 and parts[0]:
            rows.append((parts[0], parts[1], parts[2]))
    return rows


def discover_pool(env: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """Return the device pool and where it came from.

    Priority: ``$SPBENCH_GPU_POOL`` (set but empty means no GPU), an inherited
    ``CUDA_VISIBLE_DEVICES`` (likewise), ``nvidia-smi --query-gpu=index``.

    Returns
    -------
    ids : list of str
        Device ids (indices, UUIDs or MIG names).
    source : str
        ``"SPBENCH_GPU_POOL"``, ``"CUDA_VISIBLE_DEVICES"`` or ``"nvidia-smi"``.
    """
    env = os.environ if env is None else env
    if ENV_POOL in env:
        return _parse_ids(env[ENV_POOL]), ENV_POOL
    if "CUDA_VISIBLE_DEVICES" in env:
        return _parse_ids(env["CUDA_VISIBLE_DEVICES"]), "CUDA_VISIBLE_DEVICES"
    return [row[0] for row in _nvidia_smi(strict=True)], "nvidia-smi"


def scheduler_owner(env: Mapping[str, str] | None = None) -> str | None:
    """Return ``"SLURM job <id>"`` or ``"Kubernetes"`` when a scheduler chose the devices.

    :func:`claim` leases among them with locks of that allocation alone (a lock folder named
    after it).
    """
    env = os.environ if env is None else env
    if env.get("SLURM_JOB_ID") and "CUDA_VISIBLE_DEVICES" in env:
        return f"SLURM job {env['SLURM_JOB_ID']}"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "Kubernetes"
    return None


def _prepare_dir(lock_dir: Path) -> None:
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        # Shared by every user of the node, like /tmp (best effort: only the owner may chmod).
        with contextlib.suppress(OSError):
            if lock_dir.stat().st_uid == os.getuid():
                os.chmod(lock_dir, 0o1777)
    except OSError as err:
        raise LeaseError(f"cannot create the lock folder {lock_dir}: {err}") from err


def _open_lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, 0o666)
        return fd
    except PermissionError:
        return os.open(path, os.O_RDONLY)  # another user's lock file: flock works read-only too
    except OSError as err:
        raise LeaseError(
            f"cannot create the lock file {path} ({err}); point ${ENV_LOCK_DIR} at a writable "
            "node-local folder"
        ) from err


def _try_lock(path: Path) -> int | None:
    """Return a descriptor holding an exclusive lock on ``path``, or None if it is held."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def _write_holder(fd: int, device: str, command: Sequence[str] | None) -> None:
    """Record who holds the device (best effort; read back in timeout messages)."""
    text = (
        f"pid={os.getpid()} host={socket.gethostname()} device={device} "
        f"since={time.strftime('%Y-%m-%dT%H:%M:%S')} "
        f"cmd={' '.join(command or sys.argv)[:300]}\n"
    )
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)


def _holder(path: Path) -> str | None:
    """The record of whoever holds ``path``, or None when it is free."""
    if not path.exists():
        return None
    fd = None
    with contextlib.suppress(OSError):
        fd = _try_lock(path)
    if fd is not None:
        os.close(fd)
        return None
    try:
        return path.read_text(errors="replace").strip() or "holder unknown"
    except OSError:
        return "holder unknown"


def lock_names(
    pool: Sequence[str], source: str, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the name each device's lock file takes: its GPU UUID where ``nvidia-smi`` knows it.

    One GPU can be named by index (``1``), UUID (``GPU-8f3c...``) or a UUID prefix; naming
    its lock by the UUID gives it one lock whichever name a job was given, so two jobs never
    share it by naming it differently. Indices are mapped when the job runs in ``nvidia-smi``'s
    PCI order (always for a pool from ``nvidia-smi``), those of ``$SPBENCH_GPU_POOL`` too (a run
    limited to some GPUs that way shares the node with runs that are not); ids ``nvidia-smi``
    does not list (a fake pool, MIG instances) and every id on a node without ``nvidia-smi``
    keep their names.

    Raises
    ------
    LeaseError
        ``nvidia-smi`` exists but fails (for a pool not set by ``$SPBENCH_GPU_POOL``, which the
        failure's message recommends): falling back to ids for this job alone would let it
        and a job that got UUIDs hold one GPU.
    """
    env = os.environ if env is None else env
    names = {device: device for device in pool}
    if shutil.which("nvidia-smi") is None:
        return names
    rows = _nvidia_smi(strict=source != ENV_POOL)
    order = "PCI_BUS_ID" if source == "nvidia-smi" else env.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    by_index = {index: uuid for index, uuid, _ in rows} if order == "PCI_BUS_ID" else {}
    uuids = [uuid for _, uuid, _ in rows]
    for device in pool:
        if device in by_index:
            names[device] = by_index[device]
        elif device.startswith("GPU-"):  # CUDA takes any unique UUID prefix
            matches = [uuid for uuid in uuids if uuid.startswith(device)]
            if len(matches) == 1:
                names[device] = matches[0]
    return names


def _distinct_devices(pool: list[str], names: Mapping[str, str]) -> list[str]:
    """Return ``pool`` without the ids naming a GPU already in it (``1,GPU-<its UUID>``)."""
    seen: dict[str, str] = {}
    for device in pool:
        if names[device] in seen:
            _log(f"{device} is {seen[names[device]]} (one GPU, {names[device]}): counted once")
        else:
            seen[names[device]] = device
    return list(seen.values())


def _holders(pool: Sequence[str], lock_dir: Path, slots: int, names: Mapping[str, str]) -> str:
    """Describe each device of the pool as free or held (with the holders' records if any);
    ``names`` are the devices' lock names (:func:`lock_names`)."""
    parts = []
    for device in pool:
        records = [_holder(lock_path(lock_dir, names[device], slot)) for slot in range(slots)]
        held = [r for r in records if r is not None]
        if not held:
            parts.append(f"{device}: free")
        elif slots == 1:
            parts.append(f"{device}: held ({held[0]})")
        else:
            parts.append(f"{device}: {len(held)} of {slots} slots held ({'; '.join(held)})")
    return "; ".join(parts)


def _claim_slot(device: str, lock_dir: Path, slots: int, rng: random.Random) -> int | None:
    """Lock a free slot of ``device`` (tried in random order); return its descriptor or None."""
    order = list(range(slots))
    rng.shuffle(order)
    for slot in order:
        fd = _try_lock(lock_path(lock_dir, device, slot))
        if fd is not None:
            return fd
    return None


def _claim_once(
    pool: Sequence[str],
    n: int,
    lock_dir: Path,
    rng: random.Random,
    command: Sequence[str] | None,
    slots: int,
    names: Mapping[str, str],
) -> list[tuple[str, int]] | None:
    order = list(pool)
    rng.shuffle(order)
    held: list[tuple[str, int]] = []
    for device in order:
        fd = _claim_slot(names[device], lock_dir, slots, rng)
        if fd is None:
            continue
        held.append((device, fd))
        if len(held) == n:
            held.sort(key=lambda item: list(pool).index(item[0]))  # cuda:0 = first in the pool
            for dev, held_fd in held:
                _write_holder(held_fd, dev, command)
            return held
    for _, fd in held:
        os.close(fd)
    return None


def claim(
    n: int,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    command: Sequence[str] | None = None,
    backoff: tuple[float, float] = (0.05, 1.0),
    report_every: float = 60.0,
) -> Lease:
    """Claim ``n`` devices and return the :class:`Lease` (descriptors open, not inheritable).

    Parameters
    ----------
    n : int
        Devices wanted; 0 means the CPU.
    timeout : float, optional
        Seconds to keep retrying while devices are busy (default: wait for ever, logging the
        holders every ``report_every`` seconds).
    env : mapping, optional
        Environment to read the pool and scheduler variables from (default ``os.environ``).
    lock_dir : path, optional
        Lock folder (default :func:`default_lock_dir`).
    command : sequence of str, optional
        The job's command, recorded in the lock files for other jobs' messages.
    backoff : (float, float)
        First and largest back-off in seconds; each wait is drawn in [0.5, 1.5]× the current
        step, which doubles per failed round.
    report_every : float
        Seconds between "still waiting" log lines.

    Raises
    ------
    LeaseError
        ``n`` is negative or larger than the pool, or ``$SPBENCH_JOBS_PER_GPU`` is not a
        whole number >= 1.
    LeaseTimeout
        The devices stayed busy for ``timeout`` seconds.
    """
    env = os.environ if env is None else env
    if n < 0:
        raise LeaseError(f"--n must be >= 0, got {n}")
    cpu_env = {"CUDA_VISIBLE_DEVICES": "", ENV_LEASED: ""}
    if n == 0:
        return Lease([], "cpu", cpu_env, [], "--n 0")
    pool, source = discover_pool(env)
    if not pool:
        return Lease([], "cpu", cpu_env, [], source)
    owner = scheduler_owner(env) if source != ENV_POOL else None
    names = lock_names(pool, source, env)
    pool = _distinct_devices(pool, names)
    if n > len(pool):
        raise LeaseError(
            f"{n} devices requested but the pool ({source}) has only {len(pool)}: {pool}"
        )
    slots = jobs_per_device(env)
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir(env)
    if owner is not None:
        # Locks of this allocation only, since a scheduler may number each allocation's devices
        # from 0. Even a grant of exactly n devices is leased: the SLURM executor's job finds it
        # free, but jobs of a local Snakemake inside one allocation (salloc, a pod) must not
        # share it.
        folder = folder / re.sub(r"[^A-Za-z0-9._-]", "_", owner)
    _prepare_dir(folder)
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    start = last_report = time.monotonic()
    step = backoff[0]
    while True:
        held = _claim_once(pool, n, folder, rng, command, slots, names)
        if held is not None:
            ids = [device for device, _ in held]
            order = env.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID") if source != "nvidia-smi" else None
            job_env = {
                "CUDA_VISIBLE_DEVICES": ",".join(ids),
                # nvidia-smi indices are PCI order; ids from a variable keep an explicit order.
                "CUDA_DEVICE_ORDER": order or "PCI_BUS_ID",
                ENV_LEASED: ",".join(ids),
            }
            fds = [fd for _, fd in held]
            return Lease(ids, "leased", job_env, list(pool), source, folder, fds, slots)
        now = time.monotonic()
        if timeout is not None and now - start >= timeout:
            holders = _holders(pool, folder, slots, names)
            raise LeaseTimeout(
                f"could not claim {n} of the {len(pool)} devices of pool {pool} (from {source}) "
                f"within {timeout:g} s; lock folder {folder}; {holders}"
            )
        if now - last_report >= report_every:
            _log(f"waiting for {n} device(s) of {pool}: {_holders(pool, folder, slots, names)}")
            last_report = now
        wait = step * rng.uniform(0.5, 1.5)
        if timeout is not None:
            wait = min(wait, max(0.0, start + timeout - now))
        time.sleep(wait)
        step = min(step * 2, backoff[1])


def _describe(lease: Lease) -> str:
    """Return ``"0 (NVIDIA H100, GPU-...)"``-style labels of the claimed devices when known."""
    info = {}
    if lease.source != ENV_POOL:  # a fake pool has no real devices to describe
        for index, uuid, name in _nvidia_smi():
            info[index] = info[uuid] = f"{name}, {uuid}"
    return ", ".join(f"{d} ({info[d]})" if d in info else d for d in lease.devices)


def _announce(lease: Lease, n: int) -> None:
    if lease.mode == "cpu":
        why = "--n 0" if n == 0 else f"empty device pool (from {lease.source})"
        _log(f"no GPU: running on the CPU ({why}; CUDA_VISIBLE_DEVICES='')")
    else:
        _log(
            f"leased GPU {_describe(lease)} from pool {lease.pool} ({lease.source}); "
            f"CUDA_VISIBLE_DEVICES={lease.env['CUDA_VISIBLE_DEVICES']} (locks in {lease.lock_dir}"
            + (f"; up to {lease.slots} jobs per device)" if lease.slots > 1 else ")")
        )


@contextlib.contextmanager
def lease_devices(
    n: int,
    *,
    timeout: float | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> Iterator[Lease]:
    """Hold ``n`` devices for the ``with`` block and export them to this process.

    Must run before anything initialises CUDA (``torch.cuda`` reads ``CUDA_VISIBLE_DEVICES``
    once); inside, use ``cuda:0`` ... ``cuda:{n-1}``. The variables are restored and the locks
    released on exit.

    Parameters
    ----------
    n, timeout, lock_dir
        See :func:`claim`.
    environ : mutable mapping, optional
        Environment to read and update (default ``os.environ``).

    Yields
    ------
    Lease

    Raises
    ------
    RuntimeError
        CUDA is already initialised in this process, so the variable would have no effect.
    """
    torch = sys.modules.get("torch")
    if torch is not None and n > 0 and torch.cuda.is_initialized():
        raise RuntimeError(
            "lease_devices() must run before CUDA is initialised: CUDA_VISIBLE_DEVICES is read "
            "once, when CUDA starts"
        )
    environ = os.environ if environ is None else environ
    lease = claim(n, timeout=timeout, env=environ, lock_dir=lock_dir)
    _announce(lease, n)
    saved = {key: environ.get(key) for key in lease.env}
    environ.update(lease.env)
    try:
        yield lease
    finally:
        lease.release()
        for key, value in saved.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spbench.gpu_lease",
        description="Claim N GPUs with node-local flock leases and exec CMD on them.",
        usage="%(prog)s --n N [--timeout S] [--lock-dir DIR] -- CMD [ARGS...]",
    )
    parser.add_argument("--n", type=int, required=True, help="devices to claim (0: CPU)")
    parser.add_argument(
        "--timeout", type=float, help="seconds to wait for busy devices (default: no limit)"
    )
    parser.add_argument("--lock-dir", type=Path, help=f"lock folder (default ${ENV_LOCK_DIR}, …)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--n N [--timeout S] -- CMD ...``, lease, and exec CMD (returns only on error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if "--" not in argv:
        parser.error("separate the command with --, e.g. --n 1 -- spbench train ...")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("no command after --")
    try:
        lease = claim(args.n, timeout=args.timeout, lock_dir=args.lock_dir, command=command)
    except LeaseTimeout as err:
        _log(f"timeout: {err}")
        return EXIT_TIMEOUT
    except LeaseError as err:
        _log(f"error: {err}")
        return EXIT_USAGE
    _announce(lease, args.n)
    env = dict(os.environ)
    env.update(lease.env)
    for fd in lease.fds:
        os.set_inheritable(fd, True)  # the exec'd job (same pid) keeps the locks
    try:
        os.execvpe(command[0], command, env)
    except OSError as err:
        _log(f"cannot run {command[0]!r}: {err}")
        return EXIT_NOT_FOUND
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
