/**
 * Answering: the question is run as a fresh segment that reads the memory (never writes it), then either
 *   - answer tokens are decoded one at a time with a KV cache, by beam search (beams = 1 is greedy): `answer`;
 *   - or given candidate answers are scored by their log-likelihood as the answer, the same distribution
 *     the beam search decodes from: `scoreAnswers` (constrained answers, e.g. the paths a snapshot folded).
 * The state passed in is only read, so asking can never change a snapshot.
 */
import ort from 'onnxruntime-node';
import { SPECIAL } from '../tokenizer/index.js';
import { answerTokens, questionPrompt } from '../stream/format.js';
import { int64Tensor } from './fold.js';
import type { Model } from './model.js';

export interface Answer {
  text: string;
  tokens: number[];
  /** Log probability of the answer tokens and the end-of-answer token. */
  logprob: number;
  prob: number;
}

export interface DecodeOptions {
  beams?: number;
  maxTokens?: number;
  /** Called after every decoding step with the best unfinished answer so far (for streaming UIs). */
  onStep?: (partial: string) => void;
  signal?: AbortSignal;
}

interface Beam {
  tokens: number[];
  logprob: number;
}

/**
 * The decode graph's cache: keys and values of all layers, [L, B, H, P, dh]; with a model whose memory
 * queries mix the rows before them (config qk_conv > 1), also those rows' query projections, [L, B, *q_cache]
 * (zeros before the question's first token, as at the start of a segment in training).
 */
interface Cache {
  k: Float32Array;
  v: Float32Array;
  q: Float32Array;
  B: number;
  P: number;
}

export async function answer(model: Model, state: Float32Array, question: string, opts: DecodeOptions = {}): Promise<Answer[]> {
  const beamsWanted = Math.max(1, opts.beams ?? 3);
  const maxTokens = opts.maxTokens ?? 48;
  const prompt = questionPrompt(model.tokenizer, question);
  const first = await step(model, state, [prompt], 0, emptyCache(model));
  let cache = first.cache;
  let beams: Beam[] = [{ tokens: [], logprob: 0 }];
  let rows = [logSoftmaxLast(first.logits, 1, prompt.length, model.config.vocab_size, 0)];
  const done: Beam[] = [];
  for (let t = 0; t < maxTokens && beams.length > 0; t++) {
    if (opts.signal?.aborted) throw new DOMException('answer cancelled', 'AbortError');
    const next = expand(beams, rows, beamsWanted);
    const alive: { beam: Beam; from: number }[] = [];
    for (const c of next) {
      if (c.token === SPECIAL.eos) done.push({ tokens: c.beam.tokens, logprob: c.beam.logprob + c.lp });
      else alive.push({ beam: { tokens: [...c.beam.tokens, c.token], logprob: c.beam.logprob + c.lp }, from: c.from });
    }
    done.sort((a, b) => b.logprob - a.logprob);
    // Scores only fall as answers grow: once the worst kept answer beats the best unfinished one, stop.
    const worstKept = done.length >= beamsWanted ? done[beamsWanted - 1].logprob : -Infinity;
    beams = alive.filter((a) => a.beam.logprob > worstKept).slice(0, beamsWanted).map((a) => a.beam);
    if (beams.length === 0) break;
    const from = alive.slice(0, beams.length).map((a) => a.from);
    opts.onStep?.(model.tokenizer.decode(beams[0].tokens));
    const r = await step(model, state, beams.map((b) => [b.tokens[b.tokens.length - 1]]), prompt.length + t, gather(cache, from, model.config.n_layers));
    cache = r.cache;
    rows = beams.map((_, b) => logSoftmaxLast(r.logits, beams.length, 1, model.config.vocab_size, b));
  }
  // Answers cut at maxTokens still count, ranked below finished ones of equal score.
  const all = [...done, ...beams].sort((a, b) => b.logprob - a.logprob).slice(0, beamsWanted);
  return all.map((b) => ({ text: model.tokenizer.decode(b.tokens), tokens: b.tokens, logprob: b.logprob, prob: Math.exp(b.logprob) }));
}

/** The best `k` one-token continuations over all beams. */
function expand(beams: Beam[], rows: Float32Array[], k: number) {
  const cands: { beam: Beam; from: number; token: number; lp: number }[] = [];
  beams.forEach((beam, from) => {
    for (const token of topK(rows[from], k)) cands.push({ beam, from, token, lp: rows[from][token] });
  });
  return cands.sort((a, b) => b.beam.logprob + b.lp - (a.beam.logprob + a.lp)).slice(0, k);
}

