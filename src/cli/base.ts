/**
 * What every ctx command shares: the --model flag (and --snapshot, for those that use one), and turning user
 * mistakes (CtxError) into one line on stderr and a non-zero exit, never a stack trace.
 */
import { Command, Flags } from '@oclif/core';
import { CtxError } from '../errors.js';
import { defaultModelDir, loadModel, type Model } from '../engine/model.js';
import { resolveSnapshotPath } from '../snapshot/path.js';

export abstract class CtxCommand extends Command {
  static baseFlags = {
    model: Flags.string({ description: 'model folder [default: $CTX_MODEL or the shipped model]', helpGroup: 'GLOBAL' }),
  };

  protected async model(flag?: string): Promise<Model> {
    return loadModel(flag ?? defaultModelDir());
  }

  protected async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof CtxError) {
      process.stderr.write(`ctx: ${err.message}\n`);
      this.exit(err.exitCode);
    }
    return super.catch(err);
  }
}

/** Commands that read or write the user's snapshot (evaluations fold into temporary ones of their own). */
export abstract class SnapshotCommand extends CtxCommand {
  static baseFlags = {
    snapshot: Flags.string({ char: 's', description: 'snapshot file [default: $CTX_SNAPSHOT or .ctx/memory.ctx]', helpGroup: 'GLOBAL' }),
    ...CtxCommand.baseFlags,
  };

  protected snapshotPath(flag?: string): string {
    return resolveSnapshotPath(flag);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function humanCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}
