"""Tests of the flock-based device lease (``spbench.gpu_lease``) on a fake pool, CPU only."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spbench import gpu_lease
from spbench.gpu_lease import LeaseError, LeaseTimeout, claim, lease_devices, lock_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX-only")

#: The held command: records CUDA_VISIBLE_DEVICES and start/end times, then exits.
RECORDER = (
    "import os, sys, time; start = time.time(); time.sleep(float(sys.argv[2])); "
    "open(sys.argv[1], 'w').write("
    "f\"{os.environ['CUDA_VISIBLE_DEVICES']}|{start}|{time.time()}|"
    "{os.environ.get('CUDA_DEVICE_ORDER', '')}\")"
)


def _env(tmp_path: Path, **extra: str | None) -> dict[str, str]:
    """A clean environment: fake pool 0,1,2, a private lock folder, no scheduler variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "KUBERNETES_"))}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("CUDA_DEVICE_ORDER", None)
    env["SPBENCH_GPU_POOL"] = "0,1,2"
    env["SPBENCH_GPU_LOCK_DIR"] = str(tmp_path / "locks")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _lease_cmd(n: int, *command: str, timeout: float | None = 15.0) -> list[str]:
    cmd = [sys.executable, "-m", "spbench.gpu_lease", "--n", str(n)]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    return [*cmd, "--", *command]


def _record(n: int, env: dict[str, str], out: Path) -> subprocess.CompletedProcess:
    """Lease ``n`` devices for the recorder (which writes ``out`` at once) and wait for it."""
    command = _lease_cmd(n, sys.executable, "-c", RECORDER, str(out), "0")
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=10)


