/**
 * Benchmark (issue 4): normal mode vs high-performance mode (fp32 and bf16) vs ONNX Runtime
 * on the three target architectures, with seeded random weights from buildModel.
 *
 *   node --import tsx scripts/bench.ts [options]      (npm run bench -- [options])
 *   paddle-image-feature bench [options]
 *
 * For every model and thread count, all modes are loaded side by side and timed in
 * interleaved rounds (each round runs every mode once, in rotating order), so slow drifts of
 * the machine (clocks, neighbours) hit all modes alike; ratios are medians of per-round
 * paired ratios. Each mode's output is compared with normal mode's on the same input
 * (cosine per image, max|Δ|). Load time and peak RSS come from one child process per
 * (model, mode, batch), so that they are not mixed up with the other modes' memory.
 * "% of peak" divides by this machine's fp32 FMA peak, measured at start by the native
 * peak probe (native/runtime/peak_probe.cc) with the same thread count.
 *
 * Not a test: timings depend on the machine. `--tiny` is the CI smoke setting.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { buildModel, builderVersion, type BuildableModel } from '../builder.js';
import { InvalidArgumentError, PifError } from '../errors.js';
import { exportOnnx } from '../export.js';
import { isMainModule } from '../main-module.js';
import { nativeBinding, packageRoot } from '../native.js';
import { loadPredictor, type PredictorOptions } from '../predictor.js';
import { seededFloats } from '../rng.js';

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

export const BENCH_MODES = ['normal', 'hpi', 'hpi-bf16', 'ort'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** Speed-up pairs reported: [a, b] gives t_b / t_a per round (> 1: a is faster). */
const PAIRS: readonly (readonly [BenchMode, BenchMode])[] = [
  ['hpi', 'normal'],
  ['hpi', 'ort'],
  ['hpi-bf16', 'ort'],
  ['hpi-bf16', 'normal'],
  ['ort', 'normal'],
];

/** Seed of the random weights of the built models. */
const WEIGHT_SEED = 1;

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
  --modes LIST         normal,hpi,hpi-bf16,ort (default all)
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

// ---------------------------------------------------------------------------------------
// Inputs, outputs and their comparison

function inputFor(batch: number, seed: number): { data: Float32Array; shape: number[] } {
  const shape = [batch, 3, 224, 224];
  return { data: seededFloats(batch * 3 * 224 * 224, seed * 1000 + batch), shape };
}

export interface OutputCheck {
  cosMean: number;
  cosWorst: number;
  maxAbsDiff: number;
}

/** Cosine similarity per image (row of `batch` equal rows) and max|Δ| of `a` against `ref`. */
export function compareOutputs(a: Float32Array, ref: Float32Array, batch: number): OutputCheck {
  if (a.length !== ref.length || a.length % batch !== 0) {
    throw new Error(`output sizes differ: ${a.length} vs ${ref.length} elements`);
  }
  const per = a.length / batch;
  let sum = 0;
  let worst = Infinity;
  let maxAbs = 0;
  for (let b = 0; b < batch; b++) {
    let dot = 0;
    let na = 0;
    let nr = 0;
    for (let i = b * per; i < (b + 1) * per; i++) {
      const x = a[i] ?? 0;
      const y = ref[i] ?? 0;
      dot += x * y;
      na += x * x;
      nr += y * y;
      const d = Math.abs(x - y);
      if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    }
    const cos = na === 0 && nr === 0 ? 1 : dot / Math.sqrt(na * nr);
    sum += cos;
    if (!(cos >= worst)) worst = cos;
  }
  return { cosMean: sum / batch, cosWorst: worst, maxAbsDiff: maxAbs };
}

// ---------------------------------------------------------------------------------------
// Runners: one loaded model in one mode

type Ort = typeof import('onnxruntime-node');

let ortModule: Promise<Ort> | undefined;

/** onnxruntime-node (a dev dependency), imported on first use. */
function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').catch((err: unknown) => {
    throw new Error(`onnxruntime-node is not installed (${errorMessage(err)})`);
  });
  return ortModule;
}

