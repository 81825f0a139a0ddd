/**
 * The benchmark's child processes: each imports only the runtime under test, loads one model
 * in one mode, runs one batch and prints load time and peak RSS as one JSON line. This file is
 * also the child's entry point (`--pif-bench-child`).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { isMainModule } from '../main-module.js';
import { nativeBinding } from '../native.js';
import type { BenchMode } from './options.js';
import { errorMessage, inputFor, loadOrt, openRunner } from './runners.js';

// ---------------------------------------------------------------------------------------
// Child processes: load time and peak RSS

const CHILD_FLAG = '--pif-bench-child';

export interface ChildSpec {
  /** null: baseline (imports only the runtime of `runtime`). */
  mode: BenchMode | null;
  /** Baselines: which runtime the child imports. */
  runtime?: 'pif' | 'ort';
  modelDir: string;
  onnxFile: string;
  threads: number;
  batch: number;
  seed: number;
}

export interface ChildResult {
  loadMs?: number;
  firstRunMs?: number;
  maxRssKB: number;
  error?: string;
}

/**
 * Runs in the child: imports only the runtime under test (so each process's peak RSS is its
 * own runtime's), loads, runs one batch, prints one JSON line.
 */
/**
 * This process's own peak RSS in KiB: /proc/self/status VmHWM (the high-water mark of the
 * current address space). Not getrusage's maxRSS: Linux carries the forking parent's high-water
 * mark across fork and exec, so a child of a large bench process reported the parent's size.
 */
function peakRssKB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return Number(m[1]);
  } catch {
    // not Linux: fall back
  }
  return process.resourceUsage().maxRSS;
}

async function childMain(specJson: string): Promise<void> {
  const spec = JSON.parse(specJson) as ChildSpec;
  const runtime =
    spec.mode === null ? (spec.runtime ?? 'pif') : spec.mode === 'ort' ? 'ort' : 'pif';
  if (runtime === 'ort') await loadOrt().catch(() => undefined);
  else nativeBinding();
  const { data, shape } = inputFor(spec.batch, spec.seed);
  const result: ChildResult = { maxRssKB: 0 };
  if (spec.mode !== null) {
    try {
      const t0 = performance.now();
      const runner = await openRunner(spec.mode, spec.modelDir, spec.onnxFile, spec.threads);
      result.loadMs = performance.now() - t0;
      const t1 = performance.now();
      await runner.run(data, shape);
      result.firstRunMs = performance.now() - t1;
      await runner.close();
    } catch (err) {
      result.error = errorMessage(err);
    }
  }
  result.maxRssKB = peakRssKB();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function runChild(spec: ChildSpec): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, CHILD_FLAG, JSON.stringify(spec)];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { maxBuffer: 16 * 2 ** 20, timeout: 30 * 60 * 1000 },
      (err, stdout, stderr) => {
        const line = stdout
          .split('\n')
          .reverse()
          .find((l) => l.startsWith('{'));
        if (line !== undefined) {
          try {
            resolve(JSON.parse(line) as ChildResult);
            return;
          } catch {
            // fall through
          }
        }
        const why = err !== null ? err.message : 'no JSON on stdout';
        resolve({ maxRssKB: 0, error: `child failed: ${why} ${stderr.trim().slice(-300)}` });
      },
    );
  });
}

if (process.argv[2] === CHILD_FLAG && isMainModule(import.meta.url)) {
  childMain(process.argv[3] ?? '{}').catch((err: unknown) => {
    process.stdout.write(
      `${JSON.stringify({ maxRssKB: peakRssKB(), error: errorMessage(err) })}\n`,
    );
    process.exitCode = 1;
  });
}
