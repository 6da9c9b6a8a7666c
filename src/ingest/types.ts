/**
 * What every ingestor produces: documents (path, kind, text) and skip notices. Ingestors know nothing of
 * tokens; the stream format (src/stream) turns documents into token segments.
 */
export type DocKind = 'code' | 'text' | 'pdf' | 'log';

/** One piece of a document's text, in order. A PDF yields one part per page; a log yields batches of lines. */
export interface DocPart {
  text: string;
  /** 1-based page number, PDFs only: the stream format writes a page marker before the part. */
  page?: number;
}

export interface Document {
  kind: DocKind;
  /** Path as the user will ask about it: relative to the ingest root where there is one, '/' separators. */
  path: string;
  /** Absolute path on disk (for the manifest: size and mtime are read from it). */
  absPath: string;
  /** PDF metadata title, when present. */
  title?: string;
  /** The text, streamed: never hold a whole large file in memory. Parts must end at line boundaries
   *  (except the last), so that tokenizing parts one by one equals tokenizing the whole text. */
  parts(): AsyncIterable<DocPart>;
}

/** A source that was not ingested, and why (binary, too large, unreadable, encrypted PDF, ...). */
export interface Skipped {
  path: string;
  reason: string;
}

export type IngestItem = { type: 'document'; doc: Document } | { type: 'skipped'; skipped: Skipped };
