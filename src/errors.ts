/**
 * An error caused by the user's input or environment (a missing file, a corrupt snapshot, a wrong flag).
 * Commands print its message as one line and exit non-zero, without a stack trace; any other error is a bug
 * and keeps its stack.
 */
export class CtxError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CtxError';
  }
}
