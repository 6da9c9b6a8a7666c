/**
 * A model whose memory queries mix the rows before them (config qk_conv > 1, train/model.py) decodes with one
 * more cache part: each layer's last qk_conv-1 query projections; with doc_value its fold graph also finds each
 * row's document header from the token ids (the stream below has <doc> and <cont> headers). The model also has
 * the options of runs 7 and 8 (key_map l2, tie_qk, keys_from_input, gate_from_input, value_norm, seq_delta: its
 * fixed chunks padded for the short last segment); the shipped model's own tests cover DPFP keys. A hybrid
 * (a memory kind per layer: that memory in layer 0, DPFP memory tokens in layer 1) goes through the same checks.
 * A tiny such model is made and exported here by the Python reference (train/export.py; random weights large
 * enough that the memory and every row matter), and the engine must reproduce, token for token, the greedy
 * answer PyTorch decodes from the same memory with its own cache, and the scorer must agree with the beam
 * search on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { answer, scoreAnswers } from '../src/engine/decode.js';
import { emptyState, foldSegment } from '../src/engine/fold.js';
import { loadModel } from '../src/engine/model.js';
import { MODEL_DIR, ROOT, tempDir } from './helpers.js';

const QUESTION = 'where is parseConfig defined?';
const STEPS = 6;
/** Three segments of 16 tokens (the last partial): a document header (<doc> = 3, newline = 18), a
 *  continuation header (<cont> = 4), and a second document starting mid-segment. */
const text = (from: number, n: number) => Array.from({ length: n }, (_, k) => ((from + k) * 7919 + 13) % 8184 + 8).map((t) => (t === 18 || t === 3 || t === 4 ? 19 : t));
const SEGMENTS = [
  [3, 200, 300, 18, ...text(0, 12)],
  [4, 200, 300, 18, ...text(12, 6), 3, 401, 18, ...text(18, 3)],
  [4, 401, 18, ...text(21, 2)],
];

/** An interpreter with torch and onnx (Debian's python3-torch lives in /usr/bin/python3; scripts/pytest.sh). */
function python(): string {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import torch, onnx, sentencepiece'], { stdio: 'ignore' }).status === 0) return py;
  }
  throw new Error('no python3 with torch, onnx and sentencepiece (apt-get install python3-torch python3-onnx python3-sentencepiece)');
}

// Weights, export, and the reference: the golden stream folded, then greedy decoding of QUESTION with the cache.
const REFERENCE = `
import json, sys, torch
sys.path.insert(0, 'train')
from export import round_to_half
from model import Config, CtxModel
from stream import Tokenizer, question_prompt
cfg_path, ckpt, question, steps, segments = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
torch.manual_seed(0)
model = CtxModel(Config.load(cfg_path)).eval()
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0, 0.3)
torch.save(model.state_dict(), ckpt)
round_to_half(model)
with torch.no_grad():
    state = model.empty_state()
    for seg in segments:
        state = model.fold(torch.tensor([seg]), state)
    prompt = question_prompt(Tokenizer('models/ctx-small/tokenizer.model'), question)
    logits, cache = model.decode(torch.tensor([prompt]), state)
    tokens, logprob = [], 0.0
    for t in range(steps):
        lp = logits[0, -1].log_softmax(-1)
        nxt = int(lp.argmax())
        tokens.append(nxt)
        logprob += float(lp[nxt])
        logits, cache = model.decode(torch.tensor([[nxt]]), state, cache, offset=len(prompt) + t)
    eos = float(logits[0, -1].log_softmax(-1)[2])
print(json.dumps({'tokens': tokens, 'logprob': logprob, 'eos': eos}))
`;

const BASE = { vocab_size: 8192, d_model: 32, n_layers: 2, n_heads: 2, seg_len: 16, mem_tokens: 4, d_mem: 8, dpfp_nu: 3, memory: 'armt' };
const ROW_MEMORY = {
  write_rows: 'all', qk_conv: 4, doc_value: true,
  key_map: 'l2', tie_qk: true, keys_from_input: true, gate_from_input: true, seq_delta: true, value_norm: true,
};
const MODELS = {
  conv: { ...BASE, ...ROW_MEMORY },
  // A memory kind per layer (train/model.py Config.layers): layer 0 as above and twice as wide, layer 1 DPFP keys
  // written by the memory tokens; the state's layers differ in shape and only layer 0 carries query rows.
  hybrid: { ...BASE, layers: { 0: { ...ROW_MEMORY, d_mem: 16 } } },
};

function makeModel(name: keyof typeof MODELS) {
  const dir = tempDir('ctx-qkconv-');
  const cfg = join(dir, `${name}.json`);
  const config = { name, ...MODELS[name] };
  writeFileSync(cfg, JSON.stringify(config));
  const py = python();
  const ckpt = join(dir, 'w.pt');
  const ref = JSON.parse(execFileSync(py, ['-c', REFERENCE, cfg, ckpt, QUESTION, String(STEPS), JSON.stringify(SEGMENTS)], { cwd: ROOT, encoding: 'utf8' }));
  const out = join(dir, 'model');
  execFileSync(py, ['train/export.py', '--config', cfg, '--ckpt', ckpt, '--out', out, '--tokenizer', join(MODEL_DIR, 'tokenizer.model')], { cwd: ROOT, stdio: 'ignore' });
  return { out, ref: ref as { tokens: number[]; logprob: number; eos: number } };
}

for (const name of Object.keys(MODELS) as (keyof typeof MODELS)[]) test(`a ${name} model (qk_conv, doc_value, l2 keys): the engine decodes what PyTorch decodes with its query-row cache, and scores agree`, async () => {
  const { out, ref } = makeModel(name);
  const model = await loadModel(out, { threads: 2 });
  assert.deepEqual(model.config.q_cache, [3, name === 'hybrid' ? 16 : 8]);
  assert.ok(model.decode.inputNames.includes('past_q'));
  let state = emptyState(model);
  for (const seg of SEGMENTS) state = await foldSegment(model, state, seg);
  const [greedy] = await answer(model, state, QUESTION, { beams: 1, maxTokens: STEPS });
  assert.deepEqual(greedy.tokens, ref.tokens, 'greedy tokens, one decode step at a time with the cache');
  assert.ok(Math.abs(greedy.logprob - ref.logprob) < 1e-2 * Math.max(1, Math.abs(ref.logprob)), `logprob ${greedy.logprob} vs ${ref.logprob}`);
  // The scorer runs the answer's tokens in one batch after the prompt's cache, then the end of answer: the
  // same distribution, so it gives the decoded logprob plus that of ending there.
  const [scored] = await scoreAnswers(model, state, QUESTION, [greedy.text]);
  assert.deepEqual(scored.tokens, [...greedy.tokens, 2], 'the greedy text encodes back to its tokens');
  const want = ref.logprob + ref.eos;
  assert.ok(Math.abs(scored.logprob - want) < 1e-2 * Math.max(1, Math.abs(want)), `score ${scored.logprob} vs ${want}`);
});
