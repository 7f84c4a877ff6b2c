#!/bin/bash
# The loss ablation behind loss.name = "auto" (src/pixelseg/data/loss_rule.py, docs/loss_rule.md).
# Fixed work (300 steps of 4 crops), not a time budget, so the comparison does not depend on what
# else the machine runs. Trained on the benchmark split's train images (bench/splits.py), scored
# on its val images (never its test split), final weights (one validation, after the last step).
# Usage: bench/loss_ablation.sh [out_dir]   (default /tmp/lossab; a finished run is skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/lossab}
declare -A SPLIT
SPLIT[drive]='--set data.split.train=["26-35"] --set data.split.val=["36-40"]'
SPLIT[isbi2012]='--set data.split.train=["10-24"] --set data.split.val=["25-29"]'
SPLIT[camvid]='--set data.split.method="prefix" --set data.split.train=["0016E5_"] --set data.split.val=["0006R0_"]'
run() {
  local ds=$1 name=$2; shift 2
  local out=$OUT/${ds}_${name}
  [ -f "$out/summary.json" ] && return; rm -rf "$out"
  # shellcheck disable=SC2086
  .venv/bin/pixelseg train "configs/$ds.toml" --out "$out" ${SPLIT[$ds]} \
    --set train.epochs=1 --set train.samples_per_epoch=1200 "$@" > "$out.log" 2>&1
}
for ds in drive isbi2012 camvid; do
  run "$ds" ce --set loss.name='"ce"' --set loss.class_weighting='"none"'
  run "$ds" dicece --set loss.name='"dice_ce"' --set loss.class_weighting='"none"'
  run "$ds" dicece_median --set loss.name='"dice_ce"' --set loss.class_weighting='"median"'
done
for f in "$OUT"/*/summary.json; do
  .venv/bin/python -c "import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[1].split('/')[-2], s['steps'], round(s['best_miou'], 4))" "$f"
done
