#!/usr/bin/env bash
# Are two runs of the issue #15 recipe (1 epoch, 1 map worker) bit-identical? Twice each with MindSpore's
# standard ops, with the fast convolution at VISIONZOO_CONV_TUNING=0, with all fast ops at tuning 0, and
# with the defaults (tuning on) from an empty kernel cache: the first run tunes and saves its choices,
# the second starts from them. Prints each run's epoch-1 training loss (identical runs print identical
# numbers); exits 1 if a run fails.
#   usage: benchmarks/repro_check.sh [DATA_DIR=/tmp/visionzoo_digits_folder32]
set -u
cd "$(dirname "$0")/.."
DATA="${1:-/tmp/visionzoo_digits_folder32}"
WORK="$(mktemp -d)"
PYTHONPATH=src python - "$DATA" "$WORK" <<'P'
import sys, yaml
sys.path.insert(0, "benchmarks")
from bench_mindcv_fidelity import RECIPE
from visionzoo.data.digits import write_digits_image_folder
import os
if not os.path.isdir(os.path.join(sys.argv[1], "val")):
    write_digits_image_folder(sys.argv[1], size=32)
yaml.safe_dump(dict(RECIPE, data_dir=sys.argv[1], epoch_size=1, decay_epochs=1, num_parallel_workers=1),
               open(os.path.join(sys.argv[2], "recipe.yaml"), "w"))
P
run() {  # name, env...
  local name=$1; shift
  for i in 1 2; do
    if ! env PYTHONPATH=src "$@" python train.py -c "$WORK/recipe.yaml" --ckpt_save_dir "$WORK/$name$i" \
        >"$WORK/$name$i.log" 2>&1; then
      echo "$name run $i failed:"; tail -3 "$WORK/$name$i.log"; exit 1
    fi
    echo "$name run $i: train_loss $(python -c "import json,sys;print(json.loads(open(sys.argv[1]).readline())['train_loss'])" "$WORK/$name$i/metrics.jsonl")"
  done
}
run standard_ops VISIONZOO_FAST_CONV=0 VISIONZOO_FAST_POOL=0
run fast_conv_tuning0 VISIONZOO_CONV_TUNING=0 VISIONZOO_FAST_POOL=0
run fast_ops_tuning0 VISIONZOO_CONV_TUNING=0
run defaults_empty_cache VISIONZOO_HOME="$WORK/home"
rm -rf "$WORK"
