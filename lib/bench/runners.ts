/**
 * What the benchmark runs: seeded inputs and the output comparison, one loaded model per mode
 * (our predictor or ONNX Runtime), the native peak probe, and the cached built models.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { buildModel, builderVersion } from '../builder.js';
import { PifError } from '../errors.js';
import { exportOnnx } from '../export.js';
import { nativeBinding } from '../native.js';
import { loadOrt } from '../ort-backend.js';
import { loadPredictor, type PredictorOptions } from '../predictor.js';
import { writeQuantizedModel } from '../quantize.js';
import { seededFloats } from '../rng.js';
import {
  BENCH_MODELS,
  WEIGHT_SEED,
  type BenchMode,
  type BenchModelKey,
  type BenchOptions,
} from './options.js';
import { ms } from './report.js';

// ---------------------------------------------------------------------------------------
// Inputs, outputs and their comparison

export function inputFor(batch: number, seed: number): { data: Float32Array; shape: number[] } {
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

/** onnxruntime-node (a dev dependency), imported on first use (lib/ort-backend.ts). */
export { loadOrt };

export interface Runner {
  run(data: Float32Array, shape: number[]): Promise<Float32Array>;
  close(): Promise<void>;
}

function predictorOptions(mode: Exclude<BenchMode, 'ort'>, threads: number): PredictorOptions {
  if (mode === 'normal') return { runMode: 'normal', cpuThreads: threads };
  // The quantised directory (int8DirOf) reloads without calibrating.
  if (mode === 'hpi-int8') return { runMode: 'hpi', precision: 'int8', cpuThreads: threads };
  // `precision` comes with the hpi run mode; typed here so this compiles before and after.
  const opts: PredictorOptions & { precision: 'fp32' | 'bf16' } = {
    runMode: 'hpi',
    precision: mode === 'hpi' ? 'fp32' : 'bf16',
    cpuThreads: threads,
  };
  return opts;
}

export async function openRunner(
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
      // Interleaved rounds: ORT's idle workers spin for ~20-30 ms of CPU after each run, which
      // on a small machine takes a core from the next mode's team (and ours from ORT's). With
      // several threads, its workers sleep between runs, as ours do.
      ...(threads > 1 ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
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
  const dir = mode === 'hpi-int8' ? int8DirOf(modelDir) : modelDir;
  const p = await loadPredictor(dir, predictorOptions(mode, threads));
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

export function errorMessage(err: unknown): string {
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
export function probePeakBinding(): ProbePeak | null {
  const fn = (nativeBinding() as unknown as Record<string, unknown>)['probePeak'];
  return typeof fn === 'function' ? (fn as ProbePeak) : null;
}

export function asPeak(raw: unknown, threads: number): PeakResult | null {
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

/** The quantised copy of a built model (prepareModel writes it for mode hpi-int8). */
export function int8DirOf(modelDir: string): string {
  return path.join(path.dirname(modelDir), 'model-int8');
}

/** Calibration runs of the bench's int8 mode: 4 batches of 8 seeded inputs (32 images). */
export function benchCalibration(): { data: Float32Array; shape: number[] }[] {
  return [0, 1, 2, 3].map((k) => inputFor(8, 1000 + k));
}

export interface Artifacts {
  modelDir: string;
  onnxFile: string;
}

export async function prepareModel(
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
  const int8Mark = path.join(root, 'int8.ready');
  if (opts.modes.includes('hpi-int8') && !existsSync(int8Mark)) {
    const t0 = performance.now();
    const p = await loadPredictor(modelDir, {
      runMode: 'hpi',
      precision: 'int8',
      calibration: benchCalibration(),
    }).catch((err: unknown) => {
      // The mode's row then says why (its directory has no quantization.json).
      log(`int8 quantisation of ${name} failed: ${errorMessage(err)}`);
      return null;
    });
    if (p !== null)
      try {
        const spec = p.quantization;
        if (spec === null) throw new Error('no quantisation result');
        await writeQuantizedModel(modelDir, int8DirOf(modelDir), spec);
        await writeFile(int8Mark, '');
        log(
          `quantised ${name} in ${ms(performance.now() - t0)} ms: ${spec.report.int8Layers}/${spec.report.totalLayers} ` +
            `convolutions int8, calibration cosine worst ${spec.report.cosineWorst.toFixed(5)}`,
        );
      } finally {
        p.close();
      }
  }
  return { modelDir, onnxFile };
}
