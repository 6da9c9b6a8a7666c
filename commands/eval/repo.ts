import { Args, Flags } from '@oclif/core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtxCommand, printJson } from '../../src/cli/base.js';
import { countBar } from '../../src/cli/progress.js';
import { CtxError } from '../../src/errors.js';
import { buildBm25Index } from '../../src/eval/bm25.js';
import { answerSpread, repoQuestions, type RepoQuestion } from '../../src/eval/repo.js';
import { runIngest } from '../../src/run/ingest.js';
import { ask, loadSnapshotFor, type AskResult } from '../../src/run/ask.js';

export default class EvalRepo extends CtxCommand {
  static summary = 'Repository questions made from the repository itself: top-1/top-3 exact path match of the model\'s ranked paths, memory on vs off vs a BM25 index.';
  static description = `Generates "where is X defined?" (identifiers defined in exactly one file) and "which file handles W?" (words found in one file only) questions, ingests the repository into a temporary snapshot, asks each question with the memory on and switched off, and scores exact path matches.

The model answers as \`ctx ask\` answers such questions (paths mode): every document path the snapshot folded is scored by the model's likelihood of it as the answer, and the best-scoring paths are its top-1 and top-3. With the memory off the same ranking is the model's prior over the paths. The distinct paths it ranks first are counted against the distinct right ones: a model that gives one answer whatever it is asked scores the share of questions about that file, which is no recall; what it gets right about the other files is.

Free decoding (beam search, the answer generated token by token, as \`ctx ask --free\`) scores 0 with today's model and adds two beam searches to every question (about 0.7 s each on two CPU cores), so it is left out unless --free asks for it: its top-1/top-3, memory on and off, are then added. The time per question of each mode is printed (ranking grows with the number and length of the paths; free decoding does not).

The same questions go to a lexical baseline: a BM25 full-text index (MiniSearch) of the same documents the ingest folds, one per file, answering with the paths of its best-ranked files. Identifiers are split at camelCase and snake_case boundaries (parseConfig -> parseconfig, parse, config). Its index grows with the input; its serialised size is shown beside the snapshot's, whose size is fixed by the model.`;
  static examples = ['<%= config.bin %> eval repo ./my-project', '<%= config.bin %> eval repo fixtures/repo --questions 20 --json', '<%= config.bin %> eval repo fixtures/repo --free'];
  static args = { path: Args.string({ description: 'repository folder', required: true }) };
  static flags = {
    questions: Flags.integer({ description: 'number of questions', default: 50, min: 1 }),
    seed: Flags.integer({ default: 1, description: 'seed for choosing questions' }),
    free: Flags.boolean({ description: 'also score free decoding (beam search, 3 beams, memory on and off: two more decodes a question)' }),
    json: Flags.boolean({ description: 'print all results as JSON: per question and per kind, the model (paths mode, memory on/off; free decoding with --free) and BM25, with how many distinct paths the model ranks first (distinctAnswers, distinctPaths, commonestShare) and how many questions about the other files it gets right (othersRight of othersAsked); snapshotBytes and bm25.indexBytes' }),
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
      const candidates = snap.paths?.length ?? 0;
      // The lexical baseline indexes the same paths through the same ingestors (same documents) as the ingest.
      const bm25 = await buildBm25Index([args.path]);
      const bar = countBar(questions.length, 'questions');
      const ms = { paths: 0, free: 0 };
      const results: (RepoQuestion & {
        /** Paths mode: the best 3 paths, and the rank of the right one among all (1 = first). */
        answer: string; answers: string[]; rank: number; top1: boolean; top3: boolean;
        offAnswers: string[]; offRank: number; offTop1: boolean; offTop3: boolean;
        bm25Answers: string[]; bm25Top1: boolean; bm25Top3: boolean;
        free?: { answers: string[]; top1: boolean; top3: boolean; offAnswers: string[]; offTop1: boolean; offTop3: boolean };
      })[] = [];
      const hit = (answers: string[], path: string, k: number) => answers.slice(0, k).some((a) => a.trim() === path);
      const texts = (r: AskResult) => r.answers.map((a) => a.text);
      for (const q of questions) {
        // Every path ranked (beams = all of them), so that the rank of the right one is known too.
        const on = await ask(model, snap, snapshotPath, q.question, { mode: 'paths', beams: candidates });
        const off = await ask(model, snap, snapshotPath, q.question, { mode: 'paths', beams: candidates, memory: false });
        ms.paths += on.ms + off.ms;
        const lexical = bm25.search(q.question, 3);
        const [ton, toff] = [texts(on), texts(off)];
        const result: (typeof results)[number] = {
          ...q, answer: ton[0] ?? '', answers: ton.slice(0, 3), rank: ton.indexOf(q.path) + 1, top1: hit(ton, q.path, 1), top3: hit(ton, q.path, 3),
          offAnswers: toff.slice(0, 3), offRank: toff.indexOf(q.path) + 1, offTop1: hit(toff, q.path, 1), offTop3: hit(toff, q.path, 3),
          bm25Answers: lexical, bm25Top1: hit(lexical, q.path, 1), bm25Top3: hit(lexical, q.path, 3),
        };
        if (flags.free) {
          const fOn = await ask(model, snap, snapshotPath, q.question, { mode: 'free', beams: 3, maxTokens: 32 });
          const fOff = await ask(model, snap, snapshotPath, q.question, { mode: 'free', beams: 3, maxTokens: 32, memory: false });
          ms.free += fOn.ms + fOff.ms;
          result.free = {
            answers: texts(fOn), top1: hit(texts(fOn), q.path, 1), top3: hit(texts(fOn), q.path, 3),
            offAnswers: texts(fOff), offTop1: hit(texts(fOff), q.path, 1), offTop3: hit(texts(fOff), q.path, 3),
          };
        }
        results.push(result);
        bar?.increment();
      }
      bar?.stop();
      type Result = (typeof results)[number];
      const rows = [undefined, 'identifier', 'topic'].map((kind) => {
        const rs = results.filter((r) => !kind || r.kind === kind);   // this row's questions, filtered once
        const rate = (f: (r: Result) => boolean | undefined) => (rs.length ? rs.filter(f).length / rs.length : NaN);
        return {
          questions: kind ?? 'all', n: rs.length, mode: 'paths' as const,
          top1: rate((r) => r.top1), top3: rate((r) => r.top3), memoryOffTop1: rate((r) => r.offTop1), memoryOffTop3: rate((r) => r.offTop3),
          bm25Top1: rate((r) => r.bm25Top1), bm25Top3: rate((r) => r.bm25Top3),
          ...answerSpread(rs),
          ...(flags.free ? {
            free: { top1: rate((r) => r.free?.top1), top3: rate((r) => r.free?.top3), memoryOffTop1: rate((r) => r.free?.offTop1), memoryOffTop3: rate((r) => r.free?.offTop3) },
          } : {}),
        };
      });
      const perQuestion = (total: number) => Math.round(total / (2 * questions.length));
      const timing = { pathsMsPerQuestion: perQuestion(ms.paths), ...(flags.free ? { freeMsPerQuestion: perQuestion(ms.free) } : {}) };
      if (flags.json) {
        return printJson({
          repo: args.path, files, tokens: ingest.tokens, segments: ingest.segments, model: model.config.model_id,
          mode: 'paths', candidates, freeDecoding: flags.free === true, ...timing,
          snapshotBytes: ingest.snapshotBytes, bm25: { library: 'minisearch', documents: bm25.documents, indexBytes: bm25.indexBytes },
          rows, results,
        });
      }
      this.log(`${args.path}: ${files} code files, ${ingest.tokens} tokens in ${ingest.segments} segments`);
      this.log(`model: paths mode (each answer ranked over the ${candidates} document paths folded), ${timing.pathsMsPerQuestion} ms a question` +
        (flags.free ? `; free decoding ${timing.freeMsPerQuestion} ms a question` : '; free decoding not run (--free adds it)'));
      const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '   -' : `${(100 * x).toFixed(0).padStart(3)}%`);
      this.log(`questions     n | paths: top-1  top-3 | memory off: top-1  top-3 | BM25: top-1  top-3${flags.free ? ' | free: top-1  top-3 | free, memory off: top-1  top-3' : ''}`);
      for (const r of rows) {
        const free = r.free ? ` |        ${pct(r.free.top1)}   ${pct(r.free.top3)} |                   ${pct(r.free.memoryOffTop1)}   ${pct(r.free.memoryOffTop3)}` : '';
        this.log(`${r.questions.padEnd(11)} ${String(r.n).padStart(3)} |        ${pct(r.top1)}   ${pct(r.top3)} |             ${pct(r.memoryOffTop1)}   ${pct(r.memoryOffTop3)} |       ${pct(r.bm25Top1)}   ${pct(r.bm25Top3)}${free}`);
      }
      this.log(`top-1 answers: ${rows.filter((r) => r.n > 0).map((r) => `${r.questions} ${r.distinctAnswers} distinct for ${r.distinctPaths} right paths (the commonest given ${pct(r.commonestShare).trim()} of the time; right on ${r.othersRight} of the ${r.othersAsked} about other files)`).join('; ')}`);
      const n = (x: number) => x.toLocaleString('en-US');
      this.log(`bytes: snapshot ${n(ingest.snapshotBytes)} (fixed by the model) | BM25 index ${n(bm25.indexBytes)} (${bm25.documents} documents; grows with the input)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
