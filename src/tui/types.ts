/**
 * What the TUI needs from the rest of ctx, as one small interface. The real implementation (services.ts)
 * wraps the model, the snapshot file and the ingest flow; tests pass fakes, so every piece of UI behaviour
 * (history, cancel, commands, widths, NO_COLOR) can be checked without loading the model.
 */
import type { IngestProgress } from '../run/ingest.js';
import type { SnapshotHeader } from '../snapshot/file.js';

export type { IngestProgress };

export interface ModelInfo {
  name: string;
  /** The model's id (a hash); shown shortened. */
  id: string;
  /** False for the shipped random-weights model: its answers are meaningless, and the header says so. */
  trained: boolean;
}

export interface SnapshotInfo {
  path: string;
  /** Size of the file on disk (fixed by the model). */
  bytes: number;
  header: SnapshotHeader;
}

export interface AnswerView {
  text: string;
  /** The confidence shown, 0..1: the whole answer's probability, or, when the answer is one of the paths the
   *  snapshot folded ranked by the model (a "where / which file" question), its share among them. */
  prob: number;
}

export interface AskOutcome {
  answers: AnswerView[];
  ms: number;
  /** One line about how the question was answered (e.g. a file question answered freely, and why). */
  notice?: string;
}

export interface AskRequest {
  snapshotPath: string;
  question: string;
  signal: AbortSignal;
  /** Called after every decoding step with the best answer so far (it may change, not only grow). */
  onStep: (partial: string) => void;
}

export interface IngestRequest {
  paths: string[];
  snapshotPath: string;
  /** Fold into the existing snapshot instead of starting a new one. */
  append: boolean;
  /** Aborting stops the ingest; the snapshot stays as it was, what was folded is kept as a resumable partial, and the outcome says interrupted. */
  signal: AbortSignal;
  onProgress: (p: IngestProgress) => void;
  /** What the sources hold, once they have been listed (for the ETA); may never come. */
  onEstimate?: (e: IngestEstimate) => void;
  /** One-line notices of the ingest flow, e.g. "resuming: 12 documents already folded". */
  onNotice?: (line: string) => void;
}

/** Expected totals of an ingest, from listing the sources before folding them. */
export interface IngestEstimate {
  documents: number;
  tokens: number;
}

export interface IngestOutcome {
  snapshot: string;
  interrupted: boolean;
  documents: number;
  skipped: number;
  tokens: number;
  segments: number;
  ms: number;
}

export interface Services {
  /** Load the model (once; it stays loaded for the session). */
  loadModel(): Promise<ModelInfo>;
  /** Open the snapshot at path and make it the one asked; undefined when there is no file there yet.
   *  Throws CtxError for a corrupt snapshot or one made by another model. */
  openSnapshot(path: string): SnapshotInfo | undefined;
  /** Answer from the snapshot opened at snapshotPath; rejects with an AbortError when the signal aborts. */
  ask(r: AskRequest): Promise<AskOutcome>;
  ingest(r: IngestRequest): Promise<IngestOutcome>;
}

/** The question box's history across sessions (src/tui/history.ts); without one it lasts one session. */
export interface HistoryStore {
  load(): string[];
  add(line: string): void;
}

/** Settings shared by the Ink app and the line mode. */
export interface SessionOptions {
  services: Services;
  snapshotPath: string;
  /** Where questions and commands typed in the Ink app are kept for the next session. */
  history?: HistoryStore;
  /** No colours at all (NO_COLOR is set). */
  noColor?: boolean;
  /** Base folder for relative paths typed in the session (default: the process's cwd). */
  cwd?: string;
}
