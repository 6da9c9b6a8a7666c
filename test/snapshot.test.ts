import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSnapshot, encodeSnapshot, newHeader, readSnapshot, writeSnapshot, checkCompatible, snapshotBytes } from '../src/snapshot/file.js';
import { readModelConfig } from '../src/engine/model.js';
import { MODEL_DIR, tempDir } from './helpers.js';

const config = readModelConfig(MODEL_DIR);
const state = Float32Array.from({ length: config.state_size }, (_, i) => Math.sin(i) * 1e-3);

function sample(): Buffer {
  const header = newHeader(config);
  header.counts = { tokens: 1234, segments: 3, documents: 2, sources: 1 };
  return encodeSnapshot({ header, state });
}

test('encode/decode round trip keeps header and state bit for bit', () => {
  const snap = decodeSnapshot(sample());
  assert.deepEqual(snap.state, state);
  assert.equal(snap.header.counts.tokens, 1234);
  assert.equal(snap.header.model.model_id, config.model_id);
});

test('size depends on the model only, not on the counts', () => {
  const a = newHeader(config);
  const b = newHeader(config);
  b.counts = { tokens: 987654321012, segments: 123456789, documents: 99999999, sources: 12345 };
  assert.equal(encodeSnapshot({ header: a, state }).length, encodeSnapshot({ header: b, state }).length);
  assert.equal(encodeSnapshot({ header: a, state }).length, snapshotBytes(config.state_size));
});

test('a second state (a two-way model within its first segments) round-trips and doubles the state bytes', () => {
  const alone = Float32Array.from(state, (v) => -v);
  const buf = encodeSnapshot({ header: newHeader(config), state, alone });
  assert.equal(buf.length, snapshotBytes(config.state_size, 2));
  const snap = decodeSnapshot(buf);
  assert.deepEqual(snap.state, state);
  assert.deepEqual(snap.alone, alone);
  assert.throws(() => decodeSnapshot(buf.subarray(0, snapshotBytes(config.state_size))), /truncated/);
  const back = decodeSnapshot(encodeSnapshot({ header: snap.header, state: snap.alone! }));
  assert.equal(back.alone, undefined, 'the header follows the states written, not the header read');
  assert.deepEqual(back.state, alone);
});

test('truncated, corrupted, foreign and future files get clear errors', () => {
  const good = sample();
  assert.throws(() => decodeSnapshot(good.subarray(0, good.length - 100)), /truncated/);
  assert.throws(() => decodeSnapshot(good.subarray(0, 10)), /truncated|not a ctx snapshot/);
  const flipped = Buffer.from(good);
  flipped[5000] ^= 0xff;
  assert.throws(() => decodeSnapshot(flipped), /corrupted \(checksum/);
  const magic = Buffer.from(good);
  magic.write('PK\x03\x04', 0, 'latin1');
  assert.throws(() => decodeSnapshot(magic), /not a ctx snapshot/);
  const future = Buffer.from(good);
  future.writeUInt32LE(99, 8);
  assert.throws(() => decodeSnapshot(future), /version 99/);
  assert.throws(() => decodeSnapshot(Buffer.concat([good, Buffer.from('x')])), /trailing/);
  assert.throws(() => readSnapshot(join(tempDir(), 'none.ctx')), /no snapshot at .*ctx ingest/);
});

test('a snapshot from another model or tokenizer is refused', () => {
  const snap = decodeSnapshot(sample());
  assert.doesNotThrow(() => checkCompatible(snap.header, config));
  assert.throws(() => checkCompatible(snap.header, { ...config, model_id: 'f'.repeat(32), name: 'other' }), /made with model .*not the current model other/);
  assert.throws(() => checkCompatible(snap.header, { ...config, tokenizer_sha256: '0'.repeat(64) }), /another tokenizer/);
});

test('atomic write replaces the file whole and leaves no temp files', () => {
  const dir = tempDir();
  const path = join(dir, 'sub', 'memory.ctx');
  const header = newHeader(config);
  writeSnapshot(path, { header, state });
  const first = readFileSync(path);
  header.counts.tokens = 42;
  writeSnapshot(path, { header, state });
  assert.equal(readSnapshot(path).header.counts.tokens, 42);
  assert.equal(readFileSync(path).length, first.length);
  assert.deepEqual(readdirSync(join(dir, 'sub')), ['memory.ctx']);
  writeFileSync(join(dir, 'x'), '');
  assert.ok(existsSync(path));
});
