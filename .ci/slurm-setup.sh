#!/usr/bin/env bash
# Install what tests/test_slurm.py needs for its throwaway single-node cluster: Debian's SLURM
# (slurmctld, slurmd, sbatch/squeue/srun) and munge, plus the Snakemake SLURM executor plugin in
# the active Python environment. The test starts and stops the daemons itself (as root, files
# in a temporary folder); nothing is enabled or started here. Run as root on Debian 12 (about
# 20-40 s with a warm mirror). Then run the tests with SPBENCH_SLURM=1 so that a cluster that
# does not come up fails the run instead of skipping.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
# The packages' own services are not needed (and may not be able to start in a container).
for service in slurmctld slurmd munge; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done
python -m pip install -q "snakemake-executor-plugin-slurm>=2.8"
slurmctld -V
