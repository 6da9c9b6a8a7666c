/**
 * The lexical baseline of `ctx eval repo` (DESIGN.md, "Evaluation"): a BM25 full-text index over the same
 * documents that `ctx ingest` folds, one document per file, whose answer to a question is the paths of its
 * top-ranked documents. Unlike the snapshot, its index grows with the input; `indexBytes` is its size,
 * reported beside the snapshot's bytes.
 *
 * Library: MiniSearch (npm `minisearch`). Chosen because it is maintained (7.x, 2025), has no dependencies,
 * ships ESM and its own TypeScript types (works as-is under Node 20 ESM and `strict`), ranks with BM25+
 * (k 1.2, b 0.7, d 0.5; BM25 with a lower bound on a matching term's contribution) and has a documented
 * serialisation (`toJSON`, read back by `MiniSearch.loadJSON`), which is what `indexBytes` measures.
 * wink-bm25-text-search was the alternative: CommonJS only, no types, and it needs its own preparation tasks.
 *
 * Tokenisation (index and questions alike): runs of letters, digits and `_` are the tokens; each token gives
 * its lower-cased whole and, for a compound identifier, its lower-cased parts split at `_` and at camelCase
 * boundaries (`parseConfig` -> parseconfig, parse, config; `HTTPServer` -> httpserver, http, server;
 * `MAX_RETRIES` -> max_retries, max, retries). Terms of one character, and a short list of English question and
 * function words (STOP_WORDS: among them the words of the question templates, "where is X defined?" and
 * "which file handles W?"), are dropped. No stemming, no prefix or fuzzy matching: plain BM25 on terms.
 */
import MiniSearch from 'minisearch';
import { ingestSources, type IngestOptions } from '../ingest/index.js';

export const STOP_WORDS = new Set([
  'a', 'an', 'and', 'are', 'does', 'file', 'files', 'for', 'handles', 'how', 'in', 'is', 'it', 'of', 'on', 'or',
  'the', 'to', 'what', 'where', 'which', 'defined', 'who',
]);

/** The tokens of a text: runs of letters, digits and `_` (Unicode letters included). */
export function tokenize(text: string): string[] {
  return text.match(/[\p{L}\p{N}_]+/gu) ?? [];
}

/** The terms one token is indexed (and searched) under: its whole, and its parts when it is a compound. */
export function terms(token: string): string[] {
  const parts = token
    .split('_')
    .flatMap((p) => p.split(/(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/u))
    .map((p) => p.toLowerCase());
  const out = new Set([token.toLowerCase(), ...parts]);
  return [...out].filter((t) => t.length >= 2 && !STOP_WORDS.has(t));
}

interface Doc {
  id: string;
  text: string;
}

function newIndex(): MiniSearch<Doc> {
  return new MiniSearch<Doc>({ fields: ['text'], storeFields: [], tokenize, processTerm: terms });
}

export interface Bm25Index {
  /** Documents indexed (all kinds: code, text, logs, PDFs, like `ctx ingest`). */
  documents: number;
  /** Size of the serialised index (UTF-8 bytes of `JSON.stringify`, i.e. MiniSearch's `toJSON`). */
  indexBytes: number;
  /** Paths of the best `k` documents for a question, best first. */
  search(question: string, k?: number): string[];
}

/**
 * Indexes what `ctx ingest <paths>` would fold, read through the same ingestors (same walker, ignore rules
 * and skips), one document per file with its path as ID. The path is indexed too, as the document's first
 * line, as the stream format puts it in the document's header for the model. A document's text is read
 * whole (code and text files are capped at 2 MiB by the ingestors; a large log or PDF is held in memory
 * while it is indexed).
 */
export async function buildBm25Index(paths: string[], opts: IngestOptions = {}): Promise<Bm25Index> {
  const index = newIndex();
  for await (const item of ingestSources(paths, opts)) {
    if (item.type !== 'document') continue;
    let text = `${item.doc.path}\n`;
    for await (const part of item.doc.parts()) text += part.text;
    index.add({ id: item.doc.path, text });
  }
  return fromIndex(index);
}

/** The same index over documents given directly (path, text), for tests and callers that have the text. */
export function bm25Of(docs: Iterable<[path: string, text: string]>): Bm25Index {
  const index = newIndex();
  for (const [path, text] of docs) index.add({ id: path, text: `${path}\n${text}` });
  return fromIndex(index);
}

function fromIndex(index: MiniSearch<Doc>): Bm25Index {
  return {
    documents: index.documentCount,
    indexBytes: Buffer.byteLength(JSON.stringify(index), 'utf8'),
    // Ties (equal scores) keep MiniSearch's order, which is stable for a given index.
    search: (question, k = 3) => index.search(question).slice(0, k).map((r) => String(r.id)),
  };
}
