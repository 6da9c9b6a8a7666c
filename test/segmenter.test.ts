import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SPECIAL, Tokenizer } from '../src/tokenizer/index.js';
import { Segmenter } from '../src/stream/segmenter.js';
import { continuationHeader, documentHeader, MAX_HEADER_TOKENS } from '../src/stream/format.js';
import { MODEL_DIR } from './helpers.js';

const tok = await Tokenizer.load(join(MODEL_DIR, 'tokenizer.model'));
const text = Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join('');

function startsWith(seg: Int32Array, prefix: number[]): boolean {
  return prefix.every((id, i) => seg[i] === id);
}

test('every segment but the last is exactly segLen tokens, and no text is lost', () => {
  const seg = new Segmenter(tok, 64);
  const out = [...seg.beginDocument({ kind: 'code', path: 'src/a.ts' }), ...seg.text(text)];
  const last = seg.flush();
  assert.ok(out.length > 5);
  for (const s of out) assert.equal(s.length, 64);
  assert.ok(last && last.length > 0 && last.length <= 64);
  const cont = continuationHeader(tok, { kind: 'code', path: 'src/a.ts' });
  const body = [...out, last!].flatMap((s, i) => Array.from(i === 0 ? s.subarray(documentHeader(tok, { kind: 'code', path: 'src/a.ts' }).length) : s.subarray(cont.length)));
  assert.equal(tok.decode(body), text);
});

test('a segment that begins mid-document starts with that document\'s continuation header', () => {
  const seg = new Segmenter(tok, 64);
  const out = [...seg.beginDocument({ kind: 'code', path: 'src/a.ts' }), ...seg.text(text)];
  assert.ok(startsWith(out[0], documentHeader(tok, { kind: 'code', path: 'src/a.ts' })));
  for (const s of out.slice(1)) assert.ok(startsWith(s, continuationHeader(tok, { kind: 'code', path: 'src/a.ts' })));
  assert.equal(out[1][0], SPECIAL.cont);
});

test('inside a PDF page the continuation header carries the page number', () => {
  const seg = new Segmenter(tok, 64);
  const doc = { kind: 'pdf' as const, path: 'manual.pdf', title: 'The Manual' };
  const out = [...seg.beginDocument(doc), ...seg.beginPage(1), ...seg.text('short page\n'), ...seg.beginPage(2), ...seg.text(text)];
  const withPage = continuationHeader(tok, doc, 2);
  assert.ok(out.slice(1).some((s) => startsWith(s, withPage)));
  assert.ok(withPage.includes(SPECIAL.page));
});

test('a very long path is cut so that a header never crowds out the text', () => {
  const path = 'a/'.repeat(400) + 'file.ts';
  assert.ok(documentHeader(tok, { kind: 'code', path }).length <= MAX_HEADER_TOKENS);
  assert.ok(tok.decode(documentHeader(tok, { kind: 'code', path })).includes('file.ts'));
});

test('a segmenter restored from pending() and enter() cuts the rest exactly as one that never stopped', () => {
  const doc = { kind: 'pdf' as const, path: 'manual.pdf' };
  const half = text.slice(0, 1000);
  const rest = text.slice(1000);
  const once = new Segmenter(tok, 64);
  const all = [...once.beginDocument(doc), ...once.beginPage(3), ...once.text(half), ...once.text(rest), once.flush()!];

  const first = new Segmenter(tok, 64);
  const before = [...first.beginDocument(doc), ...first.beginPage(3), ...first.text(half)];
  const open = first.pending();
  assert.ok(open.length > 0 && open.length < 64);
  const second = new Segmenter(tok, 64);
  second.restore(open);
  second.enter(doc, 3);
  const after = [...second.text(rest), second.flush()!];
  assert.deepEqual([...before, ...after].map((s) => Array.from(s)), all.map((s) => Array.from(s)));
  assert.throws(() => second.restore(new Array(64).fill(1)), /fewer than 64/);
});
