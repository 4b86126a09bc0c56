#!/usr/bin/env bash
# The GPU evidence in one device command (issue 12): step times of every fast mode, the GPU
# tests, and SCN vs SCN-LAP trained on the real BSDS500 at the same number of steps.
#
# Once, on a machine with the network (from the repository root; data/ and .whl/ are
# git-ignored, together ~54 MB, which a GPU machine without the network receives with the tree):
#   spbench data bsds500 --archive BSR_bsds500.tgz --out data/bsds500/prepared --workers 2
#   pip download --only-binary :all: --python-version 3.12 --dest .whl jsonschema
#       (for the GPU machine's Python, only if it lacks jsonschema)
# Then one command on the GPU machine (any NVIDIA GPU; the returned summary names the device,
# and that is the device every figure of the run is quoted with), under a 600 s limit:
#   SPBENCH_GIT_COMMIT=<sha of the committed tree> benchmarks/gpu_session.sh
#
# Stages, each with its own time limit, each writing its results as it finishes:
#   (a) setup: install .whl/ into $SITE, import checks (spbench, torch, cv2, jsonschema), the
#       device, one convolution forward and backward on it, and nvidia-smi; the command stops
#       here at once if they fail
#   (b) tests: the GPU tests (pytest -m gpu, without torch.compile) of $TESTS
#   (c) bench: `spbench bench train` of SCN base and lap at batch $BENCH_BATCH, ${BENCH_CROP}²,
#       in each eager mode of $BENCH_MODES (one process) and each CUDA-graph mode of
#       $GRAPH_MODES (its own process, so that a crash there cannot take the eager rows with
#       it); where the time goes: $BENCH_PROFILE_STEPS profiled SCN-LAP steps in each of
#       $PROFILE_MODES (own process); each of $OTHERS at its recipe's batch, fp32 eager
#   (d) train: `spbench session plan` picks the fastest mode whose loss terms matched fp32
#       eager (fp32 eager otherwise) and writes the profile to train; `spbench session
#       calibrate` runs every job at once for $CALIB_STEPS steps (at most 120 s: a job still
#       running then is timed from the steps it logged) and sets train.steps to what fits
#       before the deadline (the profile's train.steps is the floor); `spbench session
#       train` runs every (method, variant, seed) of $PROFILE at once, as the workflow's
#       train_stage would (same settings JSON), killed at the deadline
# On exit, whatever happened, everything is packed into $OUT (`spbench session files
# --profile $PROFILE` lists these names):
#   summary.txt          stages, the mode choice, the step count, provenance, step times
#   session.tar.gz       every log, bench CSV and table, test output, loss logs, the trained
#                        profile (profile.yaml), provenance.md/.csv, session.json
#   <method>_<variant>_seed<k>.pt   each finished run's final checkpoint (weights + metadata)
#   <method>_<variant>_seed<k>.partial.pt   instead, for a run stopped at the deadline: its
#                        weights at the step it reached (`spbench session train` says which)
#
# Knobs (environment, defaults in brackets):
#   OUT [./gpu-session-out]  WORK [logs/gpu-session]  PROFILE [config/gpu-short.yaml]
#   DATA [data/bsds500/prepared]  DEVICE [cuda]  PYTHON [python3]  WHEELS [.whl]: wheels
#   installed into SITE [/tmp/spbench-site] (none: WHEELS=)
#   BUDGET_S [520]: the whole command's seconds, training included; PACK_S [30]: kept for packing
#   SETUP_S [90]  TESTS_S [120]  BENCH_S [150] (per benchmark process): stage time limits,
#   shortened so that TRAIN_S [300] are left for stage (d)
#   TESTS [tests/test_step.py]  BENCH_STEPS [50]  BENCH_WARMUP [10]  BENCH_CROP [208]
#   BENCH_BATCH [8]  BENCH_PROFILE_STEPS [5]  BENCH_MODES [fp32 tf32 bf16 channels_last
#   bf16+channels_last tf32+bf16+channels_last]  GRAPH_MODES [cuda_graph tf32+cuda_graph
#   bf16+channels_last+cuda_graph]  PROFILE_MODES [fp32 tf32+bf16+channels_last]
#   OTHERS [ainet cds ssm]  OTHERS_STEPS [10]  OTHERS_BATCH
#   [their recipes']  CALIB_STEPS [300]  MAX_STEPS [none]: at most this many training steps
#   SPBENCH_GIT_COMMIT: the commit, recorded in the provenance (the device has no .git)
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-$PWD/gpu-session-out}
WORK=${WORK:-logs/gpu-session}
PROFILE=${PROFILE:-config/gpu-short.yaml}
DATA=${DATA:-data/bsds500/prepared}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/spbench-site}
WHEELS=${WHEELS-.whl}
BUDGET_S=${BUDGET_S:-520}
PACK_S=${PACK_S:-30}
SETUP_S=${SETUP_S:-90}
TESTS_S=${TESTS_S:-120}
BENCH_S=${BENCH_S:-150}
TRAIN_S=${TRAIN_S:-300}
TESTS=${TESTS:-tests/test_step.py}
BENCH_STEPS=${BENCH_STEPS:-50}
BENCH_WARMUP=${BENCH_WARMUP:-10}
BENCH_CROP=${BENCH_CROP:-208}
BENCH_BATCH=${BENCH_BATCH:-8}
BENCH_PROFILE_STEPS=${BENCH_PROFILE_STEPS:-5}
BENCH_MODES=${BENCH_MODES-fp32 tf32 bf16 channels_last bf16+channels_last tf32+bf16+channels_last}
GRAPH_MODES=${GRAPH_MODES-cuda_graph tf32+cuda_graph bf16+channels_last+cuda_graph}
PROFILE_MODES=${PROFILE_MODES-fp32 tf32+bf16+channels_last}
OTHERS=${OTHERS-ainet cds ssm}
OTHERS_STEPS=${OTHERS_STEPS:-10}
CALIB_STEPS=${CALIB_STEPS:-300}
UNTIL=$((T0 + BUDGET_S - PACK_S)) # training and every stage end by then
export PYTHONUNBUFFERED=1 PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
rm -rf "$WORK" # a retry on the same machine must not return an earlier try's files
mkdir -p "$OUT" "$WORK/bench"
: > "$WORK/session.log"
printf 'stage\texit\tseconds\n' > "$WORK/stages.tsv"

