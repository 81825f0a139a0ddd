/**
 * TypeScript child processes of the tests (`node --import tsx <script> ...`), started in the
 * repository root, and the `RESULT <json>` line the helper children print.
 */
import assert from 'node:assert/strict';
import {
  spawn,
  spawnSync,
  type ChildProcessByStdio,
  type SpawnSyncReturns,
} from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { repoRoot } from './fixtures.js';

/** A helper child under test/helpers/. */
export const helperScript = (name: string): string => path.join(repoRoot, 'test', 'helpers', name);

/** `node` arguments that run the TypeScript `script` through tsx with `args`. */
export function tsxArgs(script: string, args: readonly string[] = []): string[] {
  return ['--import', 'tsx', script, ...args];
}

export interface TsxChildOptions {
  env?: NodeJS.ProcessEnv;
  /** ms (runTsx only). */
  timeout?: number;
}

/** Runs `script` to its end; stdout and stderr as text (64 MiB at most). */
export function runTsx(
  script: string,
  args: readonly string[],
  options: TsxChildOptions = {},
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, tsxArgs(script, args), {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
  });
}

/** Starts `script` with stdout and stderr piped (stdin ignored). */
export function spawnTsx(
  script: string,
  args: readonly string[],
  options: TsxChildOptions = {},
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, tsxArgs(script, args), {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env === undefined ? {} : { env: options.env }),
  });
}

/** The JSON of the `RESULT <json>` line a helper child printed (fails the test without one). */
export function resultOf(stdout: string): unknown {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line !== undefined, stdout.slice(-2000));
  return JSON.parse(line.slice('RESULT '.length));
}
