#!/usr/bin/env bash
# Ingest benchmark: peak RSS and tokens/s of `ctx ingest` on a 10 MB and a multi-GB (BENCH_BIG_MB, default 3000)
# nginx access log.
#
# The logs are made (once, in $BENCH_DIR, default /tmp/ctx-bench) by repeating the real nginx lines of
# fixtures/logs with a clock that moves forward, so no two lines are the same. Folding runs at a few thousand
# tokens/s on a CPU, so folding gigabytes would take days: every run is stopped after $BENCH_SECONDS (default 60)
# by the hidden --max-seconds flag (CTX_BENCH_MAX_SECONDS), which saves what was folded like Ctrl-C does.
# Reading is pulled by the fold, so a stopped run reads only what it folded: the "read ... MB log" row streams the
# whole file through the log ingestor (src/ingest, no tokenizer, no fold) to show that reading it end to end
# stays bounded too.
#
# Usage: npx tsc -p tsconfig.json && bash scripts/bench-ingest.sh
# Not part of the test suite. Needs GNU time (/usr/bin/time -v) and python3 (to write the logs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CTX="$ROOT/bin/run.js"
DIR=${BENCH_DIR:-/tmp/ctx-bench}
SECONDS_EACH=${BENCH_SECONDS:-60}
BIG_MB=${BENCH_BIG_MB:-3000}   # the issue asks for a multi-GB input
[ -x /usr/bin/time ] || { echo "bench-ingest: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -f "$ROOT/dist/commands/ingest.js" ] || { echo "bench-ingest: not built: run npx tsc -p tsconfig.json" >&2; exit 2; }
mkdir -p "$DIR"

# make_log FILE BYTES: real nginx lines, timestamps one second apart every 40 lines.
make_log() {
  local file=$1 bytes=$2
  if [ -f "$file" ] && [ "$(stat -c %s "$file")" -ge "$bytes" ]; then return; fi
  echo "bench-ingest: writing $file ($bytes bytes)" >&2
  python3 - "$file" "$bytes" "$ROOT/fixtures/logs" <<'PY'
import gzip, glob, os, re, sys, time
out, size, logs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = []
for f in sorted(glob.glob(os.path.join(logs, '**', 'access.log*'), recursive=True)):
    opener = gzip.open if f.endswith('.gz') else open
    with opener(f, 'rt') as fh:
        lines += [l for l in fh if '[' in l]
stamp = re.compile(r'\[[^\]]+\]')
parts = [stamp.split(l, 1) for l in lines]
t, written = 1_790_000_000, 0
with open(out + '.tmp', 'w') as fh:
    while written < size:
        buf = []
        for i, (head, tail) in enumerate(parts):
            if i % 40 == 0:
                t += 1
                ts = '[' + time.strftime('%d/%b/%Y:%H:%M:%S +0000', time.gmtime(t)) + ']'
            buf.append(head + ts + tail)
        chunk = ''.join(buf)
        fh.write(chunk)
        written += len(chunk.encode())
os.replace(out + '.tmp', out)
PY
}

# measure NAME CMD...: runs CMD under GNU time; sets RSS_KB and the command's stdout in OUT_JSON.
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$DIR/$name.time" "$@" >"$DIR/$name.out" 2>"$DIR/$name.err" || true
  RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
}

make_log "$DIR/access-10m.log" $((10 * 1000 * 1000))
make_log "$DIR/access-big.log" $((BIG_MB * 1000 * 1000))

rows=()
for size in 10m big; do
  log="$DIR/access-$size.log"
  snap="$DIR/bench-$size.ctx"
  rm -f "$snap" "$snap".*
  measure "ingest-$size" node "$CTX" ingest "$log" --snapshot "$snap" --json --max-seconds "$SECONDS_EACH"
  row=$(node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const mb = (require("fs").statSync(process.argv[2]).size / 1e6).toFixed(0);
    const sec = s.ms / 1000;
    console.log([`ingest ${mb} MB log`, sec.toFixed(1), s.tokens, s.segments, Math.round(s.tokens / sec), s.snapshotBytes].join("|"));
  ' "$DIR/ingest-$size.out" "$log") || { echo "bench-ingest: ingest of $log failed:" >&2; cat "$DIR/ingest-$size.err" >&2; exit 1; }
  rows+=("$row|$((RSS_KB / 1024))")
done

# Reading the whole big log through the log ingestor (parts of lines, as the fold receives them).
cat >"$DIR/read.mjs" <<JS
import { ingestSources } from '$ROOT/dist/src/ingest/index.js';
const t0 = performance.now();
let chars = 0, parts = 0;
for await (const item of ingestSources([process.argv[2]])) {
  if (item.type !== 'document') continue;
  for await (const p of item.doc.parts()) { chars += p.text.length; parts++; }
}
console.log(JSON.stringify({ chars, parts, ms: performance.now() - t0 }));
JS
measure read-big node "$DIR/read.mjs" "$DIR/access-big.log"
read_row=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log([`read ${(r.chars / 1e6).toFixed(0)} MB log (no fold)`, (r.ms / 1000).toFixed(1), "-", "-", `${(r.chars / r.ms / 1000).toFixed(0)} MB/s`, "-"].join("|"));
' "$DIR/read-big.out")
rows+=("$read_row|$((RSS_KB / 1024))")

echo
echo "ctx ingest benchmark ($(nproc) CPUs, $(node --version), each ingest stopped after ${SECONDS_EACH} s)"
printf '%-28s %8s %10s %9s %10s %15s %13s\n' "run" "seconds" "tokens" "segments" "tokens/s" "snapshot bytes" "peak RSS MiB"
for r in "${rows[@]}"; do
  IFS='|' read -r name sec tok seg rate snapb rss <<<"$r"
  printf '%-28s %8s %10s %9s %10s %15s %13s\n' "$name" "$sec" "$tok" "$seg" "$rate" "$snapb" "$rss"
done
