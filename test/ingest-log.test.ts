/**
 * Logs: rotated sets oldest first, .gz, bounded parts at line boundaries, and followLog (appends, a line
 * written in two pieces, rotation by rename, truncation, a file that appears late, abort).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync, closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, renameSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { followLog, ingestSources, type DocPart, type Document } from '../src/ingest/index.js';
import { LineBatcher } from '../src/ingest/lines.js';
import { groupRotated } from '../src/ingest/log.js';

const LOGS = fileURLToPath(new URL('../../fixtures/logs/', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ctx-log-'));
}

async function documents(paths: string[]): Promise<Document[]> {
  const out: Document[] = [];
  for await (const item of ingestSources(paths)) if (item.type === 'document') out.push(item.doc);
  return out;
}

async function partsOf(doc: Document): Promise<DocPart[]> {
  const out: DocPart[] = [];
  for await (const p of doc.parts()) out.push(p);
  return out;
}

function assertLineParts(parts: DocPart[], max = 64 * 1024): void {
  for (const p of parts.slice(0, -1)) {
    assert.ok(p.text.endsWith('\n'), 'every part but the last ends at a line boundary');
    assert.ok(p.text.length <= max, `part of ${p.text.length} characters`);
  }
}

test('rotated names are grouped oldest first; look-alikes are not', () => {
  assert.deepEqual(groupRotated(['app.log', 'app.log.1', 'app.log.10.gz', 'app.log.2.gz', 'other.txt']), [
    { base: 'app.log', members: ['app.log.10.gz', 'app.log.2.gz', 'app.log.1', 'app.log'] },
  ]);
  assert.deepEqual(groupRotated(['syslog', 'syslog.1', 'syslog.2.gz']), [{ base: 'syslog', members: ['syslog.2.gz', 'syslog.1', 'syslog'] }]);
  assert.deepEqual(groupRotated(['web.log-20240102.gz', 'web.log-20240101.gz', 'web.log']), [
    { base: 'web.log', members: ['web.log-20240101.gz', 'web.log-20240102.gz', 'web.log'] },
  ]);
  assert.deepEqual(groupRotated(['ctx', 'ctx.1']), [], 'a program and its man page');
  assert.deepEqual(groupRotated(['app.log.1']), [{ base: 'app.log', members: ['app.log.1'] }]);
});

test('a rotated nginx set folds as one document, oldest first', async () => {
  const docs = await documents([join(LOGS, 'nginx')]);
  assert.deepEqual(docs.map((d) => [d.path, d.kind]), [['access.log', 'log'], ['error.log', 'log']]);
  const access = docs[0] as Document & { members: string[] };
  assert.deepEqual(access.members.map((m) => m.split('/').pop()), ['access.log.3.gz', 'access.log.2.gz', 'access.log.1', 'access.log']);
  const text = (await partsOf(access)).map((p) => p.text).join('');
  const rounds = [...text.matchAll(/round=(\d)/g)].map((m) => Number(m[1]));
  assert.ok(rounds.length > 40);
  assert.deepEqual(rounds, [...rounds].sort(), 'requests appear in the order they were served');
  assert.deepEqual([...new Set(rounds)], [1, 2, 3, 4]);
  assert.equal(text.split('\n').length - 1, 120, '4 rounds of 30 requests, no line lost or merged');
});

test('rotated members named one by one are grouped too, under the live name', async () => {
  const nginx = join(LOGS, 'nginx');
  const docs = await documents([join(nginx, 'access.log'), join(nginx, 'access.log.2.gz'), join(nginx, 'access.log.1')]);
  assert.equal(docs.length, 1);
  assert.equal(docs[0].path, join(nginx, 'access.log'));
  assert.deepEqual((docs[0] as Document & { members: string[] }).members.map((m) => m.split('/').pop()), ['access.log.2.gz', 'access.log.1', 'access.log']);
});

test('a lone rotated member keeps its own name; a file is never folded twice', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'app.log.2.gz'), gzipSync('old\n'));
  const [alone] = await documents([dir]);
  assert.deepEqual([alone.path, alone.kind], ['app.log.2.gz', 'log']);
  assert.equal((await partsOf(alone)).map((p) => p.text).join(''), 'old\n');
  writeFileSync(join(dir, 'app.log'), 'new\n');
  const docs = await documents([dir, join(dir, 'app.log.2.gz'), join(dir, 'app.log')]);
  assert.deepEqual(docs.map((d) => d.path), ['app.log'], 'the set from the folder; the named members are in it');
});

test('.gz logs are decompressed as a stream, in bounded parts', async () => {
  const gz = join(LOGS, 'bulk', 'access.log.gz'); // 3000 requests to a real nginx, 310 KB unpacked
  const [doc] = await documents([gz]);
  assert.equal(doc.kind, 'log');
  const parts = await partsOf(doc);
  assert.ok(parts.length >= 4, `${parts.length} parts`);
  assertLineParts(parts);
  const text = parts.map((p) => p.text).join('');
  assert.equal(text, gunzipSync(readFileSync(gz)).toString('utf8'));
  assert.deepEqual([...text.matchAll(/seq=(\d+)/g)].map((m) => Number(m[1])), Array.from({ length: 3000 }, (_, i) => i));
});

test('a large log is read in bounded parts that reassemble exactly', async () => {
  const dir = tempDir();
  const line = (i: number) => `2024-05-02 10:14:${String(i % 60).padStart(2, '0')} status installed libfoo-${i}:amd64 1.${i}\n`;
  const text = Array.from({ length: 100_000 }, (_, i) => line(i)).join(''); // ~6 MB
  writeFileSync(join(dir, 'big.log'), text);
  const [doc] = await documents([join(dir, 'big.log')]);
  const parts = await partsOf(doc);
  assert.ok(parts.length > 80);
  assertLineParts(parts);
  assert.equal(parts.map((p) => p.text).join(''), text);
});

test('members without a final newline do not merge lines; a cut-off .gz keeps what it has', async () => {
  const dir = tempDir();
  const full = gzipSync(Buffer.from(Array.from({ length: 5000 }, (_, i) => `old line ${i}\n`).join('')));
  writeFileSync(join(dir, 'svc.log.2.gz'), full.subarray(0, Math.floor(full.length / 2))); // still being written
  writeFileSync(join(dir, 'svc.log.1'), 'middle line without newline');
  writeFileSync(join(dir, 'svc.log'), 'newest line\n');
  const [doc] = await documents([dir]);
  const text = (await partsOf(doc)).map((p) => p.text).join('');
  assert.match(text, /^old line 0\n/);
  assert.match(text, /\nmiddle line without newline\nnewest line\n$/);
});

test('LineBatcher: parts end at lines, a long line is kept whole up to the line cap, then cut', () => {
  const b = new LineBatcher(10, 25);
  assert.deepEqual(b.push('aaa\nbbb\nccc\n'), ['aaa\nbbb\n']);
  assert.deepEqual(b.push('a very long line that goes on\n'), ['ccc\n', 'a very long line that goe']);
  assert.deepEqual(b.completeLines(), ['s on\n']);
  assert.deepEqual(b.push('tail'), []);
  assert.equal(b.end(), 'tail');
  assert.equal(b.end(), undefined);
  const emoji = new LineBatcher(4, 5);
  const cut = emoji.push('abcd😀xyz');
  assert.equal(cut[0], 'abcd', 'never cuts a surrogate pair');
});

/** The promise's value, or a rejection after `ms` (the timer is cleared, so it never keeps the process up). */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads from a follower until `done` holds for the text so far (or fails after a generous timeout). */
async function readUntil(it: AsyncIterator<DocPart>, seen: DocPart[], done: (text: string) => boolean): Promise<string> {
  while (!done(seen.map((p) => p.text).join(''))) {
    const next = await within(10_000, it.next());
    if (next.done) throw new Error(`followLog ended early; got ${JSON.stringify(seen)}`);
    seen.push(next.value);
  }
  return seen.map((p) => p.text).join('');
}

