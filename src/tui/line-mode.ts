/**
 * The session without a terminal (stdout or stdin piped): read a line, print the answer, as plain text with
 * no cursor movement and no colours, so that it can be scripted (`printf 'q1\nq2\n' | ctx > answers.txt`).
 * Same commands as the Ink app; answers are printed whole (the best partial answer can change between
 * decoding steps, which only a redrawing screen can show).
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { HELP, expandHome, parseLine, userPath, type Command } from './commands.js';
import { displayText, formatDuration, formatProb, headerFacts, infoRows, modelLabel, plural, progressFacts } from './format.js';
import type { IngestEstimate, ModelInfo, SessionOptions, SnapshotInfo } from './types.js';

export interface LineModeOptions extends SessionOptions {
  input: Readable;
  output: Writable;
  /** Where transient status goes ("loading model…"); default: output. The command passes stderr, so that
   *  `ctx > answers.txt` holds the session and nothing else. */
  status?: Writable;
  /** Catch SIGINT to cancel the running answer or ingest (the real process; tests leave it off). */
  handleSigint?: boolean;
  /** Print an ingest progress line at most this often (default 2 s of ingest time). */
  progressEveryMs?: number;
}

export async function runLineMode(o: LineModeOptions): Promise<void> {
  const say = (text = '') => o.output.write(text + '\n');
  (o.status ?? o.output).write('loading model…\n');
  const model = await o.services.loadModel();
  const s = { path: o.snapshotPath, snapshot: undefined as SnapshotInfo | undefined, error: undefined as string | undefined };
  const open = (p: string) => {
    s.path = p;
    try {
      s.snapshot = o.services.openSnapshot(p);
      s.error = undefined;
    } catch (e) {
      s.snapshot = undefined;
      s.error = (e as Error).message;
    }
  };
  open(o.snapshotPath);
  printHeader(say, model, s.snapshot, s.path, s.error);

  let abort: AbortController | undefined;
  const rl = createInterface({ input: o.input, output: o.output, prompt: 'ctx> ', terminal: false });
  // Ctrl-C cancels what runs; with nothing running it ends the session.
  const onSigint = () => (abort ? abort.abort() : rl.close());
  if (o.handleSigint) process.on('SIGINT', onSigint);
  rl.on('SIGINT', onSigint);

  const run = async (cmd: Command): Promise<boolean> => {
    abort = new AbortController();
    try {
      switch (cmd.kind) {
        case 'ask':
          await askLine(o, say, s.path, cmd.question, abort.signal);
          break;
        case 'ingest':
          await ingestLine(o, say, s.path, cmd.paths, s.snapshot !== undefined, abort.signal);
          open(s.path);
          if (s.error) say(`error: ${s.error}`);
          break;
        case 'info':
          if (s.snapshot) for (const [k, v] of infoRows(s.snapshot, model)) say(`${k.padEnd(9)} ${v}`);
          else say(s.error ? `cannot use ${s.path}: ${s.error}` : `no snapshot yet at ${s.path}: /ingest PATH to make one`);
          break;
        case 'snapshot':
          open(userPath(cmd.path, o.cwd));
          say(s.error ? `error: ${s.error}` : s.snapshot ? `snapshot is now ${s.path}` : `no snapshot yet at ${s.path}: /ingest PATH to make one`);
          break;
        case 'help':
          for (const [k, v] of HELP) say(`  ${k.padEnd(16)} ${v}`);
          break;
        case 'error':
          say(`error: ${cmd.message}`);
          break;
        case 'quit':
          return false;
        case 'empty':
          break;
      }
    } catch (e) {
      say((e as Error).name === 'AbortError' ? 'cancelled' : `error: ${(e as Error).message}`);
    } finally {
      abort = undefined;
    }
    return true;
  };

  // Without a terminal nothing echoes what was read: write it after the prompt, so the output reads as a
  // transcript (question, then answer). On a terminal in cooked mode the user's typing is already there.
  const echo = !((o.input as { isTTY?: boolean }).isTTY && (o.output as { isTTY?: boolean }).isTTY);
  try {
    rl.prompt();
    for await (const text of rl) {
      if (echo) o.output.write(text + '\n');
      if (!(await run(parseLine(text, s.snapshot ? 'ask' : s.error ? 'refuse' : 'ingest')))) break;
      rl.prompt();
    }
  } finally {
    if (o.handleSigint) process.off('SIGINT', onSigint);
    rl.close();
  }
  say();
}

function printHeader(say: (t?: string) => void, model: ModelInfo, snap: SnapshotInfo | undefined, path: string, error?: string) {
  say(`ctx  ${path}`);
  say(`model ${modelLabel(model)}${model.trained ? '' : ' · untrained model (random weights: answers are meaningless)'}`);
  if (snap) say(headerFacts(snap).join(' · '));
  else if (error) say(`cannot use this snapshot: ${error}\n/snapshot PATH opens another; /ingest PATH replaces it`);
  else say('no snapshot yet: type a file or folder to ingest (or /help)');
}

async function askLine(o: LineModeOptions, say: (t?: string) => void, path: string, question: string, signal: AbortSignal) {
  const r = await o.services.ask({ snapshotPath: path, question, signal, onStep: () => {} });
  if (r.notice) say(`  ${r.notice}`);
  const [best, ...rest] = r.answers;
  say(`→ ${best ? displayText(best.text) : '(no answer)'}`);
  if (best) say(`  confidence ${formatProb(best.prob)} · ${(r.ms / 1000).toFixed(1)} s`);
  for (const a of rest) say(`  or: ${displayText(a.text)} (${formatProb(a.prob)})`);
}

async function ingestLine(o: LineModeOptions, say: (t?: string) => void, path: string, paths: string[], append: boolean, signal: AbortSignal) {
  say(`${append ? 'appending' : 'ingesting'} ${paths.join(' ')} → ${path}`);
  let estimate: IngestEstimate | undefined;
  let lastMs = 0;
  const every = o.progressEveryMs ?? 2000;
  const r = await o.services.ingest({
    paths: paths.map(expandHome), snapshotPath: path, append, signal,
    onEstimate: (e) => (estimate = e),
    onNotice: (line) => say(`  ${line}`),
    onProgress: (p) => {
      if (p.elapsedMs - lastMs < every) return;
      lastMs = p.elapsedMs;
      say(`  ${progressFacts(p, estimate).join(' · ')}`);
    },
  });
  const what = `${plural(r.documents, 'document')}${r.skipped ? ` (${r.skipped} skipped)` : ''}, ${plural(r.tokens, 'token')} in ${plural(r.segments, 'segment')}, ${formatDuration(r.ms)}`;
  if (r.interrupted && r.segments === 0) say('cancelled before anything was folded: the snapshot is unchanged');
  else say(r.interrupted ? `interrupted after ${what}: the snapshot is unchanged; ingest the same paths again to resume` : `ingested: ${what}`);
}
