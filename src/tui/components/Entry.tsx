import { Box, Text } from 'ink';
import { usePaint } from '../theme.js';
import { HELP } from '../commands.js';
import { formatDuration, plural } from '../format.js';
import type { AnswerView, IngestOutcome } from '../types.js';
import { Answers, QuestionLine } from './Answer.js';

/** One finished item of the session's transcript (printed once, above the live part of the screen). */
export type Entry = { id: number } & EntryBody;

export type EntryBody =
  | { kind: 'qa'; question: string; answers: AnswerView[]; ms: number }
  | { kind: 'cancelled'; question: string; partial: string }
  | { kind: 'ingested'; paths: string[]; outcome: IngestOutcome }
  | { kind: 'rows'; rows: [string, string][] }
  | { kind: 'help' }
  | { kind: 'echo'; text: string }
  | { kind: 'note'; text: string }
  | { kind: 'error'; text: string };

export function EntryView({ entry, columns }: { entry: Entry; columns: number }) {
  const paint = usePaint();
  switch (entry.kind) {
    case 'qa':
      return <Answers question={entry.question} answers={entry.answers} ms={entry.ms} />;
    case 'cancelled':
      return (
        <Box flexDirection="column" marginBottom={1}>
          <QuestionLine question={entry.question} />
          <Text color={paint('warn')}>
            {'  '}cancelled{entry.partial ? ` (had: ${entry.partial})` : ''}
          </Text>
        </Box>
      );
    case 'ingested':
      return <Ingested paths={entry.paths} o={entry.outcome} />;
    case 'rows':
      return <Rows rows={entry.rows} labelWidth={10} columns={columns} />;
    case 'help':
      return <Rows rows={HELP} labelWidth={16} columns={columns} />;
    case 'echo':
      return <Text color={paint('muted')}>› {entry.text}</Text>;
    case 'note':
      return <Text color={paint('muted')}>{entry.text}</Text>;
    case 'error':
      return <Text color={paint('error')}>✗ {entry.text}</Text>;
  }
}

function Ingested({ paths, o }: { paths: string[]; o: IngestOutcome }) {
  const paint = usePaint();
  const what = `${plural(o.documents, 'document')}${o.skipped ? ` (${o.skipped} skipped)` : ''}, ${plural(o.tokens, 'token')} in ${plural(o.segments, 'segment')}, ${formatDuration(o.ms)}`;
  return (
    <Box flexDirection="column" marginBottom={1}>
      {o.interrupted && o.segments === 0 ? (
        <Text color={paint('warn')}>■ cancelled before anything was folded from {paths.join(' ')}: the snapshot is unchanged</Text>
      ) : o.interrupted ? (
        <Text color={paint('warn')}>■ interrupted after {what}: the snapshot is unchanged; /ingest {paths.join(' ')} again to resume</Text>
      ) : (
        <Text color={paint('ok')}>✓ ingested {paths.join(' ')}: {what}</Text>
      )}
      <Text color={paint('muted')}>{'  '}snapshot {o.snapshot}</Text>
    </Box>
  );
}

/** Label/value rows; on a narrow terminal the label goes above its value instead of beside it. */
function Rows({ rows, labelWidth, columns }: { rows: [string, string][]; labelWidth: number; columns: number }) {
  const paint = usePaint();
  const stacked = columns < labelWidth + 30;
  return (
    <Box flexDirection="column" marginBottom={1}>
      {rows.map(([label, value]) => (
        <Box key={label} flexDirection={stacked ? 'column' : 'row'}>
          <Box width={stacked ? undefined : labelWidth} flexShrink={0}>
            <Text bold color={paint('accent')}>{label}</Text>
          </Box>
          <Box paddingLeft={stacked ? 2 : 0}>
            <Text>{value}</Text>
          </Box>
        </Box>
      ))}
    </Box>
  );
}
