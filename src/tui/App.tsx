/**
 * The interactive session: a header with the snapshot, the transcript of finished answers and command
 * output (Ink's <Static>: printed once, so long sessions stay cheap to redraw and scroll like a terminal),
 * and a live part below it: the answer being decoded, the ingest in progress, or the question box.
 *
 * Everything the app does to the outside goes through `services`, so tests drive it with fakes.
 */
import { useEffect, useRef, useState } from 'react';
import { Box, Static, Text, useApp, useInput } from 'ink';
import { parseLine, expandHome, userPath, type Command, type PlainText } from './commands.js';
import { infoRows } from './format.js';
import { editLine, emptyLine } from './line-editor.js';
import { ThemeProvider, usePaint } from './theme.js';
import type { IngestEstimate, IngestProgress, ModelInfo, SessionOptions, SnapshotInfo } from './types.js';
import { AnswerStream } from './components/Answer.js';
import { EntryView, type Entry, type EntryBody } from './components/Entry.js';
import { Header } from './components/Header.js';
import { IngestView } from './components/IngestView.js';
import { Prompt } from './components/Prompt.js';
import { useColumns } from './components/use-columns.js';

type Busy =
  | { kind: 'loading' }
  | { kind: 'ask'; question: string; partial: string }
  | { kind: 'ingest'; paths: string[]; append: boolean; progress?: IngestProgress; estimate?: IngestEstimate; cancelling: boolean };

export interface AppProps extends SessionOptions {
  /** The clock for "updated 5 min ago" (tests fix it). */
  now?: () => number;
}

export function App(props: AppProps) {
  return (
    <ThemeProvider noColor={props.noColor}>
      <Session {...props} />
    </ThemeProvider>
  );
}

function Session({ services, snapshotPath, cwd, history, now = Date.now }: AppProps) {
  const { exit } = useApp();
  const columns = useColumns();
  const [model, setModel] = useState<ModelInfo>();
  const [path, setPath] = useState(snapshotPath);
  const [snapshot, setSnapshot] = useState<SnapshotInfo>();
  const [snapshotError, setSnapshotError] = useState<string>();
  const [busy, setBusy] = useState<Busy | undefined>({ kind: 'loading' });
  const [entries, setEntries] = useState<Entry[]>([]);
  const [line, setLine] = useState(() => emptyLine(history?.load() ?? []));
  const [quitting, setQuitting] = useState(false);
  // Key presses can arrive faster than React re-renders: the handler always edits the latest line.
  const lineRef = useRef(line);
  const abortRef = useRef<AbortController | undefined>(undefined);

  const log = (...bodies: EntryBody[]) =>
    setEntries((prev) => [...prev, ...bodies.map((b, i) => ({ ...b, id: prev.length + i }) as Entry)]);

  /** Open the snapshot at p, or learn there is none yet, or why it cannot be used. */
  const open = (p: string): { info?: SnapshotInfo; error?: string } => {
    try {
      const info = services.openSnapshot(p);
      setSnapshot(info);
      setSnapshotError(undefined);
      return { info };
    } catch (e) {
      setSnapshot(undefined);
      setSnapshotError(message(e));
      return { error: message(e) };
    }
  };

  useEffect(() => {
    let live = true;
    services.loadModel().then(
      (m) => {
        if (!live) return;
        setModel(m);
        open(snapshotPath);
        setBusy(undefined);
      },
      // Without a model nothing works: leave, and let the command print why.
      (e) => live && exit(e instanceof Error ? e : new Error(String(e))),
    );
    return () => {
      live = false;
      abortRef.current?.abort();
    };
  }, []);

  // Leave after the last frame is drawn (the echoed /quit, no question box), not in the middle of a key press.
  useEffect(() => {
    if (quitting) exit();
  }, [quitting]);
  const quit = () => setQuitting(true);

  const startAsk = (question: string) => {
    const ctl = new AbortController();
    abortRef.current = ctl;
    let partial = '';
    setBusy({ kind: 'ask', question, partial });
    const onStep = (p: string) => {
      partial = p;
      setBusy((b) => (b?.kind === 'ask' ? { ...b, partial: p } : b));
    };
    services
      .ask({ snapshotPath: path, question, signal: ctl.signal, onStep })
      .then(
        (r) => log(...(r.notice ? [{ kind: 'note', text: r.notice } as const] : []), { kind: 'qa', question, answers: r.answers, ms: r.ms }),
        (e) => log(isAbort(e) || ctl.signal.aborted ? { kind: 'cancelled', question, partial } : { kind: 'error', text: message(e) }),
      )
      .finally(() => done(ctl));
  };

  const startIngest = (paths: string[]) => {
    const ctl = new AbortController();
    abortRef.current = ctl;
    // "/ingest" adds to what the session already has; with no usable snapshot it starts a new one.
    const append = snapshot !== undefined;
    setBusy({ kind: 'ingest', paths, append, cancelling: false });
    const update = (patch: Partial<Extract<Busy, { kind: 'ingest' }>>) =>
      setBusy((b) => (b?.kind === 'ingest' ? { ...b, ...patch } : b));
    services
      .ingest({
        paths: paths.map(expandHome), snapshotPath: path, append, signal: ctl.signal,
        onProgress: (progress) => update({ progress }),
        onEstimate: (estimate) => update({ estimate }),
        onNotice: (text) => log({ kind: 'note', text }),
      })
      .then(
        (outcome) => log({ kind: 'ingested', paths, outcome }),
        (e) => log({ kind: 'error', text: message(e) }),
      )
      .finally(() => {
        // Whatever happened, the file on disk is what the session asks from now on.
        const { error } = open(path);
        if (error) log({ kind: 'error', text: error });
        done(ctl);
      });
  };

  const done = (ctl: AbortController) => {
    if (abortRef.current === ctl) abortRef.current = undefined;
    setBusy(undefined);
  };

  const cancel = () => {
    abortRef.current?.abort();
    setBusy((b) => (b?.kind === 'ingest' ? { ...b, cancelling: true } : b));
  };

  const run = (cmd: Command, text: string) => {
    if (cmd.kind !== 'ask' && cmd.kind !== 'empty') log({ kind: 'echo', text });
    switch (cmd.kind) {
      case 'ask':
        return startAsk(cmd.question);
      case 'ingest':
        return startIngest(cmd.paths);
      case 'info':
        return log(snapshot ? { kind: 'rows', rows: infoRows(snapshot, model, now()) } : { kind: 'note', text: noSnapshotText(path, snapshotError) });
      case 'snapshot': {
        const p = userPath(cmd.path, cwd);
        setPath(p);
        const { info, error } = open(p);
        return log(error ? { kind: 'error', text: error } : info ? { kind: 'note', text: `snapshot is now ${p}` } : { kind: 'note', text: noSnapshotText(p) });
      }
      case 'help':
        return log({ kind: 'help' });
      case 'quit':
        return quit();
      case 'error':
        return log({ kind: 'error', text: cmd.message });
      case 'empty':
        return;
    }
  };

  useInput((input, key) => {
    if (quitting) return;
    if (busy) {
      // While an answer or an ingest runs, only cancelling is possible (the model is busy anyway).
      if (busy.kind !== 'loading' && (key.escape || (key.ctrl && input === 'c'))) cancel();
      else if (busy.kind === 'loading' && key.ctrl && input === 'c') quit();
      return;
    }
    const before = lineRef.current.history.length;
    const r = editLine(lineRef.current, input, key);
    if (r.state.history.length > before) history?.add(r.state.history[r.state.history.length - 1]);
    lineRef.current = r.state;
    setLine(r.state);
    if (r.quit) quit();
    else if (r.submit !== undefined) run(parseLine(r.submit, snapshot ? 'ask' : snapshotError ? 'refuse' : 'ingest'), r.submit.trim());
  });

  return (
    <Box flexDirection="column">
      <Static items={entries}>
        {(e) => (
          // Static lays its items out absolutely: without a width, Yoga lets text run past the terminal's edge.
          <Box key={e.id} width={columns} flexDirection="column">
            <EntryView entry={e} columns={columns} />
          </Box>
        )}
      </Static>
      <Header path={path} model={model} snapshot={snapshot} now={now()} />
      {!busy && !snapshot && !quitting && <NoSnapshot path={path} error={snapshotError} />}
      {busy?.kind === 'ask' && <AnswerStream question={busy.question} partial={busy.partial} />}
      {busy?.kind === 'ingest' && (
        <IngestView {...busy} snapshotPath={path} columns={columns} />
      )}
      {!busy && !quitting && <Prompt label={snapshot ? 'ask' : snapshotError ? 'ctx' : 'path'} line={line} />}
      {!quitting && <Hint busy={busy} state={snapshot ? 'ask' : snapshotError ? 'refuse' : 'ingest'} />}
    </Box>
  );
}

