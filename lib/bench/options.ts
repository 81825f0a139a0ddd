/** The benchmark's models, modes and options: the command-line table and its parser. */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import type { BuildableModel } from '../builder.js';
import { InvalidArgumentError } from '../errors.js';

/** Work per 224×224 image, FLOP = 2 × MAC (convolutions and matrix products only). */
export const BENCH_MODELS = {
  shitu: {
    name: 'PP-ShiTuV2_rec',
    gflopPerImage: 1.66,
    source: 'shared/spec/architectures.md §1.3: 0.83 GMAC = 1.66 GFLOP',
  },
  vitb: {
    name: 'PP-ShiTuV2_rec_CLIP_vit_base',
    gflopPerImage: 35.28,
    source: 'shared/spec/architectures.md §2.6: ViT-B/16 17.64 GMAC × 2',
  },
  vitl: {
    name: 'PP-ShiTuV2_rec_CLIP_vit_large',
    gflopPerImage: 162.3,
    source: 'shared/spec/architectures.md §2.6: ViT-L/14 81.15 GMAC × 2',
  },
} as const satisfies Record<
  string,
  { name: BuildableModel; gflopPerImage: number; source: string }
>;
export type BenchModelKey = keyof typeof BENCH_MODELS;
const MODEL_KEYS = Object.keys(BENCH_MODELS) as BenchModelKey[];

export const BENCH_MODES = ['normal', 'hpi', 'hpi-bf16', 'hpi-int8', 'ort'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** Speed-up pairs reported: [a, b] gives t_b / t_a per round (> 1: a is faster). */
export const PAIRS: readonly (readonly [BenchMode, BenchMode])[] = [
  ['hpi', 'normal'],
  ['hpi', 'ort'],
  ['hpi-bf16', 'ort'],
  ['hpi-bf16', 'normal'],
  ['hpi-int8', 'ort'],
  ['hpi-int8', 'hpi'],
  ['ort', 'normal'],
];

/** Seed of the random weights of the built models. */
export const WEIGHT_SEED = 1;

export interface BenchOptions {
  models: BenchModelKey[];
  batches: number[];
  threads: number[];
  modes: BenchMode[];
  /** Exact number of timed rounds (with minTime: whichever comes first). */
  iters?: number;
  /** Seconds of timed rounds per (model, threads, batch). */
  minTime?: number;
  warmup: number;
  probeSeconds: number;
  /** Machine output only on stdout. */
  json: boolean;
  out: string;
  cacheDir: string;
  rebuild: boolean;
  /** Skip the load-time / peak-RSS child processes. */
  skipLoad: boolean;
  /** Seed of the random input. */
  seed: number;
}

export interface BenchIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export const BENCH_USAGE = `Usage: paddle-image-feature bench [options]
       npm run bench -- [options]

Times normal mode, hpi (fp32), hpi-bf16 and ONNX Runtime on builder models with seeded
random weights; checks each mode's output against normal mode (cosine, max|Δ|); measures
load time and peak RSS in child processes; prints tables and writes a JSON file.

Options:
  --models LIST        shitu,vitb,vitl (default all three; vitl needs ~5 GB RAM and minutes)
  --batch LIST         batch sizes (default 1,8)
  --threads LIST       thread counts (default 1; e.g. 1,2 for a second table)
  --modes LIST         normal,hpi,hpi-bf16,hpi-int8,ort (default all; hpi-int8 runs the
                       model quantised once on 32 seeded inputs, kept beside it)
  --iters N            exactly N timed rounds (with --min-time: whichever comes first)
  --min-time S         time rounds for S seconds, at least 3 rounds (default 10 s)
  --warmup N           untimed runs per mode before the rounds (default 2, at least 2)
  --probe-seconds S    duration of each part of the peak probe (default 1)
  --json               print only the JSON report on stdout (progress goes to stderr)
  --out FILE           JSON report (default bench-results/bench-<date>.json)
  --cache-dir DIR      where built models and ONNX files are kept (default <tmp>/pif-bench)
  --rebuild            rebuild the cached models
  --skip-load          skip the load-time / peak-RSS child processes
  --seed N             seed of the random input (default 1)
  --tiny               CI smoke: shitu, batch 1, 1 thread, 2 rounds (flags given win)
  -h, --help           show this help
`;

const ARG_SPEC = {
  models: { type: 'string' },
  batch: { type: 'string' },
  threads: { type: 'string' },
  modes: { type: 'string' },
  iters: { type: 'string' },
  'min-time': { type: 'string' },
  warmup: { type: 'string' },
  'probe-seconds': { type: 'string' },
  json: { type: 'boolean', default: false },
  out: { type: 'string' },
  'cache-dir': { type: 'string' },
  rebuild: { type: 'boolean', default: false },
  'skip-load': { type: 'boolean', default: false },
  seed: { type: 'string' },
  tiny: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function intList(raw: string, flag: string, min: number): number[] {
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < min)) {
    throw new InvalidArgumentError(`--${flag} must be integers >= ${min}, got '${raw}'`);
  }
  return [...new Set(list)];
}

