/**
 * From the user's arguments to candidates (what each source is and whether to take it) and then to
 * documents. Judging reads at most a file's first bytes, so --dry-run (planSources) is cheap; only PDFs
 * are opened before they become documents (encrypted, corrupt and scanned PDFs are found that way).
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve, sep } from 'node:path';
import {
  DEFAULT_MAX_FILE_BYTES, formatBytes, hasGeneratedHeader, hasLongLines, isBinary, isLockfile,
  isMinifiedName, isPdfHeader, kindByName, readHead,
} from './classify.js';
import { openBytes, streamParts } from './lines.js';
import { groupRotated, logDocument, type RotationGroup } from './log.js';
import { DEFAULT_MAX_PDF_PAGES, openPdf } from './pdf.js';
import type { DocKind, Document, IngestItem, Skipped } from './types.js';
import { listTree, unreadable, type DirBatch } from './walker.js';

export interface IngestOptions {
  /** Take vendored directories (node_modules, vendor/, third_party/...), build outputs, generated and
   *  minified files too (skipped by default). Also takes lockfiles unless includeLockfiles says otherwise. */
  includeVendored?: boolean;
  /** Take lockfiles (package-lock.json, yarn.lock, Cargo.lock, go.sum ...; skipped by default). */
  includeLockfiles?: boolean;
  /** Cap for code and text files (default 2 MiB); logs and PDFs are streamed and exempt. */
  maxFileBytes?: number;
  /** Pages read from one PDF (default 20000); the rest is reported as skipped. */
  maxPdfPages?: number;
  /** Follow symbolic links (default false); loops are detected and reported. */
  followSymlinks?: boolean;
  /** Files never to read (the snapshot's own files, when it lies inside an ingested folder): left out of
   *  folders silently; a file named on the command line is reported as skipped. */
  exclude?: (absPath: string) => boolean;
  /** After each source: how many were handled (documents and skips), the bytes of the documents so far. */
  onProgress?: (e: { files: number; bytes: number; path?: string }) => void;
}

/** A source judged worth ingesting, not opened yet. */
export interface Candidate {
  path: string;
  absPath: string;
  kind: DocKind;
  /** Bytes on disk (for a rotated log set, all members; compressed members count compressed). */
  bytes: number;
  /** Files read, in order: one, or a rotated log set oldest first. */
  members: string[];
}

export type Found = { type: 'candidate'; candidate: Candidate } | { type: 'skipped'; skipped: Skipped };

interface FileRef {
  name: string;
  /** The path to show: relative to the ingest root, or the argument as given. */
  path: string;
  abs: string;
  size: number;
}

export async function* ingestSources(paths: string[], opts: IngestOptions = {}): AsyncGenerator<IngestItem> {
  let files = 0;
  let bytes = 0;
  for await (const found of findSources(paths, opts)) {
    files++;
    if (found.type === 'skipped') {
      yield found;
      opts.onProgress?.({ files, bytes, path: found.skipped.path });
      continue;
    }
    const c = found.candidate;
    for (const item of await toItems(c, opts)) {
      if (item.type === 'document') bytes += c.bytes;
      yield item;
    }
    opts.onProgress?.({ files, bytes, path: c.path });
  }
}

/** The document for a candidate; for a PDF, the document or why it cannot be read (plus a note when
 *  the page cap leaves pages out). */
async function toItems(c: Candidate, opts: IngestOptions): Promise<IngestItem[]> {
  if (c.kind === 'log') return [{ type: 'document', doc: logDocument(c.path, c.members) }];
  if (c.kind !== 'pdf') return [{ type: 'document', doc: textDocument(c) }];
  const cap = opts.maxPdfPages ?? DEFAULT_MAX_PDF_PAGES;
  const opened = await openPdf(c.absPath, c.path, cap);
  if ('skipped' in opened) return [{ type: 'skipped', skipped: opened.skipped }];
  const { doc } = opened;
  const items: IngestItem[] = [{ type: 'document', doc }];
  if (doc.readPages < doc.pages) {
    const reason = `pages ${doc.readPages + 1}-${doc.pages} not ingested (page cap ${cap})`;
    items.push({ type: 'skipped', skipped: { path: c.path, reason } });
  }
  return items;
}

function textDocument(c: Candidate): Document {
  return { kind: c.kind, path: c.path, absPath: c.absPath, parts: () => streamParts(() => openBytes(c.absPath, false)) };
}

/** What --dry-run shows: the sources that would be ingested and the skips, without reading any file whole
 *  (PDFs are not opened, so an encrypted or scanned PDF shows up only when ingesting). */