/** The first screen of a folder with no snapshot: say so, and offer to fold something in. */
function NoSnapshot({ path, error }: { path: string; error?: string }) {
  const paint = usePaint();
  return (
    <Box flexDirection="column" marginY={1}>
      {error ? (
        <>
          <Text color={paint('error')}>✗ {error}</Text>
          <Text>
            <Text bold>/snapshot PATH</Text> opens or starts another snapshot; <Text bold>/ingest PATH</Text> replaces this file with a
            new snapshot of PATH.
          </Text>
        </>
      ) : (
        <>
          <Text bold>No snapshot yet.</Text>
          <Text>
            Type a file or folder to fold into it, e.g. <Text bold>./src</Text> or <Text bold>~/docs/manual.pdf</Text>; then ask
            questions about it.
          </Text>
        </>
      )}
    </Box>
  );
}

function Hint({ busy, state }: { busy?: Busy; state: PlainText }) {
  const paint = usePaint();
  const text =
    busy?.kind === 'loading' ? 'loading model… · Ctrl-C quit'
    : busy?.kind === 'ask' ? 'Esc or Ctrl-C cancels the answer'
    : busy?.kind === 'ingest' ? (busy.cancelling ? 'saving…' : 'Esc or Ctrl-C cancels (what is folded so far is kept)')
    : state === 'ask' ? 'Enter ask · ↑↓ history · /help commands · Ctrl-C quit'
    : state === 'ingest' ? 'Enter ingest · /help commands · Ctrl-C quit'
    : '/snapshot PATH · /ingest PATH · /help commands · Ctrl-C quit';
  return <Text color={paint('muted')}>{text}</Text>;
}

function noSnapshotText(path: string, error?: string): string {
  return error ? `cannot use ${path}: ${error}` : `no snapshot yet at ${path}: type a path to ingest, or /ingest PATH`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}
