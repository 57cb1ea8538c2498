#!/usr/bin/env bash
# One GPU benchmark session, end to end on a bare GPU machine (see README.md):
#   1. install the carried wheels (benchmarks/gpu/wheels, from fetch_wheels.sh);
#   2. step_time.py --device cuda, float32 then bf16;
#   3. inference_throughput.py --device cuda on a 2048 and a 16384 px raster;
#   4. data_throughput.py: the read path against TorchGeo's and the training
#      loader with 0, 2 and the default number of workers (the machine's cores);
#   5. accuracy.py: STARS, the three baselines and stars_random_psa, 3 seeds,
#      2000 steps, --vehicle-scale 3, one process per run sharing the GPU,
#      --max-time set to what is left of the budget (runs stopped by it are
#      marked as truncated in the tables).
# Everything goes to OUTPUT_DIR (default: $OUT, else benchmarks/gpu/output):
# run.log, results.jsonl (one JSON line per run / configuration / size),
# accuracy.json, accuracy.md, step_time_32.md, step_time_bf16.md,
# inference.md, data_throughput.md: eight files, what the device tool brings
# back at most.
#
# Usage: benchmarks/gpu/run.sh [--smoke [--with-wheels]] [OUTPUT_DIR]
#   --smoke: the same chain on the CPU with tiny sizes, no wheel install, in
#            under two minutes (part of the test suite).
#   --with-wheels: with --smoke, install and use the carried wheels too (to
#            check them here with a Python that lacks those packages).
# Environment: PYTHON (python3; with --smoke .venv/bin/python if present),
#   BUDGET_S (seconds for the whole script: 530, 100 with --smoke),
#   SITE (where the wheels are installed: /tmp/stars-site), PRECISION
#   (accuracy training and inference: bf16, or 32), STAGES (which of
#   "step_time inference data accuracy" to run, in that order: all by default;
#   "accuracy" alone gives training the whole budget), COMMIT (the commit
#   to name in run.log; the device machine's copy has no .git).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
smoke=0
with_wheels=0
outdir=''
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        --with-wheels) with_wheels=1 ;;
        -h | --help)
            sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "run.sh: error: unknown option $arg (use --smoke or --help)" >&2
            exit 2
            ;;
        *) outdir=$arg ;;
    esac
done
outdir=${outdir:-${OUT:-$root/benchmarks/gpu/output}}
mkdir -p "$outdir" || exit 1
outdir=$(cd "$outdir" && pwd)
log=$outdir/run.log
jsonl=$outdir/results.jsonl
rm -f "$log" "$jsonl" "$outdir"/accuracy.{json,md} "$outdir"/step_time_{32,bf16}.md \
    "$outdir"/inference.md "$outdir"/data_throughput.md
exec > >(tee -a "$log") 2>&1
start=$(date +%s)
cd "$root" || exit 1
export PYTHONUNBUFFERED=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ((smoke)); then
    default_python=python3
    [[ -x $root/.venv/bin/python ]] && default_python=$root/.venv/bin/python
    python=${PYTHON:-$default_python}
    budget=${BUDGET_S:-100}
    device=cpu
    accelerator=cpu
    # Tiny sizes: every stage and every file, no meaningful figure.
    step_args=(--size 64 --batch-size 2 --rounds 1 --warmup 1 --threads 1
        --configs early_fusion_fpn stars stars_no_align)
    inference_args=(--sizes 256 512 --patch-size 128 --overlap 16 --model small
        --threads 1)
    data_args=(--sizes 64 --samples 8 --rounds 1 --scene-size 256)
    accuracy_args=(--seeds 0 --steps 2 --size 256 --batch-size 2 --jobs 2
        --threads 1 --configs stars early_fusion)
    reserve=25
    stage_limit=300 # generous: a busy machine must not fail the test
else
    python=${PYTHON:-python3}
    budget=${BUDGET_S:-530}
    device=cuda
    accelerator=gpu
    step_args=(--size 256 --batch-size 8 --rounds 20 --warmup 5 --threads 1)
    inference_args=(--sizes 2048 16384 --model stars --batch-size 8)
    data_args=(--sizes 256 --samples 96 --rounds 2)
    accuracy_args=(--seeds 0 1 2 --steps 2000 --jobs 15 --threads 1
        --configs stars early_fusion moddrop shaspec stars_random_psa)
    reserve=75
    stage_limit=200
fi

precision=${PRECISION:-bf16}
case "$precision" in
    bf16) trainer_precision=bf16-mixed ;;
    32) trainer_precision=32 ;;
    *)
        echo "run.sh: error: PRECISION=$precision; use bf16 or 32" >&2
        exit 2
        ;;
esac

