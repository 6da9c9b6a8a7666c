/**
 * What the shipped model can do, end to end through the product: the README's demo. A pass key buried in the
 * middle of a licence text (fixtures/notes, ~9K tokens, 18 segments) is folded into a snapshot and asked for;
 * the answer must come from the memory, so the same question with the memory switched off must not find it.
 * This fails if a new model is shipped that cannot do what README and BENCHMARKS.md say it can.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ask } from '../src/run/ask.js';
import { foldFixture } from './helpers.js';

const KEY = '58203'; // "The pass key is 58203." at line 407 of fixtures/notes/gpl-3.0-with-pass-key.txt

test('the shipped model recalls the pass key of fixtures/notes from its memory, and not without it', async () => {
  const { model, snapshotPath, snap } = await foldFixture('notes');
  const question = 'What is the pass key?';
  const on = await ask(model, snap, snapshotPath, question, { beams: 3, maxTokens: 12 });
  assert.equal(on.answers[0].text.trim(), KEY, `memory on: ${on.answers.map((a) => a.text).join(' | ')}`);
  const off = await ask(model, snap, snapshotPath, question, { beams: 3, maxTokens: 12, memory: false });
  assert.ok(!off.answers.some((a) => a.text.includes(KEY)), `memory off found the key: ${off.answers.map((a) => a.text).join(' | ')}`);
});
