/**
 * Colours by role, in one place, so that NO_COLOR can switch every one of them off: with noColor each role
 * maps to undefined and Ink writes no colour codes at all (bold and inverse remain: they are not colours).
 */
import { createContext, useContext, type ReactNode } from 'react';

const COLORS = {
  accent: 'cyan',
  muted: 'gray',
  answer: 'greenBright',
  ok: 'green',
  warn: 'yellow',
  error: 'red',
  border: 'cyan',
} as const;

export type Role = keyof typeof COLORS;
export type Paint = (role: Role) => string | undefined;

const ThemeContext = createContext<Paint>((role) => COLORS[role]);

export function ThemeProvider({ noColor, children }: { noColor?: boolean; children: ReactNode }) {
  const paint: Paint = noColor ? () => undefined : (role) => COLORS[role];
  return <ThemeContext.Provider value={paint}>{children}</ThemeContext.Provider>;
}

/** The colour for a role, or undefined under NO_COLOR: `<Text color={paint('error')}>`. */
export function usePaint(): Paint {
  return useContext(ThemeContext);
}

/** NO_COLOR as https://no-color.org says: set to anything but the empty string. */
export function noColorFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NO_COLOR !== undefined && env.NO_COLOR !== '';
}