stages=" ${STAGES:-step_time inference data accuracy} "
for name in $stages; do
    case "$name" in
        step_time | inference | data | accuracy) ;;
        *)
            echo "run.sh: error: STAGES names $name; use step_time, inference," \
                "data and/or accuracy" >&2
            exit 2
            ;;
    esac
done
wants() { [[ $stages == *" $1 "* ]]; }

elapsed() { echo $(($(date +%s) - start)); }
failures=()

# stage NAME SECONDS COMMAND...: run with a time limit, note how it went.
stage() {
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s, at $(elapsed) s): $*"
    local began=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    local status=$?
    echo "== $name: exit $status after $(($(date +%s) - began)) s"
    ((status == 0)) || failures+=("$name (exit $status)")
    return "$status"
}

# The device machine gets a copy of the tree without .git: pass COMMIT.
commit=${COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
echo "run.sh $( ((smoke)) && echo --smoke) at $(date -u +%FT%TZ), commit $commit," \
    "budget ${budget} s, stages${stages% }, output $outdir"

if ((!smoke || with_wheels)); then
    wheels=$here/wheels
    site=${SITE:-/tmp/stars-site}
    shopt -s nullglob
    carried=("$wheels"/*.whl)
    shopt -u nullglob
    if ((${#carried[@]} == 0)); then
        echo "run.sh: error: no wheels in $wheels; run benchmarks/gpu/fetch_wheels.sh" \
            "here and carry benchmarks/gpu/wheels" >&2
        exit 1
    fi
    stage install 120 "$python" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$site" "${carried[@]}" || exit 1
    # The pyogrio stand-in first, then the wheels, then this checkout.
    export PYTHONPATH=$here/stand_ins:$site:$root${PYTHONPATH:+:$PYTHONPATH}
    nvidia-smi -L 2>/dev/null || true
fi

((smoke && !with_wheels)) || "$python" - <<'EOF' || failures+=('environment')
import torch, torchgeo, rasterio, segmentation_models_pytorch as smp
import torchgeo_stars
cuda = torch.cuda.is_available()
print(f'python torch {torch.__version__}, CUDA {torch.version.cuda}, GPU '
      f'{torch.cuda.get_device_name(0) if cuda else "none"}; torchgeo '
      f'{torchgeo.__version__}, rasterio {rasterio.__version__}, smp '
      f'{smp.__version__}, torchgeo_stars from {torchgeo_stars.__file__}')
EOF

wants step_time && for step_precision in 32 bf16; do
    stage "step_time $step_precision" "$stage_limit" "$python" benchmarks/step_time.py \
        --device "$device" --precision "$step_precision" "${step_args[@]}" \
        --output "$outdir/step_time_$step_precision.md" --jsonl "$jsonl"
done

wants inference && stage inference "$stage_limit" "$python" \
    benchmarks/inference_throughput.py \
    --device "$device" --precision "$precision" "${inference_args[@]}" \
    --workdir "$scratch/rasters" --output "$outdir/inference.md" --jsonl "$jsonl"

# The markdown only: its JSON twin would be a ninth file
wants data && stage data "$stage_limit" "$python" benchmarks/data_throughput.py \
    "${data_args[@]}" --output "$scratch/data_throughput.md" &&
    cp "$scratch/data_throughput.md" "$outdir/"

# Training gets what is left, less the time to start, test and merge; if
# the stage is killed, the runs that finished are still merged.
run_accuracy() {
    local left=$((budget - $(elapsed) - reserve))
    ((left < 30)) && left=30
    local minutes
    minutes=$(awk -v s="$left" 'BEGIN { printf "%.2f", s / 60 }')
    local limit=$((left + reserve))
    ((smoke)) && limit=$stage_limit
    stage accuracy "$limit" "$python" benchmarks/accuracy.py \
        --accelerator "$accelerator" --precision "$trainer_precision" \
        --vehicle-scale 3 --max-time "$minutes" "${accuracy_args[@]}" \
        --parts-dir "$scratch/parts" --output "$outdir/accuracy" --jsonl "$jsonl" &&
        return 0
    shopt -s nullglob
    local parts=("$scratch"/parts/*.json)
    shopt -u nullglob
    if ((${#parts[@]} > 0)) && [[ ! -e $outdir/accuracy.json ]]; then
        echo "== accuracy: merging the ${#parts[@]} runs that finished"
        "$python" benchmarks/accuracy.py --merge "${parts[@]}" \
            --output "$outdir/accuracy" --jsonl "$jsonl"
    fi
}
wants accuracy && run_accuracy

echo "== done in $(elapsed) s; files in $outdir:"
ls -l "$outdir"
if ((${#failures[@]} > 0)); then
    echo "run.sh: error: failed stages: ${failures[*]}" >&2
    exit 1
fi
