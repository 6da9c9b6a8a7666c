/**
 * A model folder (models/<name>/): the ONNX fold and decode graphs, their shared float16 weights, the
 * tokenizer and config.json (the shape, written by train/export.py). Loading checks that every file is there
 * and agrees with the config, so a broken install fails with one clear line instead of an ONNX stack.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { CtxError } from '../errors.js';
import { Tokenizer } from '../tokenizer/index.js';

export interface ModelConfig {
  name: string;
  vocab_size: number;
  d_model: number;
  n_layers: number;
  n_heads: number;
  seg_len: number;
  mem_tokens: number;
  d_mem: number;
  dpfp_nu: number;
  memory: 'armt' | 'infini';
  /** armt: width of the short convolution over memory keys/queries (absent or <= 1: none; train/model.py). */
  qk_conv?: number;
  /** [rows, width] of each layer's query projections in the decoding cache (train/model.py Config.q_cache). */
  q_cache?: [number, number];
  d_key: number;
  state_size: number;
  /** Fold twice for the first after_segments segments: every memory on (fold.onnx), and with the every-row layers'
   *  memories neither read nor written (fold_alone.onnx; their `empty` ranges of the state stay empty); past them
   *  only the second (engine/fold.ts Memory). */
  two_way?: { after_segments: number; empty: [number, number][] };
  /** The fold graphs' large MatMul weights are 7-bit integers (train/export.py --int8_fold); decoding is float. */
  int8_fold?: { min_size: number; qmax: number };
  model_id: string;
  tokenizer_sha256: string;
  trained: boolean;
  note?: string;
}

export interface Model {
  dir: string;
  config: ModelConfig;
  tokenizer: Tokenizer;
  fold: ort.InferenceSession;
  /** A two-way model's fold for its second state (fold_alone.onnx). */
  foldAlone?: ort.InferenceSession;
  decode: ort.InferenceSession;
}

const FILES = ['config.json', 'tokenizer.model', 'fold.onnx', 'decode.onnx', 'weights.bin'];
const ALONE = 'fold_alone.onnx';

/** The model shipped in this package: <package root>/models/ctx-small, unless CTX_MODEL names another folder. */
export function defaultModelDir(): string {
  if (process.env.CTX_MODEL) return resolve(process.env.CTX_MODEL);
  // dist/src/engine/model.js -> package root is three levels up from this file's folder.
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../..', '../..']) {
    const dir = resolve(here, up, 'models', 'ctx-small');
    if (existsSync(join(dir, 'config.json'))) return dir;
  }
  return resolve(here, '../../..', 'models', 'ctx-small');
}

export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ModelConfig;
  } catch (e) {
    throw new CtxError(`cannot read model config ${path}: ${(e as Error).message}`);
  }
}

export interface LoadOptions {
  /** 'cpu' (default) or 'cuda' where the user has onnxruntime's CUDA provider installed. */
  device?: string;
  threads?: number;
}

export async function loadModel(dir = defaultModelDir(), opts: LoadOptions = {}): Promise<Model> {
  for (const f of FILES) {
    if (!existsSync(join(dir, f))) throw new CtxError(`model folder ${dir} is missing ${f}`);
  }
  const config = readModelConfig(dir);
  if (config.two_way && !existsSync(join(dir, ALONE))) throw new CtxError(`model folder ${dir} is missing ${ALONE} (a two-way model)`);
  const bad = config.two_way?.empty.find(([start, end]) => !(0 <= start && start < end && end <= config.state_size));
  if (bad) throw new CtxError(`${dir}/config.json: two_way range [${bad}] is outside the state of ${config.state_size}`);
  const tokenizer = await Tokenizer.load(join(dir, 'tokenizer.model'));
  if (tokenizer.sha256 !== config.tokenizer_sha256) {
    throw new CtxError(`${dir}/tokenizer.model does not match the one the model was trained with`);
  }
  const device = opts.device ?? process.env.CTX_DEVICE ?? 'cpu';
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: device === 'cpu' ? ['cpu'] : [device, 'cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.threads ?? availableParallelism(),
  };
  try {
    // A two-way model alternates two fold sessions, each with its own threads: threads that spin-wait after one
    // session's run take the 2 cores from the other's (fold + fold_alone 270-320 ms a segment spinning, 230 not;
    // RUNS.md run 33).
    const folding = config.two_way ? { ...options, extra: { session: { intra_op: { allow_spinning: '0' } } } } : options;
    const [fold, decode, foldAlone] = await Promise.all([
      ort.InferenceSession.create(join(dir, 'fold.onnx'), folding),
      ort.InferenceSession.create(join(dir, 'decode.onnx'), options),
      config.two_way ? ort.InferenceSession.create(join(dir, ALONE), folding) : undefined,
    ]);
    return { dir, config, tokenizer, fold, decode, ...(foldAlone ? { foldAlone } : {}) };
  } catch (e) {
    throw new CtxError(`cannot load the model graphs in ${dir}: ${(e as Error).message.split('\n')[0]}`);
  }
}