interface Runner {
  run(data: Float32Array, shape: number[]): Promise<Float32Array>;
  close(): Promise<void>;
}

function predictorOptions(mode: Exclude<BenchMode, 'ort'>, threads: number): PredictorOptions {
  if (mode === 'normal') return { runMode: 'normal', cpuThreads: threads };
  // `precision` comes with the hpi run mode; typed here so this compiles before and after.
  const opts: PredictorOptions & { precision: 'fp32' | 'bf16' } = {
    runMode: 'hpi',
    precision: mode === 'hpi' ? 'fp32' : 'bf16',
    cpuThreads: threads,
  };
  return opts;
}

async function openRunner(
  mode: BenchMode,
  modelDir: string,
  onnxFile: string,
  threads: number,
): Promise<Runner> {
  if (mode === 'ort') {
    const ort = await loadOrt();
    const session = await ort.InferenceSession.create(onnxFile, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
    const inName = session.inputNames[0] ?? 'x';
    const outName = session.outputNames[0] ?? '';
    return {
      async run(data, shape) {
        const res = await session.run({ [inName]: new ort.Tensor('float32', data, shape) });
        const out = res[outName];
        if (out === undefined) throw new Error(`ORT returned no output '${outName}'`);
        return out.data instanceof Float32Array
          ? out.data
          : Float32Array.from(out.data as ArrayLike<number>);
      },
      close: () => session.release(),
    };
  }
  const p = await loadPredictor(modelDir, predictorOptions(mode, threads));
  const inName = p.inputs[0]?.name ?? 'x';
  const outName = p.outputs[0]?.name ?? '';
  return {
    async run(data, shape) {
      const res = await p.run({ [inName]: { data, shape } });
      const out = res[outName];
      if (out === undefined) throw new Error(`no output '${outName}'`);
      return out.data instanceof Float32Array
        ? out.data
        : Float32Array.from(out.data as ArrayLike<number>);
    },
    close() {
      p.close();
      return Promise.resolve();
    },
  };
}

function errorMessage(err: unknown): string {
  if (err instanceof PifError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---------------------------------------------------------------------------------------
// Peak probe (native)

export interface PeakResult {
  threads: number;
  fmaGflops: number;
  sgemmGflops: number;
  avx2Fma?: boolean;
}

type ProbePeak = (opts: { threads: number; seconds: number }) => unknown;

/** The addon's probePeak, or null when this build lacks it. */
function probePeakBinding(): ProbePeak | null {
  const fn = (nativeBinding() as unknown as Record<string, unknown>)['probePeak'];
  return typeof fn === 'function' ? (fn as ProbePeak) : null;
}

function asPeak(raw: unknown, threads: number): PeakResult | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const fma = r['fmaGflops'];
  const sgemm = r['sgemmGflops'];
  if (typeof fma !== 'number' || typeof sgemm !== 'number') return null;
  const avx2 = r['avx2Fma'];
  return {
    threads: typeof r['threads'] === 'number' ? r['threads'] : threads,
    fmaGflops: fma,
    sgemmGflops: sgemm,
    ...(typeof avx2 === 'boolean' ? { avx2Fma: avx2 } : {}),
  };
}

// ---------------------------------------------------------------------------------------
// Models: built and exported once into the cache directory

interface Artifacts {
  modelDir: string;
  onnxFile: string;
}

async function prepareModel(
  key: BenchModelKey,
  opts: BenchOptions,
  log: (s: string) => void,
): Promise<Artifacts> {
  const { name } = BENCH_MODELS[key];
  // The builder version is part of the key: a builder change must not reuse stale models.
  const root = path.resolve(opts.cacheDir, `${name}-seed${WEIGHT_SEED}-builder${builderVersion()}`);
  const modelDir = path.join(root, 'model');
  const onnxFile = path.join(root, 'model.onnx');
  const modelMark = path.join(root, 'model.ready');
  const onnxMark = path.join(root, 'onnx.ready');
  if (opts.rebuild) await rm(root, { recursive: true, force: true });
  if (!existsSync(modelMark)) {
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    const t0 = performance.now();
    await buildModel(name, modelDir, { seed: WEIGHT_SEED });
    await writeFile(modelMark, '');
    log(`built ${name} in ${ms(performance.now() - t0)} ms -> ${modelDir}`);
  }
  if (opts.modes.includes('ort') && !existsSync(onnxMark)) {
    const t0 = performance.now();
    const res = await exportOnnx(modelDir, onnxFile);
    await writeFile(onnxMark, '');
    log(
      `exported ${name} to ONNX (${(res.bytes / 2 ** 20).toFixed(0)} MiB) in ${ms(performance.now() - t0)} ms`,
    );
  }
  return { modelDir, onnxFile };
}

// ---------------------------------------------------------------------------------------
// Child processes: load time and peak RSS

const CHILD_FLAG = '--pif-bench-child';

interface ChildSpec {
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
  result.maxRssKB = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(spec: ChildSpec): Promise<ChildResult> {
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

// ---------------------------------------------------------------------------------------
// Timing

export interface BenchRow {
  model: BenchModelKey;
  modelName: string;
  threads: number;
  batch: number;
  mode: BenchMode;
  /** 'ok', or 'n/a: <why>' when the mode could not load or run here. */
  status: string;
  rounds?: number;
  /** Per-round ms per batch, in round order. */
  samplesMs?: number[];
  msPerBatch?: number;
  msMin?: number;
  msPerImage?: number;
  imagesPerSec?: number;
  gflops?: number;
  /** Of the FMA peak for `threads`. */
  pctPeak?: number | null;
  /** Against `reference` (normal mode). */
  reference?: BenchMode;
  cosMean?: number;
  cosWorst?: number;
  maxAbsDiff?: number;
  loadMs?: number;
  firstRunMs?: number;
  peakRssMB?: number;
  /** peak RSS minus the baseline child's (imports only). */
  modelRssMB?: number;
  loadError?: string;
}

export interface BenchRatio {
  model: BenchModelKey;
  threads: number;
  batch: number;
  /** 'a/b': median over rounds of t_b / t_a (> 1: a is faster). */
  pair: string;
  speedup: number;
  rounds: number;
}

export interface BenchReport {
  machine: Record<string, unknown>;
  options: Omit<BenchOptions, 'json'>;
  models: Record<string, { name: string; gflopPerImage: number; source: string }>;
  probes: PeakResult[];
  probeError?: string;
  baselines: { batch: number; threads: number; runtime: 'pif' | 'ort'; maxRssKB: number }[];
  rows: BenchRow[];
  ratios: BenchRatio[];
}

function withoutJson(opts: BenchOptions): Omit<BenchOptions, 'json'> {
  const copy: Partial<BenchOptions> = { ...opts };
  delete copy.json;
  return copy as Omit<BenchOptions, 'json'>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] ?? NaN) : ((s[n / 2 - 1] ?? 0) + (s[n / 2] ?? 0)) / 2;
}

function ms(x: number): string {
  return x.toFixed(0);
}

interface Live {
  mode: BenchMode;
  runner: Runner;
  times: (number | undefined)[];
  out?: Float32Array;
  failed?: string;
}

/** Warm-up and interleaved rounds for one (model, threads, batch); fills rows and ratios. */
async function timeBatch(
  live: Live[],
  batch: number,
  opts: BenchOptions,
  log: (s: string) => void,
): Promise<number> {
  const { data, shape } = inputFor(batch, opts.seed);
  for (const l of live) {
    l.times = [];
    delete l.out;
    if (l.failed !== undefined) continue;
    try {
      for (let i = 0; i < opts.warmup; i++) {
        const out = await l.runner.run(data, shape);
        l.out ??= out;
      }
    } catch (err) {
      l.failed = `n/a: ${errorMessage(err)}`;
    }
  }
  const active = () => live.filter((l) => l.failed === undefined);
  const maxRounds = opts.iters ?? (opts.minTime === undefined ? 100 : 100000);
  const minRounds = opts.iters !== undefined ? 1 : 3;
  const minTime = opts.minTime ?? (opts.iters === undefined ? 10 : Infinity);
  const t0 = performance.now();
  let round = 0;
  for (; round < maxRounds; round++) {
    if (round >= minRounds && (performance.now() - t0) / 1000 >= minTime) break;
    const act = active();
    if (act.length === 0) break;
    const order = act.map((_, i) => act[(i + round) % act.length]);
    for (const l of order) {
      if (l === undefined || l.failed !== undefined) continue;
      try {
        const t = performance.now();
        await l.runner.run(data, shape);
        l.times[round] = performance.now() - t;
      } catch (err) {
        l.failed = `n/a: ${errorMessage(err)}`;
      }
    }
  }
  log(`  batch ${batch}: ${round} rounds in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return round;
}

// ---------------------------------------------------------------------------------------
// Machine info

async function machineInfo(): Promise<Record<string, unknown>> {
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

/** Runs the whole benchmark; prints tables (or JSON) and writes opts.out. */
export async function runBench(opts: BenchOptions, io: BenchIo): Promise<BenchReport> {
  const log = (s: string) => {
    io.stderr(`[bench] ${s}\n`);
  };
  const machine = await machineInfo();
  log(
    `${String(machine['cpuModel'])}, ${String(machine['logicalCpus'])} CPUs, node ${process.version}`,
  );

  // Peak per thread count, first, on an idle process.
  const probes: PeakResult[] = [];
  let probeError: string | undefined;
  const probe = probePeakBinding();
  if (probe === null) {
    probeError =
      'this build of the addon has no probePeak (native/runtime/peak_probe.cc not bound yet); ' +
      '% of peak is left empty';
    log(probeError);
  } else {
    for (const t of opts.threads) {
      const p = asPeak(probe({ threads: t, seconds: opts.probeSeconds }), t);
      if (p === null) {
        probeError = 'probePeak returned an unexpected value';
        log(probeError);
        break;
      }
      probes.push(p);
      log(
        `peak, ${t} thread(s): FMA ${p.fmaGflops.toFixed(1)} GFLOP/s, sgemm ${p.sgemmGflops.toFixed(1)} GFLOP/s`,
      );
    }
  }
  const peakFor = (t: number) => probes.find((p) => p.threads === t)?.fmaGflops ?? null;

  const report: BenchReport = {
    machine,
    options: withoutJson(opts),
    models: Object.fromEntries(opts.models.map((k) => [k, { ...BENCH_MODELS[k] }])),
    probes,
    ...(probeError === undefined ? {} : { probeError }),
    baselines: [],
    rows: [],
    ratios: [],
  };

  const loadThreads = opts.threads[0] ?? 1;
  if (!opts.skipLoad) {
    for (const batch of opts.batches) {
      for (const runtime of ['pif', 'ort'] as const) {
        const r = await runChild({
          mode: null,
          runtime,
          modelDir: '',
          onnxFile: '',
          threads: loadThreads,
          batch,
          seed: opts.seed,
        });
        report.baselines.push({ batch, threads: loadThreads, runtime, maxRssKB: r.maxRssKB });
        log(
          `baseline child (imports ${runtime} only), batch ${batch}: peak RSS ${mb(r.maxRssKB)} MB`,
        );
      }
    }
  }

  for (const key of opts.models) {
    const { name, gflopPerImage } = BENCH_MODELS[key];
    const art = await prepareModel(key, opts, log);

    // Load time and peak RSS, one child per (mode, batch), before this process loads anything.
    const loads = new Map<string, ChildResult>();
    if (!opts.skipLoad) {
      for (const mode of opts.modes) {
        for (const batch of opts.batches) {
          const r = await runChild({
            mode,
            ...art,
            threads: loadThreads,
            batch,
            seed: opts.seed,
          });
          loads.set(`${mode}/${batch}`, r);
          log(
            `load ${name} ${mode} batch ${batch}: ` +
              (r.error !== undefined
                ? `failed (${r.error.slice(0, 120)})`
                : `${ms(r.loadMs ?? 0)} ms, first run ${ms(r.firstRunMs ?? 0)} ms, peak RSS ${mb(r.maxRssKB)} MB`),
          );
        }
      }
    }

    for (const threads of opts.threads) {
      log(`${name}, ${threads} thread(s): loading ${opts.modes.join(', ')}`);
      const live: Live[] = [];
      for (const mode of opts.modes) {
        try {
          live.push({
            mode,
            runner: await openRunner(mode, art.modelDir, art.onnxFile, threads),
            times: [],
          });
        } catch (err) {
          live.push({
            mode,
            runner: {
              run: () => Promise.reject(new Error('not loaded')),
              close: () => Promise.resolve(),
            },
            times: [],
            failed: `n/a: ${errorMessage(err)}`,
          });
        }
      }
      try {
        for (const batch of opts.batches) {
          const rounds = await timeBatch(live, batch, opts, log);
          const ref =
            live.find((l) => l.mode === 'normal' && l.failed === undefined) ??
            live.find((l) => l.failed === undefined);
          for (const l of live) {
            const row: BenchRow = {
              model: key,
              modelName: name,
              threads,
              batch,
              mode: l.mode,
              status: l.failed ?? 'ok',
            };
            const samples = l.times.filter((t): t is number => t !== undefined);
            if (l.failed === undefined && samples.length > 0) {
              const med = median(samples);
              const gflops = (gflopPerImage * batch) / (med / 1000);
              const peak = peakFor(threads);
              Object.assign(row, {
                rounds: samples.length,
                samplesMs: samples.map((t) => +t.toFixed(3)),
                msPerBatch: med,
                msMin: Math.min(...samples),
                msPerImage: med / batch,
                imagesPerSec: (1000 * batch) / med,
                gflops,
                pctPeak: peak === null ? null : (100 * gflops) / peak,
              });
              if (ref?.out !== undefined && l.out !== undefined) {
                row.reference = ref.mode;
                Object.assign(row, compareOutputs(l.out, ref.out, batch));
              }
            }
            const ld = loads.get(`${l.mode}/${batch}`);
            if (ld !== undefined) {
              if (ld.error !== undefined) row.loadError = ld.error;
              else {
                if (ld.loadMs !== undefined) row.loadMs = ld.loadMs;
                if (ld.firstRunMs !== undefined) row.firstRunMs = ld.firstRunMs;
                row.peakRssMB = ld.maxRssKB / 1024;
                const rt = l.mode === 'ort' ? 'ort' : 'pif';
                const base = report.baselines.find((b) => b.batch === batch && b.runtime === rt);
                if (base !== undefined) row.modelRssMB = (ld.maxRssKB - base.maxRssKB) / 1024;
              }
            }
            report.rows.push(row);
          }
          for (const [a, b] of PAIRS) {
            const la = live.find((l) => l.mode === a && l.failed === undefined);
            const lb = live.find((l) => l.mode === b && l.failed === undefined);
            if (la === undefined || lb === undefined) continue;
            const per: number[] = [];
            for (let r = 0; r < rounds; r++) {
              const ta = la.times[r];
              const tb = lb.times[r];
              if (ta !== undefined && tb !== undefined && ta > 0) per.push(tb / ta);
            }
            if (per.length > 0) {
              report.ratios.push({
                model: key,
                threads,
                batch,
                pair: `${a}/${b}`,
                speedup: median(per),
                rounds: per.length,
              });
            }
          }
        }
      } finally {
        for (const l of live) await l.runner.close();
      }
      if (!opts.json)
        io.stdout(formatSection(report, key, threads, peakFor(threads), probes, loadThreads));
    }
  }

  const out = path.resolve(opts.out);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  if (opts.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout(`JSON report: ${out}\n`);
  log(`wrote ${out}`);
  return report;
}

// ---------------------------------------------------------------------------------------
// Text tables

function mb(kb: number): string {
  return (kb / 1024).toFixed(0);
}

function fmt(x: number | null | undefined, digits: number): string {
  return x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(digits);
}

/** Aligned columns: the first `left` left-aligned, the rest right-aligned. */
function table(head: string[], body: string[][], left = 2): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < left ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** One section: rows = batch × mode for one model and thread count, then the speed-ups. */
export function formatSection(
  report: BenchReport,
  key: BenchModelKey,
  threads: number,
  peak: number | null,
  probes: readonly PeakResult[],
  loadThreads: number,
): string {
  const { name, gflopPerImage } = BENCH_MODELS[key];
  const rows = report.rows.filter((r) => r.model === key && r.threads === threads);
  const sgemm = probes.find((p) => p.threads === threads)?.sgemmGflops;
  const head = [
    'batch',
    'mode',
    'ms/batch',
    'ms/img',
    'img/s',
    'GFLOP/s',
    '%peak',
    'cos worst',
    'cos mean',
    'max|Δ|',
    'load ms',
    'RSS MB',
    'model MB',
  ];
  const notes: string[] = [];
  const body = rows.map((r) => {
    const load =
      r.loadError !== undefined
        ? ['-', '-', '-']
        : [fmt(r.loadMs, 0), fmt(r.peakRssMB, 0), fmt(r.modelRssMB, 0)];
    if (r.status !== 'ok') {
      notes.push(`batch ${r.batch} ${r.mode}: ${r.status.slice(0, 200)}`);
      return [String(r.batch), r.mode, 'n/a', '', '', '', '', '', '', '', ...load];
    }
    return [
      String(r.batch),
      r.mode,
      fmt(r.msPerBatch, 2),
      fmt(r.msPerImage, 2),
      fmt(r.imagesPerSec, 1),
      fmt(r.gflops, 1),
      fmt(r.pctPeak, 1),
      fmt(r.cosWorst, 6),
      fmt(r.cosMean, 6),
      r.maxAbsDiff === undefined ? '-' : r.maxAbsDiff === 0 ? '0' : r.maxAbsDiff.toExponential(2),
      ...load,
    ];
  });
  const ratios = report.ratios.filter((r) => r.model === key && r.threads === threads);
  const pairs = [...new Set(ratios.map((r) => r.pair))];
  const batches = [...new Set(rows.map((r) => r.batch))];
  const ratioTable =
    pairs.length === 0
      ? '(no speed-ups: fewer than two modes ran)'
      : table(
          ['speed-up', ...batches.map((b) => `batch ${b}`)],
          pairs.map((p) => [
            p,
            ...batches.map((b) => {
              const r = ratios.find((x) => x.pair === p && x.batch === b);
              return r === undefined ? '-' : `${r.speedup.toFixed(2)}x`;
            }),
          ]),
          1,
        );
  const title =
    `${name} (${key}), ${threads} thread(s), ${gflopPerImage} GFLOP/image; peak ` +
    (peak === null
      ? 'unknown (no probe)'
      : `${peak.toFixed(1)} GFLOP/s FMA, ${fmt(sgemm, 1)} GFLOP/s sgemm`);
  return [
    '',
    title,
    '='.repeat(title.length),
    table(head, body),
    ...notes.map((n) => `  ${n}`),
    `  times: median over rounds; cos/max|Δ| vs normal mode; load/RSS: child process, ${loadThreads} thread(s), file -> ready; model MB = RSS minus imports-only child`,
    '',
    ratioTable,
    '  a/b = median over rounds of t_b / t_a (> 1: a is faster)',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// Entry points

/** `bench` with command-line arguments; returns the exit code (2: usage error). */
export async function benchMain(args: readonly string[], io: BenchIo): Promise<number> {
  let opts: BenchOptions | null;
  try {
    opts = parseBenchArgs(args);
  } catch (err) {
    io.stderr(`paddle-image-feature bench: ${errorMessage(err)}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (opts === null) {
    io.stdout(BENCH_USAGE);
    return 0;
  }
  await runBench(opts, io);
  return 0;
}

if (process.argv[2] === CHILD_FLAG && isMainModule(import.meta.url)) {
  childMain(process.argv[3] ?? '{}').catch((err: unknown) => {
    process.stdout.write(
      `${JSON.stringify({ maxRssKB: process.resourceUsage().maxRSS, error: errorMessage(err) })}\n`,
    );
    process.exitCode = 1;
  });
}
