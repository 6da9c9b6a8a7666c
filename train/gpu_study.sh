#!/usr/bin/env bash
# One command on the lent GPU machine that runs three training chunks side by side (session 3):
#   ctx-small-next     the passkey length curriculum, from the shipped weights (8 -> 64 segments);
#   ctx-small-infini   the length study's paper rule, from scratch, passkey only (2 -> 64 segments);
#   ctx-small-scratch  the same from scratch with the delta-rule block, its fair comparison.
# Why together: past a few segments each run's batch per segment is a few thousand tokens, far too little to fill
# an H100, and device time is the scarce thing. Each run resumes from its checkpoint on the machine's disk.
#   bash train/gpu_study.sh TOTAL_MINUTES     (everything, corpus build and evaluation included, within it)
set -euo pipefail
TOTAL=$1
START=$(date +%s)
POOL=/root/ctx-run/pool.pkl.gz
mkdir -p /root/ctx-run
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 > "$OUT/smi.log" 2>&1 &
SMI=$!
[ -f $POOL ] || python3 train/corpus.py --out $POOL --procs 16
# Training minutes: what is left, less 2.5 minutes for loading the pool and the held-out evaluation at the end.
MIN=$(python3 -c "print(round(max(0.5, ($TOTAL * 60 - ($(date +%s) - $START)) / 60 - 2.5), 2))")
echo "training minutes: $MIN"
STUDY="--families passkey --start_segs 2 --mastery 0.8 --max_segs 64 --tokens_per_step 65536 --workers 4 --eval_segs 4,16,64,256 --eval_n 32"
PIDS=()
bash train/gpu_chunk.sh train/configs/ctx-small-next.json "$MIN" --families passkey --start_segs 8 --mastery 0.8 \
  --max_segs 64 --workers 6 --eval_segs 4,16,64,256 --eval_n 32 > /root/ctx-run/next.out 2>&1 &
PIDS+=($!)
for c in infini scratch; do
  bash train/gpu_chunk.sh "train/configs/ctx-small-$c.json" "$MIN" $STUDY --out "/root/ctx-run/ctx-small-$c/out" \
    > "/root/ctx-run/$c.out" 2>&1 &
  PIDS+=($!)
done
RC=0
for p in "${PIDS[@]}"; do wait "$p" || RC=1; done
kill $SMI || true
tail -n 3 /root/ctx-run/*.out
exit $RC
