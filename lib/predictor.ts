/**
 * Low-level API modelled on Paddle Inference's Config / Predictor:
 *
 *   const p = await loadPredictor('PP-ShiTuV2_rec_infer', { cpuThreads: 2 });
 *   p.inputs   // [{ name: 'x', dtype: 'float32', shape: [-1, 3, 224, 224] }]
 *   p.close();
 */
import path from 'node:path';

import {
  captureCaller,
  ClosedError,
  InvalidArgumentError,
  RunError,
  UnsupportedError,
} from './errors.js';
import {
  checkKnownKeys,
  describeValue,
  isPlainObject,
  validateLimits,
  type LoadLimits,
} from './limits.js';
import {
  chooseBackend,
  validateHpiConfig,
  type BackendChoice,
  type EngineBackend,
  type HpiConfig,
  type ResolvedHpiConfig,
} from './hpi-config.js';
import { checkPath, freezeInfo, type ModelInfo, type TensorInfo } from './model.js';
import { readInferenceConfig, resolveModelDir, type ResolvedModelDir } from './modeldir.js';
import {
  nativeBinding,
  type NativeEngineInfo,
  type NativeImage,
  type NativeImageRows,
  type NativeLimits,
  type NativeModel,
  type NativeTensor,
} from './native.js';
import { openOrtModel, ortUnavailable } from './ort-backend.js';
import {
  checkQuantSpec,
  QUANT_FILE,
  quantizeModel,
  loadQuantised,
  readQuantSpec,
  validateQuantizeOptions,
  type QuantizeOptions,
  type QuantSpec,
  type ResolvedQuantizeOptions,
} from './quantize.js';
import type { Normalization } from './preprocess.js';
import { nativeInputs, toTensor, type RunInputs, type Tensor } from './tensor.js';

export type RunMode = 'normal' | 'hpi';

/** Predictor.engine: the backend that runs the model, and our engine's own figures. */
export interface EngineInfo extends NativeEngineInfo {
  /** 'paddle' (normal mode), 'paddle_mkldnn' (our oneDNN engine) or 'onnxruntime'. */
  backend: EngineBackend;
  /** Why this backend (hpi_config's choice). */
  reason: string;
  /** Backends of the model's priority list passed over by auto_config, and why. */
  skipped: readonly { readonly backend: string; readonly reason: string }[];
}
export type Precision = 'fp32' | 'bf16' | 'int8';

/** The graph passes of the high-performance mode, in the order they run. */
export const GRAPH_PASSES = [
  'remove_identity',
  'conv_to_fused',
  'matmul_to_fused',
  'fold_transpose',
  'fuse_bias',
  'fold_batch_norm',
  'fuse_swish',
  'fuse_activation',
  'fuse_residual',
] as const;