export async function planSources(
  paths: string[],
  opts: IngestOptions = {},
): Promise<{ documents: { path: string; kind: DocKind; bytes: number }[]; skipped: Skipped[] }> {
  const documents: { path: string; kind: DocKind; bytes: number }[] = [];
  const skipped: Skipped[] = [];
  for await (const found of findSources(paths, opts)) {
    if (found.type === 'skipped') skipped.push(found.skipped);
    else documents.push({ path: found.candidate.path, kind: found.candidate.kind, bytes: found.candidate.bytes });
  }
  return { documents, skipped };
}

/** The files a document was read from (a rotated log set has several): for the manifest. */
export function sourceFiles(doc: Document): string[] {
  const members = (doc as { members?: unknown }).members;
  return Array.isArray(members) ? (members as string[]) : [doc.absPath];
}

/**
 * Every argument in the order given: directories listed (walker or git), files taken as named. A file
 * reached twice (a file argument inside a directory argument) is taken once, under its first path.
 */
export async function* findSources(paths: string[], opts: IngestOptions = {}): AsyncGenerator<Found> {
  const seen = new Set<string>();
  const args = await Promise.all(paths.map(statArg));
  const fileGroups = groupFileArgs(args);
  const groupsDone = new Set<object>();
  for (const arg of args) {
    if ('reason' in arg) {
      yield { type: 'skipped', skipped: { path: arg.path, reason: arg.reason } };
    } else if (arg.st.isDirectory()) {
      const listing = listTree(arg.abs, { followSymlinks: opts.followSymlinks, includeVendored: opts.includeVendored });
      for await (const batch of listing) yield* unseen(judgeBatch(batch, opts), seen);
    } else if (arg.st.isFile() && opts.exclude?.(arg.abs)) {
      yield { type: 'skipped', skipped: { path: arg.path, reason: "a file of the snapshot being written" } };
    } else if (arg.st.isFile()) {
      const group = fileGroups.get(arg.abs);
      if (group && groupsDone.has(group)) continue;
      if (group) groupsDone.add(group);
      const judged = group ? judgeGroup(group.path, group.refs) : judgeFiles([fileRef(arg)], opts, true);
      yield* unseen(judged, seen);
    } else {
      yield { type: 'skipped', skipped: { path: arg.path, reason: 'not a regular file or directory' } };
    }
  }
}

/** Drops candidates with a file already taken (a rotated member counts: never fold a file twice). */
async function* unseen(found: AsyncIterable<Found>, seen: Set<string>): AsyncGenerator<Found> {
  for await (const f of found) {
    if (f.type === 'candidate') {
      if (f.candidate.members.some((m) => seen.has(m))) continue;
      for (const m of f.candidate.members) seen.add(m);
    }
    yield f;
  }
}

type Arg = { path: string; abs: string; st: Stats } | { path: string; reason: string };

