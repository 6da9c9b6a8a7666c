/**
 * Constrained answers ("paths mode"): a question that asks for a file is answered by ranking the document
 * paths the snapshot folded (listed by its manifest) by the model's log-likelihood of each as the answer.
 *
 *   - the scorer and the beam search read the same distribution: the score of the text greedy decoding
 *     produced is the logprob answer() reported for it, whatever the batch and the padding around it;
 *   - the manifest lists the paths exactly as the stream headers wrote them (a rotated log set once), and a
 *     manifest without them (an older ctx) means free decoding with a notice, never a crash;
 *   - which questions are file questions (the training templates of train/tasks.py), and mode selection;
 *   - `ctx ask --json` answers a where-question of fixtures/repo with one of its paths, in paths mode.
 *
 * One snapshot of fixtures/repo (8 segments) is folded for the whole file, and one of fixtures/notes (its pass key).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { answer, scoreAnswers } from '../src/engine/decode.js';
import { documentPaths, ingestSources, manifestPath, type Manifest } from '../src/ingest/index.js';
import { ask, asksForFile, candidatePaths, chooseMode, loadSnapshotFor, rankAnswers, type AskSnapshot } from '../src/run/ask.js';
import { runIngest } from '../src/run/ingest.js';
import { CLI, foldFixture, ROOT, shippedModel, tempDir } from './helpers.js';

const REPO = join(ROOT, 'fixtures', 'repo');

let folded: Promise<string> | undefined;
/** The snapshot of fixtures/repo, folded once. */
function repoSnapshot(): Promise<string> {
  folded ??= foldFixture('repo').then((f) => f.snapshotPath);
  return folded;
}

test('the score of what greedy decoding produced is the logprob answer() reported; other candidates score otherwise', async () => {
  // fixtures/notes holds a pass key, so greedy decoding from its memory finishes with an end of answer: its
  // logprob then includes the end-of-answer token, as a score does. (Which text depends on the model; that it
  // finishes is what the recall test asks of every shipped model.)
  const { model, snap } = await foldFixture('notes');
  const question = 'What is the pass key?';
  const maxTokens = 24;
  const [greedy] = await answer(model, snap.state, question, { beams: 1, maxTokens });
  assert.ok(greedy.tokens.length < maxTokens, `greedy decoding did not finish: ${JSON.stringify(greedy.text)}`);
  assert.deepEqual(model.tokenizer.encode(greedy.text), greedy.tokens, 'the answer text encodes back to the decoded tokens');
  const other = greedy.text === '12345' ? '54321' : '12345';
  const candidates = ['src/config.ts', other, greedy.text, 'app/auth.py', `${greedy.text}0`];
  // With the memory off (a zero state) greedy decoding need not finish; the scores must still not depend on
  // how the candidates are batched and padded.
  for (const state of [snap.state, new Float32Array(snap.state.length)]) {
    const byBatch: number[][] = [];
    for (const batch of [1, 2, 16]) {
      const scored = await scoreAnswers(model, state, question, candidates, { batch });
      assert.deepEqual(scored.map((s) => s.text), candidates, 'scores come back in the candidates\' order');
      byBatch.push(scored.map((s) => s.logprob));
      if (state !== snap.state) continue;
      const own = scored[2];
      assert.ok(Math.abs(own.logprob - greedy.logprob) < 1e-3, `batch ${batch}: score ${own.logprob} vs decoded ${greedy.logprob}`);
      for (const s of [scored[0], scored[1], scored[3], scored[4]]) {
        assert.ok(Math.abs(s.logprob - greedy.logprob) > 1e-2, `${s.text} scores ${s.logprob}, the greedy answer ${greedy.logprob}`);
      }
    }
    for (const scores of byBatch.slice(1)) scores.forEach((x, i) => assert.ok(Math.abs(x - byBatch[0][i]) < 1e-3, `${candidates[i]}: ${x} vs ${byBatch[0][i]}`));
  }
});

