/**
 * `ctx eval repo` and its lexical baseline: the BM25 index (src/eval/bm25.ts) splits identifiers, indexes the
 * same documents as the ingest, answers definition questions on fixtures/repo, grows with its input; the
 * command's --json carries the model's ranked paths (paths mode, memory on and off) and the baseline's
 * scores and bytes beside the snapshot's (one tiny repository: one segment folded, two questions asked).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bm25Of, buildBm25Index, terms, tokenize } from '../src/eval/bm25.js';
import { answerSpread, repoQuestions } from '../src/eval/repo.js';
import { ingestSources } from '../src/ingest/index.js';
import { defaultModelDir, readModelConfig } from '../src/engine/model.js';
import { snapshotBytes } from '../src/snapshot/file.js';
import { CLI, ROOT, tempDir } from './helpers.js';

const REPO = join(ROOT, 'fixtures', 'repo');

test('identifiers are split at camelCase and snake_case boundaries, question words are dropped', () => {
  const of = (s: string) => tokenize(s).flatMap(terms);
  assert.deepEqual(of('where is parseConfig defined?'), ['parseconfig', 'parse', 'config']);
  assert.deepEqual(of('MAX_RETRIES'), ['max_retries', 'max', 'retries']);
  assert.deepEqual(of('HTTPServer utf8Decode'), ['httpserver', 'http', 'server', 'utf8decode', 'utf8', 'decode']);
  assert.deepEqual(of('which file handles sessions?'), ['sessions']);
});

test('BM25 answers "where is parseConfig defined?" with the file that defines it', () => {
  const config: [string, string] = ['src/config.ts', 'export function parseConfig(text: string) {\n  return JSON.parse(text);\n}\n'];
  const readme: [string, string] = ['README.md', 'Run the server with a config file.\n'];
  const server = (uses: string): [string, string] => ['src/server.ts', `${uses}\nlisten(port);\n`];
  assert.equal(bm25Of([config, readme, server('const port = 8080;')]).search('where is parseConfig defined?')[0], 'src/config.ts');
  // BM25 has no notion of a definition: a caller that names the identifier more often ranks first.
  const caller = server("import { parseConfig } from './config.js';\nconst port = parseConfig(raw).port;");
  assert.deepEqual(bm25Of([config, readme, caller]).search('where is parseConfig defined?', 2), ['src/server.ts', 'src/config.ts']);
});

test('the BM25 baseline indexes every document the ingest folds from fixtures/repo and answers definition questions', async () => {
  const idx = await buildBm25Index([REPO]);
  let documents = 0;
  for await (const item of ingestSources([REPO])) if (item.type === 'document') documents++;
  assert.equal(idx.documents, documents);
  assert.ok(documents > 15, 'code, text and log documents alike');
  assert.equal(idx.search('where is readJson defined?')[0], 'src/config.ts');
  assert.equal(idx.search('where is issueToken defined?')[0], 'src/auth.ts');
  // The questions the model gets: the answer is ranked by the baseline for most of them.
  const { questions } = await repoQuestions(REPO, 12, 1);
  const top3 = questions.filter((q) => idx.search(q.question, 3).includes(q.path)).length;
  assert.ok(top3 >= questions.length / 2, `${top3}/${questions.length} in the top 3`);
});

test('answerSpread tells a model that answers one path whatever it is asked from one that follows the question', () => {
  const asked = [['a.py', 'a.py'], ['a.py', 'b.py'], ['a.py', 'b.py'], ['a.py', 'c.py']].map(([answer, path]) => ({ answer, path, top1: answer === path }));
  assert.deepEqual(answerSpread(asked), { distinctAnswers: 1, distinctPaths: 3, commonestShare: 1, othersAsked: 3, othersRight: 0 });
  const follows = asked.map((r) => ({ ...r, answer: r.path, top1: true }));
  assert.deepEqual(answerSpread(follows), { distinctAnswers: 3, distinctPaths: 3, commonestShare: 0.5, othersAsked: 2, othersRight: 2 });
});

test('the BM25 index bytes grow with the input', async () => {
  const dir = tempDir();
  const sizes: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) {
      const n = i * 4 + j;
      writeFileSync(join(dir, `mod${n}.ts`), `export function handler${n}(request${n}: Request) {\n  return lookupRecord${n}(request${n}.id);\n}\n`);
    }
    const idx = await buildBm25Index([dir]);
    assert.equal(idx.documents, 4 * (i + 1));
    sizes.push(idx.indexBytes);
  }
  assert.ok(sizes[0] > 0 && sizes[0] < sizes[1] && sizes[1] < sizes[2], `index bytes ${sizes.join(' < ')}`);
});

test('ctx eval repo --json reports the ranked paths (memory on and off) and the BM25 baseline with its index bytes beside the snapshot bytes', () => {
  const dir = tempDir();
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  writeFileSync(join(repo, 'widgets.ts'), 'export function assembleWidget(parts: string[]) {\n  return parts.join("-");\n}\n');
  writeFileSync(join(repo, 'gadgets.py'), 'def polish_gadget(gadget):\n    return gadget.strip()\n');
  const env = { ...process.env };
  delete env.CTX_SNAPSHOT;
  const r = spawnSync(process.execPath, [CLI, 'eval', 'repo', repo, '--questions', '2', '--json'], { cwd: dir, encoding: 'utf8', timeout: 120_000, env });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.files, 2);
  // two files are far within a two-way model's first segments, so its snapshot holds both states
  const config = readModelConfig(defaultModelDir());
  assert.equal(out.snapshotBytes, snapshotBytes(config.state_size, config.two_way ? 2 : 1));
  assert.equal(out.bm25.library, 'minisearch');
  assert.equal(out.bm25.documents, 2);
  assert.ok(Number.isInteger(out.bm25.indexBytes) && out.bm25.indexBytes > 0);
  assert.equal(out.results.length, 2);
  for (const q of out.results) {
    assert.ok(Array.isArray(q.bm25Answers) && q.bm25Answers.length >= 1);
    assert.equal(q.bm25Top1, q.bm25Answers[0] === q.path);
    assert.equal(typeof q.bm25Top3, 'boolean');
  }
  const all = out.rows.find((row: { questions: string }) => row.questions === 'all');
  const hits = out.results.filter((q: { bm25Top1: boolean }) => q.bm25Top1).length;
  assert.equal(all.bm25Top1, hits / 2);
  assert.equal(typeof all.bm25Top3, 'number');
  assert.equal(typeof all.memoryOffTop1, 'number', 'the model columns are still there');
  assert.equal(all.distinctAnswers, new Set(out.results.map((q: { answer: string }) => q.answer)).size);
  assert.equal(all.distinctPaths, 2);
  // The model answers as `ctx ask` answers file questions: the snapshot's paths, ranked.
  assert.equal(out.mode, 'paths');
  assert.equal(out.candidates, 2);
  assert.equal(out.freeDecoding, false);
  assert.ok(out.rows.every((row: { mode: string; free?: unknown }) => row.mode === 'paths' && row.free === undefined));
  for (const q of out.results) {
    assert.deepEqual([...q.answers].sort(), ['gadgets.py', 'widgets.ts'], 'both paths, ranked');
    assert.equal(q.top1, q.answers[0] === q.path);
    assert.equal(q.rank, q.answers.indexOf(q.path) + 1);
    assert.equal(q.offTop3, true, 'two candidates: always in the top 3');
  }
  assert.ok(Number.isInteger(out.pathsMsPerQuestion));
});
