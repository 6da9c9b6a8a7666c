/**
 * The ingest flow with the real shipped model, on small inputs: the snapshot's size does not depend on the
 * input; an interrupted ingest never touches the old snapshot and resumes to exactly the state an
 * uninterrupted one reaches; --append skips unchanged files; --follow folds appended lines and saves on
 * Ctrl-C; a second ingest into a snapshot being written is refused; the CLI's user errors and --json. Every test folds a handful of segments (about 0.1-0.3 s each).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifest } from '../src/ingest/index.js';
import {
  partialPath, pieces, PIECE_CHARS, resumeRecordPath, runIngest, type CheckpointInfo, type IngestRunOptions, type ResumeRecord,
} from '../src/run/ingest.js';
import { readSnapshot } from '../src/snapshot/file.js';
import { lockPath } from '../src/snapshot/lock.js';
import { snapshotFiles } from '../src/snapshot/path.js';
import { CtxError } from '../src/errors.js';
import { CLI, ROOT, shippedModel, tempDir } from './helpers.js';

const MIXED_PDF = join(ROOT, 'fixtures', 'pdf', 'mixed.pdf'); // two pages of text: two parts

function prose(label: string, lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`${label} line ${i}: the quick brown fox jumps over the lazy dog ${i * 7}.`);
  return out.join('\n') + '\n';
}

async function ingest(o: Omit<IngestRunOptions, 'model'>) {
  return runIngest({ model: await shippedModel(), ...o });
}

/** Options that abort the ingest right after the first checkpoint `when` accepts (so at a checkpoint
 *  boundary, which makes resuming deterministic). */
function abortAt(when: (c: CheckpointInfo) => boolean): Pick<IngestRunOptions, 'signal' | 'onCheckpoint'> {
  const ac = new AbortController();
  return { signal: ac.signal, onCheckpoint: (c) => { if (!ac.signal.aborted && when(c)) ac.abort(); } };
}

test('the snapshot has the same size for 1 KB and 200 KB of input', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'small.txt'), prose('small', 12).slice(0, 1024));
  // 200 KB of ruled table text: long runs of one character are cheap to fold (about 13 characters a token),
  // so this stays near 30 segments.
  const rule = `+${'-'.repeat(62)}+\n`;
  writeFileSync(join(dir, 'large.txt'), (rule + `| row ${'='.repeat(56)} |\n`).repeat(Math.ceil(200 * 1024 / (2 * rule.length))).slice(0, 200 * 1024));
  const a = await ingest({ paths: [join(dir, 'small.txt')], snapshotPath: join(dir, 'a.ctx') });
  const b = await ingest({ paths: [join(dir, 'large.txt')], snapshotPath: join(dir, 'b.ctx') });
  assert.ok(b.segments > 10 * a.segments, `${b.segments} segments for 200 KB, ${a.segments} for 1 KB`);
  assert.equal(statSync(join(dir, 'a.ctx')).size, statSync(join(dir, 'b.ctx')).size);
  assert.equal(a.snapshotBytes, b.snapshotBytes);
});

