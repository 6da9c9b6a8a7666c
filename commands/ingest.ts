import { Args, Flags } from '@oclif/core';
import { CtxError } from '../src/errors.js';
import { SnapshotCommand, humanBytes, humanCount, printJson } from '../src/cli/base.js';
import { ingestProgress } from '../src/cli/progress.js';
import { checkIngestPaths, estimateTokens, runIngest, skipReasons, type IngestSummary } from '../src/run/ingest.js';
import { planSources } from '../src/ingest/index.js';
import { snapshotFiles } from '../src/snapshot/path.js';

export default class Ingest extends SnapshotCommand {
  static summary = 'Fold files, folders, PDFs and logs into the snapshot.';
  static description = `Walks the given paths (honouring .gitignore, skipping binaries, vendored files and lockfiles), turns every source into text and folds it, segment by segment, into the fixed-size memory of the snapshot.

The snapshot is replaced only when the ingest completes: until then, checkpoints go to <snapshot>.partial (with a resume record, <snapshot>.partial.json). After Ctrl-C or a crash the old snapshot is intact, and running the same command again resumes where the last checkpoint was (--restart starts over).

--append folds into the existing snapshot, skips files unchanged since they were ingested (size and mtime, from <snapshot>.manifest.json) and folds only the lines a log appended since. --follow folds a log, then the lines appended to it (across rotation), saving the snapshot every --checkpoint-secs until Ctrl-C.`;
  static examples = [
    '<%= config.bin %> ingest ./repo',
    '<%= config.bin %> ingest ./repo ./docs/*.pdf /var/log/app --snapshot project.ctx',
    '<%= config.bin %> ingest ./more --append',
    '<%= config.bin %> ingest --follow /var/log/nginx/access.log',
    '<%= config.bin %> ingest ./repo --dry-run',
  ];
  static strict = false;
  static args = { paths: Args.string({ description: 'files or folders to ingest', required: true }) };
  static flags = {
    append: Flags.boolean({ char: 'a', description: 'fold into the existing snapshot instead of starting a new one' }),
    follow: Flags.boolean({ char: 'f', description: 'fold one log file, then keep folding the lines appended to it until Ctrl-C' }),
    restart: Flags.boolean({ description: 'discard an interrupted ingest of the same paths instead of resuming it' }),
    json: Flags.boolean({ description: 'print the summary as JSON on stdout' }),
    'dry-run': Flags.boolean({ description: 'list what would be ingested and skipped, fold nothing' }),
    'include-vendored': Flags.boolean({ description: 'also ingest vendored, generated and minified files' }),
    'include-lockfiles': Flags.boolean({ description: 'also ingest lockfiles (package-lock.json, yarn.lock, ...)' }),
    'max-file-size': Flags.integer({ description: 'skip code/text files larger than this many KiB', default: 2048 }),
    'checkpoint-secs': Flags.integer({ description: 'save progress at least this often (and, following, the snapshot)', default: 30, min: 1 }),
    // For benchmarks (scripts/bench-ingest.sh): stop folding after N seconds, as Ctrl-C would, but exit 0.
    'max-seconds': Flags.integer({ hidden: true, env: 'CTX_BENCH_MAX_SECONDS', min: 1 }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Ingest);
    const paths = argv as string[];
    checkIngestPaths(paths, flags.follow);
    if (flags.follow && flags['dry-run']) throw new CtxError('--dry-run and --follow do not go together');
    const snapshotPath = this.snapshotPath(flags.snapshot);
    const sources = {
      includeVendored: flags['include-vendored'], includeLockfiles: flags['include-lockfiles'], maxFileBytes: flags['max-file-size'] * 1024,
      exclude: snapshotFiles(snapshotPath),
    };
    if (flags['dry-run']) return this.dryRun(await planSources(paths, sources), flags.json);

    const model = await this.model(flags.model);
    const estimate = flags.follow ? undefined : await this.estimateTokens(paths, sources);
    const view = ingestProgress(estimate);
    const abort = new AbortController();
    let byUser = false;
    const onSigint = () => {
      byUser = true;
      abort.abort();
    };
    process.once('SIGINT', onSigint); // a second Ctrl-C kills at once: every write is atomic anyway
    const timer = flags['max-seconds'] ? setTimeout(() => abort.abort(), flags['max-seconds'] * 1000) : undefined;
    let summary: IngestSummary;
    try {
      summary = await runIngest({
        model, paths, snapshotPath, append: flags.append, restart: flags.restart, follow: flags.follow,
        checkpointMs: flags['checkpoint-secs'] * 1000, signal: abort.signal, sources,
        onProgress: (p) => view.update(p), onNotice: (line) => view.note(line),
      });
    } finally {
      view.stop();
      clearTimeout(timer);
      process.off('SIGINT', onSigint);
    }
    if (flags.json) printJson(summary);
    else this.report(summary);
    if (summary.interrupted && byUser) this.exit(130);
  }

  /** Tokens the sources should give (from their sizes), for the ETA; undefined when listing fails. */
  private async estimateTokens(paths: string[], sources: Parameters<typeof planSources>[1]): Promise<number | undefined> {
    const plan = await planSources(paths, sources).catch(() => undefined);
    return plan && estimateTokens(plan.documents);
  }

  private report(s: IngestSummary): void {
    const log = (line: string) => process.stderr.write(line + '\n');
    const kinds = Object.entries(s.documents).map(([k, n]) => `${n} ${k}`).join(', ') || 'no documents';
    const head = s.interrupted ? 'interrupted' : s.follow ? 'stopped following' : s.append ? 'appended' : 'ingested';
    const resumed = s.resumed ? ` (after ${s.resumed.toLocaleString('en-US')} folded before the interruption)` : '';
    log(`${head}: ${kinds}${s.pages ? `, ${s.pages} pages` : ''}${resumed}`);
    const secs = s.ms / 1000;
    log(`  ${humanCount(s.tokens)} tokens in ${s.segments} segments (${secs.toFixed(1)} s, ${Math.round(s.tokens / Math.max(0.001, secs))} tok/s)`);
    if (s.skipped.length) {
      log(`  skipped ${s.skipped.length}: ${skipReasons(s.skipped)}`);
      for (const k of s.skipped.slice(0, 20)) log(`    ${k.path}: ${k.reason}`);
      if (s.skipped.length > 20) log(`    ... and ${s.skipped.length - 20} more (--json lists all)`);
    }
    if (s.interrupted) {
      log(`  the snapshot ${s.snapshot} is unchanged`);
      if (s.partial) log(`  what was folded is saved in ${s.partial}: run the same command again to resume (--restart starts over)`);
      return;
    }
    log(`  snapshot ${s.snapshot} (${humanBytes(s.snapshotBytes)}): ${humanCount(s.total.tokens)} tokens, ${s.total.documents} document${s.total.documents === 1 ? "" : "s"} in total`);
  }

  private dryRun(plan: Awaited<ReturnType<typeof planSources>>, json: boolean): void {
    if (json) return printJson(plan);
    for (const d of plan.documents) this.log(`${d.kind.padEnd(5)} ${humanBytes(d.bytes).padStart(9)}  ${d.path}`);
    for (const s of plan.skipped) this.log(`skip  ${s.path}: ${s.reason}`);
    this.log(`${plan.documents.length} documents, ${plan.skipped.length} skipped`);
  }
}
