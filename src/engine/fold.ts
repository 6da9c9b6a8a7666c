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

/** Fold one segment (at most seg_len tokens) into the state; returns the new state. */
export async function foldSegment(model: Model, state: Float32Array, segment: ArrayLike<number>): Promise<Float32Array> {
  if (segment.length === 0) return state;
  if (segment.length > model.config.seg_len) throw new Error(`segment of ${segment.length} tokens exceeds seg_len`);
  const out = await model.fold.run({
    tokens: int64Tensor(segment, [1, segment.length]),
    state: new ort.Tensor('float32', state, [1, state.length]),
  });
  return out.new_state.data as Float32Array;
}
