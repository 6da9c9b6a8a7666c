/**
 * The ingest flow: sources -> documents -> stream format -> segments -> fold -> snapshot.
 * The snapshot is checkpointed every `checkpointMs` (the open segment is folded first, so the snapshot holds
 * exactly the text read so far), at the end, and when the signal aborts (Ctrl-C): an interruption loses
 * nothing that was checkpointed, and the existing snapshot file is only ever replaced atomically.
 */
import type { Model } from '../engine/model.js';
import { emptyState, foldSegment } from '../engine/fold.js';
import { ingestSources, type IngestOptions as SourceOptions } from '../ingest/index.js';
import type { DocKind, Document, Skipped } from '../ingest/types.js';
import { Segmenter } from '../stream/segmenter.js';
import { checkCompatible, newHeader, readSnapshot, snapshotBytes, writeSnapshot, type Snapshot } from '../snapshot/file.js';
import { existsSync } from 'node:fs';

export interface IngestProgress {
  documents: number;
  skipped: number;
  pages: number;
  tokens: number;
  segments: number;
  elapsedMs: number;
  tokensPerSec: number;
  path?: string;
}

export interface IngestSummary {
  snapshot: string;
  snapshotBytes: number;
  documents: Partial<Record<DocKind, number>>;
  skipped: Skipped[];
  /** Tokens and segments folded by this run. */
  tokens: number;
  segments: number;
  /** Totals held by the snapshot (this run plus what it was appended to). */
  total: Snapshot['header']['counts'];
  ms: number;
  interrupted: boolean;
}

export interface IngestRunOptions {
  model: Model;
  paths: string[];
  snapshotPath: string;
  append?: boolean;
  checkpointMs?: number;
  signal?: AbortSignal;
  sources?: SourceOptions;
  onProgress?: (p: IngestProgress) => void;
  onSkip?: (s: Skipped) => void;
}

export async function runIngest(o: IngestRunOptions): Promise<IngestSummary> {
  const { model } = o;
  const t0 = performance.now();
  const snap = startSnapshot(o);
  const seg = new Segmenter(model.tokenizer, model.config.seg_len);
  const run = { tokens: 0, segments: 0, pages: 0, documents: {} as Partial<Record<DocKind, number>>, docCount: 0 };
  const skipped: Skipped[] = [];
  let lastCheckpoint = performance.now();
  let current: string | undefined;

  const progress = () => {
    const elapsedMs = performance.now() - t0;
    o.onProgress?.({ documents: run.docCount, skipped: skipped.length, pages: run.pages, tokens: run.tokens, segments: run.segments,
      elapsedMs, tokensPerSec: run.tokens / Math.max(1e-3, elapsedMs / 1000), path: current });
  };
  const fold = async (segments: Int32Array[]) => {
    for (const s of segments) {
      snap.state = await foldSegment(model, snap.state, s);
      run.tokens += s.length;
      run.segments += 1;
      snap.header.counts.tokens += s.length;
      snap.header.counts.segments += 1;
    }
    if (segments.length) progress();
  };
  const checkpoint = async () => {
    const last = seg.flush();
    if (last) await fold([last]);
    snap.header.updated = new Date().toISOString();
    writeSnapshot(o.snapshotPath, snap);
    lastCheckpoint = performance.now();
  };

  let interrupted = false;
  snap.header.counts.sources += o.paths.length;
  try {
    for await (const item of ingestSources(o.paths, o.sources)) {
      if (o.signal?.aborted) { interrupted = true; break; }
      if (item.type === 'skipped') {
        skipped.push(item.skipped);
        o.onSkip?.(item.skipped);
        continue;
      }
      current = item.doc.path;
      if (!(await foldDocument(item.doc, seg, fold, o.signal, run))) { interrupted = true; break; }
      run.documents[item.doc.kind] = (run.documents[item.doc.kind] ?? 0) + 1;
      run.docCount += 1;
      snap.header.counts.documents += 1;
      if (performance.now() - lastCheckpoint > (o.checkpointMs ?? 30_000)) await checkpoint();
    }
  } finally {
    await checkpoint();
  }
  return {
    snapshot: o.snapshotPath, snapshotBytes: snapshotBytes(snap.state.length), documents: run.documents, skipped,
    tokens: run.tokens, segments: run.segments, total: snap.header.counts, ms: Math.round(performance.now() - t0), interrupted,
  };
}

/** Streams one document's parts through the segmenter; false when aborted midway. */
async function foldDocument(doc: Document, seg: Segmenter, fold: (s: Int32Array[]) => Promise<void>,
  signal: AbortSignal | undefined, run: { pages: number }): Promise<boolean> {
  await fold(seg.beginDocument(doc));
  for await (const part of doc.parts()) {
    if (signal?.aborted) return false;
    if (part.page !== undefined) {
      run.pages += 1;
      await fold(seg.beginPage(part.page));
    }
    await fold(seg.text(part.text));
  }
  return true;
}

function startSnapshot(o: IngestRunOptions): Snapshot {
  if (o.append && existsSync(o.snapshotPath)) {
    const snap = readSnapshot(o.snapshotPath);
    checkCompatible(snap.header, o.model.config, o.snapshotPath);
    return snap;
  }
  return { header: newHeader(o.model.config), state: emptyState(o.model) };
}
