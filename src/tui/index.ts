/**
 * Starting a session: the Ink app when both ends are a terminal, otherwise the plain line mode (Ink needs
 * raw keyboard input and cursor movement; a pipe offers neither).
 */
import { createElement } from 'react';
import { render } from 'ink';
import { App } from './App.js';
import { runLineMode } from './line-mode.js';
import type { SessionOptions } from './types.js';

export { App } from './App.js';
export { runLineMode } from './line-mode.js';
export { createServices } from './services.js';
export { noColorFromEnv } from './theme.js';
export type * from './types.js';

export interface StartOptions extends SessionOptions {
  /** Force the line mode even on a terminal. */
  plain?: boolean;
}

export async function startSession(o: StartOptions): Promise<void> {
  const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
  if (o.plain || !tty) {
    return runLineMode({ ...o, input: process.stdin, output: process.stdout, status: process.stderr, handleSigint: true });
  }
  // Ctrl-C is ours: it cancels an answer or an ingest, and quits only from an empty question box.
  const app = render(createElement(App, o), { exitOnCtrlC: false });
  await app.waitUntilExit();
}
