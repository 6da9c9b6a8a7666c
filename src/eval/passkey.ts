/**
 * Passkey evaluation (as in the Infini-attention paper): a long stream of real text with one sentence
 * "The pass key is N. ..." at a given depth; the model must answer N from its memory alone. The stream goes
 * through the same stream format, segmenter and fold loop as `ctx ingest`.
 */
import { readFileSync } from 'node:fs';
import type { Model } from '../engine/model.js';
import { emptyMemory, emptyState, foldMemory } from '../engine/fold.js';
import { answer } from '../engine/decode.js';
import { Segmenter } from '../stream/segmenter.js';

export interface FillerDoc {
  path: string;
  text: string;
}

export interface PasskeyCase {
  tokens: number;
  depth: number;
  key: string;
  seed: number;
}

export interface PasskeyResult extends PasskeyCase {
  answer: string;
  prob: number;
  correct: boolean;
  correctTop3: boolean;
  /** The same question with the memory switched off (empty state): must fail, or the test leaks. */
  correctMemoryOff: boolean;
  segments: number;
}

/** Deterministic small PRNG (mulberry32): the same seed gives the same keys and filler order everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function loadFiller(paths: string[]): FillerDoc[] {
  const docs = paths.map((path) => ({ path, text: readFileSync(path, 'utf8') })).filter((d) => d.text.trim().length > 0);
  if (docs.length === 0) throw new Error('no filler text');
  return docs;
}

/** Fold filler documents (shuffled by the seed, repeated as needed) up to `tokens`, the needle at `depth`. */
export async function runPasskeyCase(model: Model, filler: FillerDoc[], c: PasskeyCase, signal?: AbortSignal,
  onSegment?: () => void): Promise<PasskeyResult> {
  const seg = new Segmenter(model.tokenizer, model.config.seg_len);
  const needle = `The pass key is ${c.key}. Remember it. ${c.key} is the pass key.\n`;
  const needleAt = Math.floor(c.depth * c.tokens);
  const random = rng(c.seed);
  let memory = emptyMemory(model);
  let folded = 0;
  let count = 0;
  let placed = false;
  const fold = async (segments: Int32Array[]) => {
    for (const s of segments) {
      if (signal?.aborted) throw new DOMException('cancelled', 'AbortError');
      memory = await foldMemory(model, memory, s, count++);
      folded += s.length;
      onSegment?.();
    }
  };
  while (folded < c.tokens) {
    const doc = filler[Math.floor(random() * filler.length)];
    await fold(seg.beginDocument({ kind: 'text', path: doc.path }));
    for (const line of doc.text.split(/(?<=\n)/)) {
      if (!placed && folded >= needleAt) {
        await fold(seg.text(needle));
        placed = true;
      }
      await fold(seg.text(line));
      if (folded >= c.tokens) break;
    }
  }
  if (!placed) await fold(seg.text(needle));
  const last = seg.flush();
  if (last) await fold([last]);
  const answers = await answer(model, memory.state, 'What is the pass key?', { beams: 3, maxTokens: 12 });
  const top = answers[0];
  const [off] = await answer(model, emptyState(model), 'What is the pass key?', { beams: 1, maxTokens: 12 });
  return {
    ...c, answer: top?.text.trim() ?? '', prob: top?.prob ?? 0, correct: top?.text.trim() === c.key,
    correctTop3: answers.some((a) => a.text.trim() === c.key), correctMemoryOff: off?.text.trim() === c.key, segments: Math.ceil(folded / model.config.seg_len),
  };
}

/** "32k", "1m", "4096" -> tokens. */
export function parseLength(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(s.trim());
  if (!m) throw new Error(`not a length: ${s} (use e.g. 32k, 128k, 1m)`);
  const mult = { '': 1, k: 1024, m: 1024 * 1024 }[m[2].toLowerCase() as '' | 'k' | 'm'];
  return Math.round(parseFloat(m[1]) * mult);
}

export function cases(lengths: number[], depths: number[], perDepth: number, seed: number): PasskeyCase[] {
  const r = rng(seed);
  const out: PasskeyCase[] = [];
  for (const tokens of lengths) {
    for (const depth of depths) {
      for (let i = 0; i < perDepth; i++) {
        out.push({ tokens, depth, key: String(10000 + Math.floor(r() * 90000)), seed: Math.floor(r() * 2 ** 31) });
      }
    }
  }
  return out;
}
