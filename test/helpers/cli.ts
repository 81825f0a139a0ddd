/** Runs the CLI as a separate process (TypeScript source through tsx). */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './fixtures.js';

const run = promisify(execFile);

/** Runs the CLI (TypeScript source through tsx) and returns stdout, stderr and exit code. */
export async function cli(
  args: string[],
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'lib', 'cli.ts'), ...args],
      {
        cwd: repoRoot,
        maxBuffer: 64 << 20,
      },
    );
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code ?? -1 };
  }
}

/** Runs the CLI in this process (`main`) with captured output; stdout/stderr are not TTYs. */
export async function runMain(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../../lib/cli.js');
  let out = '';
  let err = '';
  const code = await main(args, {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    isTTY: false,
  });
  return { code, out, err };
}

/** `-c PP-ShiTuV2_rec -o Global.mode=<mode> -o Global.output=<output> -o k=v ...` */
export function modeArgs(
  mode: string,
  output: string,
  overrides: readonly string[] = [],
): string[] {
  return [
    '-c',
    'PP-ShiTuV2_rec',
    '-o',
    `Global.mode=${mode}`,
    '-o',
    `Global.output=${output}`,
    ...overrides.flatMap((o) => ['-o', o]),
  ];
}
