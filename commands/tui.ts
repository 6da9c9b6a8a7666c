import { Flags } from '@oclif/core';
import { SnapshotCommand } from '../src/cli/base.js';
import { defaultModelDir } from '../src/engine/model.js';
import { createServices, noColorFromEnv, startSession } from '../src/tui/index.js';
import { fileHistory, historyPath } from '../src/tui/history.js';

export default class Tui extends SnapshotCommand {
  static summary = 'Interactive session over the snapshot: ask questions, ingest with live progress, inspect (what `ctx` alone runs).';
  static description = `Opens a terminal UI over the current snapshot: a question box with history (up/down; kept in <snapshot>.history for the next session), answers streamed as they are decoded with their confidence and alternatives (Esc or Ctrl-C cancels an answer), and a header with what the snapshot holds. With no snapshot yet it offers to ingest a path. Commands inside: /ingest PATH, /info, /snapshot PATH, /help, /quit.

When stdout or stdin is not a terminal it falls back to a plain line mode: one question per line in, answers out. NO_COLOR turns colours off.`;
  static examples = [
    '<%= config.bin %>',
    '<%= config.bin %> tui --snapshot repo.ctx',
    'NO_COLOR=1 <%= config.bin %>',
    'printf "where is main defined?\\n" | <%= config.bin %> tui',
  ];
  static flags = {
    plain: Flags.boolean({ description: 'use the plain line mode even on a terminal' }),
    beams: Flags.integer({ description: 'beam width = number of answers shown', default: 3, min: 1, max: 16 }),
    'max-tokens': Flags.integer({ description: 'longest answer, in tokens', default: 48, min: 1, max: 512 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Tui);
    const services = createServices({ modelDir: flags.model ?? defaultModelDir(), beams: flags.beams, maxTokens: flags['max-tokens'] });
    const snapshotPath = this.snapshotPath(flags.snapshot);
    const history = fileHistory(historyPath(snapshotPath));
    await startSession({ services, snapshotPath, history, noColor: noColorFromEnv(), plain: flags.plain });
  }
}
