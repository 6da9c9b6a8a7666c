#!/usr/bin/env bash
# Several training chunks side by side on the one GPU (runs 5-8 compared arms this way): each arm is a
# gpu_chunk.sh run with its own run folder on the machine's disk and its own $OUT/ALIAS. An ALIAS lets two arms
# share a config (it is copied to /root/ctx-run/cfg/ALIAS.json, and the run folder is named after it).
#   bash train/gpu_arms.sh MINUTES 'CONFIG:ALIAS flags...' ['CONFIG:ALIAS flags...' ...]
# With PROBE=N, each arm's weights then go through binding_probe.py (N streams) and write_probe.py (5 streams) on
# the GPU; their output and the arm's log end up in /root/ctx-run/ALIAS.txt.
set -euo pipefail
MIN=$1; shift
mkdir -p /root/ctx-run/cfg
[ -f /root/ctx-run/pool.pkl.gz ] || python3 train/corpus.py --out /root/ctx-run/pool.pkl.gz --procs 16 ${CORPUS_EXPORT:+--export "$CORPUS_EXPORT"}
BASE_OUT=$OUT
aliases=()
for arm in "$@"; do
  read -r spec flags <<<"$arm"
  config=${spec%%:*}; alias=${spec#*:}; aliases+=("$alias")
  cp "$config" "/root/ctx-run/cfg/$alias.json"
  mkdir -p "$BASE_OUT/$alias"
  # word splitting of $flags is wanted: they are train.py flags
  # shellcheck disable=SC2086
  OUT="$BASE_OUT/$alias" bash train/gpu_chunk.sh "/root/ctx-run/cfg/$alias.json" "$MIN" $flags > "/root/ctx-run/$alias.out" 2>&1 &
done
wait
[ -n "${PROBE:-}" ] || exit 0
for alias in "${aliases[@]}"; do
  args=(--config "/root/ctx-run/cfg/$alias.json" --weights "$BASE_OUT/$alias/weights.pt" --pool /root/ctx-run/pool.pkl.gz)
  { grep -v '"step"' "/root/ctx-run/$alias.out" | tail -n 12
    timeout 120 python3 train/binding_probe.py "${args[@]}" --n "$PROBE" || echo "binding_probe failed"
    timeout 60 python3 train/write_probe.py "${args[@]}" --n 5 || echo "write_probe failed"
  } > "/root/ctx-run/$alias.txt" 2>&1
done
