/**
 * int8 post-training quantisation of the high-performance mode (issue 18; the recipe of
 * ../shared/spec/detection-int8.md B.3): the fp32 model runs the calibration feeds while the
 * addon records every fused convolution's input range (NativeModel.calibrate); each eligible
 * convolution gets an activation scale (u8 when its input is never negative, else s8; range
 * max-abs or a percentile of |x|) and runs u8/s8 x s8 (per-channel weight scales, computed by the
 * kernel from the folded weights). Mixed precision: depthwise and grouped convolutions (int8 is
 * slower there and the classic PTQ accuracy trap), the first convolution (raw pixels) and the
 * last one (the embedding) stay fp32, and so does any layer oneDNN would not run in int8. Then
 * the gate: the quantised model's outputs on the calibration set against fp32, per row cosine;
 * below `minCosine` the quantiser refuses with PIF_QUANTIZE naming the worst layer (each int8
 * layer alone, the one that costs the most).
 *
 * The result (`QuantSpec`) is what `quantization.json` holds in a quantised model directory,
 * which reloads with `precision: 'int8'` without calibrating again.
 */
import { copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { InvalidArgumentError, ModelConfigError, PifIoError, QuantizationError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import { nativeInputs, type RunInputs } from './tensor.js';
import { checkKnownKeys, describeValue, isPlainObject } from './limits.js';
import {
  nativeBinding,
  type NativeConvLayer,
  type NativeLoadOptions,
  type NativeModel,
  type NativeOutputTensor,
  type NativeQuantTable,
  type NativeTensor,
} from './native.js';

/** The file of a quantised model directory. */
export const QUANT_FILE = 'quantization.json';
const QUANT_FORMAT = 'paddle-image-feature int8';

export interface QuantizeOptions {
  /** Activation range: 'percentile' of |x| (default) or 'max' (min-max). */
  algo?: 'max' | 'percentile';
  /** With algo 'percentile' (default 99.99). */
  percentile?: number;
  /** The gate: the worst calibration row's cosine to fp32 must reach it (default 0.99). */
  minCosine?: number;
}

export interface ResolvedQuantizeOptions {
  readonly algo: 'max' | 'percentile';
  readonly percentile: number;
  readonly minCosine: number;
}

/** A convolution run in int8: its input scale and geometry (checked on reload). */
export interface QuantConv {
  ordinal: number;
  scale: number;
  unsigned: boolean;
  outChannels: number;
  inChannels: number;
  kh: number;
  kw: number;
}

export interface QuantReport {
  algo: 'max' | 'percentile';
  percentile: number;
  minCosine: number;
  /** Calibration runs and rows (images). */
  runs: number;
  rows: number;
  int8Layers: number;
  totalLayers: number;
  /** Feature cosine of the quantised model vs fp32 on the calibration set. */
  cosineWorst: number;
  cosineMean: number;
  /**
   * The first calibration run's time (median of 3, after a warm-up, interleaved) in fp32 and
   * in int8 on this machine, ms: what the int8 layers buy here.
   */
  msFp32: number;
  msInt8: number;
  /** Convolutions kept in fp32, and why. */
  fp32Layers: { ordinal: number; reason: string }[];
}

export interface QuantSpec {
  format: string;
  version: 1;
  convs: QuantConv[];
  report: QuantReport;
}

const OPTION_KEYS = ['algo', 'percentile', 'minCosine'] as const;

export function validateQuantizeOptions(raw: unknown, what = 'quantize'): ResolvedQuantizeOptions {
  if (raw === undefined) raw = {};
  if (!isPlainObject(raw)) {
    throw new InvalidArgumentError(`${what} options must be an object, got ${describeValue(raw)}`);
  }
  checkKnownKeys(raw, OPTION_KEYS, `${what} options`);
  const algo = raw['algo'] ?? 'percentile';
  if (algo !== 'max' && algo !== 'percentile') {
    throw new InvalidArgumentError(
      `${what}.algo must be 'max' or 'percentile', got ${describeValue(algo)}`,
    );
  }
  const pct = raw['percentile'] ?? 99.99;
  if (typeof pct !== 'number' || !(pct > 50 && pct <= 100)) {
    throw new InvalidArgumentError(
      `${what}.percentile must be in (50, 100], got ${describeValue(pct)}`,
    );
  }
  const minCosine = raw['minCosine'] ?? 0.99;
  if (typeof minCosine !== 'number' || !(minCosine >= -1 && minCosine <= 1)) {
    throw new InvalidArgumentError(
      `${what}.minCosine must be a number in [-1, 1], got ${describeValue(minCosine)}`,
    );
  }
  return Object.freeze({ algo, percentile: pct, minCosine });
}

/** Per-row cosines of `a` against `ref` (rows of equal length). */
function rowCosines(a: Float32Array, ref: Float32Array, rows: number): number[] {
  const per = ref.length / rows;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = r * per; i < (r + 1) * per; i++) {
      const x = a[i] as number;
      const y = ref[i] as number;
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    out.push(na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb));
  }
  return out;
}