say() { printf '[gpu_session +%ss] %s\n' "$(($(date +%s) - T0))" "$*" | tee -a "$WORK/session.log"; }
spbench() { "$PYTHON" -m spbench.cli "$@"; }

# run_stage NAME LIMIT_S COMMAND...: COMMAND under `timeout` (LIMIT_S, at most what is left
# before the deadline), output to $WORK/NAME.txt, its exit status and seconds to stages.tsv.
run_stage() {
  local name=$1 limit=$2 start rc=0
  shift 2
  ((limit > UNTIL - $(date +%s))) && limit=$((UNTIL - $(date +%s)))
  if ((limit < 5)); then
    say "$name skipped: no time left"
    printf '%s\tskipped\t0\n' "$name" >> "$WORK/stages.tsv"
    return 1
  fi
  say "$name (at most $limit s)"
  start=$(date +%s)
  timeout -k 10 "$limit" "$@" > "$WORK/$name.txt" 2>&1 || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" >> "$WORK/stages.tsv"
  say "$name: exit $rc after $(($(date +%s) - start)) s$( ((rc == 124)) && echo ' (time limit)')"
  return "$rc"
}

# The import checks of stage (a): what the stages need (predict's cv2 too) and the device.
read -r -d '' SETUP_PY << 'EOF'
import sys
import cv2, jsonschema, torch  # noqa: F401
import spbench, spbench.cli, spbench.config, spbench.predict, spbench.session
from importlib.metadata import version
print(f"python {sys.version.split()[0]}, spbench {spbench.__version__}, torch {torch.__version__}, "
      f"cv2 {cv2.__version__}, jsonschema {version('jsonschema')}")
cuda = torch.cuda.is_available()
print(f"cuda: {cuda}, device 0: {torch.cuda.get_device_name(0) if cuda else '-'}")
if sys.argv[1] == "cuda" and not cuda:
    sys.exit("DEVICE=cuda but torch sees no CUDA device")
