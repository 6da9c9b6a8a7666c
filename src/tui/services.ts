/**
 * The real services behind the TUI: one model loaded for the whole session, the snapshot that questions
 * are asked of, and the ingest flow (src/run/ingest.ts, which saves what it folded when aborted).
 */
import { existsSync, statSync } from 'node:fs';
import { CtxError } from '../errors.js';
import { defaultModelDir, loadModel, type Model } from '../engine/model.js';
import { planSources } from '../ingest/index.js';
import { ask, confidence, loadSnapshotFor, type AskSnapshot } from '../run/ask.js';
import { checkIngestPaths, estimateTokens, runIngest } from '../run/ingest.js';
import { snapshotFiles } from '../snapshot/path.js';
import type { AskOutcome, AskRequest, IngestOutcome, IngestRequest, ModelInfo, Services, SnapshotInfo } from './types.js';

export interface ServiceOptions {
  modelDir?: string;
  beams?: number;
  maxTokens?: number;
  /** Save the snapshot at least this often during long ingests (default 30 s, as `ctx ingest`). */
  checkpointMs?: number;
  /** A model already loaded (tests share one). */
  model?: Model;
}

export function createServices(o: ServiceOptions = {}): Services {
  let model: Promise<Model> | undefined = o.model ? Promise.resolve(o.model) : undefined;
  let open: { path: string; snap: AskSnapshot } | undefined;
  const getModel = () => (model ??= loadModel(o.modelDir ?? defaultModelDir()));
  // The model is needed before any snapshot can be opened (it checks the snapshot was made by it).
  let loaded: Model | undefined = o.model;

  return {
    async loadModel(): Promise<ModelInfo> {
      loaded = await getModel();
      const c = loaded.config;
      return { name: c.name, id: c.model_id, trained: c.trained };
    },

    openSnapshot(path: string): SnapshotInfo | undefined {
      if (!loaded) throw new Error('openSnapshot before loadModel');
      if (!existsSync(path)) {
        open = undefined;
        return undefined;
      }
      const snap = loadSnapshotFor(loaded, path);
      open = { path, snap };
      return { path, bytes: statSync(path).size, header: snap.header };
    },

    async ask(r: AskRequest): Promise<AskOutcome> {
      const m = await getModel();
      if (!open || open.path !== r.snapshotPath) throw new CtxError(`no snapshot open at ${r.snapshotPath}`);
      const res = await ask(m, open.snap, r.snapshotPath, r.question, {
        beams: o.beams ?? 3, maxTokens: o.maxTokens ?? 48, onStep: r.onStep, signal: r.signal,
      });
      // The mode (free decoding or the snapshot's paths ranked) is chosen by run/ask.ts, as for `ctx ask`.
      return { answers: res.answers.map((a) => ({ text: a.text, prob: confidence(a) })), ms: res.ms, ...(res.notice ? { notice: res.notice } : {}) };
    },

    async ingest(r: IngestRequest): Promise<IngestOutcome> {
      // A path that does not exist would only be reported as skipped, leaving an empty snapshot behind:
      // refuse it up front (a question typed on the "no snapshot yet" screen lands here).
      checkIngestPaths(r.paths);
      const m = await getModel();
      // List the sources first (cheap: no file is read whole) to give the ETA. Not alongside the fold:
      // onnxruntime-node runs each segment on the main thread, so a concurrent walk would only finish
      // when the fold does.
      const t0 = performance.now();
      const plan = await planSources(r.paths, { exclude: snapshotFiles(r.snapshotPath) }).catch(() => undefined);
      if (plan) {
        r.onEstimate?.({ documents: plan.documents.length, tokens: estimateTokens(plan.documents) });
      }
      // Cancelled while listing: nothing was folded, so nothing is written (a new snapshot is not created empty).
      if (r.signal.aborted) {
        return { snapshot: r.snapshotPath, interrupted: true, documents: 0, skipped: 0, tokens: 0, segments: 0, ms: Math.round(performance.now() - t0) };
      }
      const s = await runIngest({
        model: m, paths: r.paths, snapshotPath: r.snapshotPath, append: r.append, signal: r.signal,
        checkpointMs: o.checkpointMs, onProgress: r.onProgress, onNotice: r.onNotice,
      });
      const documents = Object.values(s.documents).reduce((a, n) => a + (n ?? 0), 0);
      return { snapshot: s.snapshot, interrupted: s.interrupted, documents, skipped: s.skipped.length, tokens: s.tokens, segments: s.segments, ms: s.ms };
    },
  };
}
