/**
 * The sidecar manifest: round trip, unchanged detection, atomic save, loud failure when corrupt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtxError } from '../src/errors.js';
import {
  ingestSources, isUnchanged, loadManifest, manifestPath, recordSource, saveManifest, sourceFiles,
} from '../src/ingest/index.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ctx-manifest-'));
}

test('round trip: what was recorded is unchanged until the file changes', async () => {
  const dir = tempDir();
  const snapshot = join(dir, 'memory.ctx');
  const src = join(dir, 'a.ts');
  writeFileSync(src, 'export const a = 1;\n');

  const empty = await loadManifest(snapshot);
  assert.deepEqual(empty.sources, {});
  assert.equal(isUnchanged(empty, src, statSync(src)), false);

  const st = statSync(src);
  recordSource(empty, { absPath: src, size: st.size, mtimeMs: st.mtimeMs, kind: 'code' });
  await saveManifest(snapshot, empty);
  assert.equal(manifestPath(snapshot), `${snapshot}.manifest.json`);
  assert.deepEqual(readdirSync(dir).sort(), ['a.ts', 'memory.ctx.manifest.json'], 'no temporary file left behind');

  const loaded = await loadManifest(snapshot);
  assert.deepEqual(loaded, empty);
  assert.equal(isUnchanged(loaded, src, statSync(src)), true);

  utimesSync(src, new Date(), new Date(Date.now() + 5000)); // touched, same size
  assert.equal(isUnchanged(loaded, src, statSync(src)), false);
  writeFileSync(src, 'export const a = 2; // longer\n');
  assert.equal(isUnchanged(loaded, src, statSync(src)), false);
});

test('saving again replaces the manifest whole', async () => {
  const dir = tempDir();
  const snapshot = join(dir, 'memory.ctx');
  const m = await loadManifest(snapshot);
  for (let i = 0; i < 3; i++) {
    recordSource(m, { absPath: `/src/f${i}.ts`, size: i, mtimeMs: i, kind: 'code' });
    await saveManifest(snapshot, m);
  }
  assert.deepEqual(Object.keys((await loadManifest(snapshot)).sources), ['/src/f0.ts', '/src/f1.ts', '/src/f2.ts']);
  assert.equal(readdirSync(dir).length, 1);
});

test('a corrupt manifest is an error that says what to do, not an empty manifest', async () => {
  const dir = tempDir();
  const snapshot = join(dir, 'memory.ctx');
  writeFileSync(manifestPath(snapshot), '{"version": 1, "sources": {"/a": ');
  await assert.rejects(loadManifest(snapshot), (e: unknown) => e instanceof CtxError && /corrupt manifest .*delete it/.test(e.message));
  writeFileSync(manifestPath(snapshot), '{"version": 99, "sources": {}}');
  await assert.rejects(loadManifest(snapshot), /unsupported manifest version 99/);
});

test('sourceFiles names every member of a rotated log set, for the manifest', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'app.log.1'), 'old\n');
  writeFileSync(join(dir, 'app.log'), 'new\n');
  writeFileSync(join(dir, 'main.py'), 'print(1)\n');
  const files: string[][] = [];
  for await (const item of ingestSources([dir])) if (item.type === 'document') files.push(sourceFiles(item.doc));
  assert.deepEqual(files, [[join(dir, 'app.log.1'), join(dir, 'app.log')], [join(dir, 'main.py')]]);
});
