import { Box, Text } from 'ink';
import { usePaint } from '../theme.js';
import type { LineState } from '../line-editor.js';

/** The question box: a label and the line with its cursor (drawn inverse; keys are handled by the App). */
export function Prompt({ label, line }: { label: string; line: LineState }) {
  const paint = usePaint();
  const { value, cursor } = line;
  return (
    <Box>
      <Box flexShrink={0}>
        <Text bold color={paint('accent')}>{label} › </Text>
      </Box>
      <Text>
        {value.slice(0, cursor)}
        <Text inverse>{value[cursor] ?? ' '}</Text>
        {value.slice(cursor + 1)}
      </Text>
    </Box>
  );
}
