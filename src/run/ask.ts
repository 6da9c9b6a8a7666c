/**
 * Ask a question of a snapshot: load it and its sidecar manifest (never the sources), check it fits the model,
 * and answer in one of two modes. This is the one place that chooses the mode (the CLI, `eval repo` and the
 * TUI all ask through here):
 *
 *   paths  the question asks for a file ("where is X defined?", "which file handles Y?": `asksForFile`) and
 *          the manifest lists the document paths the snapshot folded: every one of them is scored by the
 *          model's log-likelihood of it as the answer (scoreAnswers), and the best are returned, ranked, with
 *          their share of the probability over all the candidates. The answer is always a folded path.
 *   free   anything else, or `mode: 'free'`: beam-search decoding (answer).
 *
 * A file question whose snapshot's manifest lists no paths (missing, written by an older ctx, unreadable)
 * is answered freely, with a one-line notice.
 */
import { answer, logSumExp, scoreAnswers, type Answer, type DecodeOptions } from '../engine/decode.js';
import type { Model } from '../engine/model.js';
import { CtxError } from '../errors.js';
import { documentPaths, manifestPath, readManifestSync } from '../ingest/index.js';
import { checkCompatible, readSnapshot, type Snapshot } from '../snapshot/file.js';

export type AskMode = 'paths' | 'free';

/** A snapshot opened for asking: its state, and the document paths its manifest lists (the candidates). */
export interface AskSnapshot extends Snapshot {
  /** Document paths folded, each once; undefined when the manifest does not list them. */
  paths?: string[];
  /** Why there are no paths (one line), when there are none. */
  pathsMissing?: string;
}

export interface AskAnswer extends Answer {
  /** Paths mode: this path's share of the probability over all candidates (softmax of their logprobs). */
  share?: number;
}

export interface AskResult {
  question: string;
  mode: AskMode;
  answers: AskAnswer[];
  /** Paths mode: how many paths were scored. */
  candidates?: number;
  /** One line for the user, e.g. why a file question was answered freely. */
  notice?: string;
  snapshot: string;
  memory: 'on' | 'off';
  ms: number;
}

export interface AskOptions extends DecodeOptions {
  memory?: boolean;
  /** 'auto' (default): paths mode for file questions when the manifest lists paths, else free.
   *  'paths': paths mode, an error when there are no paths. 'free': free decoding always. */
  mode?: 'auto' | AskMode;
}

/**
 * Questions that ask for a file or a location, as the training tasks put them (train/tasks.py,
 * _where_defined and _which_file_topic): "where is X defined?", "where is the function X?", "where can I
 * find the definition of X?", "where is W handled?", "which file defines X?", "which file handles W?",
 * "in which file is X defined?", and also "what file ...", "in what file ...".
 */
const FILE_QUESTION = /^\s*(?:where\b|(?:in\s+)?(?:which|what)\s+files?\b)/i;

export function asksForFile(question: string): boolean {
  return FILE_QUESTION.test(question);
}

export function loadSnapshotFor(model: Model, path: string): AskSnapshot {
  const snap = readSnapshot(path);
  checkCompatible(snap.header, model.config, path);
  return { ...snap, ...candidatePaths(path) };
}

/** The candidate paths of the snapshot at `path`, from its manifest; never throws. */
export function candidatePaths(snapshotPath: string): { paths?: string[]; pathsMissing?: string } {
  const file = manifestPath(snapshotPath);
  try {
    const m = readManifestSync(snapshotPath);
    if (!m) return { pathsMissing: `no ${file}` };
    const paths = documentPaths(m);
    return paths ? { paths } : { pathsMissing: `${file} lists no document paths (written by an older ctx: ingest again to list them)` };
  } catch (e) {
    return { pathsMissing: (e as Error).message };
  }
}

/** Which mode answers this question of this snapshot, and the notice to give when a file question cannot
 *  be answered in paths mode. */
export function chooseMode(snap: AskSnapshot, question: string, mode: AskOptions['mode'] = 'auto'): { mode: AskMode; notice?: string } {
  if (mode === 'free') return { mode: 'free' };
  const hasPaths = (snap.paths?.length ?? 0) > 0;
  if (mode === 'paths') {
    if (!hasPaths) throw new CtxError(`cannot rank paths: ${snap.pathsMissing ?? 'the manifest lists none'}`);
    return { mode: 'paths' };
  }
  if (!asksForFile(question)) return { mode: 'free' };
  if (hasPaths) return { mode: 'paths' };
  return { mode: 'free', notice: `answering by free decoding: ${snap.pathsMissing ?? 'the snapshot lists no document paths'}` };
}

export async function ask(model: Model, snap: AskSnapshot, path: string, question: string, opts: AskOptions = {}): Promise<AskResult> {
  const t0 = performance.now();
  const useMemory = opts.memory ?? true;
  const state = useMemory ? snap.state : new Float32Array(snap.state.length);
  const { mode, notice } = chooseMode(snap, question, opts.mode);
  const done = (r: Pick<AskResult, 'answers' | 'candidates'>): AskResult => ({
    question, mode, ...r, ...(notice ? { notice } : {}), snapshot: path, memory: useMemory ? 'on' : 'off',
    ms: Math.round(performance.now() - t0),
  });
  if (mode === 'free') return done({ answers: await answer(model, state, question, opts) });
  const paths = snap.paths ?? [];
  const scored = await scoreAnswers(model, state, question, paths, { signal: opts.signal });
  return done({ answers: rankAnswers(scored, Math.max(1, opts.beams ?? 3)), candidates: paths.length });
}

/** The best `k` candidates, best first, each with its probability and its share over all candidates. */
export function rankAnswers(scored: Pick<Answer, 'text' | 'tokens' | 'logprob'>[], k: number): AskAnswer[] {
  if (scored.length === 0) return [];
  const lse = logSumExp(scored.map((s) => s.logprob));
  // Ties keep the candidates' (sorted) order.
  return scored
    .map((s, i) => ({ s, i }))
    .sort((a, b) => b.s.logprob - a.s.logprob || a.i - b.i)
    .slice(0, k)
    .map(({ s }) => ({ text: s.text, tokens: s.tokens, logprob: s.logprob, prob: Math.exp(s.logprob), share: Math.exp(s.logprob - lse) }));
}

/** The confidence to show a person: the share among the candidates in paths mode, else the probability. */
export function confidence(a: AskAnswer): number {
  return a.share ?? a.prob;
}
