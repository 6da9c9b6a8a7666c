/**
 * The sidecar manifest (`<snapshot>.manifest.json`): which sources were folded into a snapshot, with the
 * size and mtime they had, so that `ingest --append` can skip files unchanged since, and the path each was
 * folded under (the string of its document's header in the stream), which `ask` ranks as the candidate
 * answers of "where / which file" questions (`documentPaths`). `ask` reads the manifest for nothing else,
 * and never the sources.
 *
 * `docPath` came later than the rest: a manifest written before it (or by a ctx that drops it) has sources
 * without one. Such a manifest still serves `--append`; it only lists no candidate paths.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { CtxError } from '../errors.js';
import { writeFileAtomic } from '../snapshot/file.js';
import type { DocKind } from './types.js';

export const MANIFEST_VERSION = 1;

export interface ManifestSource {
  absPath: string;
  size: number;
  mtimeMs: number;
  kind: DocKind;
  /** The path of the document this file was folded as (Document.path: relative to the ingest root, as the
   *  stream header wrote it). Every member of a rotated log set carries its set's path. */
  docPath?: string;
  /** A plain log file: sha256 of its last bytes (up to TAIL_BYTES) before `size`. When the file has since grown
   *  and still holds those bytes there, `--append` folds only what was appended after them (logTail). */
  tailSha256?: string;
}

export interface Manifest {
  version: typeof MANIFEST_VERSION;
  /** Keyed by absolute path. */
  sources: Record<string, ManifestSource>;
}

export function manifestPath(snapshotPath: string): string {
  return `${snapshotPath}.manifest.json`;
}

export function emptyManifest(): Manifest {
  return { version: MANIFEST_VERSION, sources: {} };
}

/** The manifest next to the snapshot, or an empty one when there is none yet. A manifest that cannot be
 *  read is an error, not an empty manifest: appending would then fold every source a second time. */
export async function loadManifest(snapshotPath: string): Promise<Manifest> {
  return readManifestSync(snapshotPath) ?? emptyManifest();
}

/** The manifest next to the snapshot (read synchronously: a small file, and `ask` is synchronous up to the
 *  model), or undefined when there is none. Unreadable or corrupt: CtxError. */
export function readManifestSync(snapshotPath: string): Manifest | undefined {
  const file = manifestPath(snapshotPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CtxError(`cannot read manifest ${file}: ${(e as Error).message}`);
  }
  return parseManifest(text, file);
}

function parseManifest(text: string, file: string): Manifest {
  try {
    const m = JSON.parse(text) as Manifest;
    if (m?.version !== MANIFEST_VERSION || typeof m.sources !== 'object' || m.sources === null) {
      throw new Error(`unsupported manifest version ${String(m?.version)}`);
    }
    return m;
  } catch (e) {
    throw new CtxError(`corrupt manifest ${file} (${(e as Error).message}); delete it to re-ingest everything`);
  }
}

/** True when the source was ingested with this very size and mtime. */
export function isUnchanged(manifest: Manifest, absPath: string, stat: { size: number; mtimeMs: number }): boolean {
  const known = manifest.sources[absPath];
  return known !== undefined && known.size === stat.size && known.mtimeMs === stat.mtimeMs;
}

export function recordSource(manifest: Manifest, source: ManifestSource): void {
  const { absPath, size, mtimeMs, kind, docPath, tailSha256 } = source;
  manifest.sources[absPath] = {
    absPath, size, mtimeMs, kind, ...(docPath !== undefined ? { docPath } : {}), ...(tailSha256 !== undefined ? { tailSha256 } : {}),
  };
}

/** How many bytes before a log's recorded end its tail hash covers: enough to tell an appended-to log from a
 *  rewritten or rotated one (timestamps change line by line), cheap to read again. */
const TAIL_BYTES = 4096;

/** sha256 of the file's bytes [end - TAIL_BYTES, end), or undefined when it has fewer than `end` bytes. */
export async function tailHash(absPath: string, end: number): Promise<string | undefined> {
  const start = Math.max(0, end - TAIL_BYTES);
  const buf = Buffer.alloc(end - start);
  const fh = await open(absPath, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return bytesRead === buf.length ? createHash('sha256').update(buf).digest('hex') : undefined;
  } finally {
    await fh.close();
  }
}

/**
 * The byte offset to fold a log from when appending: the size it had when it was folded, if it has grown since
 * and still ends there with the bytes it had (an appended-to log); undefined otherwise (fold it whole).
 */
export async function logTail(manifest: Manifest, file: { absPath: string; size: number }): Promise<number | undefined> {
  const known = manifest.sources[file.absPath];
  if (known?.kind !== 'log' || known.tailSha256 === undefined || file.size <= known.size) return undefined;
  return (await tailHash(file.absPath, known.size)) === known.tailSha256 ? known.size : undefined;
}

/**
 * The document paths the snapshot folded, each once, sorted: the candidate answers of "where / which file"
 * questions. Undefined when the manifest cannot say: no sources, or a source recorded without its path (an
 * older manifest, or one appended to by an older ctx): a partial list would silently leave files out.
 */
export function documentPaths(manifest: Manifest): string[] | undefined {
  const sources = Object.values(manifest.sources);
  if (sources.length === 0 || sources.some((s) => typeof s.docPath !== 'string' || s.docPath === '')) return undefined;
  return [...new Set(sources.map((s) => s.docPath as string))].sort();
}

/** Atomic (writeFileAtomic): an interrupted save leaves the previous manifest whole. Sorted, so that the same
 *  sources give the same bytes. */
export async function saveManifest(snapshotPath: string, manifest: Manifest): Promise<void> {
  const sorted: Manifest = {
    version: MANIFEST_VERSION,
    sources: Object.fromEntries(Object.entries(manifest.sources).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
  writeFileAtomic(manifestPath(snapshotPath), `${JSON.stringify(sorted, null, 1)}\n`);
}

