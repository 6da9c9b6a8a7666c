import { Box, Text } from 'ink';
import { usePaint } from '../theme.js';
import { displayText, formatProb } from '../format.js';
import type { AnswerView } from '../types.js';

export function QuestionLine({ question }: { question: string }) {
  const paint = usePaint();
  return (
    <Box>
      <Box flexShrink={0}>
        <Text bold color={paint('accent')}>? </Text>
      </Box>
      <Text bold>{displayText(question)}</Text>
    </Box>
  );
}

/** The answer being decoded: the best partial answer so far, replaced at every step. */
export function AnswerStream({ question, partial }: { question: string; partial: string }) {
  const paint = usePaint();
  return (
    <Box flexDirection="column">
      <QuestionLine question={question} />
      <Box>
        <Box flexShrink={0}>
          <Text color={paint('answer')}>→ </Text>
        </Box>
        {partial ? <Text color={paint('answer')}>{displayText(partial)}▌</Text> : <Text color={paint('muted')}>thinking…</Text>}
      </Box>
    </Box>
  );
}

/** A finished answer: the best one with its confidence, then the runners-up (the beam's other answers, or the
 *  next-ranked paths). */
export function Answers({ question, answers, ms }: { question: string; answers: AnswerView[]; ms: number }) {
  const paint = usePaint();
  const [best, ...rest] = answers;
  return (
    <Box flexDirection="column" marginBottom={1}>
      <QuestionLine question={question} />
      <Box>
        <Box flexShrink={0}>
          <Text color={paint('answer')}>→ </Text>
        </Box>
        <Text color={paint('answer')}>{best ? displayText(best.text) || '(empty answer)' : '(no answer)'}</Text>
      </Box>
      {best && (
        <Text color={paint('muted')}>
          {'  '}confidence {formatProb(best.prob)} · {(ms / 1000).toFixed(1)} s
        </Text>
      )}
      {rest.map((a, i) => (
        <Box key={i} paddingLeft={2}>
          <Text>
            <Text color={paint('muted')}>or: </Text>
            {displayText(a.text) || '(empty)'}
            <Text color={paint('muted')}> ({formatProb(a.prob)})</Text>
          </Text>
        </Box>
      ))}
    </Box>
  );
}
