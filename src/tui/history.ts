/**
 * The question box's history kept across sessions: one line per entry in `<snapshot>.history`, beside the
 * snapshot it was asked of (so each project has its own, and an ingest never folds it: src/snapshot/path.ts).
 * A convenience, so it never gets in the way: an unreadable or unwritable file means no history, not an error.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HistoryStore } from './types.js';

export const historyPath = (snapshotPath: string): string => `${snapshotPath}.history`;

/** The history in `path`: the last `max` lines are loaded; adding past 2 × max rewrites the file to max lines. */
export function fileHistory(path: string, max = 500): HistoryStore {
  let lines = 0;
  const read = (): string[] => {
    try {
      return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
    } catch {
      return [];
    }
  };
  return {
    load() {
      const all = read();
      lines = all.length;
      return all.slice(-max);
    },
    add(line: string) {
      if (line.trim() === '' || /[\r\n]/.test(line)) return;
      try {
        mkdirSync(dirname(path), { recursive: true });
        appendFileSync(path, `${line}\n`);
        if (++lines > 2 * max) {
          const kept = read().slice(-max);
          writeFileSync(path, `${kept.join('\n')}\n`);
          lines = kept.length;
        }
      } catch {
        // no history this time (read-only folder, full disk): asking goes on
      }
    },
  };
}
