/**
 * What a line typed in the session means. Shared by the Ink app and the line mode, so both accept the same
 * commands with the same words.
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';

export type Command =
  | { kind: 'ask'; question: string }
  | { kind: 'ingest'; paths: string[] }
  | { kind: 'info' }
  | { kind: 'snapshot'; path: string }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'empty' }
  | { kind: 'error'; message: string };

export const HELP: [string, string][] = [
  ['QUESTION', 'ask the snapshot (Enter); Esc or Ctrl-C cancels the answer'],
  ['/ingest PATH…', 'fold files or folders in (appends to the current snapshot)'],
  ['/info', 'what the snapshot holds'],
  ['/snapshot PATH', 'switch to another snapshot file'],
  ['/help', 'this list'],
  ['/quit', 'leave (also Ctrl-D, or Ctrl-C on an empty line)'],
  ['↑ ↓', 'earlier questions and commands'],
];

const NAMES = ['ingest', 'info', 'snapshot', 'help', 'quit', 'exit'];

/**
 * What plain text (not a command) means, by the state of the session's snapshot: a question when there is
 * one; a path to ingest when there is none yet (the first screen asks for one); nothing when the file
 * there cannot be used (corrupt, another model's, not a snapshot at all): replacing it must be asked for
 * with /ingest, never be the side effect of typing a question.
 */
export type PlainText = 'ask' | 'ingest' | 'refuse';

export const REFUSED = 'this snapshot cannot be used: /snapshot PATH opens another, /ingest PATH replaces it';

export function parseLine(line: string, plainText: PlainText = 'ask'): Command {
  const text = line.trim();
  if (!text) return { kind: 'empty' };
  const plain = (): Command =>
    plainText === 'ask' ? { kind: 'ask', question: text }
    : plainText === 'ingest' ? { kind: 'ingest', paths: splitArgs(text) }
    : { kind: 'error', message: REFUSED };
  // A command is a slash and a word; "/home/me/src" is a path (or, with a snapshot, part of a question).
  if (!/^\/[A-Za-z]*(\s|$)/.test(text)) return plain();
  const [head, ...rest] = splitArgs(text.slice(1));
  const name = (head ?? '').toLowerCase();
  // Unambiguous prefixes work too: /q, /h, /s, /inf, /ing (/i alone could be either).
  const matches = NAMES.filter((n) => n.startsWith(name));
  const cmd = NAMES.includes(name) ? name : matches.length === 1 ? matches[0] : undefined;
  // On the "no snapshot yet" screen, "/tmp" is more likely a folder than a mistyped command.
  if (!cmd && plainText === 'ingest' && rest.length === 0 && name) return plain();
  switch (cmd) {
    case 'ingest':
      return rest.length ? { kind: 'ingest', paths: rest } : { kind: 'error', message: 'usage: /ingest PATH… (a file or folder to fold in)' };
    case 'snapshot':
      return rest.length === 1 ? { kind: 'snapshot', path: rest[0] } : { kind: 'error', message: 'usage: /snapshot PATH (one snapshot file)' };
    case 'info':
      return { kind: 'info' };
    case 'help':
      return { kind: 'help' };
    case 'quit':
    case 'exit':
      return { kind: 'quit' };
    default:
      return { kind: 'error', message: `unknown command /${head ?? ''}: /help lists the commands` };
  }
}

/** Split on spaces, keeping "quoted parts" and 'quoted parts' together (paths with spaces). */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** ~ is the home folder, as in a shell (paths are typed here, not expanded by one). */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? resolve(homedir(), p.slice(2)) : p;
}

/** A path as the user typed it, made absolute (relative paths start at cwd). */
export function userPath(p: string, cwd = process.cwd()): string {
  return resolve(cwd, expandHome(p));
}
