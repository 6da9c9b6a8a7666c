/**
 * Logs: streamed line by line in bounded parts (plain or gzip), rotated sets folded oldest first as one
 * document, and following a live log like `tail -F`.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { decoded, LineBatcher, openBytes } from './lines.js';
import type { DocPart, Document } from './types.js';

/** `app.log.1`, `app.log.2.gz` (logrotate's numbering: higher is older) or `app.log-20240131.gz` (dateext). */
const ROTATED = /^(.+?)(?:\.(\d{1,4})|-(\d{8}|\d{10}))(\.gz)?$/;

export interface RotationGroup {
  /** The live file's name (it may be absent when only rotated members are present). */
  base: string;
  /** Member names, oldest first; the live file, when present, last. */
  members: string[];
}

/**
 * Finds rotated sets among the names of one directory. A set needs rotated members and a base that is
 * clearly a log: `*.log`, or an extensionless live file with a compressed member (syslog, syslog.2.gz).
 * That keeps `tool` + `tool.1` (a program and its man page) apart.
 */
export function groupRotated(names: string[]): RotationGroup[] {
  const present = new Set(names);
  const byBase = new Map<string, { name: string; order: number }[]>();
  for (const name of names) {
    const m = ROTATED.exec(name);
    if (!m) continue;
    // Numbers count down to the live file, dates count up: map both so that a larger key is newer (a set
    // mixing both, which logrotate never makes, puts the dated members first).
    const order = m[2] !== undefined ? -Number(m[2]) : Number(m[3]) - 1e12;
    const list = byBase.get(m[1]) ?? [];
    list.push({ name, order });
    byBase.set(m[1], list);
  }
  const groups: RotationGroup[] = [];
  for (const [base, rotated] of byBase) {
    const isLog = /\.log$/i.test(base) || (present.has(base) && !base.includes('.') && rotated.some((r) => r.name.endsWith('.gz')));
    if (!isLog) continue;
    const members = rotated.sort((a, b) => a.order - b.order).map((r) => r.name);
    if (present.has(base)) members.push(base);
    groups.push({ base, members });
  }
  return groups;
}

/** A log document; `members` are the files folded in order (one, or a rotated set oldest first). */
export interface LogDocument extends Document {
  kind: 'log';
  members: string[];
}

export function logDocument(path: string, members: string[]): LogDocument {
  return {
    kind: 'log',
    path,
    absPath: members[members.length - 1],
    members,
    parts: () => logParts(members),
  };
}

/** The lines of a plain log file from byte `start` on (what was appended since an earlier ingest), in
 *  bounded parts as logDocument's. */
export function logPartsFrom(absPath: string, start: number): AsyncGenerator<DocPart> {
  return logParts([absPath], start);
}

/** The members' lines in bounded parts; a member that does not end with a newline gets one, so that its
 *  last line never runs into the next member's first. `start`: the byte the (single, plain) file starts at. */
async function* logParts(members: string[], start = 0): AsyncGenerator<DocPart> {
  const batcher = new LineBatcher();
  for (const member of members) {
    let last = '\n';
    for await (const chunk of readLog(member, start)) {
      last = chunk[chunk.length - 1] ?? last;
      for (const text of batcher.push(chunk)) yield { text };
    }
    if (last !== '\n') for (const text of batcher.push('\n')) yield { text };
  }
  const rest = batcher.end();
  if (rest !== undefined) yield { text: rest };
}

/** A log file's text, decompressed when it is gzip (by name). A .gz cut short (rotation still writing
 *  it) yields what it has: losing the tail of one member must not lose the rest of the set. */
export async function* readLog(absPath: string, start = 0): AsyncGenerator<string> {
  const gz = /\.gz$/i.test(absPath);
  const stream = openBytes(absPath, gz, start);
  try {
    yield* decoded(stream);
  } catch (e) {
    if (!(gz && (e as NodeJS.ErrnoException).code === 'Z_BUF_ERROR')) throw e;
  } finally {
    stream.destroy();
  }
}

export interface FollowOptions {
  signal: AbortSignal;
  pollMs?: number;
  /** Read what the file already holds first (default: only what is appended from now on). */
  fromStart?: boolean;
}

interface Open {
  fh: FileHandle;
  dev: number;
  ino: number;
  pos: number;
  decoder: StringDecoder;
  buf: Buffer;
}

/**
 * Yields lines appended to `path` until the signal aborts, like `tail -F`: polls (fs.watch misses events on
 * network and some overlay file systems, and loses the file on rename), reopens from the start when the
 * path names a new file (rotation by rename: the old file is read to its end first) or when the file
 * shrinks (truncation, copytruncate rotation), and waits when the path does not exist yet.
 * Parts end at line boundaries: a line still being written is held until its newline arrives.
 */
export async function* followLog(path: string, opts: FollowOptions): AsyncGenerator<DocPart> {
  const { signal, pollMs = 250 } = opts;
  const batcher = new LineBatcher();
  let cur = await openAt(path, opts.fromStart ? 'start' : 'end');
  try {
    while (!signal.aborted) {
      const now = await stat(path).catch(() => undefined);
      const read = { any: false };
      if (cur && (!now || now.ino !== cur.ino || now.dev !== cur.dev)) {
        yield* drain(cur, batcher, read); // rotated away: what was written before the rename still counts
        await cur.fh.close();
        cur = undefined;
        yield* parts(batcher.completeLines(), batcher.end());
      }
      if (!cur && now) cur = await openAt(path, 'start');
      if (cur) {
        if ((await cur.fh.stat()).size < cur.pos) {
          cur.pos = 0; // truncated in place: the file starts over
          cur.decoder = new StringDecoder('utf8');
          yield* parts(batcher.completeLines(), batcher.end());
        }
        yield* drain(cur, batcher, read);
      }
      yield* parts(batcher.completeLines());
      if (!read.any && !(await pause(pollMs, signal))) break;
    }
    yield* parts(batcher.completeLines(), batcher.end());
  } finally {
    await cur?.fh.close();
  }
}

function* parts(texts: string[], rest?: string): Generator<DocPart> {
  for (const text of texts) yield { text };
  if (rest !== undefined) yield { text: rest };
}

async function openAt(path: string, where: 'start' | 'end'): Promise<Open | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  const st = await fh.stat();
  const pos = where === 'end' ? st.size : 0;
  return { fh, dev: st.dev, ino: st.ino, pos, decoder: new StringDecoder('utf8'), buf: Buffer.alloc(64 * 1024) };
}

/** Reads from the last position to the current end, handing out full parts as they fill (so a fast
 *  writer never makes us buffer more than a part). */
async function* drain(cur: Open, batcher: LineBatcher, read: { any: boolean }): AsyncGenerator<DocPart> {
  for (;;) {
    const { bytesRead } = await cur.fh.read(cur.buf, 0, cur.buf.length, cur.pos);
    if (bytesRead === 0) return;
    read.any = true;
    cur.pos += bytesRead;
    yield* parts(batcher.push(cur.decoder.write(cur.buf.subarray(0, bytesRead))));
  }
}

/** Waits pollMs; false when the signal aborted meanwhile. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
