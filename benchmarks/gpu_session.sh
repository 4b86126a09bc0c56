#!/usr/bin/env bash
# The GPU work of issues #5 and #7 in few device calls (each command at most 10 minutes, the
# machine kept only 30 s between calls, at most 64 MiB carried, 8 files back from $OUT).
# Run from the repository root on the GPU machine; outputs for the record go to $OUT
# (default ./gpu-session-out). Commit first and pass the commit: the machine has no .git.
#
#   Here, once:  ../shared/tools/device-wheels.sh pytest          # wheels into .whl/ (~14 MB)
#                spbench data bsds500 --archive ../shared/data/BSR_bsds500_data.tgz \
#                    --out data/bsds500/prepared --workers 4         # 53 MB
#   Call 1, carry [".whl"]:
#     SPBENCH_GIT_COMMIT=<sha> benchmarks/gpu_session.sh setup check
#       The step benchmark (SCN base/lap in each fast mode at batch 8, 208²; all four methods
#       at their recipe's batch size, fp32 and tf32+bf16+channels_last), SSM's scan_chunk
#       (benchmarks/bench_scan.py), then the GPU tests.
#   Call 2, carry ["data/bsds500/prepared"] (the machine still warm: .site stays):
#     SPBENCH_GIT_COMMIT=<sha> FAST='{...}' benchmarks/gpu_session.sh short-start short-wait
#       gpu-short (config/gpu-short.yaml, train.fast from FAST) started detached, then waited on.
#       With no CUDA-graph mode safe (eager steps are launch-bound), JOBS_PER_GPU=3 lets three
#       training jobs share the GPU.
#   Call 3 (at once, while warm), if call 2 ran out of time:
#     benchmarks/gpu_session.sh short-wait collect
#
# Steps: setup | check | tests | bench | short-start | short-wait | collect (run in order given).
# Knobs: BENCH_STEPS (100), BENCH_WARMUP (20), BENCH_CROP (208), BENCH_DEVICE (cuda),
#        WAIT_S (540), CORES (16), JOBS_PER_GPU (1),
#        PROFILE (config/gpu-short.yaml), SPBENCH_SKIP_SETUP=1 where snakemake and spbench are
#        already installed. Files back (8 at most): session.log, tests.txt, bench_summary.txt,
#        bench.tar.gz (every row, CSV and text), <run_name>.tar.gz (tables, figures, logs).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-session-out}
mkdir -p "$OUT"
BENCH_STEPS=${BENCH_STEPS:-100}
BENCH_DEVICE=${BENCH_DEVICE:-cuda}
BENCH_WARMUP=${BENCH_WARMUP:-20}
BENCH_DIR=logs/gpu-bench
BENCH_CROP=${BENCH_CROP:-208}
WAIT_S=${WAIT_S:-540}
PROFILE=${PROFILE:-config/gpu-short.yaml}
CORES=${CORES:-16}
# Jobs sharing the one GPU: more than 1 pays when the step is launch-bound (eager modes).
export SPBENCH_JOBS_PER_GPU=${JOBS_PER_GPU:-1}
RUN_LOG=logs/gpu-session-short.log
export PYTHONUNBUFFERED=1

