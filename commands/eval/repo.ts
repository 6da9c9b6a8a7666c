import { Args, Flags } from '@oclif/core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtxCommand, printJson } from '../../src/cli/base.js';
import { countBar } from '../../src/cli/progress.js';
import { CtxError } from '../../src/errors.js';
import { buildBm25Index } from '../../src/eval/bm25.js';
import { repoQuestions, type RepoQuestion } from '../../src/eval/repo.js';
import { runIngest } from '../../src/run/ingest.js';
import { ask, loadSnapshotFor } from '../../src/run/ask.js';

export default class EvalRepo extends CtxCommand {
  static summary = 'Repository questions made from the repository itself: top-1/top-3 exact path match, memory on vs off vs a BM25 index.';
  static description = `Generates "where is X defined?" (identifiers defined in exactly one file) and "which file handles W?" (words found in one file only) questions, ingests the repository into a temporary snapshot, asks each question with the memory on and switched off, and scores exact path matches.

The same questions go to a lexical baseline: a BM25 full-text index (MiniSearch) of the same documents the ingest folds, one per file, answering with the paths of its best-ranked files. Identifiers are split at camelCase and snake_case boundaries (parseConfig -> parseconfig, parse, config). Its index grows with the input; its serialised size is shown beside the snapshot's, whose size is fixed by the model.`;
  static examples = ['<%= config.bin %> eval repo ./my-project', '<%= config.bin %> eval repo fixtures/repo --questions 20 --json'];
  static args = { path: Args.string({ description: 'repository folder', required: true }) };
  static flags = {
    questions: Flags.integer({ description: 'number of questions', default: 50, min: 1 }),
    seed: Flags.integer({ default: 1, description: 'seed for choosing questions' }),
    json: Flags.boolean({ description: 'print all results as JSON: per question and per kind, the model (memory on/off) and BM25; snapshotBytes and bm25.indexBytes' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(EvalRepo);
    if (!existsSync(args.path)) throw new CtxError(`no such folder: ${args.path}`);
    const model = await this.model(flags.model);
    const { questions, files } = await repoQuestions(args.path, flags.questions, flags.seed);
    if (questions.length === 0) throw new CtxError(`found no definitions to ask about in ${args.path}`);
    const dir = mkdtempSync(join(tmpdir(), 'ctx-eval-'));
    const snapshotPath = join(dir, 'memory.ctx');
    try {
      const ingest = await runIngest({ model, paths: [args.path], snapshotPath });
      const snap = loadSnapshotFor(model, snapshotPath);
      // The lexical baseline indexes the same paths through the same ingestors (same documents) as the ingest.
      const bm25 = await buildBm25Index([args.path]);
      const bar = countBar(questions.length, 'questions');
      const results: (RepoQuestion & {
        answer: string; top1: boolean; top3: boolean; offTop1: boolean; offTop3: boolean;
        bm25Answers: string[]; bm25Top1: boolean; bm25Top3: boolean;
      })[] = [];
      for (const q of questions) {
        const on = await ask(model, snap, snapshotPath, q.question, { beams: 3, maxTokens: 32 });
        const off = await ask(model, snap, snapshotPath, q.question, { beams: 3, maxTokens: 32, memory: false });
        const lexical = bm25.search(q.question, 3);
        const hit = (answers: string[], k: number) => answers.slice(0, k).some((a) => a.trim() === q.path);
        const texts = (r: typeof on) => r.answers.map((a) => a.text);
        results.push({
          ...q, answer: on.answers[0]?.text ?? '', top1: hit(texts(on), 1), top3: hit(texts(on), 3), offTop1: hit(texts(off), 1), offTop3: hit(texts(off), 3),
          bm25Answers: lexical, bm25Top1: hit(lexical, 1), bm25Top3: hit(lexical, 3),
        });
        bar?.increment();
      }
      bar?.stop();
      const rate = (f: (r: (typeof results)[number]) => boolean, kind?: string) => {
        const rs = results.filter((r) => !kind || r.kind === kind);
        return rs.length ? rs.filter(f).length / rs.length : NaN;
      };
      const rows = [undefined, 'identifier', 'topic'].map((kind) => ({
        questions: kind ?? 'all', n: results.filter((r) => !kind || r.kind === kind).length,
        top1: rate((r) => r.top1, kind), top3: rate((r) => r.top3, kind), memoryOffTop1: rate((r) => r.offTop1, kind), memoryOffTop3: rate((r) => r.offTop3, kind),
        bm25Top1: rate((r) => r.bm25Top1, kind), bm25Top3: rate((r) => r.bm25Top3, kind),
      }));
      if (flags.json) {
        return printJson({
          repo: args.path, files, tokens: ingest.tokens, segments: ingest.segments, model: model.config.model_id,
          snapshotBytes: ingest.snapshotBytes, bm25: { library: 'minisearch', documents: bm25.documents, indexBytes: bm25.indexBytes },
          rows, results,
        });
      }
      this.log(`${args.path}: ${files} code files, ${ingest.tokens} tokens in ${ingest.segments} segments`);
      this.log('questions     n   top-1  top-3 | memory off: top-1  top-3 | BM25: top-1  top-3');
      const pct = (x: number) => (Number.isNaN(x) ? '   -' : `${(100 * x).toFixed(0).padStart(3)}%`);
      for (const r of rows) {
        this.log(`${r.questions.padEnd(11)} ${String(r.n).padStart(3)}   ${pct(r.top1)}   ${pct(r.top3)} |             ${pct(r.memoryOffTop1)}   ${pct(r.memoryOffTop3)} |       ${pct(r.bm25Top1)}   ${pct(r.bm25Top3)}`);
      }
      const n = (x: number) => x.toLocaleString('en-US');
      this.log(`bytes: snapshot ${n(ingest.snapshotBytes)} (fixed by the model) | BM25 index ${n(bm25.indexBytes)} (${bm25.documents} documents; grows with the input)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
