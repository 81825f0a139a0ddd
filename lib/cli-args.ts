/** Commander argument parsers shared by the CLI modules: bad values fail up front (exit 2). */
import { InvalidArgumentError as CommanderArgError } from 'commander';

/** An integer in [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CommanderArgError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** A finite number in [min, max]. */
export function numberArg(min = -Infinity, max = Infinity): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new CommanderArgError(
        Number.isFinite(min) || Number.isFinite(max)
          ? `expected a number from ${min} to ${max}`
          : 'expected a number',
      );
    }
    return n;
  };
}