test('an interrupted ingest leaves the old snapshot byte-identical, and other paths discard its partial', async () => {
  const dir = tempDir();
  const snapshotPath = join(dir, 'memory.ctx');
  for (const n of ['old', 'b', 'c']) writeFileSync(join(dir, `${n}.txt`), prose(n, 20));
  await ingest({ paths: [join(dir, 'old.txt')], snapshotPath });
  const before = readFileSync(snapshotPath);
  const manifestBefore = readFileSync(`${snapshotPath}.manifest.json`);

  const s = await ingest({ paths: [join(dir, 'b.txt'), join(dir, 'c.txt')], snapshotPath, checkpointMs: 0, ...abortAt(() => true) });
  assert.equal(s.interrupted, true);
  assert.ok(readFileSync(snapshotPath).equals(before), 'the old snapshot is byte-identical');
  assert.ok(readFileSync(`${snapshotPath}.manifest.json`).equals(manifestBefore), 'and so is its manifest');
  assert.equal(s.partial, partialPath(snapshotPath));
  assert.ok(existsSync(partialPath(snapshotPath)) && existsSync(resumeRecordPath(snapshotPath)));
  const record = JSON.parse(readFileSync(resumeRecordPath(snapshotPath), 'utf8')) as ResumeRecord;
  assert.deepEqual(record.paths, [join(dir, 'b.txt'), join(dir, 'c.txt')]);
  assert.deepEqual(record.counts, readSnapshot(partialPath(snapshotPath)).header.counts);

  const notices: string[] = [];
  const t = await ingest({ paths: [join(dir, 'c.txt')], snapshotPath, onNotice: (l) => notices.push(l) });
  assert.equal(t.interrupted, false);
  assert.equal(t.resumed, 0);
  assert.match(notices.join('\n'), /discarding the interrupted ingest .*\(it was of .*b\.txt/);
  assert.ok(!existsSync(partialPath(snapshotPath)) && !existsSync(resumeRecordPath(snapshotPath)));
  assert.equal(readSnapshot(snapshotPath).header.counts.documents, 1);
});

test('pieces: a part cut after newlines, before lines that do not start with a space, about 4 KiB each', () => {
  const text = 'x'.repeat(100) + '\n' + ('line of text\n    indented\n').repeat(1000) + 'y'.repeat(10_000) + '\nend';
  const ps = pieces(text);
  assert.equal(ps.join(''), text);
  assert.ok(ps.length > 5);
  for (const p of ps.slice(0, -1)) assert.ok(p.endsWith('\n'));
  for (const p of ps.slice(1)) assert.match(p, /^\S/);
  assert.ok(ps.slice(0, -2).every((p) => p.length <= PIECE_CHARS), 'only a longer line makes a longer piece');
  assert.deepEqual(pieces('short\n'), ['short\n']);
});

test('resuming after interruptions at checkpoints gives exactly the uninterrupted state', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'a.txt'), prose('alpha', 15));
  copyFileSync(MIXED_PDF, join(dir, 'mixed.pdf'));
  // A log of three pieces (lines of '=' fold cheaply): the second interruption is in its middle.
  const logLines: string[] = [];
  for (let i = 0; i < 130; i++) logLines.push(`2026-01-01T00:${String(i % 60).padStart(2, '0')}:00Z INFO ${'='.repeat(70)}\n`);
  writeFileSync(join(dir, 'app.log'), logLines.join(''));
  writeFileSync(join(dir, 'z.txt'), prose('omega', 15));
  const paths = [join(dir, 'a.txt'), join(dir, 'mixed.pdf'), join(dir, 'app.log'), join(dir, 'z.txt')];
  // No checkpoint in the uninterrupted run; one after every part in the interrupted ones: where checkpoints fall
  // must not change where segments are cut (the open segment is kept in the resume record, not folded early).
  const whole = await ingest({ paths, snapshotPath: join(dir, 'whole.ctx'), checkpointMs: 3_600_000 });

  const snapshotPath = join(dir, 'resumed.ctx');
  // Interrupted inside the PDF, after its first page: the resume must skip a.txt and that page.
  const first = await ingest({
    paths, snapshotPath, checkpointMs: 0,
    ...abortAt((c) => c.current?.absPath === join(dir, 'mixed.pdf') && c.current.parts === 1),
  });
  assert.equal(first.interrupted, true);
  assert.ok(!existsSync(snapshotPath), 'no snapshot until the ingest completes');
  const kept = JSON.parse(readFileSync(resumeRecordPath(snapshotPath), 'utf8')) as ResumeRecord;
  assert.ok(kept.open && kept.open.length > 0, 'the open segment is kept in the record, not folded early');
  const notices: string[] = [];
  const second = await ingest({
    paths, snapshotPath, checkpointMs: 0, onNotice: (l) => notices.push(l),
    ...abortAt((c) => c.current?.absPath === join(dir, 'app.log') && c.current.parts === 2),
  });
  assert.equal(second.interrupted, true);
  assert.equal(second.resumed, 1);
  assert.match(notices.join('\n'), /^resuming: 1 document already folded, and 1 part of .*mixed\.pdf$/m);
  const third = await ingest({ paths, snapshotPath, checkpointMs: 0, onNotice: (l) => notices.push(l) });
  assert.equal(third.interrupted, false);
  assert.equal(third.resumed, 2);
  assert.match(notices.join('\n'), /^resuming: 2 documents already folded, and 2 parts of .*app\.log$/m);
  assert.equal(first.segments + second.segments + third.segments, whole.segments);

  const a = readSnapshot(join(dir, 'whole.ctx'));
  const b = readSnapshot(snapshotPath);
  assert.deepEqual(b.header.counts, a.header.counts);
  assert.ok(Buffer.from(b.state.buffer).equals(Buffer.from(a.state.buffer)), 'the memory states are identical');
  assert.ok(!existsSync(partialPath(snapshotPath)) && !existsSync(resumeRecordPath(snapshotPath)));
  assert.deepEqual(Object.keys((await loadManifest(snapshotPath)).sources), [...paths].sort());
});

