import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { emptyMemory, emptyState, foldMemory, foldSegment } from '../src/engine/fold.js';
import { loadModel, type Model } from '../src/engine/model.js';
import { CtxError } from '../src/errors.js';
import { MODEL_DIR, shippedModel, tempDir } from './helpers.js';

/** The shipped model is two-way (train/RUNS.md runs 31-33); these tests check the fold's bookkeeping and its second
 *  graph against plain folds, not what the model answers. */
async function twoWay(): Promise<Model & { foldAlone: NonNullable<Model['foldAlone']>; config: { two_way: NonNullable<Model['config']['two_way']> } }> {
  const model = await shippedModel();
  assert.ok(model.config.two_way && model.foldAlone, 'the shipped model is two-way, with fold_alone.onnx');
  return model as Awaited<ReturnType<typeof twoWay>>;
}

const segment = (i: number) => Array.from({ length: 40 }, (_, k) => ((i * 40 + k) * 7919 + 13) % 8000 + 8);
const emptied = (s: Float32Array, ranges: [number, number][]) => {
  for (const [a, b] of ranges) s.fill(0, a, b);
  return s;
};

test('fold_alone computes exactly the fold with the every-row memories emptied before and after each segment', async () => {
  const model = await twoWay();
  const { empty } = model.config.two_way;
  let alone = emptyState(model);
  let reference = emptyState(model);
  for (let i = 0; i < 3; i++) {
    alone = await foldSegment(model, alone, segment(i), model.foldAlone);
    reference = emptied(await foldSegment(model, reference, segment(i)), empty);
    assert.deepEqual(alone, reference, `segment ${i}`);
  }
  assert.ok(empty.every(([a, b]) => alone.subarray(a, b).every((v) => v === 0)), 'the every-row memories stay empty');
  assert.ok(alone.some((v) => v !== 0), 'the memory tokens carry the input');
});

test('a two-way model folds both ways for its first segments, then the memory tokens alone only', async () => {
  const shipped = await twoWay();
  const model: Model = { ...shipped, config: { ...shipped.config, two_way: { ...shipped.config.two_way, after_segments: 2 } } };
  let memory = emptyMemory(model);
  let plain = emptyState(model);
  let alone = emptyState(model);
  for (let i = 0; i < 3; i++) {
    memory = await foldMemory(model, memory, segment(i), i);
    plain = await foldSegment(model, plain, segment(i));
    alone = await foldSegment(model, alone, segment(i), shipped.foldAlone);
    if (i < 2) {
      assert.deepEqual(memory.state, plain, `segment ${i}: every memory on, as a one-way fold`);
      assert.deepEqual(memory.alone, alone, `segment ${i}: the second state, folded alone`);
    } else {
      assert.equal(memory.alone, undefined, 'past after_segments only one state is kept');
      assert.deepEqual(memory.state, alone, 'and it is the memory tokens alone');
    }
  }
});

test('a one-way model (no two_way) keeps one state', async () => {
  const shipped = await shippedModel();
  const model: Model = { ...shipped, config: { ...shipped.config, two_way: undefined } };
  const memory = await foldMemory(model, emptyMemory(model), segment(0), 0);
  assert.equal(memory.alone, undefined);
  assert.deepEqual(memory.state, await foldSegment(model, emptyState(model), segment(0)));
});

test('a two-way model folder without fold_alone.onnx is refused with a clear error', async () => {
  const dir = tempDir();
  for (const f of readdirSync(MODEL_DIR)) if (f !== 'fold_alone.onnx') symlinkSync(join(MODEL_DIR, f), join(dir, f));
  await assert.rejects(loadModel(dir), (e: Error) => e instanceof CtxError && /missing fold_alone\.onnx/.test(e.message));
});
