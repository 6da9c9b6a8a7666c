/**
 * The stream format: the one contract between the product and training (train/stream.py mirrors it and
 * both are pinned to the same golden file, test/golden/stream.json). Control symbols have fixed ids and are
 * never produced by encoding text, so input cannot forge them.
 *
 *   document      <doc>{kind} {path}\n            then, for a PDF with a title, "title: {title}\n"
 *   page          <page>{n}\n                     before each page of a PDF
 *   continuation  <cont>{kind} {path}\n           first tokens of a segment that begins mid-document;
 *                 <cont>{kind} {path}<page>{n}\n  ... and inside a PDF page, that page's number
 *   question      <q>{question}<a>                the answer follows, ended by </s>
 */
import type { DocKind } from '../ingest/types.js';
import { SPECIAL, type Tokenizer } from '../tokenizer/index.js';

/** A header longer than this is cut (path kept from the end), so it never crowds out a segment's text. */
export const MAX_HEADER_TOKENS = 48;

export interface DocHead {
  kind: DocKind;
  path: string;
  title?: string;
}

function headerBody(tok: Tokenizer, kind: DocKind, path: string): number[] {
  const room = MAX_HEADER_TOKENS - 2;
  const ids = tok.encode(`${kind} ${path}`);
  if (ids.length <= room) return ids;
  // Keep the end of the path (the file name and its nearest folders say the most), cut on a token boundary.
  const pathIds = tok.encode(path);
  for (let keep = room - 4; keep > 0; keep--) {
    const cut = tok.encode(`${kind} …${tok.decode(pathIds.slice(pathIds.length - keep))}`);
    if (cut.length <= room) return cut;
  }
  return ids.slice(0, room);
}

const NL = (tok: Tokenizer) => tok.encode('\n');

export function documentHeader(tok: Tokenizer, doc: DocHead): number[] {
  const ids = [SPECIAL.doc, ...headerBody(tok, doc.kind, doc.path), ...NL(tok)];
  if (doc.title) ids.push(...tok.encode(`title: ${doc.title.replace(/\s+/g, ' ').trim().slice(0, 200)}\n`));
  return ids;
}

export function continuationHeader(tok: Tokenizer, doc: DocHead, page?: number): number[] {
  const ids = [SPECIAL.cont, ...headerBody(tok, doc.kind, doc.path)];
  if (page !== undefined) ids.push(SPECIAL.page, ...tok.encode(String(page)));
  return [...ids, ...NL(tok)];
}

export function pageMarker(tok: Tokenizer, page: number): number[] {
  return [SPECIAL.page, ...tok.encode(`${page}\n`)];
}

/** The tokens a question occupies before the answer is decoded. */
export function questionPrompt(tok: Tokenizer, question: string): number[] {
  return [SPECIAL.q, ...tok.encode(question.replace(/\s+/g, ' ').trim()), SPECIAL.a];
}

/** Training form of an answer: its tokens, then end of answer. */
export function answerTokens(tok: Tokenizer, answer: string): number[] {
  return [...tok.encode(answer), SPECIAL.eos];
}