test('--append skips files unchanged since the last ingest and folds changed ones', async () => {
  const dir = tempDir();
  const src = join(dir, 'src');
  const snapshotPath = join(dir, 'memory.ctx');
  mkdirSync(src);
  writeFileSync(join(src, 'a.txt'), prose('a', 8));
  writeFileSync(join(src, 'b.txt'), prose('b', 8));
  const first = await ingest({ paths: [src], snapshotPath });
  assert.deepEqual(first.documents, { text: 2 });

  writeFileSync(join(src, 'b.txt'), prose('b changed', 9));
  utimesSync(join(src, 'b.txt'), new Date(), new Date(Date.now() + 10_000));
  writeFileSync(join(src, 'c.txt'), prose('c', 8));
  const again = await ingest({ paths: [src], snapshotPath, append: true });
  assert.equal(again.interrupted, false);
  assert.deepEqual(again.documents, { text: 2 });
  assert.deepEqual(again.skipped, [{ path: 'a.txt', reason: 'unchanged since last ingest' }]);
  assert.equal(again.total.documents, 4);
  assert.equal(readSnapshot(snapshotPath).header.counts.documents, 4);
  const m = await loadManifest(snapshotPath);
  assert.deepEqual(Object.keys(m.sources), ['a.txt', 'b.txt', 'c.txt'].map((n) => join(src, n)));
  assert.equal(m.sources[join(src, 'b.txt')].size, statSync(join(src, 'b.txt')).size);
});

test('--append folds only the lines a log appended since it was folded; a log rewritten since, whole', async () => {
  const dir = tempDir();
  const log = join(dir, 'app.log');
  const snapshotPath = join(dir, 'memory.ctx');
  const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) =>
    `2026-01-01T00:${String(Math.floor((from + i) / 60) % 60).padStart(2, '0')}:${String((from + i) % 60).padStart(2, '0')}Z INFO request ${from + i} served in ${(from + i) * 3} ms\n`).join('');
  writeFileSync(log, lines(0, 200));
  const first = await ingest({ paths: [log], snapshotPath });
  const size0 = statSync(log).size;
  appendFileSync(log, lines(200, 20));
  const notices: string[] = [];
  const grown = await ingest({ paths: [log], snapshotPath, append: true, onNotice: (l) => notices.push(l) });
  assert.ok(notices.includes(`${log} grew since last ingest: folding only the ${statSync(log).size - size0} bytes appended`), notices.join('; '));
  assert.ok(grown.tokens > 0 && grown.tokens < first.tokens / 5, `${grown.tokens} tokens for 20 new lines, ${first.tokens} for 200`);
  assert.equal(grown.total.documents, 2);
  assert.equal((await loadManifest(snapshotPath)).sources[log].size, statSync(log).size);
  // Rewritten (a new log under the same name, longer than the old one): its old end is gone, so all of it is new.
  writeFileSync(log, lines(5000, 230));
  const rewritten = await ingest({ paths: [log], snapshotPath, append: true });
  assert.ok(rewritten.tokens > first.tokens, `${rewritten.tokens} tokens for a rewritten log of 230 lines`);
});

test('--follow folds appended lines, saves the snapshot periodically and when stopped', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const log = join(dir, 'app.log');
  const snapshotPath = join(dir, 'memory.ctx');
  writeFileSync(log, '2026-01-01T00:00:00Z INFO start\n2026-01-01T00:00:01Z INFO ready\n');
  const ac = new AbortController();
  let caughtUp: number | undefined;
  const saves: CheckpointInfo[] = [];
  const summary = await ingest({
    paths: [log], snapshotPath, follow: true, checkpointMs: 100, signal: ac.signal,
    onNotice: (line) => {
      if (!/^caught up/.test(line)) return;
      caughtUp = readSnapshot(snapshotPath).header.counts.tokens;
      appendFileSync(log, '2026-01-01T00:00:02Z ERROR disk full on /var/data\n');
    },
    onCheckpoint: (c) => {
      saves.push(c);
      // A save after catching up that holds more than the content at the start: the appended line.
      if (caughtUp !== undefined && c.file === snapshotPath && c.counts.tokens > caughtUp) ac.abort();
    },
  });
  assert.equal(summary.interrupted, false);
  assert.equal(summary.follow, true);
  assert.deepEqual(summary.documents, { log: 1 });
  assert.ok(saves.some((c) => c.file === snapshotPath && c.counts.tokens > (caughtUp ?? Infinity)), 'a periodic save held the new line');
  const snap = readSnapshot(snapshotPath);
  assert.deepEqual(snap.header.counts, summary.total);
  assert.ok(!existsSync(partialPath(snapshotPath)) && !existsSync(resumeRecordPath(snapshotPath)));
  const m = await loadManifest(snapshotPath);
  assert.equal(m.sources[log]?.size, statSync(log).size);
});