test('followLog: appended lines, a line written in two pieces, rotation, truncation, abort', async (t) => {
  const dir = tempDir();
  const path = join(dir, 'app.log');
  writeFileSync(path, 'already there\n');
  const ac = new AbortController();
  const it = followLog(path, { signal: ac.signal, pollMs: 10, fromStart: true })[Symbol.asyncIterator]();
  t.after(() => ac.abort()); // a failed assertion must not leave the follower polling forever
  const seen: DocPart[] = [];
  await readUntil(it, seen, (t) => t.includes('already there\n'));

  appendFileSync(path, 'first append\nsecond ');
  const waiting = readUntil(it, seen, (t) => t.includes('second half\n'));
  setTimeout(() => appendFileSync(path, 'half\n'), 50);
  await waiting;

  // Rotation by rename, as logrotate does: the writer's last line lands in the renamed file, then a new
  // file takes the name. Done synchronously so that no poll falls in between.
  const fd = openSync(path, 'a');
  renameSync(path, `${path}.1`);
  writeSync(fd, 'last line before rotation\n');
  closeSync(fd);
  writeFileSync(path, 'fresh file after rotation\n');
  await readUntil(it, seen, (t) => t.includes('fresh file after rotation\n'));

  // copytruncate: the same file starts over, shorter than before
  const fh = openSync(path, 'r+');
  ftruncateSync(fh, 0);
  writeSync(fh, 'cut\n', 0);
  closeSync(fh);
  const text = await readUntil(it, seen, (s) => s.endsWith('cut\n'));

  assert.equal(text, 'already there\nfirst append\nsecond half\nlast line before rotation\nfresh file after rotation\ncut\n');
  for (const p of seen) assert.ok(p.text.endsWith('\n'), `part ${JSON.stringify(p.text)} ends a line`);

  ac.abort();
  assert.deepEqual(await within(5000, it.next()), { done: true, value: undefined });
});

test('followLog: without fromStart only new lines; a file that appears later is read from its start', async (t) => {
  const dir = tempDir();
  const path = join(dir, 'late.log');
  const ac = new AbortController();
  const it = followLog(path, { signal: ac.signal, pollMs: 10 })[Symbol.asyncIterator]();
  t.after(() => ac.abort());
  const seen: DocPart[] = [];
  const waiting = readUntil(it, seen, (t) => t.includes('born\n'));
  setTimeout(() => writeFileSync(path, 'born\n'), 50);
  assert.equal(await waiting, 'born\n');
  ac.abort();
  await it.return?.(undefined);

  const old = join(dir, 'old.log');
  writeFileSync(old, 'history\n');
  const ac2 = new AbortController();
  const it2 = followLog(old, { signal: ac2.signal, pollMs: 10 })[Symbol.asyncIterator]();
  t.after(() => ac2.abort());
  const seen2: DocPart[] = [];
  const waiting2 = readUntil(it2, seen2, (t) => t.includes('news\n'));
  setTimeout(() => appendFileSync(old, 'news\n'), 300); // the follower opened the file long before
  assert.equal(await waiting2, 'news\n');
  ac2.abort();
  await it2.return?.(undefined);
});
