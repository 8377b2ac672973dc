#!/usr/bin/env bash
# The GPU checks of issue 16 on a lent device, in one call of ~9 minutes at most:
# benchmarks/cuda_check.py (the suite on CUDA against the CPU), then benchmarks/bench_gpu.py
# (archs/s at batch 64 and 128 with 1, 2 and 4 tasks sharing the GPU), each under a timeout.
#
#   benchmarks/device_check.sh --prepare     # here, once, with the network: packs .devsite/ (~46 MB)
#   device run:  bash benchmarks/device_check.sh     carry [".devsite"], timeout_s 600
#   benchmarks/device_check.sh --self-check  # here: the same sequence, tiny, on the CPU
#
# The device's python3 has torch, numpy, scipy, typer, rich and matplotlib, but no duckdb,
# Ray or jsonschema, and no network, so `pip install -e .` cannot fetch them there.
# --prepare downloads their cp312 x86-64 wheels (the versions in .venv), unpacks them,
# drops what these checks never load (Ray's Java jar, dashboard UI and RLlib: 79 MB of
# wheel down to ~46 MB with xz, inside the 64 MiB a call may carry) and writes
# .devsite/site.tar.xz, ignored through .git/info/exclude. On the device the script
# unpacks it into /tmp/site and puts that and the repo on PYTHONPATH (the Ray workers
# inherit it), "what is there" instead of an install.
# Logs: $OUT/device_check.log (all), cuda_check.log, bench_gpu.log, ray_logs.txt on a
# failure (./device_logs when OUT is unset). Exit status: the worst of the steps.
set -u -o pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SITE="${DEVSITE:-$ROOT/.devsite}"  # DEVSITE, PYVER, DEVICE=cpu: to test the device path here
PYVER="${PYVER:-3.12}"
PKGS=(duckdb ray jsonschema jsonschema-specifications referencing rpds-py)

prepare() {
  local venv_py="$ROOT/.venv/bin/python" stage pins
  stage="$(mktemp -d)"
  pins=$("$venv_py" -c "import sys, importlib.metadata as m; print(' '.join(f'{p}=={m.version(p)}' for p in sys.argv[1:]))" "${PKGS[@]}") || exit 1
  echo "packing for cp${PYVER/./} x86-64: $pins"
  # shellcheck disable=SC2086
  "$venv_py" -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --target "$stage" $pins || exit 1
  rm -rf "$stage/ray/jars" "$stage/ray/dashboard/client/build" "$stage/ray/rllib" "$stage/bin"
  mkdir -p "$SITE"
  tar -C "$stage" -cf - . | xz -T0 -6 >"$SITE/site.tar.xz" || exit 1
  rm -rf "$stage"
  local exclude
  exclude="$(git rev-parse --git-path info/exclude)"
  mkdir -p "$(dirname "$exclude")"
  grep -qxF '/.devsite/' "$exclude" 2>/dev/null || echo '/.devsite/' >>"$exclude"
  ls -l "$SITE/site.tar.xz"
}

MODE="${1:-device}"
case "$MODE" in
  --prepare) prepare; exit 0 ;;
  --self-check) PY="${PY:-$ROOT/.venv/bin/python}"; DEVICE=cpu ;;
  device) PY="${PY:-python3}"; DEVICE="${DEVICE:-cuda}" ;;
  *) echo "usage: $0 [--prepare | --self-check]" >&2; exit 2 ;;
esac

LOG="${OUT:-$ROOT/device_logs}"
mkdir -p "$LOG"
TOTAL="${DEVICE_CHECK_SECONDS:-540}"  # the whole script; a device call may run 600 s
export PYTHONUNBUFFERED=1
status=0
left() { echo $((TOTAL - SECONDS)); }
step() {  # step NAME CAP_SECONDS COMMAND...: under min(CAP, time left), logged to $LOG/NAME.log
  local name="$1" cap="$2" t rc
  shift 2
  t=$(left)
  ((t > cap)) && t=$cap
  if ((t < 20)); then
    echo "== $name: skipped, ${t}s left of ${TOTAL}s"
    status=1
    return
  fi
  echo "== $name (timeout ${t}s): $*"
  timeout -k 10 "$t" "$@" 2>&1 | tee "$LOG/$name.log"
  rc=$?
  ((rc == 124 || rc == 137)) && echo "== $name: TIMED OUT after ${t}s"
  echo "== $name: exit $rc after ${SECONDS}s in all"
  ((rc > status)) && status=$rc
}

{
  echo "== device_check ($MODE) at $(date -u +%FT%TZ) on $(hostname), ${TOTAL}s budget"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  if ! "$PY" -c "import duckdb, ray, jsonschema" 2>/dev/null; then
    if [ -f "$SITE/site.tar.xz" ]; then
      echo "== unpacking .devsite/site.tar.xz into /tmp/site"
      mkdir -p /tmp/site
      if command -v xz >/dev/null; then
        tar -xJf "$SITE/site.tar.xz" -C /tmp/site || status=2
      else
        "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" \
          "$SITE/site.tar.xz" /tmp/site || status=2
      fi
      export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    else
      echo "== no duckdb/ray here and no .devsite/site.tar.xz: run '$0 --prepare' here, carry .devsite"
    fi
  fi
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # estbench from the tree, for the Ray workers too
  "$PY" -c "import torch, duckdb, estbench; print('python', __import__('sys').version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| duckdb', duckdb.__version__)" || status=2
  "$PY" -c "import ray; print('ray', ray.__version__)" || echo "== no Ray: bench_gpu.py runs k = 1 only"
  echo "== set-up done after ${SECONDS}s"

  if [ "$DEVICE" = cuda ]; then
    step cuda_check 150 "$PY" benchmarks/cuda_check.py --device cuda --archs 10 --batch 64
    t=$(left)
    ((t > 300)) && t=300
    bench_budget=$((t - 40 < 240 ? t - 40 : 240))  # bench_gpu.py's own default: ~4 min on an H200
    step bench_gpu 300 "$PY" benchmarks/bench_gpu.py --device cuda --max-seconds "$bench_budget"
  else
    step cuda_check 120 "$PY" benchmarks/cuda_check.py --device cpu --archs 3 --batch 8
    step bench_gpu 150 "$PY" benchmarks/bench_gpu.py --device cpu --archs 4 --batches 16 --per-gpu 1,2
  fi
  if ((status != 0)) && [ -d /tmp/ray/session_latest/logs ]; then
    for f in /tmp/ray/session_latest/logs/{raylet.err,gcs_server.err,worker-*.err}; do
      [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done >"$LOG/ray_logs.txt" 2>/dev/null
  fi
  echo "== device_check: exit $status after ${SECONDS}s"
  exit "$status"
} 2>&1 | tee "$LOG/device_check.log"
exit "${PIPESTATUS[0]}"
