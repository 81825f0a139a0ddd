/** What the benchmark records about the machine: CPU, flags, versions, commit. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { packageRoot } from '../native.js';

/** "CPU: <model>, <n> logical CPUs, flags: <the flags machineInfo records that are set>". */
export function cpuLine(machine: Record<string, unknown>): string {
  const flags = Object.entries(machine['flags'] as Record<string, boolean>)
    .filter(([, on]) => on)
    .map(([f]) => f);
  return `CPU: ${String(machine['cpuModel'])}, ${String(machine['logicalCpus'])} logical CPUs, flags: ${flags.join(' ')}`;
}

export async function machineInfo(): Promise<Record<string, unknown>> {
  let cpuinfo = '';
  try {
    cpuinfo = await readFile('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux
  }
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '';
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  let ortVersion: string | null = null;
  try {
    const require = createRequire(import.meta.url);
    let dir = path.dirname(require.resolve('onnxruntime-node'));
    while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) {
      dir = path.dirname(dir);
    }
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
      version?: string;
    };
    ortVersion = pkg.version ?? null;
  } catch {
    // not installed
  }
  let pkgVersion: string | null = null;
  try {
    const pkg = JSON.parse(await readFile(path.join(packageRoot, 'package.json'), 'utf8')) as {
      version?: string;
    };
    pkgVersion = pkg.version ?? null;
  } catch {
    // unknown
  }
  const commit = await new Promise<string | null>((resolve) => {
    execFile('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot }, (err, out) => {
      resolve(err === null ? out.trim() : null);
    });
  });
  return {
    cpuModel,
    logicalCpus: os.cpus().length,
    memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    flags: {
      avx2: flags.has('avx2'),
      fma: flags.has('fma'),
      avx512f: flags.has('avx512f'),
      avx512_bf16: flags.has('avx512_bf16'),
      amx_bf16: flags.has('amx_bf16'),
      amx_tile: flags.has('amx_tile'),
    },
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    packageVersion: pkgVersion,
    commit,
    onnxruntimeNode: ortVersion,
    date: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------
// The run
