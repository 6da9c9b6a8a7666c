import { Args, Flags } from '@oclif/core';
import { SnapshotCommand, printJson } from '../src/cli/base.js';
import { ask, confidence, loadSnapshotFor } from '../src/run/ask.js';

export default class Ask extends SnapshotCommand {
  static summary = 'Answer a question from the snapshot (the sources are never read).';
  static description = `Loads only the snapshot (and its sidecar manifest, never the sources), runs the question through the model reading its memory, and prints the best answers with their probabilities. Asking never modifies the snapshot.

A question that asks for a file ("where is X defined?", "which file handles Y?", "in which file ...", "what file ...") is answered from the document paths the snapshot folded, as its manifest lists them: every path is scored by the model's likelihood of it as the answer, and the best are shown with their share of the probability over all the paths (paths mode). Any other question, or --free, decodes the answer token by token by beam search (free mode). A snapshot whose manifest lists no paths (ingested by an older ctx) answers file questions freely, with a notice; ingesting again lists them. --json says which mode answered.`;
  static examples = [
    '<%= config.bin %> ask "where is auth handled?"',
    '<%= config.bin %> ask "where is parseConfig defined?" --beams 5 --json',
    '<%= config.bin %> ask "which file handles sessions?" --free',
    '<%= config.bin %> ask "what is the pass key?" --snapshot /tmp/big.ctx',
  ];
  static args = { question: Args.string({ description: 'the question, in quotes', required: true }) };
  static flags = {
    json: Flags.boolean({ description: 'print the result as JSON' }),
    beams: Flags.integer({ description: 'number of answers returned (free mode: the beam width)', default: 3, min: 1, max: 16 }),
    'max-tokens': Flags.integer({ description: 'longest answer, in tokens (free mode)', default: 48, min: 1, max: 512 }),
    'no-memory': Flags.boolean({ description: 'answer with the memory switched off (a baseline)' }),
    free: Flags.boolean({ description: 'decode freely even when the question asks for a file (default: rank the paths the snapshot folded)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Ask);
    const question = args.question.trim();
    if (!question) this.error('the question is empty', { exit: 2 });
    const path = this.snapshotPath(flags.snapshot);
    const model = await this.model(flags.model);
    const snap = loadSnapshotFor(model, path);
    const res = await ask(model, snap, path, question, {
      beams: flags.beams, maxTokens: flags['max-tokens'], memory: !flags['no-memory'], mode: flags.free ? 'free' : 'auto',
    });
    if (flags.json) {
      return printJson({ ...res, answers: res.answers.map(({ text, prob, logprob, share }) => ({ text, prob, logprob, ...(share !== undefined ? { share } : {}) })) });
    }
    if (res.notice) this.logToStderr(`ctx: ${res.notice}`);
    const [best, ...rest] = res.answers;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    this.log(best ? best.text : '(no answer)');
    if (best) this.log(`  confidence ${pct(confidence(best))}${res.mode === 'paths' ? ` (share among the ${res.candidates} paths folded)` : ''}`);
    for (const a of rest) this.log(`  or: ${a.text}  (${pct(confidence(a))})`);
    if (!model.config.trained) this.warn('the shipped model is untrained (random weights): answers are meaningless');
  }
}
