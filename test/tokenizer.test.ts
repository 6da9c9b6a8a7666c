import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { SPECIAL, Tokenizer } from '../src/tokenizer/index.js';
import { MODEL_DIR, tempDir } from './helpers.js';

const tok = await Tokenizer.load(join(MODEL_DIR, 'tokenizer.model'));

test('round-trips code, logs and unicode exactly', () => {
  const samples = [
    'def parse(path):\n\tif not path:\n        raise ValueError("empty")\n    return  path\n',
    '\n\n  leading and trailing spaces   \n\t\t\n',
    'Windows line\r\nendings\r\n',
    '2026-11-23T10:00:01.123Z nginx[4242]: 127.0.0.1 - - "GET /api/v1/users?id=7 HTTP/1.1" 200 512\n',
    'unicode: héllo wörld — 日本語 ✓ 🎉 ∑ 𝔘\u00a0nbsp \u200bzw\n',
    'const x = `template ${y}`; // comment\n',
    '<doc> <q> <a> </s> <pad> written as text stays text',
    '',
  ];
  for (const s of samples) assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
});

test('control symbols are never produced by encoding text', () => {
  const ids = tok.encode('<doc>code a.ts\n<cont><page>1<q>what?<a>x</s><pad><unk>');
  for (const id of Object.values(SPECIAL)) assert.ok(!ids.includes(id), `id ${id} appeared`);
});

test('newline is one token and tokenization never crosses it', () => {
  const a = 'first line\n', b = 'second line\n';
  assert.deepEqual(tok.encode(a + b), [...tok.encode(a), ...tok.encode(b)]);
});

test('a file that is not a tokenizer model is refused with a clear error', async () => {
  const bad = join(tempDir(), 'bad.model');
  writeFileSync(bad, 'not a sentencepiece model');
  await assert.rejects(Tokenizer.load(bad), /not a ctx tokenizer/);
  await assert.rejects(Tokenizer.load(join(tempDir(), 'missing.model')), /cannot read tokenizer/);
});