export interface PredictorOptions {
  /**
   * 'normal' (default): the reference kernels, op by op (GEMMs through oneDNN's sgemm).
   * 'hpi' (high-performance mode): graph passes (batch-norm folding, bias/activation/residual
   * fusion, transposes folded into matmuls) and oneDNN primitives in blocked layouts; any op
   * without a oneDNN kernel runs its reference kernel. Results agree with 'normal' to float
   * rounding (cosine >= 0.99999).
   */
  runMode?: RunMode;
  /**
   * hpi only. 'fp32' (default) or 'bf16' (convolutions and matmuls in bfloat16). bf16 needs a
   * CPU with AVX512-BF16 or AMX; elsewhere loading fails with PIF_UNSUPPORTED (no silent
   * fallback, so benchmarks never report fp32 numbers as bf16).
   */
  precision?: Precision;
  /**
   * precision 'int8' only: the calibration feeds (each what run() takes; >= 32 images in all
   * is the advice). The model is quantised at load (lib/quantize.ts) and `predictor.quantization`
   * holds the result; without them the model directory must be a quantised one
   * (quantization.json, written by `paddle-image-feature quantize`).
   */
  calibration?: readonly RunInputs[];
  /** precision 'int8': the quantiser's options (algo, percentile, minCosine). */
  quantize?: QuantizeOptions;
  /**
   * Advanced / testing: apply only these graph passes (names from the hpi pass list) on the
   * reference kernels, in normal mode. Each pass must keep the model's numbers.
   */
  passes?: readonly string[];
  /** OpenMP threads per run (default 1). */
  cpuThreads?: number;
  /**
   * runMode 'hpi' only: PaddleX's multi-backend hpi_config (lib/hpi-config.ts): `backend`
   * ('paddle_mkldnn' = our oneDNN engine, 'paddle', 'onnxruntime'), `auto_config` (the
   * model's PaddleX priority list, by inference.yml's model name), `backend_config`. Without it,
   * 'hpi' is our oneDNN engine.
   */
  hpiConfig?: HpiConfig;
  /** Load-time limits (see LoadLimits). */
  limits?: LoadLimits;
  /**
   * Seed for random weights bound to parameters the model directory lacks (graph-only
   * exports): lets a real graph run for testing. Never use for real predictions.
   */
  randomWeights?: number;
}

/** Options after validation and defaults. */
export interface ResolvedPredictorOptions {
  readonly runMode: RunMode;
  readonly precision: Precision;
  readonly passes?: readonly string[];
  /** Threads per run (the chosen backend's thread count once the model is open). */
  readonly cpuThreads: number;
  /** hpi_config as validated (null: none given). */
  readonly hpiConfig: ResolvedHpiConfig | null;
  /** precision 'int8': the calibration feeds (null: read quantization.json). */
  readonly calibration: readonly RunInputs[] | null;
  readonly quantize: ResolvedQuantizeOptions;
  readonly limits: Readonly<NativeLimits>;
  readonly randomWeights?: number;
}

/** Most threads a predictor may ask for. */
export const MAX_CPU_THREADS = 1024;

const OPTION_KEYS = [
  'runMode',
  'precision',
  'passes',
  'cpuThreads',
  'hpiConfig',
  'calibration',
  'quantize',
  'limits',
  'randomWeights',
] as const;

