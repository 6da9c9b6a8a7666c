#!/usr/bin/env bash
# End-to-end check of `ctx` (the TUI) in a real terminal: tmux runs it in a pane, keys are sent as a user
# would type them, and the captured screen is checked. Three runs, all on a fresh two-file project:
#   1. 120 columns: the "no snapshot yet" screen, ingest typed paths, a question, /info, /quit;
#   2. 40 columns with NO_COLOR=1: the header fits, and not one colour code reaches the terminal;
#   3. stdout piped: the plain line mode answers questions read from stdin.
# Needs a build (npx tsc -p tsconfig.json) and tmux. Exits non-zero, printing the screen, on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CTX="$ROOT/bin/run.js"
command -v tmux >/dev/null || { echo "tui-e2e: tmux is not installed (apt-get install tmux)" >&2; exit 2; }
[ -f "$ROOT/dist/commands/tui.js" ] || { echo "tui-e2e: not built: run npx tsc -p tsconfig.json" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctx-tui-e2e.XXXXXX")
SOCK="ctx-e2e-$$"                       # our own tmux server: never touches the user's sessions
T() { tmux -L "$SOCK" -f /dev/null "$@"; }
cleanup() { T kill-server 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

PROJ="$WORK/proj"
mkdir -p "$PROJ/src"
printf 'export function parseConfig(text) {\n  return JSON.parse(text);\n}\n' > "$PROJ/src/config.js"
printf '# Notes\n\nThe pass key is 4721.\n' > "$PROJ/notes.md"

# A clean environment: Ink stops redrawing when it thinks it runs in CI (CI, CI_* variables).
RUN="env -i HOME=$HOME PATH=$PATH LANG=C.UTF-8 TERM=xterm-256color"

fail() {
  echo "tui-e2e: FAIL: $1" >&2
  echo "----- screen -----" >&2
  T capture-pane -p -J -S - -t e2e >&2 2>/dev/null || true
  exit 1
}

screen() { T capture-pane -p -J -S - -t e2e; }

# Wait (up to $2 seconds, default 20) until the screen, scrollback included, shows the text.
wait_for() {
  local text=$1 limit=$(( ${2:-20} * 10 ))
  for ((i = 0; i < limit; i++)); do
    screen | grep -qF -- "$text" && return 0
    sleep 0.1
  done
  fail "never saw: $text"
}

type_line() {
  T send-keys -t e2e -l -- "$1"
  T send-keys -t e2e Enter
}

expect() { screen | grep -qF -- "$1" || fail "expected on screen: $1"; }

start() { # columns, extra env, then the pane exits showing ctx's exit status
  T new-session -d -s e2e -x "$1" -y 50 "cd '$PROJ' && $RUN $2 node '$CTX'; echo CTX-EXIT=\$?; sleep 30"
}

# ---- 1. the full flow at 120 columns
start 120 ""
wait_for "No snapshot yet."
expect "model ctx-small"
expect "path ›"
type_line "src notes.md"
wait_for "✓ ingested src notes.md: 2 documents"
wait_for "ask ›"
expect "2 documents from 2 sources"
type_line "what is the pass key?"
wait_for "confidence"
expect "? what is the pass key?"
expect "→ "
type_line "/info"
wait_for "shape"
expect "snapshot  $PROJ/.ctx/memory.ctx"
expect "folded"
COLOURED=$(T capture-pane -p -e -t e2e)
type_line "/quit"
wait_for "CTX-EXIT=0" 10
[ -f "$PROJ/.ctx/memory.ctx" ] || fail "no snapshot file written"
echo "----- 120 columns, after /quit -----"
screen | sed -e '/^$/N;/^\n$/D'
T kill-session -t e2e

# SGR parameters that set a colour (30-38, 40-48, 90-97, 100-107), as opposed to bold, inverse and resets
# (39/49 "default colour" are resets, which tmux writes on its own when it re-encodes the pane).
has_colour() { node -e '
  const s = require("fs").readFileSync(0, "utf8");
  const sets = (n) => (n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 97) || (n >= 100 && n <= 107);
  const colour = [...s.matchAll(/\x1b\[([0-9;]*)m/g)].some((m) => m[1].split(";").some((p) => sets(+p)));
  process.exit(colour ? 0 : 1);'; }
printf '%s' "$COLOURED" | has_colour || fail "no colours at all without NO_COLOR (is the check broken?)"

# ---- 2. narrow, NO_COLOR
start 40 "NO_COLOR=1"
wait_for "tokens folded"
NARROW=$(T capture-pane -p -e -t e2e)
if printf '%s' "$NARROW" | has_colour; then fail "colour codes under NO_COLOR"; fi
screen | grep -qE '^╰─{38}╯$' || fail "the header box does not fit 40 columns"
screen | grep -qE '^│ ctx /.*…' || fail "the snapshot path is not truncated to one line at 40 columns"
screen | grep -qF "updated just now" || fail "header facts missing at 40 columns"
type_line "/quit"
wait_for "CTX-EXIT=0" 10
echo "----- 40 columns, NO_COLOR -----"
screen | sed -e '/^$/N;/^\n$/D'
T kill-session -t e2e

# ---- 3. line mode (stdout is a pipe)
OUT=$(cd "$PROJ" && printf 'where is parseConfig defined?\n/info\n/quit\n' | $RUN node "$CTX" 2>&1) || fail "line mode exited non-zero: $OUT"
for text in "ctx> " "→ " "confidence" "shape" "ctx-small"; do
  grep -qF -- "$text" <<<"$OUT" || { echo "$OUT" >&2; fail "line mode output lacks: $text"; }
done
if grep -q $'\x1b' <<<"$OUT"; then fail "escape codes in line mode"; fi
echo "----- line mode -----"
echo "$OUT"
echo "tui-e2e: OK"
