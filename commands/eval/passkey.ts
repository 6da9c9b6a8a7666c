import { Flags } from '@oclif/core';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CtxCommand, humanCount, printJson } from '../../src/cli/base.js';
import { countBar } from '../../src/cli/progress.js';
import { CtxError } from '../../src/errors.js';
import { cases, loadFiller, parseLength, runPasskeyCase, type PasskeyResult } from '../../src/eval/passkey.js';

/** Real prose present on every Debian machine; the repository's own fixtures elsewhere. */
function defaultFiller(root: string): string[] {
  const licenses = '/usr/share/common-licenses';
  if (existsSync(licenses)) return readdirSync(licenses).map((f) => join(licenses, f)).filter((p) => !p.endsWith('.gz'));
  return [join(root, 'README.md'), join(root, 'fixtures', 'notes', 'gpl-3.0-with-pass-key.txt')];
}

export default class EvalPasskey extends CtxCommand {
  static summary = 'Passkey retrieval accuracy at given stream lengths and depths, through the shipped model.';
  static description = 'Builds streams of real text with one "The pass key is N." sentence at the start, middle or end, folds them exactly as `ctx ingest` does, asks for the key, and reports top-1 accuracy per length and depth (and with the memory switched off, which must fail).';
  static examples = ['<%= config.bin %> eval passkey --lengths 32k,128k,1m', '<%= config.bin %> eval passkey --lengths 8k --samples 5 --json'];
  static flags = {
    lengths: Flags.string({ description: 'stream lengths in tokens (k = 1024, m = 1024k)', default: '32k,128k' }),
    depths: Flags.string({ description: 'needle depths as fractions of the stream', default: '0,0.5,1' }),
    samples: Flags.integer({ description: 'samples per length and depth', default: 2, min: 1 }),
    seed: Flags.integer({ description: 'seed for keys and filler order', default: 1 }),
    filler: Flags.string({ description: 'text files used as filler (repeatable) [default: /usr/share/common-licenses/*]', multiple: true }),
    json: Flags.boolean({ description: 'print all results as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(EvalPasskey);
    let lengths: number[];
    try {
      lengths = flags.lengths.split(',').map(parseLength);
    } catch (e) {
      throw new CtxError((e as Error).message);
    }
    const depths = flags.depths.split(',').map(Number);
    if (depths.some((d) => !(d >= 0 && d <= 1))) throw new CtxError('depths must be fractions between 0 and 1');
    const model = await this.model(flags.model);
    const filler = loadFiller(flags.filler ?? defaultFiller(this.config.root));
    const all = cases(lengths, depths, flags.samples, flags.seed);
    const totalSegs = all.reduce((s, c) => s + Math.ceil(c.tokens / model.config.seg_len), 0);
    const bar = countBar(totalSegs, 'segments');
    const results: PasskeyResult[] = [];
    for (const c of all) results.push(await runPasskeyCase(model, filler, c, undefined, () => bar?.increment()));
    bar?.stop();
    const rows = lengths.flatMap((tokens) => depths.map((depth) => {
      const rs = results.filter((r) => r.tokens === tokens && r.depth === depth);
      return { tokens, depth, n: rs.length, top1: rs.filter((r) => r.correct).length / rs.length, top3: rs.filter((r) => r.correctTop3).length / rs.length, memoryOffTop1: rs.filter((r) => r.correctMemoryOff).length / rs.length };
    }));
    if (flags.json) return printJson({ model: model.config.model_id, rows, results });
    const pct = (x: number) => `${(100 * x).toFixed(0).padStart(4)}%`;
    this.log('tokens    depth  samples  top-1  top-3  memory off');
    for (const r of rows) this.log(`${humanCount(r.tokens).padEnd(9)} ${r.depth.toFixed(2).padStart(5)}  ${String(r.n).padStart(7)}  ${pct(r.top1)}  ${pct(r.top3)}  ${pct(r.memoryOffTop1).padStart(10)}`);
    const overall = results.filter((r) => r.correct).length / results.length;
    this.log(`overall top-1 ${(100 * overall).toFixed(1)}% of ${results.length} (model ${model.config.name} ${model.config.model_id.slice(0, 12)})`);
  }
}
