import { basename, dirname, resolve } from 'node:path';

/** Where the snapshot lives: --snapshot, else $CTX_SNAPSHOT, else .ctx/memory.ctx in the current folder. */
export function resolveSnapshotPath(flag?: string): string {
  return resolve(flag ?? process.env.CTX_SNAPSHOT ?? '.ctx/memory.ctx');
}

/**
 * Whether absPath is one of the snapshot's own files: S itself, its sidecars (S.manifest.json, S.partial,
 * S.partial.json, S.lock) or a temp file of an atomic write of any of them (`.S….tmp`, writeFileAtomic).
 * An ingest of a folder that holds its own snapshot (`ctx ingest .` with the default .ctx/memory.ctx) must not
 * fold these: they change under it, and are ctx's data, not the user's.
 */
export function isSnapshotFile(snapshotPath: string, absPath: string): boolean {
  const s = resolve(snapshotPath);
  if (absPath === s || absPath.startsWith(`${s}.`)) return true;
  return dirname(absPath) === dirname(s) && basename(absPath).startsWith(`.${basename(s)}.`) && absPath.endsWith('.tmp');
}