/** A run's first output as float rows. */
function firstOutput(outputs: readonly NativeOutputTensor[]): { data: Float32Array; rows: number } {
  const [o] = outputs;
  if (o === undefined || o.dtype !== 'float32') {
    throw new QuantizationError("int8: the model's first output is not a float32 tensor");
  }
  return { data: new Float32Array(o.data), rows: Math.max(1, o.shape[0] ?? 1) };
}

/** The first output of each run, as float rows. */
async function firstOutputs(
  model: NativeModel,
  feeds: readonly NativeTensor[][],
  threads: number,
): Promise<{ data: Float32Array; rows: number }[]> {
  const outs: { data: Float32Array; rows: number }[] = [];
  for (const feed of feeds) outs.push(firstOutput(await model.run(feed, { threads })));
  return outs;
}

function gate(
  ref: { data: Float32Array; rows: number }[],
  got: { data: Float32Array; rows: number }[],
): { worst: number; mean: number } {
  let worst = 1;
  let sum = 0;
  let n = 0;
  ref.forEach((r, k) => {
    for (const c of rowCosines((got[k] as { data: Float32Array }).data, r.data, r.rows)) {
      worst = Math.min(worst, Number.isNaN(c) ? -1 : c);
      sum += c;
      n++;
    }
  });
  return { worst, mean: n === 0 ? 1 : sum / n };
}

/** Why a convolution stays fp32 (null: it is quantised). */
function keepFp32(
  l: NativeConvLayer,
  last: number,
  s: { absMax: number; pixels: number } | undefined,
): string | null {
  if (l.groups !== 1) return 'depthwise or grouped (int8 is slower there and loses accuracy)';
  if (l.inChannels <= 4) return 'the first convolution (it sees raw pixels)';
  if (l.inChannels < 16) return 'fewer than 16 input channels (memory-bound: int8 saves nothing)';
  if (l.ordinal === last) return 'the last convolution (the embedding)';
  if (s !== undefined && s.pixels === 1) {
    return 'a convolution on a pooled 1x1 input, e.g. squeeze-and-excitation (no work to save, sensitive)';
  }
  if (s === undefined || !(s.absMax > 0)) return 'its input is all zero on the calibration set';
  return null;
}

/** The model in hpi with `convs` in int8 (none: the fp32 model). */
export function loadQuantised(
  modelPath: string,
  load: NativeLoadOptions,
  convs: readonly QuantConv[],
): Promise<NativeModel> {
  return nativeBinding().loadModel(modelPath, {
    ...load,
    executable: true,
    runMode: 'hpi',
    precision: 'fp32',
    ...(convs.length === 0 ? {} : { quant: quantTable({ convs }) }),
  });
}