test('the manifest lists every document path the ingest folded, as the stream headers wrote them', async () => {
  const model = await shippedModel();
  const snap = loadSnapshotFor(model, await repoSnapshot());
  const docs: string[] = [];
  for await (const item of ingestSources([REPO])) if (item.type === 'document') docs.push(item.doc.path);
  assert.deepEqual(snap.paths, [...docs].sort());
  assert.ok(snap.paths?.includes('src/config.ts') && snap.paths.includes('app/auth.py'), 'relative to the ingest root');
});

test('a rotated log set is one candidate, under its live name', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'app.log.1'), '2024-01-01 old line\n');
  writeFileSync(join(dir, 'app.log'), '2024-01-02 new line\n');
  writeFileSync(join(dir, 'notes.txt'), 'a note\n');
  const snapshotPath = join(dir, 'memory.ctx');
  await runIngest({ model: await shippedModel(), paths: [dir], snapshotPath });
  const m = JSON.parse(readFileSync(manifestPath(snapshotPath), 'utf8')) as Manifest;
  assert.equal(Object.keys(m.sources).length, 3, 'three files');
  assert.deepEqual(documentPaths(m), ['app.log', 'notes.txt']);
});

test('a manifest without document paths (an older ctx) or none at all: no candidates, free decoding with a notice', async () => {
  const model = await shippedModel();
  const dir = tempDir();
  const snapshotPath = join(dir, 'memory.ctx');
  writeFileSync(join(dir, 'a.ts'), 'export function parseConfig(text: string) {\n  return JSON.parse(text);\n}\n');
  await runIngest({ model, paths: [join(dir, 'a.ts')], snapshotPath });
  assert.deepEqual(candidatePaths(snapshotPath).paths, [join(dir, 'a.ts')], 'a file argument keeps the path as given');

  // The manifest as ctx wrote it before it recorded paths.
  const m = JSON.parse(readFileSync(manifestPath(snapshotPath), 'utf8')) as Manifest;
  for (const s of Object.values(m.sources)) delete s.docPath;
  writeFileSync(manifestPath(snapshotPath), JSON.stringify(m));
  const old = candidatePaths(snapshotPath);
  assert.equal(old.paths, undefined);
  assert.match(old.pathsMissing ?? '', /lists no document paths/);
  const snap = loadSnapshotFor(model, snapshotPath);
  const res = await ask(model, snap, snapshotPath, 'where is parseConfig defined?', { beams: 1, maxTokens: 2 });
  assert.equal(res.mode, 'free');
  assert.match(res.notice ?? '', /^answering by free decoding: .*lists no document paths/);
  assert.doesNotMatch(res.notice ?? '', /\n/, 'one line');

  // A corrupt manifest, and none at all: the same, never an exception.
  writeFileSync(manifestPath(snapshotPath), '{"version": 1, "sources": ');
  assert.match(candidatePaths(snapshotPath).pathsMissing ?? '', /corrupt manifest/);
  assert.match(candidatePaths(join(dir, 'elsewhere.ctx')).pathsMissing ?? '', /^no .*elsewhere\.ctx\.manifest\.json$/);
});

test('file questions: the training templates of where_defined and which_file_topic, and not other questions', () => {
  const asks = [
    'where is parseConfig defined?', 'which file defines parseConfig?', 'where is the function parseConfig?',
    'in which file is parseConfig defined?', 'where can I find the definition of parseConfig?', 'Where is parseConfig defined?',
    'which file has the class Router?', 'which file handles sessions?', 'where is sessions handled?',
    'which file deals with sessions?', 'where is the code for sessions?', 'which file is about sessions?',
    'Which file handles sessions?', '  WHAT FILE reads the config?', 'In what file is the port set?', 'which files handle tokens?',
  ];
  for (const q of asks) assert.ok(asksForFile(q), q);
  for (const q of ['What is the pass key?', 'what does parseConfig return?', 'which function parses the config?', 'whereabouts unknown', 'Why is the sky blue?', 'filed where?']) {
    assert.ok(!asksForFile(q), q);
  }
});

