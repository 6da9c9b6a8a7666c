/**
 * Ingest progress on stderr: a live bar (cli-progress) when stderr is a terminal, nothing otherwise, so that
 * piped or scripted runs stay quiet and their stdout stays machine-readable.
 *
 * With an estimate of the tokens to fold, a bar with documents, pages, tokens, tokens/s and an ETA; without
 * one (following a log, whose end never comes), the same counts and no bar.
 */
import cliProgress from 'cli-progress';
import type { IngestProgress } from '../run/ingest.js';
import { humanCount } from './base.js';

export interface ProgressView {
  update(p: IngestProgress): void;
  /** A line of its own above the bar (resuming, caught up, ...): the bar is redrawn below it. */
  note(line: string): void;
  stop(): void;
}

export function ingestProgress(estimatedTokens?: number, enabled = process.stderr.isTTY === true): ProgressView {
  if (!enabled) return { update() {}, note: (line) => process.stderr.write(`${line}\n`), stop() {} };
  const counts = '{docs} docs | {pages} pages | {tok} tokens | {rate} tok/s';
  const bounded = estimatedTokens !== undefined;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: bounded ? ` {bar} {percentage}% | ${counts} | ETA {eta_formatted} | {path}` : ` ${counts} | {path}`,
      barsize: 24,
      hideCursor: true,
      etaBuffer: 20,
      fps: 5,
      // Redraws on every update even when the tokens did not move (a followed log waiting for lines).
      forceRedraw: !bounded,
    },
    cliProgress.Presets.shades_classic,
  );
  let last: IngestProgress | undefined;
  const payload = (p?: IngestProgress) => {
    const path = p?.path ?? '';
    return {
      docs: p?.documents ?? 0, pages: p?.pages ?? 0, tok: humanCount(p?.tokens ?? 0), rate: Math.round(p?.tokensPerSec ?? 0),
      path: `${p?.following ? 'following ' : ''}${path.length > 40 ? '…' + path.slice(-39) : path}`,
    };
  };
  bar.start(Math.max(1, Math.round(estimatedTokens ?? 1)), 0, payload());
  return {
    update(p) {
      last = p;
      // The estimate is from file sizes: when it was low, keep the bar short of 100% until the end.
      if (p.tokens > bar.getTotal()) bar.setTotal(Math.round(p.tokens * 1.1));
      bar.update(bounded ? p.tokens : 0, payload(p));
    },
    note(line) {
      // cli-progress owns the current line: clear it, print the note, draw the bar again below.
      process.stderr.write(`\r\x1b[2K${line}\n`);
      bar.update(bounded ? last?.tokens ?? 0 : 0, payload(last));
    },
    stop() {
      bar.stop();
    },
  };
}

/** A plain "done/total" bar on stderr for counted work (eval segments, questions); null when not on a terminal. */
export function countBar(total: number, unit: string, enabled = process.stderr.isTTY === true): cliProgress.SingleBar | null {
  if (!enabled) return null;
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: ` {bar} {value}/{total} ${unit} | ETA {eta_formatted}`, hideCursor: true }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}