async function statArg(given: string): Promise<Arg> {
  const path = given.split(sep).join('/');
  const abs = resolve(given);
  try {
    return { path, abs, st: await stat(abs) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { path, reason: code === 'ENOENT' ? 'not found' : unreadable(e) };
  }
}

function fileRef(arg: { path: string; abs: string; st: Stats }): FileRef {
  return { name: basename(arg.abs), path: arg.path, abs: arg.abs, size: arg.st.size };
}

/**
 * Rotated logs named one by one (`ctx ingest /var/log/app.log*`) still fold as one set, oldest first.
 * Only the files named are grouped: siblings not named stay out. Returns, for every member's absolute path,
 * the same group object; the first member met in argument order emits it.
 */
function groupFileArgs(args: Arg[]): Map<string, { path: string; refs: FileRef[] }> {
  const byDir = new Map<string, FileRef[]>();
  for (const a of args) {
    if ('reason' in a || !a.st.isFile()) continue;
    const list = byDir.get(dirname(a.abs)) ?? [];
    if (list.some((r) => r.abs === a.abs)) continue; // named twice
    list.push(fileRef(a));
    byDir.set(dirname(a.abs), list);
  }
  const out = new Map<string, { path: string; refs: FileRef[] }>();
  for (const refs of byDir.values()) {
    for (const g of groupRotated(refs.map((r) => r.name))) {
      const members = g.members.map((m) => refs.find((r) => r.name === m) as FileRef);
      const live = members.find((m) => m.name === g.base);
      const path = live?.path ?? groupPath(dirname(members[0].path), g, members[0].path);
      const group = { path, refs: members };
      for (const m of members) out.set(m.abs, group);
    }
  }
  return out;
}

/** A rotated set is named after its live file; a lone rotated member (app.log.1) keeps its own name. */
function groupPath(dir: string, g: RotationGroup, firstMemberPath: string): string {
  if (g.members.length === 1) return firstMemberPath;
  return dir === '.' || dir === '' ? g.base : `${dir}/${g.base}`;
}

/** One directory's files: rotated log sets grouped, every other file judged on its own. */
async function* judgeBatch(listed: DirBatch, opts: IngestOptions): AsyncGenerator<Found> {
  const batch = opts.exclude ? { ...listed, files: listed.files.filter((f) => !opts.exclude?.(f.abs)) } : listed;
  for (const skipped of batch.skipped) yield { type: 'skipped', skipped };
  const groups = new Map<string, RotationGroup>();
  for (const g of groupRotated(batch.files.map((f) => f.name))) for (const m of g.members) groups.set(m, g);
  const done = new Set<RotationGroup>();
  for (const f of batch.files) {
    const g = groups.get(f.name);
    if (!g) {
      yield* judgeFiles([{ name: f.name, path: f.rel, abs: f.abs, size: f.size }], opts, false);
    } else if (!done.has(g)) {
      done.add(g);
      const refs = g.members.map((m) => batch.files.find((x) => x.name === m) as (typeof batch.files)[number]);
      const path = groupPath(batch.relDir, g, refs[0].rel);
      yield* judgeGroup(path, refs.map((r) => ({ name: r.name, path: r.rel, abs: r.abs, size: r.size })));
    }
  }
}

async function* judgeFiles(refs: FileRef[], opts: IngestOptions, explicit: boolean): AsyncGenerator<Found> {
  for (const ref of refs) yield await judgeFile(ref, opts, explicit);
}

/** A rotated set: one log candidate of the members that are text; a binary member is reported alone. */
async function* judgeGroup(path: string, members: FileRef[]): AsyncGenerator<Found> {
  const kept: FileRef[] = [];
  for (const m of members) {
    const why = await sniffLog(m);
    if (why) yield { type: 'skipped', skipped: { path: m.path, reason: why } };
    else kept.push(m);
  }
  if (kept.length === 0) return;
  const last = kept[kept.length - 1];
  const bytes = kept.reduce((n, m) => n + m.size, 0);
  yield { type: 'candidate', candidate: { path, absPath: last.abs, kind: 'log', bytes, members: kept.map((m) => m.abs) } };
}

async function sniffLog(ref: FileRef): Promise<string | undefined> {
  try {
    const head = await readHead(ref.abs, /\.gz$/i.test(ref.name));
    return (await isBinary(head)) ? 'binary' : undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code?.startsWith('Z_') ? `corrupt gzip (${(e as Error).message})` : unreadable(e);
  }
}

/**
 * One file: by name first (lockfile, minified, kind, size cap), then by its first bytes (PDF magic, binary,
 * generated header, long lines). `explicit`: the user named this file, so only what cannot be read at all
 * (binary, too large, unreadable) is refused.
 */
async function judgeFile(ref: FileRef, opts: IngestOptions, explicit: boolean): Promise<Found> {
  const skip = (reason: string): Found => ({ type: 'skipped', skipped: { path: ref.path, reason } });
  const take = (kind: DocKind): Found => ({
    type: 'candidate',
    candidate: { path: ref.path, absPath: ref.abs, kind, bytes: ref.size, members: [ref.abs] },
  });
  const vendoredOk = explicit || (opts.includeVendored ?? false);
  if (!(explicit || (opts.includeLockfiles ?? opts.includeVendored ?? false)) && isLockfile(ref.name)) return skip('lockfile');
  if (!vendoredOk && isMinifiedName(ref.name)) return skip('minified');
  const kind = kindByName(ref.name) ?? (explicit && /\.gz$/i.test(ref.name) ? 'log' : undefined);
  if (kind === 'pdf') return take('pdf');
  if (kind === 'log') {
    const why = await sniffLog(ref);
    return why ? skip(why) : take('log');
  }
  const cap = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (ref.size > cap) return skip(`too large (${formatBytes(ref.size)} > ${formatBytes(cap)} cap)`);
  let head: Buffer;
  try {
    head = await readHead(ref.abs);
  } catch (e) {
    return skip(unreadable(e));
  }
  if (isPdfHeader(head)) return take('pdf');
  if (await isBinary(head)) return skip('binary');
  if (!vendoredOk && hasGeneratedHeader(head)) return skip('generated (header says so)');
  if (!vendoredOk && hasLongLines(head, ref.size)) return skip('minified (lines over 1000 characters on average)');
  return take(kind ?? 'text');
}
