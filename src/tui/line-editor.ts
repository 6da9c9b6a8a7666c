/**
 * The question box's state as plain functions (no React, no terminal): the text, the cursor, and the
 * history walked with up/down. Going up from a half-typed line keeps it as a draft that down brings back.
 */
export interface LineState {
  value: string;
  cursor: number;
  history: string[];
  /** Position in history while browsing; history.length means "the line being typed". */
  index: number;
  draft: string;
}

export function emptyLine(history: string[] = []): LineState {
  return { value: '', cursor: 0, history, index: history.length, draft: '' };
}

export function insert(s: LineState, text: string): LineState {
  const value = s.value.slice(0, s.cursor) + text + s.value.slice(s.cursor);
  return { ...s, value, cursor: s.cursor + text.length };
}

export function backspace(s: LineState): LineState {
  if (s.cursor === 0) return s;
  return { ...s, value: s.value.slice(0, s.cursor - 1) + s.value.slice(s.cursor), cursor: s.cursor - 1 };
}

/** Ctrl-W: delete the word before the cursor (and the spaces after it). */
export function deleteWord(s: LineState): LineState {
  const before = s.value.slice(0, s.cursor).replace(/\S*\s*$/, '');
  return { ...s, value: before + s.value.slice(s.cursor), cursor: before.length };
}

export function move(s: LineState, to: number): LineState {
  return { ...s, cursor: Math.max(0, Math.min(s.value.length, to)) };
}

export function clear(s: LineState): LineState {
  return { ...s, value: '', cursor: 0, index: s.history.length, draft: '' };
}

export function historyUp(s: LineState): LineState {
  if (s.index === 0) return s;
  const draft = s.index === s.history.length ? s.value : s.draft;
  const value = s.history[s.index - 1];
  return { ...s, index: s.index - 1, value, cursor: value.length, draft };
}

export function historyDown(s: LineState): LineState {
  if (s.index >= s.history.length) return s;
  const index = s.index + 1;
  const value = index === s.history.length ? s.draft : s.history[index];
  return { ...s, index, value, cursor: value.length };
}

/** Enter: the line goes to history (unless blank or the same as the last one) and the box empties. */
export function submit(s: LineState): { line: string; next: LineState } {
  const line = s.value;
  const keep = line.trim() !== '' && s.history[s.history.length - 1] !== line;
  return { line, next: emptyLine(keep ? [...s.history, line] : s.history) };
}

/** The keys the question box understands (Ink's useInput key flags, as far as they matter here). */
export interface KeyPress {
  return?: boolean;
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  home?: boolean;
  end?: boolean;
  backspace?: boolean;
  delete?: boolean;
  escape?: boolean;
  ctrl?: boolean;
  meta?: boolean;
  tab?: boolean;
}

export type EditResult = { state: LineState; submit?: string; quit?: boolean };

/**
 * One key press applied to the line. Enter submits; Ctrl-C clears a non-empty line and quits on an empty
 * one, as shells do; Ctrl-D quits on an empty line. Text that arrives with a newline in it (a paste, or a
 * terminal that delivers "question\r" in one read) is typed up to the newline and submitted.
 */
export function editLine(s: LineState, input: string, key: KeyPress): EditResult {
  if (key.ctrl) return ctrlKey(s, input);
  if (key.return || input === '\n') return submitted(s);
  if (key.upArrow) return { state: historyUp(s) };
  if (key.downArrow) return { state: historyDown(s) };
  if (key.leftArrow) return { state: move(s, s.cursor - 1) };
  if (key.rightArrow) return { state: move(s, s.cursor + 1) };
  if (key.home) return { state: move(s, 0) };
  if (key.end) return { state: move(s, s.value.length) };
  // Most terminals send DEL (0x7f) for the Backspace key, which Ink reports as `delete`.
  if (key.backspace || key.delete) return { state: backspace(s) };
  if (key.escape) return { state: clear(s) };
  if (key.tab || key.meta || !input) return { state: s };
  const nl = input.search(/[\r\n]/);
  // eslint-disable-next-line no-control-regex
  const printable = (t: string) => t.replace(/[\u0000-\u001f\u007f]/g, '');
  if (nl >= 0) return submitted(insert(s, printable(input.slice(0, nl))));
  return { state: insert(s, printable(input)) };
}

function ctrlKey(s: LineState, input: string): EditResult {
  switch (input) {
    case 'c':
      return s.value ? { state: clear(s) } : { state: s, quit: true };
    case 'd':
      return s.value ? { state: s } : { state: s, quit: true };
    case 'a':
      return { state: move(s, 0) };
    case 'e':
      return { state: move(s, s.value.length) };
    case 'u':
      return { state: clear(s) };
    case 'w':
      return { state: deleteWord(s) };
    default:
      return { state: s };
  }
}

function submitted(s: LineState): EditResult {
  const { line, next } = submit(s);
  return { state: next, submit: line };
}
