/**
 * Folding: the memory state after a segment is a function of the state before it and the segment's tokens.
 * TypeScript owns the loop; each step is one run of the fold graph.
 */
import ort from 'onnxruntime-node';
import type { Model } from './model.js';

export function emptyState(model: Model): Float32Array {
  return new Float32Array(model.config.state_size);
}

export function int64Tensor(ids: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(ids.length);
  for (let i = 0; i < ids.length; i++) data[i] = BigInt(ids[i]);
  return new ort.Tensor('int64', data, dims);
}

/** Fold one segment (at most seg_len tokens) into the state with `graph` (the model's fold unless given); returns the new state. */
export async function foldSegment(model: Model, state: Float32Array, segment: ArrayLike<number>, graph = model.fold): Promise<Float32Array> {
  if (segment.length === 0) return state;
  if (segment.length > model.config.seg_len) throw new Error(`segment of ${segment.length} tokens exceeds seg_len`);
  const out = await graph.run({
    tokens: int64Tensor(segment, [1, segment.length]),
    state: new ort.Tensor('float32', state, [1, state.length]),
  });
  return out.new_state.data as Float32Array;
}

/**
 * What an input folds into: `state`, the one questions are decoded from, and for a two-way model
 * (config.two_way) still within its first `after_segments` segments, `alone`: the same input folded with the
 * every-row layers' memories neither read nor written (model.foldAlone), so that only the memory tokens carry it. A hybrid's
 * every-row memories bind names but drown a pass key past a few hundred segments, where its memory tokens alone
 * still hold it at 1M tokens (train/RUNS.md run 31); past `after_segments` the fold goes on with `alone` only,
 * and it becomes `state`.
 */
export interface Memory {
  state: Float32Array;
  alone?: Float32Array;
}

export function emptyMemory(model: Model): Memory {
  return model.config.two_way ? { state: emptyState(model), alone: emptyState(model) } : { state: emptyState(model) };
}

/** Fold one segment into a memory that has folded `before` segments (both ways while a two-way model needs both). */
export async function foldMemory(model: Model, memory: Memory, segment: ArrayLike<number>, before: number): Promise<Memory> {
  const twoWay = model.config.two_way;
  if (!twoWay) return { state: await foldSegment(model, memory.state, segment) };
  if (!model.foldAlone) throw new Error('a two-way model folds its second state with fold_alone.onnx, not loaded');
  const alone = await foldSegment(model, memory.alone ?? memory.state, segment, model.foldAlone);
  if (!memory.alone || before + 1 > twoWay.after_segments) return { state: alone };
  return { state: await foldSegment(model, memory.state, segment), alone };
}