say() { printf '[gpu_session %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/session.log"; }

environment() {
  export PYTHONPATH="$PWD/.site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PATH="$PWD/.site/bin:$PATH"
}

setup() {
  environment
  if [[ ${SPBENCH_SKIP_SETUP:-0} == 1 ]]; then
    say "setup skipped (SPBENCH_SKIP_SETUP=1)"
  elif [[ -d .whl ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$PWD/.site" .whl/*.whl
    say "installed $(ls .whl | wc -l) wheels into .site"
  elif [[ ! -d .site ]]; then
    echo "no .whl/ to install and no .site/ from an earlier call: carry .whl" >&2
    exit 2
  fi
  mkdir -p .site/bin
  # The rules call `spbench` and `python`; this tree is importable through PYTHONPATH.
  printf '#!/bin/sh\nexec python3 -m spbench.cli "$@"\n' > .site/bin/spbench
  command -v python > /dev/null || printf '#!/bin/sh\nexec python3 "$@"\n' > .site/bin/python
  chmod +x .site/bin/*
  python3 -c "import spbench, snakemake, torch; print('spbench', spbench.__version__, \
'snakemake', snakemake.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$OUT/session.log"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null \
    | tee -a "$OUT/session.log" || true
}

tests() {
  environment
  say "GPU tests"
  python3 -m pytest -q -p no:cacheprovider tests/test_step.py tests/test_bench.py 2>&1 \
    | tee "$OUT/tests.txt" || say "tests FAILED (see tests.txt)"
}

bench_one() { # label, options...
  local label=$1
  shift
  timeout 240 python3 -m spbench.cli bench train --steps "$BENCH_STEPS" --warmup "$BENCH_WARMUP" \
    --crop "$BENCH_CROP" --device "$BENCH_DEVICE" --out "$BENCH_DIR/$label.csv" "$@" \
    > "$BENCH_DIR/$label.txt" 2>&1 || say "bench $label FAILED (see $label.txt in bench.tar.gz)"
  tail -n 25 "$BENCH_DIR/$label.txt"
}

bench() {
  environment
  mkdir -p "$BENCH_DIR"
  say "step benchmark: SCN base/lap, batch 8, ${BENCH_CROP}², $BENCH_STEPS steps per row"
  bench_one scn_fp32 --methods scn --batch-size 8
  bench_one scn_tf32 --methods scn --batch-size 8 --tf32
  bench_one scn_bf16_cl --methods scn --batch-size 8 --amp bf16 --channels-last
  bench_one scn_graph --methods scn --batch-size 8 --cuda-graph
  bench_one scn_tf32_graph --methods scn --batch-size 8 --tf32 --cuda-graph
  bench_one scn_bf16_cl_graph --methods scn --batch-size 8 --amp bf16 --channels-last --cuda-graph
  bench_one scn_compile_graph --methods scn --batch-size 8 --tf32 --compile --cuda-graph
  say "all four methods at their recipe's batch size"
  BENCH_STEPS=$((BENCH_STEPS / 4)) bench_one methods_fp32 --methods scn ainet cds ssm
  BENCH_STEPS=$((BENCH_STEPS / 4)) bench_one methods_tf32_bf16 --methods scn ainet cds ssm \
    --tf32 --amp bf16 --channels-last
  say "SSM scan_chunk (forward + backward of stage 2 at the recipe's batch)"
  timeout 240 python3 benchmarks/bench_scan.py --device "$BENCH_DEVICE" --batch-size 16 \
    --crop "$BENCH_CROP" --steps 5 --chunks 16 32 64 128 256 > "$BENCH_DIR/ssm_scan_chunk.txt" \
    2>&1 || say "bench_scan FAILED (see ssm_scan_chunk.txt in bench.tar.gz)"
  cat "$BENCH_DIR/ssm_scan_chunk.txt" >> "$OUT/session.log"
  python3 - "$BENCH_DIR" <<'EOF' | tee "$OUT/bench_summary.txt"
import sys, pathlib, pandas as pd
folder = pathlib.Path(sys.argv[1])
frames = [pd.read_csv(p) for p in sorted(folder.glob("*.csv")) if p.name != "all.csv"]
frame = pd.concat(frames, ignore_index=True)
frame.to_csv(folder / "all.csv", index=False)
cols = ["method", "variant", "mode", "batch_size", "median_ms", "images_per_s", "peak_mem_mb",
        "overhead_pct", "reldiff_max", "error"]
print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
EOF
  tar -czf "$OUT/bench.tar.gz" "$BENCH_DIR"
}

check() {
  bench
  tests
}

short_start() {
  environment
  test -f data/bsds500/prepared/dataset.json || {
    echo "data/bsds500/prepared is missing: carry it" >&2
    exit 2
  }
  local profile=logs/gpu-session-profile.yaml
  mkdir -p logs
  # FAST: a YAML/JSON mapping for train.fast (e.g. '{tf32: true, cuda_graph: true}').
  local fast=${FAST:-"{}"}
  python3 - "$PROFILE" "$profile" "$fast" <<'EOF'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
config.setdefault("train", {})["fast"] = yaml.safe_load(sys.argv[3]) or {}
yaml.safe_dump(config, open(sys.argv[2], "w", encoding="utf-8"), sort_keys=False)
print("train.fast:", config["train"]["fast"])
EOF
  say "gpu-short started ($PROFILE, log $RUN_LOG)"
  date -u +%s > logs/gpu-session-start
  setsid nohup snakemake --cores "$CORES" --resources gpu="$SPBENCH_JOBS_PER_GPU" \
    --configfile "$profile" \
    --rerun-incomplete --keep-going > "$RUN_LOG" 2>&1 < /dev/null &
  echo $! > logs/gpu-session-pid
}

short_wait() {
  local pid waited=0
  pid=$(cat logs/gpu-session-pid)
  while kill -0 "$pid" 2> /dev/null && ((waited < WAIT_S)); do
    sleep 15
    waited=$((waited + 15))
  done
  grep -E "steps \([0-9]+%\) done|Finished job|Error" "$RUN_LOG" | tail -n 5 || true
  if kill -0 "$pid" 2> /dev/null; then
    say "gpu-short still running after $(($(date -u +%s) - $(cat logs/gpu-session-start))) s: call short-wait again at once"
  else
    say "gpu-short ended after $(($(date -u +%s) - $(cat logs/gpu-session-start))) s"
    tail -n 3 "$RUN_LOG"
  fi
}

collect() {
  local run
  run=$(python3 -c "import yaml,sys; print(yaml.safe_load(open('$PROFILE'))['run_name'])")
  # Small files only: tables, figures, provenance, per-job benchmarks and training logs.
  tar -czf "$OUT/$run.tar.gz" --ignore-failed-read \
    "results/$run/report" "benchmarks/$run" "$RUN_LOG" logs/gpu-session-profile.yaml \
    $(find "results/$run/models" -name '*_log.jsonl' 2> /dev/null) 2> /dev/null || true
  say "packed $(du -h "$OUT/$run.tar.gz" | cut -f1) into $run.tar.gz"
}

(($#)) || {
  sed -n '2,28p' "$0"
  exit 2
}
for step in "$@"; do
  case $step in
    setup) setup ;;
    check) check ;;
    tests) tests ;;
    bench) bench ;;
    short-start) short_start ;;
    short-wait) short_wait ;;
    collect) collect ;;
    *)
      echo "unknown step $step" >&2
      exit 2
      ;;
  esac
done