/** Validates loadPredictor options. Throws InvalidArgumentError / UnsupportedError. */
export function validatePredictorOptions(options: unknown): ResolvedPredictorOptions {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) {
    throw new InvalidArgumentError(
      `loadPredictor options must be an object, got ${describeValue(options)}`,
    );
  }
  checkKnownKeys(options, OPTION_KEYS, 'loadPredictor options');
  const runMode = options['runMode'] ?? 'normal';
  if (runMode !== 'normal' && runMode !== 'hpi') {
    throw new InvalidArgumentError(
      `options.runMode must be 'normal' or 'hpi', got ${describeValue(runMode)}`,
    );
  }
  const precision = options['precision'] ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'bf16' && precision !== 'int8') {
    throw new InvalidArgumentError(
      `options.precision must be 'fp32', 'bf16' or 'int8', got ${describeValue(precision)}`,
    );
  }
  if (precision !== 'fp32' && runMode !== 'hpi') {
    throw new UnsupportedError(`options.precision '${precision}' needs runMode 'hpi'`);
  }
  const calib = options['calibration'];
  if (
    calib !== undefined &&
    (precision !== 'int8' || !Array.isArray(calib) || calib.length === 0)
  ) {
    throw new InvalidArgumentError(
      "options.calibration must be a non-empty array of run() inputs, with precision 'int8'",
    );
  }
  const quantize = validateQuantizeOptions(options['quantize'], 'options.quantize');
  const passesOpt = options['passes'];
  let passes: readonly string[] | undefined;
  if (passesOpt !== undefined) {
    if (!Array.isArray(passesOpt)) {
      throw new InvalidArgumentError(
        `options.passes must be an array of pass names, got ${describeValue(passesOpt)}`,
      );
    }
    for (const p of passesOpt as unknown[]) {
      if (typeof p !== 'string' || !(GRAPH_PASSES as readonly string[]).includes(p)) {
        throw new InvalidArgumentError(
          `options.passes: unknown pass ${describeValue(p)} (passes: ${GRAPH_PASSES.join(', ')})`,
        );
      }
    }
    if (runMode === 'hpi') {
      throw new InvalidArgumentError("options.passes applies to runMode 'normal' only");
    }
    passes = Object.freeze([...(passesOpt as string[])]);
  }
  const cpuThreads = options['cpuThreads'] ?? 1;
  if (
    typeof cpuThreads !== 'number' ||
    !Number.isInteger(cpuThreads) ||
    cpuThreads < 1 ||
    cpuThreads > MAX_CPU_THREADS
  ) {
    throw new InvalidArgumentError(
      `options.cpuThreads must be an integer from 1 to ${MAX_CPU_THREADS}, got ${describeValue(cpuThreads)}`,
    );
  }
  const hpiRaw = options['hpiConfig'];
  if (hpiRaw !== undefined && runMode !== 'hpi') {
    throw new InvalidArgumentError("options.hpiConfig applies to runMode 'hpi' only");
  }
  const hpiConfig = hpiRaw === undefined ? null : validateHpiConfig(hpiRaw, 'options.hpiConfig');
  const limits = validateLimits(options['limits']);
  const randomWeights = options['randomWeights'];
  if (
    randomWeights !== undefined &&
    (typeof randomWeights !== 'number' || !Number.isSafeInteger(randomWeights) || randomWeights < 0)
  ) {
    throw new InvalidArgumentError(
      `options.randomWeights must be a non-negative integer seed, got ${describeValue(randomWeights)}`,
    );
  }
  return Object.freeze({
    runMode,
    precision,
    ...(passes === undefined ? {} : { passes }),
    cpuThreads,
    hpiConfig,
    calibration: calib === undefined ? null : Object.freeze([...(calib as RunInputs[])]),
    quantize,
    limits: Object.freeze(limits),
    ...(randomWeights === undefined ? {} : { randomWeights }),
  });
}

const CONSTRUCT = Symbol('Predictor.construct');

export type { RunInputs } from './tensor.js';

/**
 * A loaded model, ready to run. Call close() when done.
 *
 * Concurrency: run() may be called again before an earlier call settles; each call gets
 * its own activation buffers (reused across calls), so concurrent runs on one predictor are
 * safe and share only the read-only weights.
 */
export class Predictor {
  /** Absolute model directory. */
  readonly modelDir: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly options: ResolvedPredictorOptions;
  /** The backend that runs the model, its settings, and why it was chosen. */
  readonly backend: BackendChoice;
  /** precision 'int8': the quantised convolutions and the accuracy report; else null. */
  readonly quantization: QuantSpec | null;
  #model: NativeModel | null;
  readonly #info: ModelInfo;

  /** @internal Use loadPredictor(). */
  constructor(
    token: symbol,
    modelDir: string,
    model: NativeModel,
    options: ResolvedPredictorOptions,
    backend: BackendChoice,
    quantization: QuantSpec | null,
  ) {
    if (token !== CONSTRUCT) throw new TypeError('use loadPredictor() to create a Predictor');
    this.modelDir = modelDir;
    this.#model = model;
    this.options = options;
    this.backend = backend;
    this.quantization = quantization;
    this.#info = freezeInfo(model.info());
    this.inputs = this.#info.inputs;
    this.outputs = this.#info.outputs;
  }

  /**
   * How the engine runs this model: the backend and why (hpi_config), and for our engine its
   * nodes, oneDNN-bound nodes, pass rewrites and op census (all zero / empty on onnxruntime).
   */
  get engine(): EngineInfo {
    const info = this.#check('engine').engine();
    if (info === null) throw new RunError('Predictor.engine: no executor');
    const b = this.backend;
    return { ...info, backend: b.backend, reason: b.reason, skipped: b.skipped };
  }

