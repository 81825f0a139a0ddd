/**
 * Failed inputs of a command that goes on past them (predict, index search, PaddleX's predict
 * mode): each is reported on stderr in its place (`<path>: <message>`), counted, and the first
 * is kept for the summary error, which carries the first failure's code.
 */
import { PifError } from '../errors.js';

export class FailedInputs {
  /** How many inputs failed. */
  count = 0;
  /** The first failure: its input path (null for buffers) and error. */
  first: { path: string | null; error: Error } | null = null;
  readonly #io: { stderr: (s: string) => void };

  constructor(io: { stderr: (s: string) => void }) {
    this.#io = io;
  }

  /** Reports one failed input on stderr; `unnamed` stands for an input without a path. */
  report(path: string | null, error: Error, unnamed = '<input>'): void {
    this.count++;
    this.first ??= { path, error };
    this.#io.stderr(`${path ?? unnamed}: ${error.message}\n`);
  }

  /**
   * When any input failed: throws a PifError with `message` and the first failure's code (a
   * missing file is PIF_INPUT_NOT_FOUND, not a decode error; PIF_INPUT_DECODE for other errors).
   */
  throwIfAny(message: (count: number, first: { path: string | null; error: Error }) => string) {
    const first = this.first;
    if (first === null) return;
    const code = first.error instanceof PifError ? first.error.code : 'PIF_INPUT_DECODE';
    throw new PifError(code, message(this.count, first));
  }
}
