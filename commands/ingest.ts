import { Args, Flags } from '@oclif/core';
import { CtxCommand, humanBytes, humanCount, printJson } from '../src/cli/base.js';
import { ingestProgress } from '../src/cli/progress.js';
import { runIngest } from '../src/run/ingest.js';
import { planSources } from '../src/ingest/index.js';

/** Average characters per token of the shipped tokenizer on code (measured: 3.6); used only for the ETA. */
const CHARS_PER_TOKEN = 3.6;

export default class Ingest extends CtxCommand {
  static summary = 'Fold files, folders, PDFs and logs into the snapshot.';
  static description = `Walks the given paths (honouring .gitignore, skipping binaries, vendored files and lockfiles), turns every source into text and folds it, segment by segment, into the fixed-size memory of the snapshot. The snapshot is checkpointed during long ingests and replaced atomically, so Ctrl-C loses at most the last checkpoint interval.`;
  static examples = [
    '<%= config.bin %> ingest ./repo',
    '<%= config.bin %> ingest ./repo ./docs/*.pdf /var/log/app --snapshot project.ctx',
    '<%= config.bin %> ingest ./more --append',
    '<%= config.bin %> ingest ./repo --dry-run',
  ];
  static strict = false;
  static args = { paths: Args.string({ description: 'files or folders to ingest', required: true }) };
  static flags = {
    append: Flags.boolean({ char: 'a', description: 'fold into the existing snapshot instead of starting a new one' }),
    json: Flags.boolean({ description: 'print the summary as JSON on stdout' }),
    'dry-run': Flags.boolean({ description: 'list what would be ingested and skipped, fold nothing' }),
    'include-vendored': Flags.boolean({ description: 'also ingest vendored, generated and minified files' }),
    'include-lockfiles': Flags.boolean({ description: 'also ingest lockfiles (package-lock.json, yarn.lock, ...)' }),
    'max-file-size': Flags.integer({ description: 'skip code/text files larger than this many KiB', default: 2048 }),
    'checkpoint-secs': Flags.integer({ description: 'save the snapshot at least this often during long ingests', default: 30 }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Ingest);
    const paths = argv as string[];
    const sources = { includeVendored: flags['include-vendored'], includeLockfiles: flags['include-lockfiles'], maxFileBytes: flags['max-file-size'] * 1024 };
    const plan = await planSources(paths, sources);
    if (flags['dry-run']) return this.dryRun(plan, flags.json);
    const snapshotPath = this.snapshotPath(flags.snapshot);
    const model = await this.model(flags.model);
    const bytes = plan.documents.reduce((s, d) => s + d.bytes, 0);
    const view = ingestProgress(bytes / CHARS_PER_TOKEN);
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    let summary;
    try {
      summary = await runIngest({ model, paths, snapshotPath, append: flags.append, checkpointMs: flags['checkpoint-secs'] * 1000,
        signal: abort.signal, sources, onProgress: (p) => view.update(p) });
    } finally {
      view.stop();
      process.off('SIGINT', onSigint);
    }
    if (flags.json) printJson(summary);
    else this.report(summary);
    if (summary.interrupted) this.exit(130);
  }

  private report(s: Awaited<ReturnType<typeof runIngest>>): void {
    const kinds = Object.entries(s.documents).map(([k, n]) => `${n} ${k}`).join(', ') || 'no documents';
    const log = (line: string) => process.stderr.write(line + '\n');
    log(`${s.interrupted ? 'interrupted: saved what was folded so far' : 'ingested'}: ${kinds}`);
    log(`  ${humanCount(s.tokens)} tokens in ${s.segments} segments (${(s.ms / 1000).toFixed(1)} s, ${Math.round(s.tokens / Math.max(0.001, s.ms / 1000))} tok/s)`);
    if (s.skipped.length) {
      log(`  skipped ${s.skipped.length}:`);
      for (const k of s.skipped.slice(0, 20)) log(`    ${k.path}: ${k.reason}`);
      if (s.skipped.length > 20) log(`    ... and ${s.skipped.length - 20} more (--json lists all)`);
    }
    log(`  snapshot ${s.snapshot} (${humanBytes(s.snapshotBytes)}), ${humanCount(s.total.tokens)} tokens in total`);
  }

  private dryRun(plan: Awaited<ReturnType<typeof planSources>>, json: boolean): void {
    if (json) return printJson(plan);
    for (const d of plan.documents) this.log(`${d.kind.padEnd(5)} ${humanBytes(d.bytes).padStart(9)}  ${d.path}`);
    for (const s of plan.skipped) this.log(`skip  ${s.path}: ${s.reason}`);
    this.log(`${plan.documents.length} documents, ${plan.skipped.length} skipped`);
  }
}