  /** Format, version, op census and parameters of the loaded model. Throws PIF_CLOSED after close(). */
  get info(): ModelInfo {
    this.#check('info');
    return this.#info;
  }

  get closed(): boolean {
    return this.#model === null;
  }

  /**
   * Runs the model on one set of inputs, off the main thread. Inputs are validated here
   * (types, shapes) and natively against the model (names, dtype, rank, static dims):
   * PIF_INVALID_ARG / PIF_INPUT errors name the input. Outputs come back by name, in the
   * model's output order, as JS-owned TypedArrays.
   */
  async run(inputs: RunInputs): Promise<Record<string, Tensor>> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(Predictor.prototype.run);
    const model = this.#check('run');
    const list: NativeTensor[] = nativeInputs(
      inputs,
      this.inputs.map((i) => i.name),
    );
    let outs;
    try {
      outs = await model.run(list, { threads: this.options.cpuThreads });
    } catch (err) {
      throw convert(err);
    }
    const result: Record<string, Tensor> = {};
    for (const o of outs) result[o.name] = toTensor(o.dtype, o.shape, o.data);
    return result;
  }

  /**
   * @internal The image-feature batch of FeatureModel in one native job: images (decoded, or
   * JPEG bytes the addon decodes), each with its target size, and a checked normalisation
   * (preprocess.ts checkSpec) in; the model's first output out, one unit-length row per image
   * it could decode, in order, and the JPEGs it could not. Batches of one `stream` run one at
   * a time (the next is prepared meanwhile).
   */
  async runImages(
    images: readonly NativeImage[],
    norm: Normalization,
    stream?: number,
  ): Promise<NativeImageRows> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(Predictor.prototype.runImages);
    const model = this.#check('run');
    const opts = { threads: this.options.cpuThreads, ...(stream === undefined ? {} : { stream }) };
    try {
      return await model.runImages([...images], norm, opts);
    } catch (err) {
      throw convert(err);
    }
  }

  /** Frees the native model. Safe to call more than once. */
  close(): void {
    const m = this.#model;
    this.#model = null;
    m?.close();
  }

  #check(what: string): NativeModel {
    if (this.#model === null) {
      throw new ClosedError(`Predictor.${what}: the predictor for ${this.modelDir} is closed`);
    }
    return this.#model;
  }
}

/**
 * Loads a model directory (PaddleX layout: inference.json or inference.pdmodel, plus
 * inference.pdiparams) with its parameters. Errors: PIF_MODEL_NOT_FOUND, PIF_MODEL_FORMAT,
 * PIF_MODEL_PARAMS, PIF_MODEL_LIMIT, PIF_INVALID_ARG, PIF_UNSUPPORTED, PIF_NATIVE_LOAD.
 */
export async function loadPredictor(
  modelDir: string,
  options?: PredictorOptions,
): Promise<Predictor> {
  const convert = captureCaller(loadPredictor);
  const p = checkPath(modelDir, 'modelDir');
  const opts = validatePredictorOptions(options);
  const resolved = await resolveModelDir(p).catch((err: unknown) => Promise.reject(convert(err)));
  return openPredictor(path.resolve(p), resolved, opts, convert);
}

/**
 * @internal Loads a model path that resolveModelDir has resolved, with validated options:
 * loadPredictor, and createModel (which has done both itself).
 */
