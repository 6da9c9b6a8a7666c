#!/usr/bin/env bash
# `ctx eval repo` on real repositories that no model was trained on: packages whose names hash into the held-out
# split (train/corpus.py is_heldout), found on a Debian machine with python3-apt and this project's node_modules.
# Prints each repository's identifier top-1/top-3 (model, memory off, BM25), how many distinct paths the model
# answers first against how many are right (one: the same answer whatever the question; RUNS.md run 18), how many
# names it finds among those its commonest answer does not define (recall beyond naming one file; RUNS.md run 26),
# and totals.
#   bash scripts/heldout-repos.sh [MODEL_DIR]        (default: the shipped model)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/ctx-small}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
REPOS=(/usr/lib/python3.11/json /usr/lib/python3.11/concurrent /usr/lib/python3/dist-packages/aptsources
       node_modules/chalk node_modules/ws)
for d in "${REPOS[@]}"; do
  if [ ! -d "$d" ]; then echo "skipped (not on this machine): $d" >&2; continue; fi
  node bin/run.js eval repo "$d" --model "$MODEL" --json > "$OUT/$(basename "$d").json"
done
python3 - "$OUT" <<'PY'
import glob, json, sys
total = [0] * 9
print(f'{"repository":<12} {"files":>5} {"tokens":>7}  identifiers: top-1 top-3 memory-off BM25-top-1 BM25-top-3 of n'
      '  distinct answers/paths  top-1 beyond the commonest answer')
for f in sorted(glob.glob(sys.argv[1] + '/*.json')):
    d = json.load(open(f))
    x = next(r for r in d['rows'] if r['questions'] == 'identifier')
    n = x['n']
    row = [round(x[k] * n) for k in ('top1', 'top3', 'memoryOffTop1', 'bm25Top1', 'bm25Top3')] + [n]
    # the names defined outside the file the model names most: what it finds there is recall, not one fixed answer
    beyond = [x['othersRight'], x['othersAsked']]
    total = [a + b for a, b in zip(total, row + [d['tokens']] + beyond)]
    print(f'{f.rsplit("/", 1)[1][:-5]:<12} {d["files"]:>5} {d["tokens"]:>7}  ' + ' '.join(f'{v:>5}' for v in row)
          + f'  {x["distinctAnswers"]:>7}/{x["distinctPaths"]}  {beyond[0]:>13} of {beyond[1]}')
print(f'{"total":<12} {"":>5} {total[6]:>7}  ' + ' '.join(f'{v:>5}' for v in total[:6])
      + f'  {"":>9}  {total[7]:>13} of {total[8]}')
PY