test('mode selection: paths for file questions when there are paths; free otherwise, with a notice only where it matters', () => {
  const state = new Float32Array(4);
  const header = {} as AskSnapshot['header'];
  const withPaths: AskSnapshot = { header, state, paths: ['a.ts', 'b.ts'] };
  const without: AskSnapshot = { header, state, pathsMissing: 'no m.json' };
  assert.deepEqual(chooseMode(withPaths, 'where is x defined?'), { mode: 'paths' });
  assert.deepEqual(chooseMode(withPaths, 'What is the pass key?'), { mode: 'free' });
  assert.deepEqual(chooseMode(withPaths, 'where is x defined?', 'free'), { mode: 'free' });
  assert.deepEqual(chooseMode(withPaths, 'What is the pass key?', 'paths'), { mode: 'paths' });
  assert.deepEqual(chooseMode(without, 'where is x defined?'), { mode: 'free', notice: 'answering by free decoding: no m.json' });
  assert.deepEqual(chooseMode(without, 'What is the pass key?'), { mode: 'free' });
  assert.deepEqual(chooseMode({ header, state, paths: [] }, 'which file handles x?').mode, 'free');
  assert.throws(() => chooseMode(without, 'where is x defined?', 'paths'), /cannot rank paths: no m\.json/);
});

test('ranking: best first, ties in the candidates\' order, shares over all candidates', () => {
  const s = (text: string, logprob: number) => ({ text, tokens: [], logprob });
  const scored = [s('a.ts', -3), s('b.ts', -1), s('c.ts', -2), s('d.ts', -1)];
  const top = rankAnswers(scored, 3);
  assert.deepEqual(top.map((a) => a.text), ['b.ts', 'd.ts', 'c.ts']);
  const all = rankAnswers(scored, 10);
  assert.equal(all.length, 4);
  assert.ok(Math.abs(all.reduce((sum, a) => sum + (a.share ?? 0), 0) - 1) < 1e-12);
  const z = Math.exp(-3) + 2 * Math.exp(-1) + Math.exp(-2);
  assert.ok(Math.abs((top[0].share ?? 0) - Math.exp(-1) / z) < 1e-12);
  assert.equal(top[0].prob, Math.exp(-1));
  assert.equal(top[0].logprob, -1);
  assert.deepEqual(rankAnswers([], 3), []);
});

test('ctx ask --json answers a where-question of fixtures/repo with one of its paths, in paths mode; --free decodes', async () => {
  const snapshotPath = await repoSnapshot();
  const paths = candidatePaths(snapshotPath).paths ?? [];
  const env = { ...process.env };
  delete env.CTX_SNAPSHOT;
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'ask', ...args, '--snapshot', snapshotPath, '--json'], { encoding: 'utf8', timeout: 120_000, env });
  const r = run('where is readJson defined?');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.mode, 'paths');
  assert.equal(out.candidates, paths.length);
  assert.equal(out.answers.length, 3);
  for (const a of out.answers) {
    assert.ok(paths.includes(a.text), `${a.text} is a path of the snapshot`);
    assert.ok(a.logprob < 0 && Math.abs(a.prob - Math.exp(a.logprob)) < 1e-12 && a.share > 0 && a.share <= 1);
  }
  assert.ok(out.answers[0].logprob >= out.answers[1].logprob && out.answers[1].logprob >= out.answers[2].logprob, 'best first');

  const f = run('where is readJson defined?', '--free', '--beams', '1', '--max-tokens', '3');
  assert.equal(f.status, 0, f.stderr);
  const free = JSON.parse(f.stdout);
  assert.equal(free.mode, 'free');
  assert.equal(free.candidates, undefined);
  assert.equal(free.answers.length, 1);
});