/** Ordinals the int8 model did not run in int8 (oneDNN refused: the reference kernel ran). */
function refusedInt8(model: NativeModel): Set<number> {
  const byNode = new Map<string, number>();
  for (const l of model.convLayers?.() ?? []) if (l.int8) byNode.set(l.node, l.ordinal);
  const refused = new Set<number>();
  for (const f of model.engine()?.fallbacks ?? []) {
    const ordinal = byNode.get(f.node);
    if (f.kernel === 'dnnl.qconv2d' && f.path === 'reference' && ordinal !== undefined) {
      refused.add(ordinal);
    }
  }
  return refused;
}

/** Median ms of `feed` on the fp32 and the int8 model (one warm-up, 3 interleaved rounds). */
async function timeBoth(
  modelPath: string,
  load: NativeLoadOptions,
  convs: readonly QuantConv[],
  feed: NativeTensor[],
  threads: number,
): Promise<{ fp32: number; int8: number }> {
  const models = [
    await loadQuantised(modelPath, load, []),
    await loadQuantised(modelPath, load, convs),
  ];
  try {
    const times: number[][] = [[], []];
    for (let round = 0; round < 4; round++) {
      for (const [k, m] of models.entries()) {
        const t0 = performance.now();
        await m.run(feed, { threads });
        if (round > 0) (times[k] as number[]).push(performance.now() - t0);
      }
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[1] as number;
    return { fp32: median(times[0] as number[]), int8: median(times[1] as number[]) };
  } finally {
    for (const m of models) m.close();
  }
}

/**
 * Quantises the model at `modelPath` (native load options `load`) on `calibration` (each what
 * run() takes). Throws PIF_QUANTIZE when the gate fails.
 */
export async function quantizeModel(
  modelPath: string,
  load: NativeLoadOptions,
  calibration: readonly RunInputs[],
  threads: number,
  options: ResolvedQuantizeOptions,
): Promise<QuantSpec> {
  if (calibration.length === 0)
    throw new InvalidArgumentError('int8: calibration needs at least one input');
  const fp32 = await loadQuantised(modelPath, load, []);
  let feeds: NativeTensor[][];
  try {
    const names = fp32.info().inputs.map((i) => i.name);
    feeds = calibration.map((f) => nativeInputs(f, names, 'options.calibration'));
  } catch (err) {
    fp32.close();
    throw err;
  }
  // The calibration runs' outputs are the fp32 reference of the gate.
  const ref: { data: Float32Array; rows: number }[] = [];
  const stats = new Map<
    number,
    { min: number; max: number; absMax: number; pct: number; n: number; pixels: number }
  >();
  let layers: NativeConvLayer[];
  try {
    layers = fp32.convLayers?.() ?? [];
    for (const feed of feeds) {
      const run = await fp32.calibrate?.(feed, {
        threads,
        ...(options.algo === 'percentile' ? { percentiles: [options.percentile] } : {}),
      });
      if (run === undefined) throw new QuantizationError('int8: this model cannot be calibrated');
      ref.push(firstOutput(run.outputs));
      for (const s of run.layers) {
        const a = stats.get(s.ordinal) ?? {
          min: Infinity,
          max: -Infinity,
          absMax: 0,
          pct: 0,
          n: 0,
          pixels: s.pixels,
        };
        a.min = Math.min(a.min, s.min);
        a.max = Math.max(a.max, s.max);
        a.absMax = Math.max(a.absMax, s.absMax);
        a.pct += s.percentiles[0] ?? s.absMax;
        a.n++;
        stats.set(s.ordinal, a);
      }
    }
  } finally {
    fp32.close();
  }
  const rows = ref.reduce((s, r) => s + r.rows, 0);
  const last = layers.length - 1;
  const fp32Layers: { ordinal: number; reason: string }[] = [];
  let convs: QuantConv[] = [];
  for (const l of layers) {
    const s = stats.get(l.ordinal);
    const why = keepFp32(l, last, s);
    if (why !== null || s === undefined) {
      fp32Layers.push({ ordinal: l.ordinal, reason: why ?? 'no statistics' });
      continue;
    }
    const unsigned = s.min >= 0;
    const pct = s.n > 0 ? s.pct / s.n : 0;
    const range = options.algo === 'max' || !(pct > 0) ? s.absMax : Math.min(pct, s.absMax);
    convs.push({
      ordinal: l.ordinal,
      scale: range / (unsigned ? 255 : 127),
      unsigned,
      outChannels: l.outChannels,
      inChannels: l.inChannels,
      kh: l.kh,
      kw: l.kw,
    });
  }
  const measure = async (set: readonly QuantConv[]) => {
    const m = await loadQuantised(modelPath, load, set);
    try {
      const got = await firstOutputs(m, feeds, threads);
      return { ...gate(ref, got), refused: refusedInt8(m) };
    } finally {
      m.close();
    }
  };
  let result = await measure(convs);
  if (result.refused.size > 0) {
    for (const c of convs) {
      if (result.refused.has(c.ordinal)) {
        fp32Layers.push({ ordinal: c.ordinal, reason: 'oneDNN has no int8 kernel for it here' });
      }
    }
    convs = convs.filter((c) => !result.refused.has(c.ordinal));
    result = await measure(convs);
  }
  // Mixed precision by measurement: when the gate fails, each int8 layer is measured alone and
  // the most costly ones go back to fp32, one at a time, while at least half stay int8.
  const eligible = convs.length;
  let solo: { conv: QuantConv; worst: number }[] = [];
  if (!(result.worst >= options.minCosine) && convs.length > 0) {
    for (const c of convs) solo.push({ conv: c, worst: (await measure([c])).worst });
    solo.sort((x, y) => x.worst - y.worst);
    for (const s of solo) {
      if (result.worst >= options.minCosine || convs.length - 1 < eligible / 2) break;
      convs = convs.filter((c) => c !== s.conv);
      fp32Layers.push({
        ordinal: s.conv.ordinal,
        reason: `int8 cost too much accuracy (worst cosine ${s.worst.toFixed(5)} quantised alone)`,
      });
      result = await measure(convs);
    }
  }
  fp32Layers.sort((x, y) => x.ordinal - y.ordinal);
  const timing = await timeBoth(modelPath, load, convs, feeds[0] as NativeTensor[], threads);
  const report: QuantReport = {
    algo: options.algo,
    percentile: options.percentile,
    minCosine: options.minCosine,
    runs: feeds.length,
    rows,
    int8Layers: convs.length,
    totalLayers: layers.length,
    cosineWorst: result.worst,
    cosineMean: result.mean,
    msFp32: timing.fp32,
    msInt8: timing.int8,
    fp32Layers,
  };
  if (!(result.worst >= options.minCosine)) {
    solo = solo.filter((x) => convs.includes(x.conv));
    const w = solo[0];
    const where =
      w === undefined
        ? 'no convolution could run in int8'
        : `the worst layer is convolution ${w.conv.ordinal} ([${w.conv.outChannels},${w.conv.inChannels},${w.conv.kh},${w.conv.kw}]: ` +
          `${w.worst.toFixed(5)} quantised alone)`;
    throw new QuantizationError(
      `int8 quantisation refused: the worst calibration image's feature cosine to fp32 is ` +
        `${result.worst.toFixed(5)} (mean ${result.mean.toFixed(5)}) with ${convs.length} of ` +
        `${eligible} eligible convolutions in int8, below minCosine ${options.minCosine}; ${where}. ` +
        `Calibrate on more representative images, try algo 'max' or another percentile, or lower minCosine`,
      {
        report: {
          ...report,
          ...(w === undefined ? {} : { worstLayer: w.conv.ordinal, worstLayerCosine: w.worst }),
        },
      },
    );
  }
  return { format: QUANT_FORMAT, version: 1, convs, report };
}

/** The native table of a spec. */
export function quantTable(
  spec: Pick<QuantSpec, 'convs'> | { convs: readonly QuantConv[] },
): NativeQuantTable {
  return {
    convs: spec.convs.map((c) => ({ ordinal: c.ordinal, scale: c.scale, unsigned: c.unsigned })),
  };
}

/** Checks that `spec` fits the loaded model's convolutions (same geometry per ordinal). */
export function checkQuantSpec(
  spec: QuantSpec,
  layers: readonly NativeConvLayer[],
  file: string,
): void {
  for (const c of spec.convs) {
    const l = layers[c.ordinal];
    if (
      l === undefined ||
      l.groups !== 1 ||
      l.outChannels !== c.outChannels ||
      l.inChannels !== c.inChannels ||
      l.kh !== c.kh ||
      l.kw !== c.kw
    ) {
      throw new ModelConfigError(
        `${file}: convolution ${c.ordinal} [${c.outChannels},${c.inChannels},${c.kh},${c.kw}] is not in this model ` +
          `(${l === undefined ? `it has ${layers.length} convolutions` : `it is [${l.outChannels},${l.inChannels},${l.kh},${l.kw}] g${l.groups}`}); ` +
          'quantise the model again',
        { file },
      );
    }
  }
}

function parseSpec(raw: unknown, file: string): QuantSpec {
  const bad = (why: string): never => {
    throw new ModelConfigError(`${file}: ${why}`, { file });
  };
  if (!isPlainObject(raw)) bad('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (o['format'] !== QUANT_FORMAT) bad(`format must be '${QUANT_FORMAT}'`);
  if (o['version'] !== 1) bad(`version ${describeValue(o['version'])} is not supported (1)`);
  if (!Array.isArray(o['convs'])) bad('convs must be an array');
  const convs = (o['convs'] as unknown[]).map((c, k): QuantConv => {
    if (!isPlainObject(c)) return bad(`convs[${k}] must be an object`);
    const num = (key: string, int: boolean): number => {
      const v = c[key];
      if (
        typeof v !== 'number' ||
        !Number.isFinite(v) ||
        (int && (!Number.isInteger(v) || v < 0))
      ) {
        return bad(`convs[${k}].${key} must be ${int ? 'a non-negative integer' : 'a number'}`);
      }
      return v;
    };
    const scale = num('scale', false);
    if (!(scale > 0)) bad(`convs[${k}].scale must be positive`);
    if (typeof c['unsigned'] !== 'boolean') bad(`convs[${k}].unsigned must be true or false`);
    return {
      ordinal: num('ordinal', true),
      scale,
      unsigned: c['unsigned'] as boolean,
      outChannels: num('outChannels', true),
      inChannels: num('inChannels', true),
      kh: num('kh', true),
      kw: num('kw', true),
    };
  });
  return {
    format: QUANT_FORMAT,
    version: 1,
    convs,
    report: (isPlainObject(o['report']) ? o['report'] : {}) as unknown as QuantReport,
  };
}

/** The spec of a quantised model directory, or null when it has none. */
export async function readQuantSpec(dir: string): Promise<QuantSpec | null> {
  const file = path.join(dir, QUANT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PifIoError(`cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(`${file}: not valid JSON (${(err as Error).message})`, { file });
  }
  return parseSpec(raw, file);
}

/**
 * Writes a quantised model directory: the files of `srcDir` (program, parameters,
 * inference.yml, ...) copied to `outDir` (created), then `quantization.json`.
 */
export async function writeQuantizedModel(
  srcDir: string,
  outDir: string,
  spec: QuantSpec,
): Promise<string> {
  const src = path.resolve(srcDir);
  const out = path.resolve(outDir);
  if (src === out) {
    throw new InvalidArgumentError(`the quantised model must go to another directory than ${src}`);
  }
  await mkdir(out, { recursive: true });
  for (const name of await readdir(src)) {
    if (name === QUANT_FILE) continue;
    const from = path.join(src, name);
    if ((await stat(from)).isFile()) await copyFile(from, path.join(out, name));
  }
  const file = path.join(out, QUANT_FILE);
  await writeFileAtomic(file, `${JSON.stringify(spec, null, 2)}\n`);
  return file;
}
