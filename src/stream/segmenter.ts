/**
 * Cuts the token stream of a sequence of documents into segments of exactly `segLen` tokens (the last may
 * be shorter). A segment that begins inside a document starts with that document's continuation header, so
 * every segment says where its text comes from.
 */
import { continuationHeader, documentHeader, pageMarker, type DocHead } from './format.js';
import type { Tokenizer } from '../tokenizer/index.js';

export class Segmenter {
  private buf: Int32Array;
  private fill = 0;
  private doc: DocHead | null = null;
  private page: number | undefined;
  private cont: number[] = [];
  /** Tokens of text (not headers) pushed so far. */
  textTokens = 0;

  constructor(private readonly tok: Tokenizer, readonly segLen: number) {
    this.buf = new Int32Array(segLen);
  }

  /** Start a document; returns the segments completed on the way. */
  beginDocument(doc: DocHead): Int32Array[] {
    this.doc = doc;
    this.page = undefined;
    this.cont = continuationHeader(this.tok, doc);
    return this.push(documentHeader(this.tok, doc), false);
  }

  /** Be inside `doc` (at `page`) without pushing anything: resuming a document whose earlier parts were
   *  folded by an interrupted ingest, so that the next segment starts with the right continuation header. */
  enter(doc: DocHead, page?: number): void {
    this.doc = doc;
    this.page = page;
    this.cont = continuationHeader(this.tok, doc, page);
  }

  beginPage(page: number): Int32Array[] {
    this.page = page;
    this.cont = continuationHeader(this.tok, this.doc!, page);
    // At a segment start the continuation header already names the page.
    if (this.fill === 0) return this.push(this.cont, false);
    return this.push(pageMarker(this.tok, page), true);
  }

  text(s: string): Int32Array[] {
    const ids = this.tok.encode(s);
    this.textTokens += ids.length;
    return this.push(ids, true);
  }

  /** The tokens of the open segment, not yet folded (a copy; the segment stays open). */
  pending(): number[] {
    return Array.from(this.buf.subarray(0, this.fill));
  }

  /** Reopen a segment with `tokens` (what `pending` returned when an interrupted ingest saved). */
  restore(tokens: readonly number[]): void {
    if (tokens.length >= this.segLen) throw new Error(`an open segment holds fewer than ${this.segLen} tokens, not ${tokens.length}`);
    this.buf.fill(0);
    this.buf.set(tokens);
    this.fill = tokens.length;
  }

  /** The last, partial segment (null when empty); the segmenter is then ready for a new stream. */
  flush(): Int32Array | null {
    if (this.fill === 0) return null;
    const last = this.buf.slice(0, this.fill);
    this.fill = 0;
    return last;
  }

  private push(ids: ArrayLike<number>, midDocument: boolean): Int32Array[] {
    const out: Int32Array[] = [];
    let i = 0;
    while (i < ids.length) {
      if (this.fill === 0 && midDocument && this.doc) this.write(this.cont);
      const n = Math.min(ids.length - i, this.segLen - this.fill);
      for (let k = 0; k < n; k++) this.buf[this.fill + k] = ids[i + k];
      this.fill += n;
      i += n;
      if (this.fill === this.segLen) {
        out.push(this.buf);
        this.buf = new Int32Array(this.segLen);
        this.fill = 0;
        midDocument = this.doc !== null;
      }
    }
    return out;
  }

  private write(ids: number[]): void {
    const n = Math.min(ids.length, this.segLen >> 1);
    for (let k = 0; k < n; k++) this.buf[k] = ids[k];
    this.fill = n;
  }
}
