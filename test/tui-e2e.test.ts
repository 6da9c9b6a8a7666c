/**
 * The TUI in a real terminal: scripts/tui-e2e.sh runs `ctx` inside tmux, types into it and checks the
 * screen (see the script for the steps). Skipped, saying why, where tmux is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const tmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
const skip = tmux.error ? 'tmux is not installed (apt-get install tmux): the terminal end-to-end test of the TUI did not run' : false;

test('ctx in a real terminal (tmux): ingest, ask, /info, /quit; 40 columns with NO_COLOR; line mode', { skip, timeout: 60_000 }, () => {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'tui-e2e.sh')], { encoding: 'utf8', timeout: 55_000 });
  assert.equal(r.status, 0, `scripts/tui-e2e.sh failed (status ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /tui-e2e: OK/);
});
