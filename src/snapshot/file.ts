/**
 * The snapshot file: everything `ask` needs, and nothing that grows with the input.
 *
 *   offset 0        magic "CTXSNAP\0"                  8 bytes
 *          8        format version (u32 LE)            currently 1
 *          12       header capacity H (u32 LE)         4096
 *          16       header JSON, UTF-8, space-padded to H bytes (model and tokenizer ids, shape, counts, times)
 *          16+H     memory state, float32 LE           state_size values (M and z of every layer)
 *          ...      the memory tokens' state alone     state_size more values, only where the header says
 *                                                      `alone: true` (a two-way model's first segments,
 *                                                      engine/fold.ts Memory)
 *          end-32   SHA-256 of all bytes before it
 *
 * The header has a fixed capacity so that the file size depends on the model only (and for a two-way model on
 * whether the input is past its first segments). Writes are atomic
 * (temp file in the same folder, fsync, rename, fsync of the folder): an existing snapshot is never left
 * half-written, whatever happens during the write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CtxError } from '../errors.js';
import type { Memory } from '../engine/fold.js';
import type { ModelConfig } from '../engine/model.js';

export const MAGIC = Buffer.from('CTXSNAP\0', 'latin1');
export const VERSION = 1;
const HEADER_CAPACITY = 4096;
const PREFIX = 16;
const CHECKSUM = 32;

export interface SnapshotCounts {
  /** All tokens folded, headers and markers included. */
  tokens: number;
  segments: number;
  documents: number;
  /** Paths the user named (a directory counts once). */
  sources: number;
}

export interface SnapshotHeader {
  format: 'ctx-snapshot';
  model: { name: string; model_id: string; memory: string; d_model: number; n_layers: number; d_key: number; seg_len: number; state_size: number };
  tokenizer_sha256: string;
  counts: SnapshotCounts;
  created: string;
  updated: string;
  /** A second state follows the first: Memory.alone. */
  alone?: boolean;
}

export interface Snapshot extends Memory {
  header: SnapshotHeader;
}

export function newHeader(config: ModelConfig): SnapshotHeader {
  const now = new Date().toISOString();
  const { name, model_id, memory, d_model, n_layers, d_key, seg_len, state_size } = config;
  return {
    format: 'ctx-snapshot',
    model: { name, model_id, memory, d_model, n_layers, d_key, seg_len, state_size },
    tokenizer_sha256: config.tokenizer_sha256,
    counts: { tokens: 0, segments: 0, documents: 0, sources: 0 },
    created: now,
    updated: now,
  };
}

/** What sets a snapshot's size, for `ctx info` and the TUI. */
export function sizeNote(header: SnapshotHeader): string {
  return header.alone ? 'fixed by the model: two states until its two-way length' : 'fixed by the model';
}

export function snapshotBytes(stateSize: number, states = 1): number {
  return PREFIX + HEADER_CAPACITY + 4 * stateSize * states + CHECKSUM;
}

export function encodeSnapshot(snap: Snapshot): Buffer {
  const states = snap.alone ? [snap.state, snap.alone] : [snap.state];
  const header: SnapshotHeader = { ...snap.header, alone: snap.alone ? true : undefined };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > HEADER_CAPACITY) throw new Error(`snapshot header of ${json.length} bytes exceeds ${HEADER_CAPACITY}`);
  if (states.some((s) => s.length !== header.model.state_size)) throw new Error('state size does not match the header');
  const buf = Buffer.alloc(snapshotBytes(header.model.state_size, states.length), 0x20);
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(VERSION, 8);
  buf.writeUInt32LE(HEADER_CAPACITY, 12);
  json.copy(buf, PREFIX);
  const le = new DataView(buf.buffer, buf.byteOffset + PREFIX + HEADER_CAPACITY, 4 * header.model.state_size * states.length);
  let at = 0;
  for (const s of states) for (let i = 0; i < s.length; i++, at += 4) le.setFloat32(at, s[i], true);
  const end = buf.length - CHECKSUM;
  createHash('sha256').update(buf.subarray(0, end)).digest().copy(buf, end);
  return buf;
}

