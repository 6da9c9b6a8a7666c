import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, type Model } from '../src/engine/model.js';
import { loadSnapshotFor, type AskSnapshot } from '../src/run/ask.js';
import { runIngest } from '../src/run/ingest.js';

/** Repository root (tests run from dist/test/). */
export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const MODEL_DIR = join(ROOT, 'models', 'ctx-small');
export const CLI = join(ROOT, 'bin', 'run.js');

let cached: Promise<Model> | undefined;
export function shippedModel(): Promise<Model> {
  cached ??= loadModel(MODEL_DIR, { threads: 2 });
  return cached;
}

export function tempDir(prefix = 'ctx-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A fixture folder (fixtures/<name>) folded by the shipped model into a fresh snapshot, opened for asking. */
export async function foldFixture(name: string): Promise<{ model: Model; snapshotPath: string; snap: AskSnapshot }> {
  const model = await shippedModel();
  const snapshotPath = join(tempDir(), `${name}.ctx`);
  await runIngest({ model, paths: [join(ROOT, 'fixtures', name)], snapshotPath });
  return { model, snapshotPath, snap: loadSnapshotFor(model, snapshotPath) };
}