def _wait_locked(path: Path, deadline: float = 10.0) -> None:
    """Wait until another process holds ``path``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if path.exists():
            fd = gpu_lease._try_lock(path)
            if fd is None:
                return
            os.close(fd)
        time.sleep(0.02)
    raise AssertionError(f"{path} was never locked")


def test_concurrent_jobs_never_share_a_device(tmp_path: Path) -> None:
    env = _env(tmp_path)
    sizes = [1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 1, 2]
    procs = []
    for i, n in enumerate(sizes):
        out = tmp_path / f"job{i}.txt"
        cmd = _lease_cmd(n, sys.executable, "-c", RECORDER, str(out), "0.25")
        procs.append((n, out, subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)))
    intervals: dict[str, list[tuple[float, float]]] = {}
    for n, out, proc in procs:
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "leased GPU" in err
        visible, start, end, order = out.read_text().split("|")
        ids = visible.split(",")
        assert len(ids) == n and len(set(ids)) == n, visible  # 2-GPU jobs get two distinct ids
        assert set(ids) <= {"0", "1", "2"}
        assert order == "PCI_BUS_ID"
        for device in ids:
            intervals.setdefault(device, []).append((float(start), float(end)))
    for device, spans in intervals.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"device {device} was used by two jobs at once"


def test_killed_holder_frees_its_device(tmp_path: Path) -> None:
    env = _env(tmp_path, SPBENCH_GPU_POOL="0")
    holder = subprocess.Popen(_lease_cmd(1, "sleep", "30"), env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_locked(lock_path(tmp_path / "locks", "0"))
        out = tmp_path / "next.txt"
        waiter = subprocess.Popen(
            _lease_cmd(1, sys.executable, "-c", RECORDER, str(out), "0"),
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        assert waiter.poll() is None and not out.exists(), "the device was not held"
        killed_at = time.time()
        holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the lock
        holder.wait(timeout=5)
        _, err = waiter.communicate(timeout=10)
        assert waiter.returncode == 0, err
        visible, start, _, _ = out.read_text().split("|")
        assert visible == "0"
        assert float(start) - killed_at < 3.0
    finally:
        holder.kill()


def test_timeout_names_pool_and_holder(tmp_path: Path) -> None:
    env = _env(tmp_path, SPBENCH_GPU_POOL="0")
    holder = subprocess.Popen(_lease_cmd(1, "sleep", "30"), env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_locked(lock_path(tmp_path / "locks", "0"))
        t0 = time.monotonic()
        done = subprocess.run(
            _lease_cmd(1, "true", timeout=0.5), env=env, capture_output=True, text=True, timeout=10
        )
        assert time.monotonic() - t0 < 5
        assert done.returncode == gpu_lease.EXIT_TIMEOUT
        assert "['0']" in done.stderr and "SPBENCH_GPU_POOL" in done.stderr
        assert f"pid={holder.pid}" in done.stderr
    finally:
        holder.kill()
        holder.wait(timeout=5)


def test_a_slurm_grant_is_leased_in_its_allocations_folder(tmp_path: Path) -> None:
    """A SLURM job granted as many devices as it asks for (the executor's one job per
    allocation) gets them at once, locked in a folder of its allocation alone; a second job
    inside the same one-GPU allocation (snakemake run locally under `salloc --gpus=1`) waits
    for it rather than share the GPU (it once ran beside it, unlocked)."""
    env = _env(tmp_path, SLURM_JOB_ID="4242", CUDA_VISIBLE_DEVICES="5", SPBENCH_GPU_POOL=None)
    out = tmp_path / "out.txt"
    done = _record(1, env, out)
    assert done.returncode == 0, done.stderr
    assert out.read_text().split("|")[0] == "5"
    assert [p.name for p in (tmp_path / "locks").iterdir()] == ["SLURM_job_4242"]
    holder = subprocess.Popen(_lease_cmd(1, "sleep", "30"), env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_locked(lock_path(tmp_path / "locks" / "SLURM_job_4242", "5"))
        second = subprocess.run(
            _lease_cmd(1, "true", timeout=0.5), env=env, capture_output=True, text=True, timeout=10
        )
        assert second.returncode == gpu_lease.EXIT_TIMEOUT, second.stderr
        other = _record(1, {**env, "SLURM_JOB_ID": "4243"}, tmp_path / "other.txt")
        assert other.returncode == 0, other.stderr  # another allocation's device 5
    finally:
        holder.kill()
        holder.wait(timeout=5)


def test_jobs_inside_one_allocation_share_it_by_lease(tmp_path: Path) -> None:
    """snakemake run locally inside `salloc --gres=gpu:2`: a one-GPU job leases one of the two
    granted devices (it once kept both, so every job trained on the first), in a lock folder
    of its own allocation."""
    env = _env(
        tmp_path,
        SLURM_JOB_ID="4242",
        CUDA_VISIBLE_DEVICES="5,6",
        SPBENCH_GPU_POOL=None,
        SPBENCH_GPU_LOCK_DIR=None,
    )
    folder = tmp_path / "shm"
    command = [*_lease_cmd(1, sys.executable, "-c", RECORDER, str(tmp_path / "o"), "0")]
    command.insert(command.index("--"), "--lock-dir")
    command.insert(command.index("--"), str(folder))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o").read_text().split("|")[0] in ("5", "6")
    assert "leased GPU" in done.stderr
    assert [p.name for p in folder.iterdir()] == ["SLURM_job_4242"]
    two = _record(2, env, tmp_path / "both")  # a job asking for both leases both
    assert two.returncode == 0 and "leased GPU" in two.stderr
    assert sorted((tmp_path / "both").read_text().split("|")[0].split(",")) == ["5", "6"]


@pytest.mark.parametrize("n, pool", [(0, "0,1,2"), (1, "")])
def test_cpu_mode(tmp_path: Path, n: int, pool: str) -> None:
    env = _env(tmp_path, SPBENCH_GPU_POOL=pool)
    out = tmp_path / "out.txt"
    done = _record(n, env, out)
    assert done.returncode == 0, done.stderr
    assert out.read_text().split("|")[0] == ""
    assert "no GPU: running on the CPU" in done.stderr


def test_pool_from_cuda_visible_devices(tmp_path: Path) -> None:
    env = _env(tmp_path, SPBENCH_GPU_POOL=None, CUDA_VISIBLE_DEVICES="7,9")
    out = tmp_path / "out.txt"
    done = _record(1, env, out)
    assert done.returncode == 0, done.stderr
    visible = out.read_text().split("|")[0]
    assert visible in {"7", "9"}
    assert lock_path(tmp_path / "locks", visible).exists()


def test_too_many_devices_and_bad_usage(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = subprocess.run(_lease_cmd(4, "true"), env=env, capture_output=True, text=True)
    assert done.returncode == gpu_lease.EXIT_USAGE
    assert "only 3" in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "spbench.gpu_lease", "--n", "1", "true"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "--" in missing.stderr


def test_in_process_context_manager(tmp_path: Path) -> None:
    environ = _env(tmp_path, SPBENCH_GPU_POOL="3", CUDA_VISIBLE_DEVICES=None)
    with lease_devices(1, timeout=1, environ=environ) as lease:
        assert lease.devices == ["3"] and environ["CUDA_VISIBLE_DEVICES"] == "3"
        with pytest.raises(LeaseTimeout, match="held"):
            claim(1, timeout=0.2, env=environ)
    assert "CUDA_VISIBLE_DEVICES" not in environ
    again = claim(1, timeout=1, env=environ)  # released on exit
    assert again.devices == ["3"]
    again.release()
    with pytest.raises(LeaseError):
        claim(-1, env=environ)


def test_lock_names_are_sanitised(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "MIG-GPU-1234abcd/3/0")
    assert path.parent == tmp_path and path.name == "gpuMIG-GPU-1234abcd_3_0.lock"
    assert gpu_lease._parse_ids("2, 3,-1,4") == ["2", "3"]
    pool, source = gpu_lease.discover_pool(
        {"SPBENCH_GPU_POOL": "GPU-a,GPU-b", "CUDA_VISIBLE_DEVICES": "0"}
    )
    assert (pool, source) == (["GPU-a", "GPU-b"], "SPBENCH_GPU_POOL")


def test_a_failing_nvidia_smi_is_an_error_not_a_cpu_run(tmp_path: Path) -> None:
    """nvidia-smi exiting non-zero (a broken driver, a container without the toolkit's mount)
    once read as "no GPU", so GPU jobs quietly trained on the CPU; --n 0 still runs on it."""
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Failed to initialize NVML' >&2\nexit 18\n")
    fake.chmod(0o755)
    env = _env(
        tmp_path, SPBENCH_GPU_POOL=None, PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}"
    )
    done = _record(1, env, tmp_path / "out.txt")
    assert done.returncode == gpu_lease.EXIT_USAGE, done.stderr
    assert "nvidia-smi failed" in done.stderr and "--resources gpu=0" in done.stderr
    assert not (tmp_path / "out.txt").exists()
    cpu = _record(0, env, tmp_path / "cpu.txt")
    assert cpu.returncode == 0 and "no GPU: running on the CPU" in cpu.stderr


def _fake_smi(tmp_path: Path) -> str:
    """A fake ``nvidia-smi`` listing two GPUs; returns a PATH that finds it first."""
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        "#!/bin/sh\necho '0, GPU-aaaa1111, Fake GPU'\necho '1, GPU-bbbb2222, Fake GPU'\n"
    )
    fake.chmod(0o755)
    return f"{fake.parent}{os.pathsep}{os.environ['PATH']}"


def test_one_gpu_named_by_index_and_by_uuid_has_one_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks were named by the id as given, so a job leasing from CUDA_VISIBLE_DEVICES=0,1 and
    one given the same GPU's UUID (or a UUID prefix) could both hold it."""
    monkeypatch.setenv("PATH", _fake_smi(tmp_path))
    by_index = _env(tmp_path, SPBENCH_GPU_POOL=None, CUDA_VISIBLE_DEVICES="1")
    by_uuid = _env(tmp_path, SPBENCH_GPU_POOL=None, CUDA_VISIBLE_DEVICES="GPU-bbbb")
    first = claim(1, timeout=1, env=by_index)
    try:
        assert first.devices == ["1"]  # the job still sees the id it was given
        assert lock_path(tmp_path / "locks", "GPU-bbbb2222").exists()
        with pytest.raises(LeaseTimeout, match="GPU-bbbb: held"):
            claim(1, timeout=0.2, env=by_uuid)
    finally:
        first.release()
    second = claim(1, timeout=1, env=by_uuid)
    assert second.devices == ["GPU-bbbb"]
    second.release()
    names = gpu_lease.lock_names(["0", "GPU-aaaa1111", "MIG-x", "7"], "CUDA_VISIBLE_DEVICES", {})
    assert names == {
        "0": "GPU-aaaa1111",
        "GPU-aaaa1111": "GPU-aaaa1111",
        "MIG-x": "MIG-x",
        "7": "7",
    }
    # A pool set by SPBENCH_GPU_POOL is mapped too (a run limited to GPU 0 that way kept the
    # id "0" and leased the GPU another run held by its UUID), ids nvidia-smi does not list
    # keep their names; indices in another order than nvidia-smi's keep their ids; UUIDs and
    # a pool from nvidia-smi (leased jobs run in its order) do not depend on the order.
    assert gpu_lease.lock_names(["0", "9"], gpu_lease.ENV_POOL, {}) == {
        "0": "GPU-aaaa1111",
        "9": "9",
    }
    fastest = {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert gpu_lease.lock_names(["0", "GPU-bbbb"], "CUDA_VISIBLE_DEVICES", fastest) == {
        "0": "0",
        "GPU-bbbb": "GPU-bbbb2222",
    }
    assert gpu_lease.lock_names(["0"], "nvidia-smi", fastest) == {"0": "GPU-aaaa1111"}


def test_one_gpu_listed_twice_in_the_pool_counts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA_VISIBLE_DEVICES=1,GPU-<its UUID> with --n 2 waited for ever on its own lock (or,
    with two slots per GPU, leased one GPU as two)."""
    monkeypatch.setenv("PATH", _fake_smi(tmp_path))
    env = _env(tmp_path, SPBENCH_GPU_POOL=None, CUDA_VISIBLE_DEVICES="1,GPU-bbbb2222,0")
    with pytest.raises(LeaseError, match="only 2"):
        claim(3, timeout=1, env=env)
    lease = claim(2, timeout=1, env={**env, "SPBENCH_JOBS_PER_GPU": "2"})
    assert sorted(lease.devices) == ["0", "1"]
    lease.release()


def test_a_failing_nvidia_smi_does_not_change_the_lock_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient nvidia-smi failure fell back to id-named locks for that job alone, so it and
    a job with UUID-named locks could both hold one GPU: it is an error instead."""
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Unable to determine the device handle' >&2\nexit 9\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    env = _env(tmp_path, SPBENCH_GPU_POOL=None, CUDA_VISIBLE_DEVICES="1")
    with pytest.raises(LeaseError, match=r"nvidia-smi failed.*SPBENCH_GPU_POOL"):
        claim(1, timeout=1, env=env)
    # the way on the message gives: the ids of SPBENCH_GPU_POOL, as they are
    lease = claim(1, timeout=1, env=_env(tmp_path, SPBENCH_GPU_POOL="1"))
    assert lease.devices == ["1"] and lock_path(tmp_path / "locks", "1").exists()
    lease.release()


def test_the_lock_folder_avoids_dev_shm_where_run_lock_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd-logind (RemoveIPC=yes) deletes a user's /dev/shm files at their last logout,
    while a nohup'ed Snakemake goes on leasing: /run/lock comes first where it can be used."""
    run_lock, shm = tmp_path / "run-lock", tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(gpu_lease, "LOCK_ROOTS", (str(run_lock), str(shm)))
    assert gpu_lease.default_lock_dir({}) == shm / "spbench-gpu-locks"  # no /run/lock here
    run_lock.mkdir()
    assert gpu_lease.default_lock_dir({}) == run_lock / "spbench-gpu-locks"
    assert gpu_lease.default_lock_dir({"SPBENCH_GPU_LOCK_DIR": "/x"}) == Path("/x")


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals that hold at one instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in events:  # an end sorts before a start at the same time
        now += step
        most = max(most, now)
    return most


def test_jobs_per_gpu_shares_each_device_up_to_its_slots(tmp_path: Path) -> None:
    env = _env(tmp_path, SPBENCH_GPU_POOL="0,1", SPBENCH_JOBS_PER_GPU="2")
    procs = []
    for i in range(8):
        out = tmp_path / f"job{i}.txt"
        cmd = _lease_cmd(1, sys.executable, "-c", RECORDER, str(out), "1.0", timeout=30)
        procs.append((out, subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)))
    spans: dict[str, list[tuple[float, float]]] = {}
    for out, proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "up to 2 jobs per device" in err
        visible, start, end, _ = out.read_text().split("|")
        spans.setdefault(visible, []).append((float(start), float(end)))
    assert set(spans) == {"0", "1"}
    assert max(_max_overlap(s) for s in spans.values()) == 2  # shared, never by three


def test_jobs_per_gpu_still_gives_distinct_devices(tmp_path: Path) -> None:
    env = _env(tmp_path, SPBENCH_GPU_POOL="0,1", SPBENCH_JOBS_PER_GPU="3")
    with lease_devices(2, timeout=5, environ=env) as lease:
        assert sorted(lease.devices) == ["0", "1"]
    bad = subprocess.run(
        _lease_cmd(1, "true"),
        env={**env, "SPBENCH_JOBS_PER_GPU": "0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == gpu_lease.EXIT_USAGE
    assert "SPBENCH_JOBS_PER_GPU must be a whole number >= 1, got '0'" in bad.stderr
