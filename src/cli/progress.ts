/**
 * Ingest progress on stderr: a live bar (cli-progress) when stderr is a terminal, nothing otherwise, so that
 * piped or scripted runs stay quiet and their stdout stays machine-readable.
 */
import cliProgress from 'cli-progress';
import type { IngestProgress } from '../run/ingest.js';
import { humanCount } from './base.js';

export interface ProgressView {
  update(p: IngestProgress): void;
  stop(): void;
}

export function ingestProgress(estimatedTokens: number, enabled = process.stderr.isTTY === true): ProgressView {
  if (!enabled) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: ' {bar} {percentage}% | {docs} docs | {tok} tokens | {rate} tok/s | ETA {eta_formatted} | {path}',
      barsize: 24,
      hideCursor: true,
      etaBuffer: 20,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(1, estimatedTokens), 0, { docs: 0, tok: '0', rate: '0', path: '' });
  return {
    update(p) {
      if (p.tokens > bar.getTotal()) bar.setTotal(Math.round(p.tokens * 1.1));
      const path = p.path ?? '';
      bar.update(p.tokens, { docs: p.documents, tok: humanCount(p.tokens), rate: Math.round(p.tokensPerSec), path: path.length > 40 ? '…' + path.slice(-39) : path });
    },
    stop() {
      bar.stop();
    },
  };
}
