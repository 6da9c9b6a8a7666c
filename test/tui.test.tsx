/**
 * The TUI, driven through ink-testing-library: keys in, frames out. Most tests use fake services (no model)
 * to check the UI's behaviour; the last ones run the real shipped model over a real tiny snapshot.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { useEffect, type ReactElement } from 'react';
import { cleanup, render } from 'ink-testing-library';
import chalk from 'chalk';
import { App } from '../src/tui/App.js';
import { parseLine, splitArgs } from '../src/tui/commands.js';
import { displayText, etaMs, formatProb } from '../src/tui/format.js';
import { editLine, emptyLine, type LineState } from '../src/tui/line-editor.js';
import { runLineMode } from '../src/tui/line-mode.js';
import { fileHistory, historyPath } from '../src/tui/history.js';
import { createServices } from '../src/tui/services.js';
import { noColorFromEnv } from '../src/tui/theme.js';
import type { AskRequest, IngestOutcome, IngestRequest, Services, SnapshotInfo } from '../src/tui/types.js';
import { readSnapshot, type SnapshotHeader } from '../src/snapshot/file.js';
import { shippedModel, tempDir } from './helpers.js';

afterEach(() => cleanup());

// ---------------------------------------------------------------- fakes and helpers

const NOW = Date.parse('2025-06-01T12:00:00Z');

function info(path: string, tokens = 12_345, updated = '2025-06-01T11:55:00Z'): SnapshotInfo {
  const header: SnapshotHeader = {
    format: 'ctx-snapshot',
    model: { name: 'ctx-small', model_id: '1b498f1a6bff15ddb103091b3b4abc3a', memory: 'armt', d_model: 384, n_layers: 6, d_key: 384, seg_len: 512, state_size: 887040 },
    tokenizer_sha256: 'x',
    counts: { tokens, segments: 25, documents: 7, sources: 2 },
    created: '2025-06-01T10:00:00Z',
    updated,
  };
  return { path, bytes: 3_552_304, header };
}

interface Pending<R, T> {
  req: R;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/**
 * Services without a model: snapshots live in a map (a value that is an Error is a corrupt file), and every
 * ask/ingest waits until the test settles it, so the test sees the in-between states.
 */
function fakeServices(files: Record<string, SnapshotInfo | Error> = {}, trained = false) {
  const asks: Pending<AskRequest, { answers: { text: string; prob: number }[]; ms: number }>[] = [];
  const ingests: Pending<IngestRequest, IngestOutcome>[] = [];
  const opened: string[] = [];
  let loaded = false;
  const services: Services = {
    loadModel: async () => {
      loaded = true;
      return { name: 'ctx-small', id: '1b498f1a6bff15ddb103091b3b4abc3a', trained };
    },
    openSnapshot(path) {
      assert.ok(loaded, 'openSnapshot before loadModel');
      opened.push(path);
      const f = files[path];
      if (f instanceof Error) throw f;
      return f;
    },
    ask: (req) =>
      new Promise((resolve, reject) => {
        // Like the real decoder: aborting rejects with an AbortError.
        req.signal.addEventListener('abort', () => reject(new DOMException('answer cancelled', 'AbortError')));
        asks.push({ req, resolve, reject });
      }),
    ingest: (req) =>
      new Promise((resolve, reject) => {
        // Like runIngest: aborting saves what was folded and resolves as interrupted.
        req.signal.addEventListener('abort', () => {
          files[req.snapshotPath] = info(req.snapshotPath, 99);
          resolve({ snapshot: req.snapshotPath, interrupted: true, documents: 1, skipped: 0, tokens: 99, segments: 1, ms: 1500 });
        });
        ingests.push({ req, resolve, reject });
      }),
  };
  return { services, asks, ingests, opened, files };
}

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

