import { useEffect, useState } from 'react';
import { useStdout } from 'ink';

/** The terminal's width, kept current when the window is resized (Ink relayouts, but does not re-render us). */
export function useColumns(): number {
  const { stdout } = useStdout();
  const [columns, setColumns] = useState(stdout.columns || 80);
  useEffect(() => {
    const onResize = () => setColumns(stdout.columns || 80);
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return columns;
}
