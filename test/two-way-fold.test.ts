import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyMemory, emptyState, foldMemory, foldSegment } from '../src/engine/fold.js';
import type { Model } from '../src/engine/model.js';
import { shippedModel } from './helpers.js';

/** The shipped graphs with a two-way config: whether a model's memories suit it is train/RUNS.md's business
 *  (run 31); here only the bookkeeping is checked against plain folds of the same graphs. */
async function twoWayModel(after: number, empty: [number, number][]): Promise<Model> {
  const model = await shippedModel();
  return { ...model, config: { ...model.config, two_way: { after_segments: after, empty } } };
}

const segment = (i: number) => Array.from({ length: 40 }, (_, k) => ((i * 40 + k) * 7919 + 13) % 8000 + 8);
const zeroed = (s: Float32Array, [a, b]: [number, number]) => s.subarray(a, b).every((v) => v === 0);

test('a two-way model folds both ways for its first segments, then the memory tokens alone only', async () => {
  const range: [number, number] = [0, 1000];
  const model = await twoWayModel(2, [range]);
  let memory = emptyMemory(model);
  let plain = emptyState(model);
  let alone = emptyState(model);
  for (let i = 0; i < 3; i++) {
    memory = await foldMemory(model, memory, segment(i), i);
    plain = await foldSegment(model, plain, segment(i));
    alone = (await foldSegment(model, alone, segment(i))).fill(0, ...range);
    if (i < 2) {
      assert.deepEqual(memory.state, plain, `segment ${i}: every memory on, as a one-way fold`);
      assert.deepEqual(memory.alone, alone, `segment ${i}: the second state has the range emptied`);
      assert.ok(!zeroed(memory.state, range) && zeroed(memory.alone!, range));
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