/** Wait until the latest frame satisfies `ok`; fail with that frame when it never does. */
async function waitFor(frame: () => string | undefined, ok: (f: string) => boolean, what: string): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const f = strip(frame() ?? '');
    if (ok(f)) return f;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}; last frame:\n${strip(frame() ?? '')}`);
}

const has = (text: string) => (f: string) => f.includes(text);

/** Render at a given terminal width (ink-testing-library's stdout is 100 columns; Ink re-reads it on resize). */
function renderAt(tree: ReactElement, columns = 100) {
  const r = render(tree);
  Object.defineProperty(r.stdout, 'columns', { get: () => columns });
  r.stdout.emit('resize');
  return r;
}

/** Renders nothing; reports when Ink unmounts the tree (the app has exited). */
function ExitProbe({ onExit }: { onExit: () => void }) {
  useEffect(() => onExit, []);
  return null;
}

function session(opts: { files?: Record<string, SnapshotInfo | Error>; path?: string; columns?: number; noColor?: boolean; trained?: boolean } = {}) {
  const path = opts.path ?? '/proj/.ctx/memory.ctx';
  const fake = fakeServices(opts.files ?? { [path]: info(path) }, opts.trained);
  const state = { exited: false };
  const r = renderAt(
    <>
      <App services={fake.services} snapshotPath={path} noColor={opts.noColor} now={() => NOW} cwd="/proj" />
      <ExitProbe onExit={() => (state.exited = true)} />
    </>,
    opts.columns,
  );
  const frame = () => r.lastFrame();
  const type = async (text: string) => {
    r.stdin.write(text);
    await new Promise((res) => setTimeout(res, 5));
  };
  const enter = (text: string) => type(text).then(() => type('\r'));
  return { ...fake, r, frame, type, enter, state, wait: (ok: (f: string) => boolean, what: string) => waitFor(frame, ok, what) };
}

const UP = '\x1b[A';
const DOWN = '\x1b[B';
const ESC = '\x1b';
const CTRL_C = '\x03';

// ---------------------------------------------------------------- pure parts

test('parseLine: questions, commands, prefixes, quoted paths, and plain text as a path when there is no snapshot', () => {
  assert.deepEqual(parseLine('where is main?'), { kind: 'ask', question: 'where is main?' });
  assert.deepEqual(parseLine('  '), { kind: 'empty' });
  assert.deepEqual(parseLine('/ingest ./src "my docs/a.pdf"'), { kind: 'ingest', paths: ['./src', 'my docs/a.pdf'] });
  assert.deepEqual(parseLine('/snapshot other.ctx'), { kind: 'snapshot', path: 'other.ctx' });
  assert.deepEqual(parseLine('/INFO'), { kind: 'info' });
  assert.deepEqual(parseLine('/q'), { kind: 'quit' });
  assert.deepEqual(parseLine('/exit'), { kind: 'quit' });
  assert.equal(parseLine('/i').kind, 'error', '/i could be /ingest or /info');
  assert.equal(parseLine('/ingest').kind, 'error');
  assert.equal(parseLine('/snapshot a b').kind, 'error');
  assert.match((parseLine('/frobnicate') as { message: string }).message, /unknown command \/frobnicate/);
  assert.deepEqual(parseLine('./src', 'ingest'), { kind: 'ingest', paths: ['./src'] });
  assert.deepEqual(parseLine('/home/me/src', 'ingest'), { kind: 'ingest', paths: ['/home/me/src'] });
  assert.deepEqual(parseLine('/tmp', 'ingest'), { kind: 'ingest', paths: ['/tmp'] });
  assert.deepEqual(parseLine('/info', 'ingest'), { kind: 'info' });
  assert.equal(parseLine('./src', 'refuse').kind, 'error', 'an unusable snapshot is never replaced by typing a line');
  assert.equal(parseLine('/tmp', 'refuse').kind, 'error');
  assert.deepEqual(parseLine('/ingest ./src', 'refuse'), { kind: 'ingest', paths: ['./src'] });
  assert.equal(parseLine('/tmp').kind, 'error', 'with a snapshot, /word is a command');
  assert.deepEqual(parseLine('/etc/hosts holds what?'), { kind: 'ask', question: '/etc/hosts holds what?' });
  assert.deepEqual(splitArgs(`a 'b c' "d e" f`), ['a', 'b c', 'd e', 'f']);
});

test('editLine: typing, cursor, history with a kept draft, Ctrl-C clears then quits, pasted newline submits', () => {
  const typeIn = (s: LineState, t: string) => editLine(s, t, {}).state;
  let s = typeIn(emptyLine(['one', 'two']), 'draft');
  s = editLine(s, '', { upArrow: true }).state;
  assert.equal(s.value, 'two');
  s = editLine(s, '', { upArrow: true }).state;
  assert.equal(s.value, 'one');
  s = editLine(s, '', { upArrow: true }).state;
  assert.equal(s.value, 'one', 'stays at the oldest');
  s = editLine(s, '', { downArrow: true }).state;
  s = editLine(s, '', { downArrow: true }).state;
  assert.equal(s.value, 'draft');
  s = editLine(s, '', { leftArrow: true }).state;
  s = typeIn(s, 'X');
  assert.equal(s.value, 'drafXt');
  s = editLine(s, '', { delete: true }).state;
  assert.equal(s.value, 'draft');
  assert.equal(editLine(s, 'c', { ctrl: true }).state.value, '');
  assert.equal(editLine(s, 'c', { ctrl: true }).quit, undefined);
  assert.equal(editLine(emptyLine(), 'c', { ctrl: true }).quit, true);
  const pasted = editLine(emptyLine(), 'where is x?\r', {});
  assert.equal(pasted.submit, 'where is x?');
  assert.deepEqual(pasted.state.history, ['where is x?']);
});

test('formatting: tiny probabilities, ETA only when known, control characters made visible', () => {
  assert.equal(formatProb(0.6321), '63.2%');
  assert.equal(formatProb(1e-150), '<0.1%');
  const p = { documents: 1, skipped: 0, pages: 0, tokens: 500, segments: 1, elapsedMs: 1000, tokensPerSec: 100 };
  assert.equal(etaMs(p, { documents: 2, tokens: 1500 }), 10_000);
  assert.equal(etaMs(p, undefined), undefined);
  assert.equal(etaMs({ ...p, tokens: 2000 }, { documents: 2, tokens: 1500 }), undefined, 'past the estimate: unknown, not negative');
  assert.equal(displayText('a\tb\x1b[31mc\nd'), 'a  b\uFFFD[31mc\nd');
  assert.equal(noColorFromEnv({ NO_COLOR: '1' }), true);
  assert.equal(noColorFromEnv({ NO_COLOR: '' }), false);
  assert.equal(noColorFromEnv({}), false);
});

// ---------------------------------------------------------------- the app, with fakes

test('header shows the snapshot and an untrained model honestly, after a loading line', async () => {
  const fake = fakeServices({ '/p/m.ctx': info('/p/m.ctx') });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const load = fake.services.loadModel;
  fake.services.loadModel = () => gate.then(load);
  const r = render(<App services={fake.services} snapshotPath="/p/m.ctx" now={() => NOW} />);
  await waitFor(r.lastFrame, has('loading model…'), 'the loading line');
  release();
  const f = await waitFor(r.lastFrame, has('tokens folded'), 'the header');
  for (const text of ['/p/m.ctx', 'ctx-small 1b498f1a', 'untrained model', '3.4 MiB', '12K tokens folded', '7 documents from 2 sources', 'updated 5 min ago']) {
    assert.ok(f.includes(text), `header lacks "${text}":\n${f}`);
  }
  assert.ok(!f.includes('loading model'), 'the loading line goes away');
  assert.match(f, /ask ›/);
});

test('a trained model is not called untrained', async () => {
  const s = session({ trained: true });
  const f = await s.wait(has('tokens folded'), 'the header');
  assert.ok(!f.includes('untrained'), f);
});

test('a question streams its partial answer, then shows confidence and the alternatives', async () => {
  const s = session();
  await s.wait(has('ask ›'), 'the prompt');
  await s.enter('where is parseConfig defined?');
  await s.wait(() => s.asks.length === 1, 'the ask call');
  assert.equal(s.asks[0].req.question, 'where is parseConfig defined?');
  assert.equal(s.asks[0].req.snapshotPath, '/proj/.ctx/memory.ctx');
  await s.wait(has('thinking…'), 'the waiting line');
  s.asks[0].req.onStep('src/con');
  await s.wait(has('→ src/con▌'), 'the first partial answer');
  s.asks[0].req.onStep('src/config.ts');
  let f = await s.wait(has('→ src/config.ts▌'), 'the next partial answer');
  assert.ok(f.includes('Esc or Ctrl-C cancels'), 'says how to cancel');
  assert.ok(!f.includes('ask ›'), 'no question box while answering');
  s.asks[0].resolve({ answers: [{ text: 'src/config.ts', prob: 0.632 }, { text: 'src/cfg.ts', prob: 0.121 }, { text: 'lib/x.ts', prob: 1e-9 }], ms: 420 });
  f = await s.wait(has('confidence'), 'the final answer');
  assert.match(f, /\? where is parseConfig defined\?\n→ src\/config\.ts\n {2}confidence 63\.2% · 0\.4 s\n {2}or: src\/cfg\.ts \(12\.1%\)\n {2}or: lib\/x\.ts \(<0\.1%\)/);
  assert.ok(!f.includes('▌'), 'the streaming cursor is gone');
  assert.match(f, /ask ›/);
});

for (const [name, key] of [['Esc', ESC], ['Ctrl-C', CTRL_C]] as const) {
  test(`${name} cancels an answer without leaving the session`, async () => {
    const s = session();
    await s.wait(has('ask ›'), 'the prompt');
    await s.enter('a slow question');
    await s.wait(() => s.asks.length === 1, 'the ask call');
    s.asks[0].req.onStep('half an');
    await s.wait(has('half an▌'), 'the partial answer');
    await s.type(key);
    await s.wait(() => s.asks[0].req.signal.aborted, 'the abort signal');
    const f = await s.wait(has('cancelled (had: half an)'), 'the cancelled note');
    assert.match(f, /ask ›/, 'back at the question box');
    assert.equal(s.state.exited, false);
    // Still alive: the next command works.
    await s.enter('/help');
    await s.wait(has('/snapshot PATH'), 'the help');
    assert.equal(s.state.exited, false);
  });
}

test('up/down walk the history of questions and commands, keeping the line being typed', async () => {
  const s = session();
  await s.wait(has('ask ›'), 'the prompt');
  for (const q of ['first question', 'second question']) {
    await s.enter(q);
    await s.wait(() => s.asks.length > 0 && s.asks.at(-1)!.req.question === q, q);
    s.asks.at(-1)!.resolve({ answers: [{ text: 'ans', prob: 0.5 }], ms: 1 });
    await s.wait(has('ask ›'), 'the prompt again');
  }
  await s.enter('/help');
  await s.type('dra');
  const prompt = async (value: string) => s.wait((f) => new RegExp(`ask › ${value} ?$`, 'm').test(f), `prompt "${value}"`);
  await prompt('dra');
  await s.type(UP);
  await prompt('/help');
  await s.type(UP);
  await prompt('second question');
  await s.type(UP);
  await prompt('first question');
  await s.type(UP);
  await prompt('first question');
  await s.type(DOWN);
  await prompt('second question');
  await s.type(DOWN);
  await s.type(DOWN);
  await prompt('dra');
  // Enter on a recalled line asks it again.
  await s.type(UP);
  await s.type(UP);
  await s.type('\r');
  await s.wait(() => s.asks.length === 3, 'the repeated ask');
  assert.equal(s.asks[2].req.question, 'second question');
});

test('history across sessions: loaded into the question box, each entered line added once', async () => {
  const added: string[] = [];
  const path = '/proj/.ctx/memory.ctx';
  const fake = fakeServices({ [path]: info(path) });
  const r = render(<App services={fake.services} snapshotPath={path} now={() => NOW} cwd="/proj"
    history={{ load: () => ['from yesterday', 'last one'], add: (l) => added.push(l) }} />);
  const frame = () => r.lastFrame();
  const type = async (t: string) => { r.stdin.write(t); await new Promise((res) => setTimeout(res, 5)); };
  await waitFor(frame, has('ask ›'), 'the prompt');
  await type(UP);
  await waitFor(frame, (f) => /ask › last one ?$/m.test(f), 'the last line of the earlier session');
  await type(UP);
  await waitFor(frame, (f) => /ask › from yesterday ?$/m.test(f), 'the one before');
  await type('\r');
  await waitFor(frame, () => fake.asks.length === 1, 'the recalled question asked');
  assert.equal(fake.asks[0].req.question, 'from yesterday');
  fake.asks[0].resolve({ answers: [{ text: 'ans', prob: 0.5 }], ms: 1 });
  await waitFor(frame, has('ask ›'), 'the prompt again');
  await type('/help\r');
  await type('\r'); // a blank line is not history
  await waitFor(frame, () => added.length === 2, 'two lines added');
  assert.deepEqual(added, ['from yesterday', '/help']);
});

test('fileHistory: the last lines of <snapshot>.history, trimmed when it grows, silent when it cannot write', () => {
  const dir = tempDir();
  const path = historyPath(join(dir, '.ctx', 'memory.ctx'));
  assert.equal(path, join(dir, '.ctx', 'memory.ctx.history'));
  const h = fileHistory(path, 3);
  assert.deepEqual(h.load(), [], 'no file yet');
  for (const q of ['a?', ' ', 'b?', 'c?', 'd?', 'e?', 'f?', 'g?']) h.add(q);
  assert.deepEqual(h.load(), ['e?', 'f?', 'g?']);
  assert.ok(readFileSync(path, 'utf8').split('\n').length <= 2 * 3 + 1, 'rewritten once past twice the cap');
  writeFileSync(join(dir, 'plain-file'), '');
  const nowhere = fileHistory(join(dir, 'plain-file', 'sub', 'x.history'));
  assert.doesNotThrow(() => nowhere.add('q'));
  assert.deepEqual(nowhere.load(), []);
});

test('/info, /help, unknown commands, and /quit', async () => {
  const s = session();
  await s.wait(has('ask ›'), 'the prompt');
  await s.enter('/info');
  let f = await s.wait(has('shape'), 'the info rows');
  assert.match(f, /snapshot {2}\/proj\/\.ctx\/memory\.ctx/);
  assert.match(f, /folded {4}12K tokens in 25 segments, 7 documents from 2 sources/);
  assert.match(f, /model {5}ctx-small 1b498f1a6bff \(untrained\)/);
  await s.enter('/help');
  f = await s.wait(has('/ingest PATH'), 'the help');
  for (const c of ['/info', '/snapshot PATH', '/help', '/quit']) assert.ok(f.includes(c), `help lacks ${c}`);
  await s.enter('/bogus');
  await s.wait(has('✗ unknown command /bogus'), 'the error');
  assert.equal(s.state.exited, false);
  await s.enter('/quit');
  await s.wait(() => s.state.exited, 'the exit');
});

test('Ctrl-C on an empty line leaves; on a non-empty line it only clears it', async () => {
  const s = session();
  await s.wait(has('ask ›'), 'the prompt');
  await s.type('half typed');
  await s.wait(has('ask › half typed'), 'the typed text');
  await s.type(CTRL_C);
  await s.wait((f) => /ask › ?$/m.test(f), 'the cleared line');
  assert.equal(s.state.exited, false);
  await s.type(CTRL_C);
  await s.wait(() => s.state.exited, 'the exit');
});

test('/snapshot switches snapshots: to a good one, a missing one (offers ingest), a corrupt one (says why)', async () => {
  const s = session({
    files: {
      '/proj/.ctx/memory.ctx': info('/proj/.ctx/memory.ctx'),
      '/proj/other.ctx': info('/proj/other.ctx', 777),
      '/proj/bad.ctx': new Error('/proj/bad.ctx is corrupted (checksum mismatch)'),
    },
  });
  await s.wait(has('ask ›'), 'the prompt');
  await s.enter('/snapshot other.ctx');
  let f = await s.wait(has('777 tokens folded'), 'the other snapshot in the header');
  assert.ok(f.includes('snapshot is now /proj/other.ctx'), 'relative to the session folder');
  assert.ok(s.opened.includes('/proj/other.ctx'));
  await s.enter('/snapshot new.ctx');
  f = await s.wait(has('No snapshot yet.'), 'the empty screen');
  assert.match(f, /path ›/, 'the box now asks for a path');
  assert.ok(f.includes('no snapshot yet at /proj/new.ctx'), 'says so in the transcript');
  await s.enter('/snapshot bad.ctx');
  f = await s.wait(has('checksum mismatch'), 'the corrupt snapshot message');
  assert.ok(f.includes('/ingest PATH replaces this file'), 'says how to replace it');
  // A line typed now must not overwrite the corrupt file (it could be anything the user pointed at).
  await s.enter('some question');
  await s.wait(has('✗ this snapshot cannot be used'), 'the refusal');
  assert.equal(s.ingests.length, 0);
  assert.equal(s.asks.length, 0);
  await s.enter('/ingest src');
  await s.wait(() => s.ingests.length === 1, 'the explicit ingest');
  assert.equal(s.ingests[0].req.append, false, 'replaces, does not append to a corrupt file');
  assert.equal(s.ingests[0].req.snapshotPath, '/proj/bad.ctx');
  assert.equal(s.state.exited, false);
});

test('no snapshot yet: a typed path is ingested with live progress and ETA, then questions go to the new snapshot', async () => {
  const path = '/proj/.ctx/memory.ctx';
  const s = session({ files: {}, path });
  let f = await s.wait(has('No snapshot yet.'), 'the empty screen');
  assert.ok(f.includes('Type a file or folder'));
  assert.match(f, /path ›/);
  await s.enter('./src');
  await s.wait(() => s.ingests.length === 1, 'the ingest call');
  const req = s.ingests[0].req;
  assert.deepEqual(req.paths, ['./src']);
  assert.equal(req.append, false, 'nothing to append to');
  assert.equal(req.snapshotPath, path);
  await s.wait(has('listing sources…'), 'the start of the progress view');
  req.onProgress({ documents: 3, skipped: 1, pages: 0, tokens: 250, segments: 1, elapsedMs: 2000, tokensPerSec: 125, path: 'src/engine/decode.ts' });
  f = await s.wait(has('125 tok/s'), 'the progress');
  assert.ok(f.includes('ETA unknown'), 'no ETA before the estimate');
  req.onEstimate?.({ documents: 5, tokens: 1000 });
  f = await s.wait(has('ETA 6s'), 'the ETA');
  for (const text of ['Ingesting ./src', '3/5 documents', '1 skipped', '250 tokens', '2s elapsed', '25%', 'src/engine/decode.ts']) {
    assert.ok(f.includes(text), `progress lacks "${text}":\n${f}`);
  }
  s.files[path] = info(path, 1000);
  s.ingests[0].resolve({ snapshot: path, interrupted: false, documents: 4, skipped: 1, tokens: 1000, segments: 2, ms: 8000 });
  f = await s.wait(has('✓ ingested ./src'), 'the summary');
  assert.ok(f.includes('4 documents (1 skipped), 1.0K tokens in 2 segments, 8s'), f);
  f = await s.wait(has('1.0K tokens folded'), 'the header after ingest');
  assert.match(f, /ask ›/, 'now asking questions');
  await s.enter('and now?');
  await s.wait(() => s.asks.length === 1, 'the ask');
  assert.equal(s.asks[0].req.snapshotPath, path);
});

test('cancelling an ingest aborts it, says the snapshot is unchanged, and keeps the session', async () => {
  const s = session({ files: {} });
  await s.wait(has('path ›'), 'the prompt');
  await s.enter('big/');
  await s.wait(() => s.ingests.length === 1, 'the ingest');
  s.ingests[0].req.onProgress({ documents: 1, skipped: 0, pages: 0, tokens: 99, segments: 1, elapsedMs: 1000, tokensPerSec: 99 });
  await s.wait(has('99 tokens'), 'the progress');
  await s.type(ESC);
  await s.wait(() => s.ingests[0].req.signal.aborted, 'the abort signal');
  const f = await s.wait(has('■ interrupted after'), 'the interrupted summary');
  assert.ok(f.includes('99 tokens folded'), 'the header shows the saved snapshot');
  assert.equal(s.state.exited, false);
});

test('cancelled before the first segment: says the snapshot is unchanged, not that something was saved', async () => {
  const s = session();
  await s.wait(has('ask ›'), 'the prompt');
  await s.enter('/ingest huge/');
  await s.wait(() => s.ingests.length === 1, 'the ingest');
  s.ingests[0].req.onEstimate?.({ documents: 40_000, tokens: 9e7 });
  await s.wait(has('found 40K documents (~90M tokens), reading…'), 'the listing result');
  s.ingests[0].resolve({ snapshot: s.ingests[0].req.snapshotPath, interrupted: true, documents: 0, skipped: 0, tokens: 0, segments: 0, ms: 10 });
  const f = await s.wait(has('■ cancelled before anything was folded from huge/: the snapshot is unchanged'), 'the note');
  assert.ok(!f.includes('■ interrupted after'), f);
});

test('/ingest appends when a snapshot is open; a failed ingest shows its error', async () => {
  const s = session();
  await s.wait(has('ask ›'), 'the prompt');
  await s.enter('/ingest docs "my notes.md"');
  await s.wait(() => s.ingests.length === 1, 'the ingest');
  assert.equal(s.ingests[0].req.append, true);
  assert.deepEqual(s.ingests[0].req.paths, ['docs', 'my notes.md']);
  await s.wait(has('Appending docs my notes.md'), 'the progress title');
  s.ingests[0].reject(new Error('no such file or folder: docs'));
  await s.wait(has('✗ no such file or folder: docs'), 'the error');
  await s.wait(has('ask ›'), 'the prompt again');
});

test('a failing model load ends the app with its error', async () => {
  const fake = fakeServices();
  fake.services.loadModel = async () => {
    throw new Error('model folder /x is missing fold.onnx');
  };
  const state = { exited: false };
  render(
    <>
      <App services={fake.services} snapshotPath="/x.ctx" />
      <ExitProbe onExit={() => (state.exited = true)} />
    </>,
  );
  await waitFor(() => '', () => state.exited, 'the exit');
});

// ---------------------------------------------------------------- widths and colours

const LONG_PATH = '/home/someone/projects/a-rather-long-project-name/with/nested/folders/.ctx/memory.ctx';
const LONG_ANSWER = 'src/' + 'very/'.repeat(30) + 'deep.ts and then some words that go on and on past any terminal width';

async function busySession(columns: number, noColor?: boolean) {
  const s = session({ files: { [LONG_PATH]: info(LONG_PATH) }, path: LONG_PATH, columns, noColor });
  await s.wait(has('tokens folded'), 'the header');
  await s.enter('where is the deepest file of them all, in this long repository?');
  await s.wait(() => s.asks.length === 1, 'the ask');
  s.asks[0].resolve({ answers: [{ text: LONG_ANSWER, prob: 0.5 }, { text: 'b', prob: 0.2 }], ms: 10 });
  await s.wait(has('confidence'), 'the answer');
  await s.enter('/info');
  await s.wait(has('shape'), 'the info');
  await s.enter('/help');
  await s.wait(has('/snapshot PATH'), 'the help');
  await s.enter('/bogus');
  return { s, f: await s.wait(has('✗ unknown'), 'the error') };
}

for (const columns of [40, 120]) {
  test(`at ${columns} columns nothing runs past the edge and the header stays readable`, async () => {
    const { f } = await busySession(columns);
    const lines = f.split('\n');
    const tooWide = lines.filter((l) => [...l].length > columns);
    assert.deepEqual(tooWide, [], `lines wider than ${columns}`);
    assert.ok(f.includes('deep.ts'), 'long answers wrap, they are not cut');
    const header = lines.filter((l) => l.startsWith('│'));
    assert.ok(header.some((l) => l.includes('updated 5 min ago')), 'header facts present');
    const pathLine = header.find((l) => l.includes('ctx '))!;
    if (columns === 40) {
      assert.match(pathLine, /^│ ctx \/home\/\S*…\S*memory\.ctx +│$/, 'long path truncated in the middle, on one line');
      assert.ok(header[1].includes('model ctx-small'), 'no blank line after the path');
      assert.ok(!header.some((l) => l.includes('tokens folded') && l.includes('updated')), 'facts wrap onto their own lines');
      assert.ok(lines.some((l) => l.trim() === '/snapshot PATH'), 'help rows stack label above text');
    } else {
      assert.ok(pathLine.includes(LONG_PATH), 'the whole path fits');
      assert.ok(header.some((l) => l.includes('model ctx-small') && l.includes('tokens folded')), 'facts share a line');
      assert.ok(lines.some((l) => /^\/snapshot PATH +switch to another snapshot file/.test(l)), 'help rows side by side');
    }
  });
}

/** SGR sequences that set a foreground or background colour (bold, inverse and resets are not colours). */
const COLOR_SGR = /\x1b\[(?:\d+;)*(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;\d+)*m/;

test('NO_COLOR: colours when allowed, not a single colour code when set', async () => {
  const level = chalk.level;
  chalk.level = 3; // the test runner's stdout is no terminal; pretend it is one that shows colours
  try {
    const coloured = await busySession(100);
    assert.match(coloured.s.frame()!, COLOR_SGR, 'without NO_COLOR the UI uses colours');
    cleanup();
    const plain = await busySession(100, true);
    const frames = plain.s.r.frames.join('');
    assert.doesNotMatch(frames, COLOR_SGR, 'a colour code was written under NO_COLOR');
  } finally {
    chalk.level = level;
  }
});

// ---------------------------------------------------------------- line mode

async function lineMode(input: string, files: Record<string, SnapshotInfo | Error>) {
  const fake = fakeServices(files);
  // Settle every ask and ingest as soon as it comes (a script does not wait for anyone).
  fake.services.ask = async (req) => ({ answers: [{ text: `answer to ${req.question}`, prob: 0.42 }, { text: 'other', prob: 0.1 }], ms: 1200 });
  fake.services.ingest = async (req) => {
    req.onEstimate?.({ documents: 2, tokens: 400 });
    req.onProgress({ documents: 1, skipped: 0, pages: 0, tokens: 100, segments: 1, elapsedMs: 3000, tokensPerSec: 50 });
    files[req.snapshotPath] = info(req.snapshotPath, 100);
    return { snapshot: req.snapshotPath, interrupted: false, documents: 2, skipped: 0, tokens: 100, segments: 1, ms: 3000 };
  };
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const inp = new PassThrough();
  inp.end(input);
  await runLineMode({ services: fake.services, snapshotPath: '/p/.ctx/memory.ctx', input: inp, output: out, cwd: '/p' });
  return text;
}

test('line mode: prompt, answers with confidence and alternatives, commands, no escape codes', async () => {
  const out = await lineMode('where is main?\n/info\n/help\n/quit\nnever asked\n', { '/p/.ctx/memory.ctx': info('/p/.ctx/memory.ctx') });
  assert.ok(out.includes('untrained model'), out);
  assert.ok(out.includes('12K tokens folded'), out);
  assert.ok(out.includes('ctx> '), 'prompts');
  assert.ok(out.includes('ctx> where is main?\n→ answer to where is main?\n  confidence 42.0% · 1.2 s\n  or: other (10.0%)'), out);
  assert.ok(out.includes('shape     6 layers'), out);
  assert.ok(out.includes('/snapshot PATH'), out);
  assert.ok(!out.includes('never asked'), '/quit stops reading');
  assert.ok(!out.includes('\x1b'), 'plain text only');
});

test('line mode: a notice of how the question was answered is shown above the answer', async () => {
  const fake = fakeServices({ '/p/.ctx/memory.ctx': info('/p/.ctx/memory.ctx') });
  fake.services.ask = async () => ({ answers: [{ text: 'src/a.ts', prob: 0.5 }], ms: 10, notice: 'answering by free decoding: no manifest' });
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const inp = new PassThrough();
  inp.end('where is main?\n');
  await runLineMode({ services: fake.services, snapshotPath: '/p/.ctx/memory.ctx', input: inp, output: out, cwd: '/p' });
  assert.ok(text.includes('ctx> where is main?\n  answering by free decoding: no manifest\n→ src/a.ts\n'), text);
});

test('line mode without a snapshot: a typed path is ingested, then questions are answered', async () => {
  const out = await lineMode('./src\nwhat now?\n', {});
  assert.ok(out.includes('no snapshot yet'), out);
  assert.ok(out.includes('ingesting ./src → /p/.ctx/memory.ctx'), out);
  assert.ok(out.includes('100 tokens · 50 tok/s · 3s elapsed · ETA 6s'), out);
  assert.ok(out.includes('ingested: 2 documents, 100 tokens in 1 segment, 3s'), out);
  assert.ok(out.includes('→ answer to what now?'), out);
});

// ---------------------------------------------------------------- the real model

test('real model: ingest a folder from the empty screen, then ask; the answer is streamed and scored', async () => {
  const model = await shippedModel();
  const dir = tempDir('ctx-tui-');
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'config.js'), 'export function parseConfig(text) {\n  return JSON.parse(text);\n}\n');
  writeFileSync(join(dir, 'notes.md'), '# Notes\n\nThe pass key is 4721.\n');
  const snap = join(dir, '.ctx', 'memory.ctx');
  const services = createServices({ model, maxTokens: 12 });
  const r = render(<App services={services} snapshotPath={snap} />);
  await waitFor(r.lastFrame, has('No snapshot yet.'), 'the empty screen');
  const says = strip(r.lastFrame()!).includes('untrained model');
  assert.equal(says, !model.config.trained, 'the header says "untrained model" exactly when the shipped model is untrained');
  r.stdin.write(dir);
  await new Promise((res) => setTimeout(res, 5));
  r.stdin.write('\r');
  let f = await waitFor(r.lastFrame, has('✓ ingested'), 'the ingest summary');
  assert.match(f, /2 documents, \d+ tokens in 1 segment/);
  assert.ok(existsSync(snap), 'the snapshot was written');
  const { header } = readSnapshot(snap);
  assert.equal(header.counts.documents, 2);
  assert.ok(f.includes(`${header.counts.tokens} tokens folded`), 'the header shows what the file holds');
  await waitFor(r.lastFrame, has('ask ›'), 'the question box');
  r.stdin.write('what is the pass key?');
  await new Promise((res) => setTimeout(res, 5));
  r.stdin.write('\r');
  f = await waitFor(r.lastFrame, has('confidence'), 'the answer');
  assert.match(f, /\? what is the pass key\?\n→ .+\n(?:.*\n)*? {2}confidence (?:<0\.1|\d+\.\d)% · \d+\.\d s\n {2}or: /);
  assert.ok(r.frames.some((fr) => strip(fr).includes('▌')), 'partial answers were shown while decoding');
  // A file question is answered as `ctx ask` answers it (src/run/ask.ts): the snapshot's paths, ranked.
  r.stdin.write('where is parseConfig defined?');
  await new Promise((res) => setTimeout(res, 5));
  r.stdin.write('\r');
  const ranked = /\? where is parseConfig defined\?\n→ (?:src\/config\.js|notes\.md)\n {2}confidence \d+\.\d% · \d+\.\d s\n {2}or: (?:src\/config\.js|notes\.md) \(/;
  await waitFor(r.lastFrame, (fr) => ranked.test(fr), 'the paths ranked');
});

test('real model: a missing path is refused instead of leaving an empty snapshot', async () => {
  const model = await shippedModel();
  const dir = tempDir('ctx-tui-');
  const snap = join(dir, 'm.ctx');
  const services = createServices({ model });
  await services.loadModel();
  assert.equal(services.openSnapshot(snap), undefined);
  const ctl = new AbortController();
  await assert.rejects(
    services.ingest({ paths: [join(dir, 'nope')], snapshotPath: snap, append: false, signal: ctl.signal, onProgress: () => {} }),
    /no such file or folder/,
  );
  assert.equal(existsSync(snap), false);
});

test('notices of the ingest flow (resuming an interrupted ingest) appear in the transcript', async () => {
  const s = session({ files: {} });
  await s.wait(has('path ›'), 'the prompt');
  await s.enter('big/');
  await s.wait(() => s.ingests.length === 1, 'the ingest');
  s.ingests[0].req.onNotice?.('resuming: 3 documents already folded');
  await s.wait(has('resuming: 3 documents already folded'), 'the notice');
  s.ingests[0].resolve({ snapshot: s.ingests[0].req.snapshotPath, interrupted: false, documents: 4, skipped: 0, tokens: 900, segments: 2, ms: 10 });
  await s.wait(has('✓ ingested'), 'the summary');
});
