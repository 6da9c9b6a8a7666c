/** Ask a question of a snapshot: load it (never the sources), check it fits the model, decode answers. */
import { answer, type Answer, type DecodeOptions } from '../engine/decode.js';
import type { Model } from '../engine/model.js';
import { checkCompatible, readSnapshot, type Snapshot } from '../snapshot/file.js';

export interface AskResult {
  question: string;
  answers: Answer[];
  snapshot: string;
  memory: 'on' | 'off';
  ms: number;
}

export function loadSnapshotFor(model: Model, path: string): Snapshot {
  const snap = readSnapshot(path);
  checkCompatible(snap.header, model.config, path);
  return snap;
}

export async function ask(model: Model, snap: Snapshot, path: string, question: string, opts: DecodeOptions & { memory?: boolean } = {}): Promise<AskResult> {
  const t0 = performance.now();
  const useMemory = opts.memory ?? true;
  const state = useMemory ? snap.state : new Float32Array(snap.state.length);
  const answers = await answer(model, state, question, opts);
  return { question, answers, snapshot: path, memory: useMemory ? 'on' : 'off', ms: Math.round(performance.now() - t0) };
}
