import { Flags } from '@oclif/core';
import { statSync } from 'node:fs';
import { SnapshotCommand, humanBytes, humanCount, printJson } from '../src/cli/base.js';
import { readSnapshot, sizeNote } from '../src/snapshot/file.js';
import { readModelConfig, defaultModelDir } from '../src/engine/model.js';

export default class Info extends SnapshotCommand {
  static summary = 'Show what a snapshot holds: model, shape, size, tokens/segments/sources folded, dates.';
  static examples = ['<%= config.bin %> info', '<%= config.bin %> info --json', '<%= config.bin %> info --snapshot repo.ctx'];
  static flags = { json: Flags.boolean({ description: 'print as JSON' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Info);
    const path = this.snapshotPath(flags.snapshot);
    const { header } = readSnapshot(path);
    const bytes = statSync(path).size;
    const current = readModelConfig(flags.model ?? defaultModelDir());
    const matches = current.model_id === header.model.model_id && current.tokenizer_sha256 === header.tokenizer_sha256;
    if (flags.json) return printJson({ path, bytes, ...header, matchesCurrentModel: matches });
    const m = header.model;
    const c = header.counts;
    this.log(`snapshot  ${path}`);
    this.log(`size      ${humanBytes(bytes)} (${bytes} bytes; ${sizeNote(header)})`);
    this.log(`model     ${m.name} ${m.model_id.slice(0, 12)}${matches ? '' : '  (NOT the current model: re-ingest to use it)'}`);
    this.log(`shape     ${m.n_layers} layers x d_model ${m.d_model}, ${m.memory} memory d_key ${m.d_key}, segments of ${m.seg_len} tokens`);
    this.log(`folded    ${humanCount(c.tokens)} tokens in ${humanCount(c.segments)} segments, ${c.documents} documents from ${c.sources} sources`);
    this.log(`created   ${header.created}`);
    this.log(`updated   ${header.updated}`);
  }
}
