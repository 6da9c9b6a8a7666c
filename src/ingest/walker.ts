/**
 * Lists the files of a directory argument, one directory at a time (files first, then subdirectories, each
 * sorted by name), so that the order is deterministic and a directory's files arrive together (rotated
 * logs are grouped per directory). Inside a git work tree the list comes from `git ls-files` (git knows
 * its ignore rules best); elsewhere, or when git is missing or fails, from a walk with IgnoreRules.
 */
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { dirSkipReason, VCS_DIRS } from './classify.js';
import { gitListFiles } from './git.js';
import { CTXIGNORE, GITIGNORE, IgnoreRules } from './ignore-rules.js';
import type { Skipped } from './types.js';

export interface FileEntry {
  name: string;
  /** Path relative to the ingest root, '/' separators. */
  rel: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

/** The files of one directory (after ignore rules), and what was skipped there. */
export interface DirBatch {
  relDir: string;
  files: FileEntry[];
  skipped: Skipped[];
}

export interface ListOptions {
  followSymlinks?: boolean;
  includeVendored?: boolean;
  /** Use `git ls-files` inside a work tree (default true; tests turn it off to exercise the walker). */
  useGit?: boolean;
}

/** What one listing shares, down into nested repositories and followed symlinks. */
interface Shared {
  opts: ListOptions;
  /** The ingest root, symlinks resolved: a followed link into it is not walked a second time. */
  realRoot: string;
  /** dev:ino of every directory entered: a loop through links outside the root is never walked twice. */
  visited: Set<string>;
}

interface Walk extends Shared {
  rules: IgnoreRules;
}

export async function* listTree(root: string, opts: ListOptions = {}): AsyncGenerator<DirBatch> {
  const shared: Shared = { opts, realRoot: await realpath(root).catch(() => root), visited: new Set() };
  await enter(root, shared.visited); // (a root that vanished is reported by the walk)
  yield* listDir(root, '', shared);
}

/** Marks a directory as entered; or why not to enter it: entered already (a symlink loop), unreadable. */
async function enter(abs: string, visited: Set<string>): Promise<string | undefined> {
  let id: string;
  try {
    const st = await stat(abs);
    id = `${st.dev}:${st.ino}`;
  } catch (e) {
    return unreadable(e);
  }
  if (visited.has(id)) return 'symlink loop (directory already walked)';
  visited.add(id);
  return undefined;
}

async function* listDir(abs: string, prefix: string, shared: Shared): AsyncGenerator<DirBatch> {
  const listed = shared.opts.useGit === false ? undefined : await gitListFiles(abs);
  // Zero files from git also happens when the whole directory is git-ignored; the walker then decides.
  if (listed && listed.length > 0) {
    const rules = await IgnoreRules.create(abs, { files: [CTXIGNORE], gitExclude: false });
    yield* fromGitList(abs, prefix, listed, { ...shared, rules });
  } else {
    const rules = await IgnoreRules.create(abs, { files: [GITIGNORE, CTXIGNORE], gitExclude: true });
    yield* walk(abs, prefix, { ...shared, rules });
  }
}

type Entry =
  | { type: 'file'; entry: FileEntry }
  | { type: 'dir'; abs: string; rel: string }
  | { type: 'skipped'; skipped: Skipped }
  /** A directory left out: reported where its files would have come (as the git listing does). */
  | { type: 'skippedDir'; rel: string; skipped: Skipped };

async function* walk(absDir: string, relDir: string, w: Walk): AsyncGenerator<DirBatch> {
  let names: string[];
  try {
    names = (await readdir(absDir)).sort();
  } catch (e) {
    yield { relDir, files: [], skipped: [{ path: dirLabel(relDir), reason: unreadable(e) }] };
    return;
  }
  const batch: DirBatch = { relDir, files: [], skipped: [] };
  const subdirs: Extract<Entry, { type: 'dir' | 'skippedDir' }>[] = [];
  for (const name of names) {
    const e = await examine(absDir, relDir, name, w);
    if (e?.type === 'file') batch.files.push(e.entry);
    else if (e?.type === 'skipped') batch.skipped.push(e.skipped);
    else if (e) subdirs.push(e);
  }
  yield batch;
  for (const d of subdirs) {
    const why = d.type === 'dir' ? await enter(d.abs, w.visited) : d.skipped.reason;
    if (why) yield { relDir: d.rel, files: [], skipped: [{ path: dirLabel(d.rel), reason: why }] };
    else if (d.type === 'dir') yield* walk(d.abs, d.rel, w);
  }
}

/** One directory entry: a file to list, a directory to walk, a skip to report, or nothing (ignored). */
async function examine(absDir: string, relDir: string, name: string, w: Walk): Promise<Entry | undefined> {
  if (VCS_DIRS.has(name)) return undefined; // also a worktree's or submodule's `.git` file
  const abs = join(absDir, name);
  const rel = relDir ? `${relDir}/${name}` : name;
  const found = await statEntry(abs, w.opts.followSymlinks ?? false);
  if ('reason' in found) return { type: 'skipped', skipped: { path: rel, reason: found.reason } };
  const { st, viaLink } = found;
  if (st.isDirectory()) {
    if (await w.rules.ignored(abs, true)) return undefined;
    const reason =
      (viaLink ? await linkedDirReason(abs, absDir, w.realRoot) : undefined) ??
      (w.opts.includeVendored ? undefined : await dirSkipReason(absDir, name));
    if (reason) return { type: 'skippedDir', rel, skipped: { path: dirLabel(rel), reason } };
    return { type: 'dir', abs, rel };
  }
  if (await w.rules.ignored(abs, false)) return undefined;
  if (!st.isFile()) return { type: 'skipped', skipped: { path: rel, reason: 'not a regular file' } };
  return { type: 'file', entry: { name, rel, abs, size: st.size, mtimeMs: st.mtimeMs } };
}

/** lstat, then stat through a symlink when symlinks are followed; failures become skip reasons. */
async function statEntry(abs: string, follow: boolean): Promise<{ st: Stats; viaLink: boolean } | { reason: string }> {
  let st: Stats;
  try {
    st = await lstat(abs);
  } catch (e) {
    return { reason: unreadable(e) };
  }
  if (!st.isSymbolicLink()) return { st, viaLink: false };
  if (!follow) return { reason: 'symlink (not followed)' };
  try {
    return { st: await stat(abs), viaLink: true };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { reason: 'symlink loop' };
    if (code === 'ENOENT') return { reason: 'broken symlink' };
    return { reason: unreadable(e) };
  }
}

/**
 * A followed link to a directory inside the ingest root is not walked: its files are reached under their
 * own paths, whatever the order of names. A link to one of its own ancestors is a loop. Links that leave
 * the root are walked (the visited set stops loops out there).
 */
async function linkedDirReason(abs: string, parentDir: string, realRoot: string): Promise<string | undefined> {
  const target = await realpath(abs).catch(() => undefined);
  if (target === undefined) return undefined; // stat succeeded a moment ago: let the walk report it
  const parent = await realpath(parentDir).catch(() => parentDir);
  if (isWithin(parent, target)) return 'symlink loop';
  if (isWithin(target, realRoot)) return 'symlink to a directory inside the tree (walked under its own path)';
  return undefined;
}

function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/**
 * Turns git's flat list into the same per-directory batches as the walk. Git has applied .gitignore and
 * .git/info/exclude (and lists tracked files even when they match an ignore rule, as git itself does);
 * .ctxignore, vendored directories and symlinks are handled here.
 */
async function* fromGitList(root: string, prefix: string, listed: string[], w: Walk): AsyncGenerator<DirBatch> {
  const skippedDirs = new Map<string, Promise<string | undefined>>();
  let batch: DirBatch | undefined;
  const nested: string[] = [];
  // An untracked nested repository comes as 'nested/': git does not look inside; we list it on its own.
  for (const path of [...new Set(listed.map((p) => p.replace(/\/+$/, '')))].sort(treeOrder)) {
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (batch?.relDir !== join2(prefix, dir)) {
      if (batch) yield batch;
      yield* flushNested(nested, root, prefix, w);
      batch = { relDir: join2(prefix, dir), files: [], skipped: [] };
    }
    const skip = await skippedAncestor(root, dir, skippedDirs, w);
    if (skip === null) continue;
    if (skip) {
      batch.skipped.push({ path: dirLabel(join2(prefix, skip.dir)), reason: skip.reason });
      continue;
    }
    const e = await examine(join(root, dir), join2(prefix, dir), name, w);
    if (e?.type === 'file') batch.files.push(e.entry);
    else if (e?.type === 'dir') nested.push(path); // a submodule, or a followed symlink out of the tree
    else if (e) batch.skipped.push(e.skipped);
  }
  if (batch) yield batch;
  yield* flushNested(nested, root, prefix, w);
}

async function* flushNested(nested: string[], root: string, prefix: string, w: Walk): AsyncGenerator<DirBatch> {
  for (const path of nested.splice(0)) {
    const abs = join(root, path);
    const rel = join2(prefix, path);
    const why = await enter(abs, w.visited);
    if (why) yield { relDir: rel, files: [], skipped: [{ path: dirLabel(rel), reason: why }] };
    else yield* listDir(abs, rel, w);
  }
}

/**
 * For a file git listed in `dir`: undefined when no ancestor directory is excluded; null when one is and
 * was already reported; else the directory to report and why. Checked per directory, cached.
 */
async function skippedAncestor(
  root: string,
  dir: string,
  cache: Map<string, Promise<string | undefined>>,
  w: Walk,
): Promise<{ dir: string; reason: string } | null | undefined> {
  const parts = dir ? dir.split('/') : [];
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const seen = cache.has(sub);
    if (!seen) cache.set(sub, dirVerdict(root, sub, parts[i - 1], w));
    const reason = await cache.get(sub);
    if (reason === undefined) continue;
    return seen || reason === '' ? null : { dir: sub, reason };
  }
  return undefined;
}

/** Why git's directory `sub` is left out: '' when .ctxignore ignores it (silently), a reason, or undefined. */
async function dirVerdict(root: string, sub: string, name: string, w: Walk): Promise<string | undefined> {
  const abs = join(root, sub);
  if (await w.rules.ignored(abs, true)) return '';
  if (w.opts.includeVendored) return undefined;
  return dirSkipReason(join(abs, '..'), name);
}

/** Files before subdirectories, names in code-unit order: the walk's order, for git's list too. */
export function treeOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; ; i++) {
    const lastA = i === pa.length - 1;
    const lastB = i === pb.length - 1;
    if (pa[i] !== pb[i] || lastA || lastB) {
      if (lastA !== lastB) return lastA ? -1 : 1;
      return pa[i] < pb[i] ? -1 : pa[i] > pb[i] ? 1 : 0;
    }
  }
}

function join2(prefix: string, rel: string): string {
  return prefix && rel ? `${prefix}/${rel}` : prefix || rel;
}

function dirLabel(rel: string): string {
  return rel ? `${rel}/` : './';
}

export function unreadable(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'vanished while reading (ENOENT)';
  return code ? `unreadable (${code})` : `unreadable (${(e as Error).message})`;
}
