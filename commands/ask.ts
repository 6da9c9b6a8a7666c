import { Args, Flags } from '@oclif/core';
import { SnapshotCommand, printJson } from '../src/cli/base.js';
import { ask, loadSnapshotFor } from '../src/run/ask.js';

export default class Ask extends SnapshotCommand {
  static summary = 'Answer a question from the snapshot (the sources are never read).';
  static description = 'Loads only the snapshot, runs the question through the model reading its memory, and prints the best answers with their probabilities. Asking never modifies the snapshot.';
  static examples = [
    '<%= config.bin %> ask "where is auth handled?"',
    '<%= config.bin %> ask "where is parseConfig defined?" --beams 5 --json',
    '<%= config.bin %> ask "what is the pass key?" --snapshot /tmp/big.ctx',
  ];
  static args = { question: Args.string({ description: 'the question, in quotes', required: true }) };
  static flags = {
    json: Flags.boolean({ description: 'print the result as JSON' }),
    beams: Flags.integer({ description: 'beam width = number of answers returned', default: 3, min: 1, max: 16 }),
    'max-tokens': Flags.integer({ description: 'longest answer, in tokens', default: 48, min: 1, max: 512 }),
    'no-memory': Flags.boolean({ description: 'answer with the memory switched off (a baseline)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Ask);
    const question = args.question.trim();
    if (!question) this.error('the question is empty', { exit: 2 });
    const path = this.snapshotPath(flags.snapshot);
    const model = await this.model(flags.model);
    const snap = loadSnapshotFor(model, path);
    const res = await ask(model, snap, path, question, { beams: flags.beams, maxTokens: flags['max-tokens'], memory: !flags['no-memory'] });
    if (flags.json) return printJson({ ...res, answers: res.answers.map(({ text, prob, logprob }) => ({ text, prob, logprob })) });
    const [best, ...rest] = res.answers;
    this.log(best ? best.text : '(no answer)');
    if (best) this.log(`  confidence ${(best.prob * 100).toFixed(1)}%`);
    for (const a of rest) this.log(`  or: ${a.text}  (${(a.prob * 100).toFixed(1)}%)`);
    if (!model.config.trained) this.warn('the shipped model is untrained (random weights): answers are meaningless');
  }
}