export function decodeSnapshot(buf: Buffer, path = 'snapshot'): Snapshot {
  if (buf.length < PREFIX || !buf.subarray(0, 8).equals(MAGIC)) throw new CtxError(`${path} is not a ctx snapshot (wrong magic)`);
  const version = buf.readUInt32LE(8);
  if (version !== VERSION) throw new CtxError(`${path} has snapshot format version ${version}; this ctx reads version ${VERSION}`);
  const cap = buf.readUInt32LE(12);
  if (buf.length < PREFIX + cap + CHECKSUM) throw new CtxError(`${path} is truncated (${buf.length} bytes)`);
  let header: SnapshotHeader;
  try {
    header = JSON.parse(buf.subarray(PREFIX, PREFIX + cap).toString('utf8')) as SnapshotHeader;
  } catch {
    throw new CtxError(`${path} is corrupted (unreadable header)`);
  }
  const size = header.model?.state_size ?? 0;
  const expected = PREFIX + cap + 4 * size * (header.alone ? 2 : 1) + CHECKSUM;
  if (buf.length < expected) throw new CtxError(`${path} is truncated (${buf.length} of ${expected} bytes)`);
  if (buf.length > expected) throw new CtxError(`${path} is corrupted (${buf.length - expected} unexpected trailing bytes)`);
  const end = buf.length - CHECKSUM;
  if (!createHash('sha256').update(buf.subarray(0, end)).digest().equals(buf.subarray(end))) {
    throw new CtxError(`${path} is corrupted (checksum mismatch)`);
  }
  const readState = (n: number) => {
    const state = new Float32Array(size);
    const le = new DataView(buf.buffer, buf.byteOffset + PREFIX + cap + 4 * size * n, 4 * size);
    for (let i = 0; i < size; i++) state[i] = le.getFloat32(i * 4, true);
    return state;
  };
  return header.alone ? { header, state: readState(0), alone: readState(1) } : { header, state: readState(0) };
}

export function readSnapshot(path: string): Snapshot {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CtxError(`no snapshot at ${path}: run \`ctx ingest <paths>\` first`);
    throw new CtxError(`cannot read snapshot ${path}: ${(e as Error).message}`);
  }
  return decodeSnapshot(buf, path);
}

/** Refuse a snapshot made with another model or tokenizer: its state would be meaningless to this one. */
export function checkCompatible(header: SnapshotHeader, config: ModelConfig, path = 'snapshot'): void {
  if (header.model.model_id !== config.model_id) {
    throw new CtxError(
      `${path} was made with model ${header.model.name} (${header.model.model_id.slice(0, 12)}), ` +
        `not the current model ${config.name} (${config.model_id.slice(0, 12)}): re-ingest, or set CTX_MODEL to that model`,
    );
  }
  if (header.tokenizer_sha256 !== config.tokenizer_sha256) {
    throw new CtxError(`${path} was made with another tokenizer than the current model's: re-ingest`);
  }
}

/** The temp file an atomic write of `path` goes through: hidden, beside it, unique to the process and the call. */
function atomicTempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Whether absPath is the temp file of an atomic write of `path` or of a file named `path.<suffix>`. */
export function isAtomicTempOf(path: string, absPath: string): boolean {
  const name = basename(absPath);
  return dirname(absPath) === dirname(path) && name.startsWith(`.${basename(path)}.`) && name.endsWith('.tmp');
}

/** Write bytes to path atomically: the old file stays whole until the new one is complete on disk. */
export function writeFileAtomic(path: string, data: Buffer | string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = atomicTempPath(path);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = openSync(dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some filesystems cannot fsync a directory; the rename itself is still atomic.
  }
}

export function writeSnapshot(path: string, snap: Snapshot): void {
  writeFileAtomic(path, encodeSnapshot(snap));
}
