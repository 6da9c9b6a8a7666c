import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { emptyState, foldSegment, int64Tensor } from '../src/engine/fold.js';
import { answer, queryCache } from '../src/engine/decode.js';
import { MODEL_DIR, shippedModel } from './helpers.js';

/**
 * Golden vectors from the PyTorch reference (train/export.py, float16 weights computed in float32).
 * Tolerance: |onnx - torch| <= 1e-4 + 2e-3 * |torch|, elementwise. Both sides compute in float32 from the
 * same float16 weights; what remains is summation order over up to ~1,500 segment tokens and 6 layers.
 * A model whose fold graphs have int8 weights (config int8_fold; the reference computes what ONNX Runtime's int8
 * MatMuls compute, train/quantize.py) cannot be held to that: a last-bit difference upstream moves an activation
 * across a rounding step of its 8-bit quantization, so its state is checked as a whole, within INT8_FOLD (measured:
 * 0.7 % of the sample's norm after 2.3 segments; a wrong weight or graph is off by its whole size). Decoding is
 * float in every model and starts from a fixed state (golden decode_state_rule), not from the fold.
 */
const INT8_FOLD = 0.02;
const golden = JSON.parse(readFileSync(join(MODEL_DIR, 'golden.json'), 'utf8'));

function assertClose(actual: ArrayLike<number>, expected: number[], what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) - (1e-4 + 2e-3 * Math.abs(expected[i]));
    if (err > worst) worst = err;
    assert.ok(err <= 0, `${what}[${i}]: onnx ${actual[i]} vs torch ${expected[i]}`);
  }
}

async function goldenState() {
  const model = await shippedModel();
  const V = model.config.vocab_size;
  const lengths: number[] = golden.stream_segment_lengths;
  let state = emptyState(model);
  let i = 0;
  for (const n of lengths) {
    const seg = Array.from({ length: n }, (_, k) => ((i + k) * 7919 + 13) % (V - 8) + 8);
    state = await foldSegment(model, state, seg);
    i += n;
  }
  return { model, state };
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

test('fold matches the PyTorch reference state after 2.3 segments', async () => {
  const { model, state } = await goldenState();
  const stride: number = golden.state_stride;
  const sample = Array.from({ length: golden.state_sample.length }, (_, k) => state[k * stride]);
  const l2 = norm(state);
  if (model.config.int8_fold) {
    const off = norm(sample.map((v, k) => v - golden.state_sample[k])) / norm(golden.state_sample);
    assert.ok(off <= INT8_FOLD, `int8 fold: state sample ${(100 * off).toFixed(2)} % off the reference`);
    assert.ok(Math.abs(l2 - golden.state_l2) <= INT8_FOLD * golden.state_l2, `state l2 ${l2} vs ${golden.state_l2}`);
    return;
  }
  assertClose(sample, golden.state_sample, 'state');
  assert.ok(Math.abs(l2 - golden.state_l2) <= 1e-3 * golden.state_l2, `state l2 ${l2} vs ${golden.state_l2}`);
});

/** golden.json's decode_state_rule, computed in float64 as the reference does. */
function decodeState(size: number): Float32Array {
  return Float32Array.from({ length: size }, (_, i) => 0.05 * (1 + Math.sin(i * 0.618)));
}

test('decode matches the reference logits, with and without the KV cache', async () => {
  const model = await shippedModel();
  const state = decodeState(model.config.state_size);
  const q: number[] = golden.question;
  const { n_layers: L, n_heads: H, d_model, vocab_size: V } = model.config;
  const dh = d_model / H;
  const empty = new ort.Tensor('float32', new Float32Array(0), [L, 1, H, 0, dh]);
  const stateT = new ort.Tensor('float32', state, [1, state.length]);
  // A model whose memory queries convolve the rows before them (config q_cache, train/model.py) also carries
  // those rows' query projections: zeros before the first token.
  const [R, W] = queryCache(model);
  const noRows: Record<string, ort.Tensor> = R > 0 ? { past_q: new ort.Tensor('float32', new Float32Array(L * R * W), [L, 1, R, W]) } : {};
  const r1 = await model.decode.run({ tokens: int64Tensor(q, [1, q.length]), offset: new ort.Tensor('int64', BigInt64Array.of(0n), []), state: stateT, past_k: empty, past_v: empty, ...noRows });
  const logits = r1.logits.data as Float32Array;
  const last = logits.subarray((q.length - 1) * V, q.length * V);
  assertClose(Array.from(last.subarray(0, 256)), golden.logits_last, 'logits_last');
  let arg = 0;
  for (let i = 1; i < V; i++) if (last[i] > last[arg]) arg = i;
  assert.equal(arg, golden.argmax_last);
  const r2 = await model.decode.run({ tokens: int64Tensor([arg], [1, 1]), offset: new ort.Tensor('int64', BigInt64Array.of(BigInt(q.length)), []), state: stateT, past_k: r1.present_k, past_v: r1.present_v, ...(R > 0 ? { past_q: r1.present_q as ort.Tensor } : {}) });
  assertClose(Array.from((r2.logits.data as Float32Array).subarray(0, 256)), golden.logits_step2, 'logits_step2');
});

test('asking is deterministic and never changes the state', async () => {
  const { model, state } = await goldenState();
  const before = Float32Array.from(state);
  const a = await answer(model, state, 'where is the pass key defined?', { beams: 3, maxTokens: 12 });
  const b = await answer(model, state, 'where is the pass key defined?', { beams: 3, maxTokens: 12 });
  assert.deepEqual(a, b);
  assert.equal(a.length, 3);
  assert.deepEqual(state, before);
  for (let i = 1; i < a.length; i++) assert.ok(a[i - 1].logprob >= a[i].logprob, 'answers sorted by probability');
  for (const x of a) assert.ok(x.prob > 0 && x.prob <= 1);
});

test('greedy decoding (one beam) returns the single most likely first token path', async () => {
  const { model, state } = await goldenState();
  const [g] = await answer(model, state, 'what is the pass key?', { beams: 1, maxTokens: 6 });
  assert.ok(g.tokens.length >= 1 && g.tokens.length <= 6);
});