function num(raw: string | undefined, flag: string, min: number, integer: boolean) {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isSafeInteger(n))) {
    throw new InvalidArgumentError(
      `--${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`,
    );
  }
  return n;
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/:/g, '-');
}

/**
 * Parses bench arguments. Returns null for --help; throws InvalidArgumentError for bad
 * values and TypeError (from util.parseArgs) for unknown flags.
 */
export function parseBenchArgs(args: readonly string[]): BenchOptions | null {
  const { values: v, positionals } = parseArgs({
    args: [...args],
    options: ARG_SPEC,
    allowPositionals: true,
    strict: true,
  });
  if (v.help) return null;
  if (positionals.length > 0) {
    throw new InvalidArgumentError(`bench takes no positional arguments, got '${positionals[0]}'`);
  }
  const tiny = v.tiny;
  const models = (v.models ?? (tiny ? 'shitu' : MODEL_KEYS.join(',')))
    .split(',')
    .map((s) => s.trim())
    .map((s) => {
      const byName = MODEL_KEYS.find((k) => BENCH_MODELS[k].name === s);
      const key = byName ?? s;
      if (!(MODEL_KEYS as string[]).includes(key)) {
        throw new InvalidArgumentError(
          `--models: unknown model '${s}' (known: ${MODEL_KEYS.join(', ')} or full names)`,
        );
      }
      return key as BenchModelKey;
    });
  const modes = (v.modes ?? BENCH_MODES.join(',')).split(',').map((s) => {
    const m = s.trim();
    if (!(BENCH_MODES as readonly string[]).includes(m)) {
      throw new InvalidArgumentError(
        `--modes: unknown mode '${m}' (known: ${BENCH_MODES.join(', ')})`,
      );
    }
    return m as BenchMode;
  });
  let iters = num(v.iters, 'iters', 1, true);
  const minTime = num(v['min-time'], 'min-time', 0, false);
  if (tiny && iters === undefined && minTime === undefined) iters = 2;
  const warmup = num(v.warmup, 'warmup', 2, true) ?? 2;
  return {
    models: [...new Set(models)],
    batches: intList(v.batch ?? (tiny ? '1' : '1,8'), 'batch', 1),
    threads: intList(v.threads ?? '1', 'threads', 1),
    modes: [...new Set(modes)],
    ...(iters === undefined ? {} : { iters }),
    ...(minTime === undefined ? {} : { minTime }),
    warmup,
    probeSeconds: num(v['probe-seconds'], 'probe-seconds', 0.01, false) ?? (tiny ? 0.2 : 1),
    json: v.json,
    out: v.out ?? path.join('bench-results', `bench-${stamp(new Date())}.json`),
    cacheDir: v['cache-dir'] ?? path.join(os.tmpdir(), 'pif-bench'),
    rebuild: v.rebuild,
    skipLoad: v['skip-load'],
    seed: num(v.seed, 'seed', 0, true) ?? 1,
  };
}
