/**
 * What every command of the CLI gets: where output goes, the exit code it sets, and whether
 * progress bars and human output are wanted.
 */

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Whether stdout/stderr are terminals (progress bars, human output). Default: detect. */
  isTTY?: boolean;
}

/** The exit code of the command that ran (0 unless the command sets another). */
export interface CliState {
  code: number;
}

export interface CliContext {
  io: CliIo;
  state: CliState;
  /** stdout and stderr are terminals (or `io.isTTY`). */
  tty: boolean;
}

export const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** A context for `io`: exit code 0, terminal detection unless `io.isTTY` says. */
export function cliContext(io: CliIo, state: CliState = { code: 0 }): CliContext {
  return { io, state, tty: io.isTTY ?? (process.stdout.isTTY && process.stderr.isTTY) };
}

// Loaded on first use: the dataset and evaluation code is not needed by most commands.
export async function runMode(
  ...args: Parameters<typeof import('../paddlex-modes.js').runMode>
): Promise<number> {
  return (await import('../paddlex-modes.js')).runMode(...args);
}