# One convolution forward and backward on the device: a broken CUDA or cuDNN stops here, while
# a retry is still cheap, not in the first benchmark.
x = torch.randn(2, 3, 32, 32, device=sys.argv[1], requires_grad=True)
torch.nn.functional.conv2d(x, torch.randn(4, 3, 3, 3, device=sys.argv[1])).square().sum().backward()
if sys.argv[1] == "cuda":
    torch.cuda.synchronize()
print(f"kernel check on {sys.argv[1]}: conv2d forward and backward ok")
EOF

# The wheels of distributions the image lacks: $SITE comes first on PYTHONPATH, so a carried
# copy of one it has (attrs, typing_extensions) would shadow the image's own for torch too.
read -r -d '' MISSING_PY << 'EOF'
import importlib.metadata, pathlib, sys
for wheel in sys.argv[1:]:
    try:
        importlib.metadata.version(pathlib.Path(wheel).name.split("-")[0])
    except importlib.metadata.PackageNotFoundError:
        print(wheel)
EOF

setup() {
  local rc wheels
  if [[ -n $WHEELS ]] && compgen -G "$WHEELS/*.whl" > /dev/null; then
    wheels=$("$PYTHON" -c "$MISSING_PY" "$WHEELS"/*.whl)
    say "wheels to install (the image lacks them): $(echo ${wheels:-none})"
    # shellcheck disable=SC2086  # one wheel path per line, none with blanks
    [[ -z $wheels ]] || run_stage install "$SETUP_S" "$PYTHON" -m pip install -q --no-index \
      --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $wheels || return 1
  fi
  test -f "$DATA/dataset.json" || {
    say "no prepared dataset at $DATA: carry data/bsds500/prepared"
    return 1
  }
  run_stage setup "$SETUP_S" "$PYTHON" -c "$SETUP_PY" "$DEVICE"
  rc=$?
  if [[ $DEVICE == cuda ]]; then
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
      --format=csv >> "$WORK/setup.txt" 2>&1 || rc=1
  fi
  cat "$WORK/setup.txt"
  return "$rc"
}

# spare LIMIT_S: LIMIT_S, or less so that TRAIN_S are left for training (stages before it).
spare() {
  local left=$((UNTIL - TRAIN_S - $(date +%s)))
  echo $((left < $1 ? left : $1))
}

bench() { # NAME bench-train options...
  local name=$1
  shift
  run_stage "bench_$name" "$(spare "$BENCH_S")" "$PYTHON" -m spbench.cli bench train --steps "$BENCH_STEPS" \
    --warmup "$BENCH_WARMUP" --crop "$BENCH_CROP" --device "$DEVICE" \
    --out "$WORK/bench/$name.csv" "$@"
}

train() {
  local profile=$WORK/profile.yaml
  # shellcheck disable=SC2086  # the benchmarks' CSVs: whichever exist
  run_stage plan 120 "$PYTHON" -m spbench.cli session plan --profile "$PROFILE" \
    --bench $(ls "$WORK"/bench/scn_*.csv 2> /dev/null) --out "$profile" || return 1
  cat "$WORK/plan.txt"
  # The jobs stop themselves 15 s before the stage's own limit (run_stage caps it at UNTIL),
  # so that each says how it ended before anything is killed.
  run_stage calibrate $((UNTIL - $(date +%s))) "$PYTHON" -m spbench.cli session calibrate \
    --profile "$profile" --data "$DATA" --work "$WORK/calibration" --until $((UNTIL - 15)) \
    --steps "$CALIB_STEPS" ${MAX_STEPS:+--max-steps "$MAX_STEPS"} || return 1
  rm -f "$WORK"/calibration/models/*.pt
  cat "$WORK/calibrate.txt"
  run_stage train $((UNTIL - $(date +%s))) "$PYTHON" -m spbench.cli session train \
    --profile "$profile" --data "$DATA" --out-dir "$WORK/models" --log-dir "$WORK/train" \
    --until $((UNTIL - 15))
  cat "$WORK/train.txt"
}

summary() {
  echo "spbench GPU session, $(date -u +%FT%TZ), commit ${SPBENCH_GIT_COMMIT:-unknown}"
  echo "budget $BUDGET_S s, ran $(($(date +%s) - T0)) s; profile $PROFILE, data $DATA"
  echo
  cat "$WORK/setup.txt" 2> /dev/null
  echo
  column -t "$WORK/stages.tsv" 2> /dev/null || cat "$WORK/stages.tsv"
  for part in plan calibrate train; do
    [[ -s $WORK/$part.txt ]] && printf '\n== %s\n' "$part" && cat "$WORK/$part.txt"
  done
  [[ -s $WORK/provenance.md ]] && printf '\n' && cat "$WORK/provenance.md"
  for name in scn_eager scn_graph profile $OTHERS; do
    [[ -s $WORK/bench_$name.txt ]] || continue
    printf '\n== bench %s\n' "$name"
    grep -v '^USDT' "$WORK/bench_$name.txt" # the profiler's own log lines
  done
  grep -h -E "passed|failed|skipped|error" "$WORK/tests.txt" 2> /dev/null | tail -n 3 |
    sed 's/^/tests: /'
}

pack() {
  trap - EXIT
  say "packing into $OUT"
  local files missing=()
  files=$(spbench session files --profile "$PROFILE" 2> /dev/null)
  for name in $files; do
    [[ $name == *.pt ]] || continue
    if [[ -f $WORK/models/$name ]]; then
      cp "$WORK/models/$name" "$OUT/$name"
    elif [[ -f $WORK/models/${name%.pt}.partial.pt ]]; then # stopped at the deadline
      cp "$WORK/models/${name%.pt}.partial.pt" "$OUT/"
    fi
  done
  if compgen -G "$OUT/*.pt" > /dev/null; then
    spbench report provenance --checkpoints "$OUT"/*.pt --out-dir "$WORK" > /dev/null 2>&1
  fi
  spbench session record --work "$WORK" --out "$WORK/session.json" > /dev/null 2>&1 ||
    say "session.json not written"
  summary > "$OUT/summary.txt" 2>&1
  tar -czf "$OUT/session.tar.gz" --exclude='*.pt' -C "$(dirname "$WORK")" "$(basename "$WORK")"
  for name in $files; do
    [[ -f $OUT/$name ]] || missing+=("$name")
  done
  echo "returned: $(cd "$OUT" && ls | tr '\n' ' ')${missing:+; missing: ${missing[*]}}" \
    >> "$OUT/summary.txt"
  cat "$OUT/summary.txt"
}

trap pack EXIT
trap 'exit 143' TERM INT

say "start: budget $BUDGET_S s, device $DEVICE, profile $PROFILE"
setup || {
  say "setup failed: stopping (see install.txt, setup.txt)"
  exit 1
}
# shellcheck disable=SC2086  # a blank-separated list of test files
run_stage tests "$(spare "$TESTS_S")" "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu \
  -k "not compile" $TESTS
# shellcheck disable=SC2086  # the mode lists are blank-separated labels
{
  [[ -n $BENCH_MODES ]] && bench scn_eager --methods scn --batch-size "$BENCH_BATCH" \
    --modes $BENCH_MODES
  [[ -n $GRAPH_MODES ]] && bench scn_graph --methods scn --batch-size "$BENCH_BATCH" \
    --modes $GRAPH_MODES
  # Where the time goes: the profiler (CUPTI) in a process of its own, so that it cannot cost
  # the timed rows above if it fails on this machine.
  [[ -n $PROFILE_MODES ]] && bench profile --methods scn --variants lap \
    --batch-size "$BENCH_BATCH" --modes $PROFILE_MODES --steps 10 --warmup 3 \
    --profile-steps "$BENCH_PROFILE_STEPS"
  # One process per method (SSM's may run out of time); the last --steps and --warmup win.
  for method in $OTHERS; do
    bench "$method" --methods "$method" --steps "$OTHERS_STEPS" --warmup 2 \
      ${OTHERS_BATCH:+--batch-size "$OTHERS_BATCH"}
  done
}
train
say "done"
