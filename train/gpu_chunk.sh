#!/usr/bin/env bash
# One training chunk on the lent GPU machine (each command may run at most 10 minutes): build the corpus pool
# once per machine, resume training from the checkpoint kept on the machine's disk (or from weights brought
# back from an earlier machine), write weights and the log to $OUT.
#   bash train/gpu_chunk.sh CONFIG MINUTES [train.py flags...]
# CORPUS_EXPORT=FILE folds scripts/export-corpus.ts's output (npm packages' JS/TS, man pages, PDFs, logs; carried to
# the machine) into the pool: the machine's own Python installation has no JS or TS code (RUNS.md run 15).
set -euo pipefail
CONFIG=$1; MIN=$2; shift 2
NAME=$(basename "$CONFIG" .json)
RUN=/root/ctx-run/$NAME; mkdir -p "$RUN"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
[ -f /root/ctx-run/pool.pkl.gz ] || python3 train/corpus.py --out /root/ctx-run/pool.pkl.gz --procs 16 ${CORPUS_EXPORT:+--export "$CORPUS_EXPORT"}
INIT=()
if [ ! -f "$RUN/ckpt.pt" ] && ls runs/"$NAME"/weights.pt.* >/dev/null 2>&1; then INIT=(--init "runs/$NAME/weights.pt"); fi
python3 train/train.py --config "$CONFIG" --pool /root/ctx-run/pool.pkl.gz --ckpt "$RUN/ckpt.pt" --minutes "$MIN" \
  --out "$OUT" "${INIT[@]}" "$@" 2>&1 | tee -a "$RUN/train.log"
cp "$RUN/train.log" "$OUT/train-$NAME.log"
