import { Box, Text } from 'ink';
import { usePaint } from '../theme.js';
import { displayText, plural, progressFacts, progressFraction } from '../format.js';
import type { IngestEstimate, IngestProgress } from '../types.js';

interface Props {
  paths: string[];
  snapshotPath: string;
  append: boolean;
  progress?: IngestProgress;
  estimate?: IngestEstimate;
  cancelling: boolean;
  columns: number;
}

/** Live ingest progress: what is being read, how much is folded, how fast, and how long is left when known. */
export function IngestView({ paths, snapshotPath, append, progress, estimate, cancelling, columns }: Props) {
  const paint = usePaint();
  const fraction = progress && progressFraction(progress, estimate);
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold color={paint('accent')}>{append ? 'Appending ' : 'Ingesting '}</Text>
        {paths.join(' ')}
        <Text color={paint('muted')}> → {snapshotPath}</Text>
      </Text>
      {fraction !== undefined && <Bar fraction={fraction} width={Math.max(10, Math.min(40, columns - 10))} />}
      {progress ? (
        <Box flexWrap="wrap" columnGap={2}>
          {progressFacts(progress, estimate).map((f, i) => (
            <Text key={i}>{f}</Text>
          ))}
        </Box>
      ) : estimate ? (
        <Text color={paint('muted')}>found {plural(estimate.documents, 'document')} (~{plural(Math.round(estimate.tokens), 'token')}), reading…</Text>
      ) : (
        <Text color={paint('muted')}>listing sources…</Text>
      )}
      {progress?.path && (
        <Text color={paint('muted')} wrap="truncate-start">
          {displayText(progress.path)}
        </Text>
      )}
      {cancelling && <Text color={paint('warn')}>cancelling: saving what was folded so far…</Text>}
    </Box>
  );
}

function Bar({ fraction, width }: { fraction: number; width: number }) {
  const paint = usePaint();
  const done = Math.round(fraction * width);
  return (
    <Text>
      <Text color={paint('accent')}>{'█'.repeat(done)}</Text>
      <Text color={paint('muted')}>{'░'.repeat(width - done)}</Text> {Math.floor(fraction * 100)}%
    </Text>
  );
}
