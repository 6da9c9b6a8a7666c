/**
 * Cutting streamed text into document parts that end at line boundaries, with bounded memory.
 *
 * Written by hand rather than with readline: readline buffers a whole line however long it is (a 1 GB
 * log line would be held whole), and we need batching of many lines into one part anyway.
 */
import { createReadStream } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { DocPart } from './types.js';

/** Target size of one part (characters): many lines per part, so the consumer does little per part. */
export const PART_CHARS = 64 * 1024;
/** A single line longer than this is cut mid-line: the one place where a part may end inside a line,
 *  traded for bounded memory (the tokenizer then differs only at that cut). */
export const MAX_LINE_CHARS = 1024 * 1024;

export class LineBatcher {
  private buf = '';

  constructor(
    private readonly partChars = PART_CHARS,
    private readonly maxLineChars = Math.max(MAX_LINE_CHARS, partChars),
  ) {}

  /** Adds text; returns the parts that are full (each ends with '\n' unless a line overflowed). */
  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    while (this.buf.length >= this.partChars) {
      const cut = this.fullPartEnd();
      if (cut === 0) break; // one long line still arriving: wait for its end (or for the line cap)
      out.push(this.take(cut));
    }
    return out;
  }

  /** All complete lines buffered so far, in parts (a follower emits lines as soon as they arrive). */
  completeLines(): string[] {
    const out = this.push('');
    const end = this.buf.lastIndexOf('\n') + 1;
    if (end > 0) out.push(this.take(end));
    return out;
  }

  /** Whatever is left, at the end of the input (the last part may end without a newline). */
  end(): string | undefined {
    const rest = this.buf;
    this.buf = '';
    return rest.length > 0 ? rest : undefined;
  }

  /** Length of the buffered text that does not end a line yet. */
  get pending(): number {
    return this.buf.length;
  }

  /** Where to cut a full part: after the last newline that fits, else after an overlong first line. */
  private fullPartEnd(): number {
    const lastFitting = this.buf.lastIndexOf('\n', this.partChars - 1) + 1;
    if (lastFitting > 0) return lastFitting;
    const firstNewline = this.buf.indexOf('\n');
    if (firstNewline >= 0 && firstNewline < this.maxLineChars) return firstNewline + 1;
    if (this.buf.length >= this.maxLineChars) return safeCut(this.buf, this.maxLineChars);
    return 0;
  }

  private take(n: number): string {
    const part = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return part;
  }
}

/** Never cut between the two halves of a surrogate pair (nor return 0, which would cut nothing). */
function safeCut(s: string, at: number): number {
  const code = s.charCodeAt(at - 1);
  if (code < 0xd800 || code > 0xdbff) return at;
  return at > 1 ? at - 1 : at + 1;
}

/** Streams a readable (bytes, decoded as UTF-8) into parts. The stream is opened lazily by `open`, so
 *  that a Document holds no file descriptor until its parts are read. */
export async function* streamParts(open: () => Readable): AsyncGenerator<DocPart> {
  const batcher = new LineBatcher();
  for await (const chunk of decoded(open())) {
    for (const text of batcher.push(chunk)) yield { text };
  }
  const rest = batcher.end();
  if (rest !== undefined) yield { text: rest };
}

/** A file's bytes (from byte `start` of a plain file), gunzipped when `gzip`. Through pipeline(), not pipe():
 *  an error of the file stream (ENOENT, EACCES) must reach the reader, or it would wait forever. */
export function openBytes(absPath: string, gzip: boolean, start = 0): Readable {
  if (!gzip) return createReadStream(absPath, { start });
  return pipeline(createReadStream(absPath), createGunzip(), () => {}); // errors surface on the returned stream
}

/** The stream's chunks as UTF-8 strings (multi-byte characters split across chunks are kept whole). */
export function decoded(stream: Readable): AsyncIterable<string> {
  stream.setEncoding('utf8');
  return stream as AsyncIterable<string>;
}
