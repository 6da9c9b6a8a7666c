import { resolve } from 'node:path';
import { isAtomicTempOf } from './file.js';

/** Where the snapshot lives: --snapshot, else $CTX_SNAPSHOT, else .ctx/memory.ctx in the current folder. */
export function resolveSnapshotPath(flag?: string): string {
  return resolve(flag ?? process.env.CTX_SNAPSHOT ?? '.ctx/memory.ctx');
}

/**
 * The test for the snapshot's own files: S itself, its sidecars (S.manifest.json, S.partial, S.partial.json,
 * S.lock, S.history) or a temp file of an atomic write of any of them (`.S….tmp`, writeFileAtomic).
 * An ingest of a folder that holds its own snapshot (`ctx ingest .` with the default .ctx/memory.ctx) must not
 * fold these: they change under it, and are ctx's data, not the user's. S is resolved once: the test runs on
 * every file of the walk.
 */
export function snapshotFiles(snapshotPath: string): (absPath: string) => boolean {
  const s = resolve(snapshotPath);
  return (absPath) => absPath === s || absPath.startsWith(`${s}.`) || isAtomicTempOf(s, absPath);
}