function ctx(args: string[], cwd: string) {
  const env = { ...process.env };
  delete env.CTX_SNAPSHOT;
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000, env });
}

test('ctx ingest of a path that does not exist: one line on stderr, non-zero exit, nothing written', () => {
  const dir = tempDir();
  for (const args of [['ingest', 'nope/'], ['ingest', 'nope/', '--append'], ['ingest', 'nope/', '--dry-run']]) {
    const r = ctx([...args, '--snapshot', 'out.ctx'], dir);
    assert.notEqual(r.status, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'ctx: no such file or folder: nope/\n');
    assert.ok(!existsSync(join(dir, 'out.ctx')) && !existsSync(partialPath(join(dir, 'out.ctx'))));
  }
  writeFileSync(join(dir, 'a.log'), 'x\n');
  const two = ctx(['ingest', '--follow', 'a.log', 'a.log', '--snapshot', 'out.ctx'], dir);
  assert.notEqual(two.status, 0);
  assert.match(two.stderr, /^ctx: --follow takes exactly one log file, not 2 paths\n$/);
});

test('ctx ingest --json prints a summary that parses', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'notes.md'), prose('note', 10));
  const r = ctx(['ingest', 'notes.md', '--json', '--snapshot', 'out.ctx'], dir);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { documents: Record<string, number>; snapshot: string; snapshotBytes: number; interrupted: boolean };
  assert.deepEqual(s.documents, { text: 1 });
  assert.equal(s.snapshot, join(dir, 'out.ctx'));
  assert.equal(s.snapshotBytes, statSync(join(dir, 'out.ctx')).size);
  assert.equal(s.interrupted, false);
});

test('a second ingest into a snapshot being written is refused; a lock left by a dead process is taken over', async () => {
  const dir = tempDir();
  const snapshotPath = join(dir, 'memory.ctx');
  writeFileSync(join(dir, 'a.txt'), prose('a', 10));
  const first = await ingest({ paths: [join(dir, 'a.txt')], snapshotPath });
  const before = readFileSync(snapshotPath);
  assert.ok(!existsSync(lockPath(snapshotPath)), 'a finished ingest leaves no lock');

  writeFileSync(lockPath(snapshotPath), `${process.ppid}\n`); // a live process holds it
  await assert.rejects(ingest({ paths: [join(dir, 'a.txt')], snapshotPath }),
    (e: Error) => e instanceof CtxError && e.message.startsWith(`another ingest (pid ${process.ppid}) is writing ${snapshotPath}`));
  assert.deepEqual(readFileSync(snapshotPath), before, 'the refused ingest touched nothing');
  assert.ok(!existsSync(partialPath(snapshotPath)));
  assert.equal(readFileSync(lockPath(snapshotPath), 'utf8'), `${process.ppid}\n`, 'nor the other ingest\'s lock');

  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(lockPath(snapshotPath), `${gone.stdout}\n`); // its process has exited
  const again = await ingest({ paths: [join(dir, 'a.txt')], snapshotPath });
  assert.equal(again.segments, first.segments);
  assert.ok(!existsSync(lockPath(snapshotPath)), 'the stale lock was taken over and released');
});

test('a folder holding its own snapshot: the snapshot, its sidecars and its lock are never folded', async () => {
  const dir = tempDir();
  const snapshotPath = join(dir, '.ctx', 'memory.ctx');
  writeFileSync(join(dir, 'a.txt'), prose('a', 10));
  writeFileSync(join(dir, 'b.md'), prose('b', 10));
  const first = await ingest({ paths: [dir], snapshotPath });
  assert.deepEqual(first.documents, { text: 2 });
  const again = await ingest({ paths: [dir], snapshotPath }); // now memory.ctx and its manifest lie in the folder
  assert.deepEqual(again.documents, { text: 2 });
  assert.deepEqual(again.skipped, [], 'left out silently, not reported as skipped');
  assert.deepEqual(Object.keys((await loadManifest(snapshotPath)).sources).sort(), [join(dir, 'a.txt'), join(dir, 'b.md')]);
  const isSnapshotFile = snapshotFiles(snapshotPath);
  assert.ok(isSnapshotFile(join(dir, '.ctx', '.memory.ctx.123.ab12cd34.tmp')), 'an atomic write\'s temp file');
  assert.ok(!isSnapshotFile(join(dir, '.ctx', 'memory.ctxt')) && !isSnapshotFile(join(dir, 'memory.ctx')));
});
