#!/usr/bin/env bash
# GPU check of the ELECTRA pre-training step (issue 3, "Speed"), prepared to run unattended on a
# fresh GPU machine without internet (an H100 / H200) in under 8 minutes:
#   1. TensorFlow: installs the wheels in .whl/ if that folder holds any, else uses a preinstalled
#      tensorflow (and says which); installs this project (editable, no dependencies);
#   2. runs the model's unit tests (modeling, pre-training objective, optimizer) on the GPU;
#   3. prints bench/train_throughput.py's table for ELECTRA-Small and ELECTRA-Base at sequence
#      length 128 in mixed_bfloat16 with jit_compile (target: Base above 2,000 sequences/s on
#      one H100).
# Every step runs under `timeout`; a failed step is reported and the next one still runs. Logs and
# JSON results go to $OUT when it is set. The exit status is the number of failed steps.
#
#   bash bench/device_check.sh
# Environment overrides: PYTHON (python3), SMALL_BATCH (256), BASE_BATCH (256), STEPS (20),
# WARMUP_STEPS (3), TOTAL_SECONDS (470: no step runs past it), ALLOW_CPU=1 (rehearse the whole
# script on a machine without a GPU).

set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SMALL_BATCH=${SMALL_BATCH:-256}
BASE_BATCH=${BASE_BATCH:-256}
STEPS=${STEPS:-20}
WARMUP_STEPS=${WARMUP_STEPS:-3}
TOTAL_SECONDS=${TOTAL_SECONDS:-470}
RESULTS=${OUT:-$(mktemp -d)}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
STARTED=$(date +%s)
FAILED=0

say() { echo "[device_check +$(( $(date +%s) - STARTED ))s] $*"; }

# step NAME SECONDS COMMAND...: runs COMMAND under a time limit (cut to what is left of
# TOTAL_SECONDS), teeing its output to a log.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((TOTAL_SECONDS - ($(date +%s) - STARTED)))
    if [ "$left" -lt 15 ]; then
        say "$name: SKIPPED (the ${TOTAL_SECONDS}s budget is spent)"
        FAILED=$((FAILED + 1))
        return 1
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    say "$name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log"
    local status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        FAILED=$((FAILED + 1))
        [ "$status" -eq 124 ] && say "$name: TIMED OUT after ${limit}s" \
            || say "$name: FAILED (exit $status)"
    fi
    return "$status"
}

# 1. TensorFlow and the project.
if compgen -G ".whl/*.whl" >/dev/null; then
    say "TensorFlow source: wheels from .whl/ ($(ls .whl/*.whl | wc -l) files)"
    step install_wheels 150 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
elif timeout 60 "$PYTHON" -c "import tensorflow" >/dev/null 2>&1; then
    version=$("$PYTHON" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null)
    say "TensorFlow source: preinstalled ($version)"
else
    say "no TensorFlow: .whl/ holds no wheels and 'import tensorflow' fails; stopping"
    exit 1
fi
# The project itself (its dependencies are TensorFlow's, from step 1), into a folder of its own.
step install_project 60 "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation \
    --no-compile --target /tmp/electra_tf_site . \
    && export PYTHONPATH=/tmp/electra_tf_site${PYTHONPATH:+:$PYTHONPATH} \
    || export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

step devices 60 "$PYTHON" -c "
import tensorflow as tf, keras
gpus = tf.config.list_physical_devices('GPU')
print('TensorFlow', tf.__version__, 'Keras', keras.__version__, 'built with CUDA',
      tf.test.is_built_with_cuda())
for gpu in gpus:
    print(gpu.name, tf.config.experimental.get_device_details(gpu))
raise SystemExit(0 if gpus else 'no GPU visible to TensorFlow')
" || [ "${ALLOW_CPU:-0}" = 1 ] || exit "$FAILED"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm \
    --format=csv | tee "$RESULTS/nvidia_smi.log"

# 2. Unit tests of the model on the GPU. TF32 off: the tests compare float32 results with tight
# tolerances that TF32 matmuls (TensorFlow's default on Ampere and later) would not meet.
TESTS=()
for path in tests/electra_tf/modeling tests/electra_tf/pretraining \
            tests/electra_tf/training/test_optimization.py; do
    [ -e "$path" ] && TESTS+=("$path")
done
NVIDIA_TF32_OVERRIDE=0 step unit_tests 150 "$PYTHON" -m pytest -q -p no:cacheprovider \
    "${TESTS[@]}"

# 3. Throughput, mixed_bfloat16 with XLA. Without the matmuls-alone column: its compilation
# would eat into each setting's time limit, and the step's own figure is the target.
for size in small base; do
    batch=$SMALL_BATCH
    [ "$size" = base ] && batch=$BASE_BATCH
    step "throughput_$size" 150 "$PYTHON" bench/train_throughput.py --model_size="$size" \
        --seq_length=128 --batch_size="$batch" --steps="$STEPS" \
        --warmup_steps="$WARMUP_STEPS" --precisions=mixed_bfloat16 --jit=true \
        --setting_timeout=110 --nomatmuls_alone \
        --output_json="$RESULTS/throughput_$size.json"
done

say "done: $FAILED failed step(s); logs and JSON in $RESULTS"
exit "$FAILED"