export async function openPredictor(
  modelPath: string,
  resolved: ResolvedModelDir,
  opts: ResolvedPredictorOptions,
  convert: (err: unknown) => Error,
  modelName?: string | null,
): Promise<Predictor> {
  let choice: BackendChoice;
  try {
    choice = await backendFor(resolved, opts, modelName);
  } catch (err) {
    throw convert(err);
  }
  const final: ResolvedPredictorOptions = Object.freeze({
    ...opts,
    runMode: choice.backend === 'paddle' ? 'normal' : 'hpi',
    precision: choice.precision,
    cpuThreads: choice.threads,
  });
  let model: NativeModel;
  let spec: QuantSpec | null = null;
  try {
    if (final.precision === 'int8') {
      const r = await openInt8(modelPath, resolved, final);
      model = r.model;
      spec = r.spec;
    } else if (choice.backend === 'onnxruntime') {
      model = await openOrtModel(modelPath, {
        threads: choice.threads,
        limits: opts.limits,
        ...(opts.randomWeights === undefined ? {} : { randomWeights: opts.randomWeights }),
      });
    } else {
      model = await nativeBinding().loadModel(modelPath, {
        requireParams: true,
        executable: true,
        limits: { ...opts.limits },
        runMode: final.runMode,
        precision: final.precision,
        ...(opts.passes === undefined ? {} : { passes: [...opts.passes] }),
        ...(opts.randomWeights === undefined ? {} : { randomWeights: opts.randomWeights }),
      });
    }
  } catch (err) {
    throw convert(err);
  }
  try {
    return new Predictor(CONSTRUCT, resolved.dir, model, final, choice, spec);
  } catch (err) {
    model.close();
    throw convert(err);
  }
}

/**
 * The int8 model: quantised now on the calibration feeds, or as the directory's
 * quantization.json says; its convolutions checked against the spec.
 */
async function openInt8(
  modelPath: string,
  resolved: ResolvedModelDir,
  opts: ResolvedPredictorOptions,
): Promise<{ model: NativeModel; spec: QuantSpec }> {
  const load = {
    requireParams: true,
    limits: { ...opts.limits },
    ...(opts.randomWeights === undefined ? {} : { randomWeights: opts.randomWeights }),
  };
  let spec: QuantSpec | null;
  if (opts.calibration !== null) {
    spec = await quantizeModel(modelPath, load, opts.calibration, opts.cpuThreads, opts.quantize);
  } else {
    spec = await readQuantSpec(resolved.dir);
    if (spec === null) {
      throw new InvalidArgumentError(
        `precision 'int8' needs options.calibration (images for createModel, run() inputs for ` +
          `loadPredictor) or a quantised model directory; ${resolved.dir} has no ${QUANT_FILE} ` +
          '(paddle-image-feature quantize writes one)',
      );
    }
  }
  const model = await loadQuantised(modelPath, load, spec.convs);
  try {
    checkQuantSpec(spec, model.convLayers?.() ?? [], path.join(resolved.dir, QUANT_FILE));
  } catch (err) {
    model.close();
    throw err;
  }
  return { model, spec };
}

/** The backend of a run mode: normal and hpi without hpi_config are ours; else hpi_config's. */
async function backendFor(
  resolved: ResolvedModelDir,
  opts: ResolvedPredictorOptions,
  modelName: string | null | undefined,
): Promise<BackendChoice> {
  const fixed = (backend: EngineBackend, reason: string): BackendChoice =>
    Object.freeze({
      backend,
      precision: opts.precision,
      threads: opts.cpuThreads,
      reason,
      skipped: [],
    });
  if (opts.runMode === 'normal') return fixed('paddle', "runMode 'normal'");
  if (opts.hpiConfig === null) return fixed('paddle_mkldnn', "runMode 'hpi' without hpiConfig");
  let name = modelName;
  if (name === undefined) {
    // loadPredictor: the name PaddleX's lists are keyed by is inference.yml's, when there is one.
    name =
      resolved.configFile === null
        ? null
        : (await readInferenceConfig(resolved.configFile, resolved.dir)).Global.model_name;
  }
  return Object.freeze(
    await chooseBackend({
      modelName: name,
      config: opts.hpiConfig,
      precision: opts.precision,
      cpuThreads: opts.cpuThreads,
      ortUnavailable,
    }),
  );
}
