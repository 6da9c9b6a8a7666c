/**
 * One ingest per snapshot at a time. Two ingests into the same snapshot would share its partial and resume
 * record and overwrite each other's checkpoints; the second one is refused with a clear error instead.
 *
 * The lock is `<snapshot>.lock`, created exclusively (O_EXCL) and holding the owner's pid. A lock whose process
 * is gone (killed with -9, a crash, a reboot) is stale and taken over, so a lost process never blocks a snapshot
 * for good. Written by hand: the npm lock libraries (proper-lockfile and kin) decide staleness by mtime and
 * need a timer to keep the lock fresh; a pid check is exact on one machine, which is where a snapshot lives.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { CtxError } from '../errors.js';

export const lockPath = (snapshotPath: string): string => `${snapshotPath}.lock`;

/** Takes the lock of the snapshot at `snapshotPath`; returns the function that releases it. */
export function lockSnapshot(snapshotPath: string): () => void {
  const path = lockPath(snapshotPath);
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => release(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CtxError(`cannot lock ${snapshotPath}: ${(e as Error).message}`);
      }
    }
    const owner = readOwner(path);
    if (owner !== undefined && isAlive(owner)) {
      throw new CtxError(`another ingest (pid ${owner}) is writing ${snapshotPath}: wait for it to finish, ` +
        `or stop it (Ctrl-C keeps what it folded, and the same command resumes)`);
    }
    if (attempt > 0) throw new CtxError(`cannot lock ${snapshotPath}: ${path} keeps coming back`);
    rmSync(path, { force: true }); // stale: its process is gone
  }
}

/** Removes the lock if it is still this process's (a stale-lock takeover by another ingest may have won). */
function release(path: string): void {
  if (readOwner(path) === process.pid) rmSync(path, { force: true });
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined; // gone meanwhile, or unreadable: treated as stale
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}
