/**
 * The stream format is pinned to test/golden/stream.json: the TypeScript Segmenter must still produce it, and
 * train/tests/test_stream.py checks the Python mirror against the same file. If this fails after an intended
 * format change, regenerate: node dist/scripts/stream-golden.js > test/golden/stream.json (and update
 * train/stream.py until its test passes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { golden, SEG_LEN } from '../scripts/stream-golden.js';

const GOLDEN = fileURLToPath(new URL('../../test/golden/stream.json', import.meta.url));

test('the stream format reproduces the golden file', async () => {
  const want = JSON.parse(readFileSync(GOLDEN, 'utf8'));
  const got = JSON.parse(JSON.stringify(await golden()));
  assert.deepEqual(got.docs, want.docs, 'golden inputs changed');
  assert.deepEqual(got.questions, want.questions);
  assert.deepEqual(got.answers, want.answers);
  assert.equal(got.segments.length, want.segments.length);
  got.segments.forEach((s: number[], i: number) => assert.deepEqual(s, want.segments[i], `segment ${i}`));
});

test('golden segments are full except the last, and cover the tricky cases', () => {
  const want = JSON.parse(readFileSync(GOLDEN, 'utf8'));
  const segs: number[][] = want.segments;
  segs.slice(0, -1).forEach((s) => assert.equal(s.length, SEG_LEN));
  const CONT = 4;
  assert.ok(segs.filter((s) => s[0] === CONT).length >= 3, 'several segments begin mid-document');
  // The very long path: its continuation header is capped at half a segment.
  assert.ok(segs.some((s) => s[0] === CONT && !s.slice(1, SEG_LEN / 2).includes(18)), 'a capped continuation header');
});
