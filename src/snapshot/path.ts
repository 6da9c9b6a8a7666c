import { resolve } from 'node:path';

/** Where the snapshot lives: --snapshot, else $CTX_SNAPSHOT, else .ctx/memory.ctx in the current folder. */
export function resolveSnapshotPath(flag?: string): string {
  return resolve(flag ?? process.env.CTX_SNAPSHOT ?? '.ctx/memory.ctx');
}
