import { Box, Text } from 'ink';
import { usePaint } from '../theme.js';
import { headerFacts, modelLabel } from '../format.js';
import type { ModelInfo, SnapshotInfo } from '../types.js';

interface Props {
  path: string;
  model?: ModelInfo;
  snapshot?: SnapshotInfo;
  now?: number;
}

/**
 * The snapshot at a glance. The facts sit in a wrapping row: one or two lines on a wide terminal, one per
 * line on a narrow one, never cut mid-fact. Only the path, which can be any length, is truncated (in the
 * middle, where it is least informative).
 */
export function Header({ path, model, snapshot, now }: Props) {
  const paint = usePaint();
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={paint('border')} paddingX={1}>
      <Box columnGap={1}>
        {/* Only the path may shrink: a shrunk "ctx" would push the path onto a second, empty-looking line. */}
        <Box flexShrink={0}>
          <Text bold color={paint('accent')}>ctx</Text>
        </Box>
        <Text wrap="truncate-middle">{path}</Text>
      </Box>
      {model ? (
        <Box flexWrap="wrap" columnGap={2}>
          <Text>model {modelLabel(model)}</Text>
          {!model.trained && <Text color={paint('warn')}>untrained model</Text>}
          {snapshot ? (
            headerFacts(snapshot, now).map((f) => <Text key={f}>{f}</Text>)
          ) : (
            <Text color={paint('muted')}>no snapshot yet</Text>
          )}
        </Box>
      ) : (
        <Text color={paint('muted')}>loading model…</Text>
      )}
    </Box>
  );
}
