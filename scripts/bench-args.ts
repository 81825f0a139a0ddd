// `--name value` options of the benchmark scripts (bench-evaluate, bench-index).

/** The value after `--name`, or `def`. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] as string) : def;
}

/** A positive integer option. */
export function intArg(name: string, def: number): number {
  const v = Number(arg(name, String(def)));
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
}