function topK(row: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length < k || row[i] > row[best[best.length - 1]]) {
      best.push(i);
      best.sort((a, b) => row[b] - row[a]);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/** The logits of position `pos` of row b of logits [B, t, V]. */
function logitsAt(logits: Float32Array, t: number, V: number, b: number, pos: number): Float32Array {
  return logits.subarray((b * t + pos) * V, (b * t + pos + 1) * V);
}

/** log(sum(exp(x))) without overflow: of a row of logits, or of candidates' logprobs (run/ask.ts). */
export function logSumExp(row: ArrayLike<number>): number {
  const n = row.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

/** Log-softmax of the last position of row b of logits [B, t, V]. */
function logSoftmaxLast(logits: Float32Array, B: number, t: number, V: number, b: number): Float32Array {
  const row = logitsAt(logits, t, V, b, t - 1);
  const lse = logSumExp(row);
  return Float32Array.from(row, (x) => x - lse);
}

/** Log-probability of `token` at position `pos` of row b of logits [B, t, V] (one entry of its log-softmax). */
function logProbAt(logits: Float32Array, t: number, V: number, b: number, pos: number, token: number): number {
  const row = logitsAt(logits, t, V, b, pos);
  return row[token] - logSumExp(row);
}

export interface ScoreOptions {
  /** Candidates run through the decode graph at once (default 16: measured as fast as 32 and 64 on CPU). */
  batch?: number;
  signal?: AbortSignal;
}

export interface Scored {
  text: string;
  /** The answer tokens scored: the text's tokens, then end of answer (as training writes an answer). */
  tokens: number[];
  /** Log probability of all of `tokens`: what `answer` reports for the same text when it decodes it. */
  logprob: number;
}

/**
 * The log-likelihood of each candidate as the answer to the question, in the candidates' order. The prompt
 * is run once and its KV cache shared by every candidate; the candidates' tokens (answerTokens: the text's
 * tokens, then end of answer, exactly as training writes an answer) run as the rows of one batch, padded at
 * the end. The graph is causal, so padding after a row's end changes none of the row's own scores.
 */
export async function scoreAnswers(model: Model, state: Float32Array, question: string, candidates: readonly string[], opts: ScoreOptions = {}): Promise<Scored[]> {
  const V = model.config.vocab_size;
  const batch = Math.max(1, opts.batch ?? 16);
  const prompt = questionPrompt(model.tokenizer, question);
  const first = await step(model, state, [prompt], 0, emptyCache(model));
  const firstRow = logSoftmaxLast(first.logits, 1, prompt.length, V, 0);
  const answers = candidates.map((text) => ({ text, tokens: answerTokens(model.tokenizer, text) }));
  const out: Scored[] = answers.map(({ text, tokens }) => ({ text, tokens, logprob: firstRow[tokens[0]] }));
  // Batches of similar lengths pad less.
  const order = answers.map((_, i) => i).sort((a, b) => answers[a].tokens.length - answers[b].tokens.length);
  for (let i = 0; i < order.length; i += batch) {
    if (opts.signal?.aborted) throw new DOMException('scoring cancelled', 'AbortError');
    const rows = order.slice(i, i + batch);
    // Every answer token but the last is an input; its logits score the token after it.
    const t = Math.max(...rows.map((r) => answers[r].tokens.length - 1));
    if (t === 0) continue;
    const inputs = rows.map((r) => {
      const input = answers[r].tokens.slice(0, -1);
      return [...input, ...new Array<number>(t - input.length).fill(SPECIAL.pad)];
    });
    const shared = gather(first.cache, rows.map(() => 0), model.config.n_layers);
    const r = await step(model, state, inputs, prompt.length, shared);
    rows.forEach((row, b) => {
      const tokens = answers[row].tokens;
      for (let j = 1; j < tokens.length; j++) out[row].logprob += logProbAt(r.logits, t, V, b, j - 1, tokens[j]);
    });
  }
  return out;
}

/** [rows, width] of the memory-query projections the decode graph carries per layer and batch row (rows 0:
 *  none). Exports before per-layer memories (run 17) have no q_cache: every layer had qk_conv and d_mem. */
export function queryCache(model: Model): [number, number] {
  return model.config.q_cache ?? [Math.max(0, (model.config.qk_conv ?? 0) - 1), model.config.d_mem];
}

function emptyCache(model: Model): Cache {
  const [R, W] = queryCache(model);
  const q = new Float32Array(model.config.n_layers * R * W);
  return { k: new Float32Array(0), v: new Float32Array(0), q, B: 1, P: 0 };
}

async function step(model: Model, state: Float32Array, rows: number[][], offset: number, cache: Cache) {
  const { n_layers: L, n_heads: H, d_model } = model.config;
  const dh = d_model / H;
  const B = rows.length;
  const t = rows[0].length;
  const dims = [L, B, H, cache.P, dh];
  const [R, W] = queryCache(model);
  const out = await model.decode.run({
    tokens: int64Tensor(rows.flat(), [B, t]),
    offset: new ort.Tensor('int64', BigInt64Array.of(BigInt(offset)), []),
    state: new ort.Tensor('float32', state, [1, state.length]),
    past_k: new ort.Tensor('float32', cache.k, dims),
    past_v: new ort.Tensor('float32', cache.v, dims),
    ...(R > 0 && { past_q: new ort.Tensor('float32', cache.q, [L, B, R, W]) }),
  });
  return {
    logits: out.logits.data as Float32Array,
    cache: {
      k: out.present_k.data as Float32Array,
      v: out.present_v.data as Float32Array,
      q: R > 0 ? (out.present_q.data as Float32Array) : cache.q,
      B,
      P: cache.P + t,
    },
  };
}

/** Reorder the cache's batch rows (every part is [L, B, ...]): new row i is old row from[i] in every layer. */
function gather(cache: Cache, from: number[], layers: number): Cache {
  const pick = (part: Float32Array) => {
    const block = part.length / (layers * cache.B);
    const out = new Float32Array(layers * from.length * block);
    for (let l = 0; l < layers; l++) {
      from.forEach((f, i) => {
        const src = (l * cache.B + f) * block;
        out.set(part.subarray(src, src + block), (l * from.length + i) * block);
      });
    }
    return out;
  };
  return { k: pick(cache.k), v: pick(cache.v), q: pick(cache.q), B: from.length, P: cache.P };
}
