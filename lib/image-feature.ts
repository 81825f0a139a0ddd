/**
 * The image-feature module as PaddleX users know it (../shared/spec/paddlex-behaviour.md §1, §2,
 * §4): `createModel(name, options)` and `model.predict(input)`, an async iterable of
 * FeatureResults in input order. Pipeline per batch: resolve inputs -> decode (sharp, as
 * cv2.imread, on libuv's pool) -> one native call (NativeModel.runImages): OpenCV-exact resize +
 * normalise, inference, L2 normalise, only the features back. Decoding of the next batch
 * overlaps inference of the current one; every heavy step runs off the main thread.
 */
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';

import {
  captureCaller,
  ClosedError,
  InvalidArgumentError,
  ModelConfigError,
  UnsupportedError,
} from './errors.js';
import { downloadOfficialModel, paddlexCacheDir, type DownloadOptions } from './download.js';
import { decodeItem, itemPath, resolveInputs, type InputItem, type PredictInput } from './input.js';
import { nativeJpegFrame, type JpegFrame } from './jpeg-header.js';
import type { HpiConfig } from './hpi-config.js';
import type { QuantizeOptions, QuantSpec } from './quantize.js';
import { modelFingerprint, type ModelFingerprint } from './model-fingerprint.js';
import { readInferenceConfig, resolveModelDir, type InferenceConfig } from './modeldir.js';
import {
  openPredictor,
  validatePredictorOptions,
  type Precision,
  type Predictor,
  type EngineInfo,
  type ResolvedPredictorOptions,
  type RunMode,
} from './predictor.js';
import { nativeBinding, type NativeImage, type NativeJpeg, type NativePixels } from './native.js';
import { checkSpec, type Normalization, type PreprocessSpec, type RawImage } from './preprocess.js';
import { FeatureResult } from './result.js';
import { normalizeRows } from './tensor.js';

export { normalizeRows };

/** The official model names (downloaded from Baidu's model host by PaddleX). */
export const OFFICIAL_MODELS = [
  'PP-ShiTuV2_rec',
  'PP-ShiTuV2_rec_CLIP_vit_base',
  'PP-ShiTuV2_rec_CLIP_vit_large',
] as const;

export interface CreateModelOptions {
  /** A model directory (PaddleX export). Without it, the official model from the cache. */
  modelDir?: string;
  /** 'cpu' (default). GPU mode is not available in this build. */
  device?: string;
  /**
   * High-performance mode, as PaddleX's use_hpip (default false): the backend hpiConfig chooses
   * (by default PaddleX's auto_config: the model's priority list, e.g. PP-ShiTuV2_rec:
   * onnxruntime when onnxruntime-node is installed, else our oneDNN engine).
   */
  useHpip?: boolean;
  /**
   * With useHpip: PaddleX's hpi_config (`backend`: 'paddle_mkldnn' | 'paddle' | 'onnxruntime',
   * `auto_config`, `backend_config`); see lib/hpi-config.ts. `model.engine` says which backend
   * runs and why.
   */
  hpiConfig?: HpiConfig;
  /**
   * 'fp32' (default), 'bf16' (with useHpip, on CPUs with AVX512-BF16/AMX) or 'int8' (with
   * useHpip: post-training quantisation on `calibration`, or a quantised model directory).
   */
  precision?: Precision;
  /**
   * precision 'int8': calibration images (anything predict takes; 32 or more advised). The
   * model is quantised at load, and refused (PIF_QUANTIZE) below quantize.minCosine.
   */
  calibration?: PredictInput;
  /** precision 'int8': the quantiser's options (algo, percentile, minCosine). */
  quantize?: QuantizeOptions;
  /** OpenMP threads per inference call (default 1). */
  cpuThreads?: number;
  /** Images per inference call (default 1). */
  batchSize?: number;
  /** Cache root (default $PADDLE_PDX_CACHE_HOME or ~/.paddlex), as PaddleX. */
  cacheDir?: string;
  /** Official-model download settings (base URL, offline, timeout, progress). */
  download?: DownloadOptions;
}

export interface PredictOptions {
  /** Images per inference call for this call (default: the model's batchSize). */
  batchSize?: number;
  /**
   * Called once the inputs are resolved (directories listed, URLs fetched), before the first
   * result, with the number of results to come: for progress bars.
   */
  onResolved?: (total: number) => void;
}

function checkBatch(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4096) {
    throw new InvalidArgumentError(`${what} must be an integer from 1 to 4096, got ${String(v)}`);
  }
  return v;
}

/** Python's round(): half to even. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return d > 0.5 ? f + 1 : f;
  return f % 2 === 0 ? f : f + 1;
}

/** A model's preprocessing: a fixed size, or `resizeShort` (width/height then 0). */
export interface ModelPreprocess extends PreprocessSpec {
  /** ResizeImage.resize_short: the short side; the other side keeps the aspect ratio. */
  resizeShort?: number;
}

/** The target size for an image of w x h (PaddleX's ResizeImage, Python rounding). */
export function targetSize(p: ModelPreprocess, w: number, h: number): [number, number] {
  if (p.resizeShort === undefined) return [p.width, p.height];
  const scale = p.resizeShort / Math.min(w, h);
  return [Math.max(1, pyRound(w * scale)), Math.max(1, pyRound(h * scale))];
}

/** The preprocessing PaddleX builds from inference.yml (ResizeImage, NormalizeImage, ToCHWImage). */
export function preprocessFromConfig(cfg: InferenceConfig): ModelPreprocess {
  let size: [number, number] | null = null;
  let resizeShort: number | null = null;
  let norm: { scale: number; mean: number[]; std: number[] } = {
    scale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  };
  const bad = (msg: string): never => {
    throw new ModelConfigError(`${cfg.file}: PreProcess.transform_ops: ${msg}`, { file: cfg.file });
  };
  for (const op of cfg.PreProcess.transform_ops) {
    const a = op.args;
    if (op.name === 'ResizeImage') {
      const rs = a['resize_short'];
      if (rs !== undefined && rs !== null) {
        if (typeof rs !== 'number' || !Number.isInteger(rs) || rs <= 0) {
          bad(`ResizeImage.resize_short must be a positive int, got ${JSON.stringify(rs)}`);
        }
        resizeShort = rs as number;
        continue;
      }
      const s = a['size'];
      if (typeof s === 'number' && Number.isInteger(s) && s > 0) size = [s, s];
      else if (
        Array.isArray(s) &&
        s.length === 2 &&
        s.every((v) => typeof v === 'number' && Number.isInteger(v) && v > 0)
      )
        size = [s[0] as number, s[1] as number]; // [w, h]
      else bad(`ResizeImage.size must be an int or [w, h], got ${JSON.stringify(s)}`);
    } else if (op.name === 'NormalizeImage') {
      const num = (v: unknown, def: number): number => {
        if (v === undefined || v === null) return def;
        if (typeof v === 'number') return v;
        // PaddleClas configs may write the scale as a fraction string, e.g. '1.0/255.0'.
        const m = typeof v === 'string' ? /^\s*([0-9.]+)\s*\/\s*([0-9.]+)\s*$/.exec(v) : null;
        if (m) return Number(m[1]) / Number(m[2]);
        return bad(`NormalizeImage.scale must be a number, got ${JSON.stringify(v)}`);
      };
      const vec = (v: unknown, def: number[]): number[] => {
        if (v === undefined || v === null) return def;
        if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v;
        return bad(`NormalizeImage mean/std must be 3 numbers, got ${JSON.stringify(v)}`);
      };
      if (a['channel_num'] !== undefined && a['channel_num'] !== 3)
        bad('NormalizeImage.channel_num must be 3');
      norm = {
        scale: num(a['scale'], 1 / 255),
        mean: vec(a['mean'], norm.mean),
        std: vec(a['std'], norm.std),
      };
    } else if (op.name !== 'ToCHWImage') {
      bad(`unknown op '${op.name}' (PaddleX fails on it too)`);
    }
  }
  if (resizeShort !== null) return { width: 0, height: 0, resizeShort, ...norm };
  if (size === null) return bad('no ResizeImage: inputs of different sizes cannot be batched');
  return { width: size[0], height: size[1], ...norm };
}

/** Batches read or decoded ahead of the one being inferred. */
const PREFETCH_BATCHES = 2;

/** runImages stream ids: batches of one predict run one at a time, in the addon's gate. */
let nextStream = 1;

/**
 * A JPEG item's bytes and frame when the addon can decode it (lib/jpeg-header.ts), else null
 * (sharp decodes it). A file that cannot be read is left to sharp too, whose error names it.
 */
async function jpegBytes(item: InputItem): Promise<{ bytes: Uint8Array; frame: JpegFrame } | null> {
  let bytes: Uint8Array;
  if (item.kind === 'encoded') bytes = item.data;
  else if (item.kind === 'file') {
    const read = await readSmallFile(item.path).catch(() => null);
    if (read === null) return null;
    bytes = read;
  } else return null;
  const frame = nativeJpegFrame(bytes);
  return frame === null ? null : { bytes, frame };
}

/** Larger JPEG files are sharp's to decode (it streams them). */
const MAX_JPEG_FILE_BYTES = 256 * 1024 * 1024;

/** A regular file's bytes when it holds at most MAX_JPEG_FILE_BYTES, else null (one open). */
async function readSmallFile(file: string): Promise<Uint8Array | null> {
  const handle = await open(file, 'r');
  try {
    const st = await handle.stat();
    return st.isFile() && st.size <= MAX_JPEG_FILE_BYTES ? await handle.readFile() : null;
  } finally {
    await handle.close();
  }
}

/** The size `preprocess` wants a w x h image at, checked against the spec. */
function checkedTarget(preprocess: ModelPreprocess, w: number, h: number): [number, number] {
  const [targetWidth, targetHeight] = targetSize(preprocess, w, h);
  checkSpec({ ...preprocess, width: targetWidth, height: targetHeight }, 3);
  return [targetWidth, targetHeight];
}

/** @internal `img` with the size `preprocess` wants it at (checked against the spec), for runImages. */
export function sizedImage(preprocess: ModelPreprocess, img: RawImage): NativePixels {
  const [targetWidth, targetHeight] = checkedTarget(preprocess, img.width, img.height);
  const { data, width, height, channels } = img;
  return { data, width, height, channels, targetWidth, targetHeight };
}

/**
 * The model-input tensors of `input` (calibration images for int8): each image decoded as
 * predict decodes it, resized and normalised by the addon, in batches of `batch`. An image that
 * cannot be used is an error naming it (calibration must not silently shrink).
 */
export async function imageTensors(
  preprocess: ModelPreprocess,
  input: PredictInput,
  batch = 8,
): Promise<{ data: Float32Array; shape: number[] }[]> {
  const { scale, mean, std } = checkSpec({ ...preprocess, width: 1, height: 1 }, 3);
  const items = await resolveInputs(input);
  const out: { data: Float32Array; shape: number[] }[] = [];
  for (let i = 0; i < items.length; i += batch) {
    const images = await Promise.all(
      items.slice(i, i + batch).map(async (item) => sizedImage(preprocess, await decodeItem(item))),
    );
    const r = await nativeBinding().prepareImages(images, { scale, mean, std });
    for (const g of r.groups) out.push({ data: g.data, shape: g.shape });
  }
  return out;
}

/** At most `limit` decodes at once, started in the order they were asked for. */
class DecodeSlots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  #limit: number;
  constructor(limit: number) {
    this.#limit = this.#free = limit;
  }
  /** A new limit; jobs running beyond it finish, and no new one starts until below it. */
  setLimit(limit: number): void {
    this.#free += limit - this.#limit;
    this.#limit = limit;
    while (this.#free > 0 && this.#waiting.length > 0) {
      this.#free--;
      (this.#waiting.shift() as () => void)();
    }
  }
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await job();
    } finally {
      const next = this.#free >= 0 ? this.#waiting.shift() : undefined;
      if (next) next();
      else this.#free++;
    }
  }
}

/** An item decoded for its batch: the image with its target size, or why it failed. */
interface Prepared {
  item: InputItem;
  image: NativeImage | null;
  error: Error | null;
}

export class FeatureModel {
  readonly modelName: string;
  readonly modelDir: string;
  readonly batchSize: number;
  readonly preprocess: Readonly<ModelPreprocess>;
  /** Cache root (URL inputs go to `<cacheDir>/predict_input/`). */
  readonly cacheDir: string;
  #predictor: Predictor | null;
  // The normalisation, checked once (3 channels: decoded images are RGB); null when the spec
  // is invalid, and then every image fails with the reason in #prepare.
  readonly #norm: Normalization | null = null;
  // JPEG files go to the addon as bytes when it can decode them (PIF_NATIVE_JPEG=0: never).
  readonly #jpegDecode = nativeBinding().jpegDecode === true && process.env.PIF_NATIVE_JPEG !== '0';

  /** @internal Use createModel(). */
  constructor(
    name: string,
    dir: string,
    batchSize: number,
    spec: ModelPreprocess,
    predictor: Predictor,
    cacheDir: string,
  ) {
    this.modelName = name;
    this.modelDir = dir;
    this.batchSize = batchSize;
    this.preprocess = Object.freeze({ ...spec });
    this.cacheDir = cacheDir;
    this.#predictor = predictor;
    try {
      const { scale, mean, std } = checkSpec({ ...spec, width: 1, height: 1 }, 3);
      this.#norm = { scale, mean, std };
    } catch {
      // Reported per image, as before.
    }
  }

  /**
   * How the engine runs this model (as Predictor.engine): the backend and why, and for our
   * engine its nodes, oneDNN-bound nodes, pass rewrites, op census, fallbacks.
   */
  get engine(): EngineInfo {
    return this.#live('engine').engine;
  }

  /** precision 'int8': the quantised convolutions and the calibration report; else null. */
  get quantization(): QuantSpec | null {
    return this.#live('quantization').quantization;
  }

  /** 'normal' (reference kernels) or 'hpi' (fused oneDNN graph), and the precision. */
  get runMode(): RunMode {
    return this.#live('runMode').options.runMode;
  }

  get precision(): Precision {
    return this.#live('precision').options.precision;
  }

  #live(what: string): Predictor {
    if (this.#predictor === null)
      throw new ClosedError(`FeatureModel.${what}: the model ${this.modelName} is closed`);
    return this.#predictor;
  }

  // Reads or decodes a batch (on libuv's pool) and sizes each image; nothing else crosses into
  // native code before the batch's one runImages call.
  async #prepare(items: InputItem[], slots: DecodeSlots): Promise<Prepared[]> {
    return Promise.all(
      items.map((item) =>
        slots.run(async (): Promise<Prepared> => {
          try {
            const jpeg = this.#jpegDecode ? await jpegBytes(item) : null;
            if (jpeg !== null)
              return { item, image: this.#sizedJpeg(jpeg.frame, jpeg.bytes), error: null };
            return {
              item,
              image: sizedImage(this.preprocess, await decodeItem(item)),
              error: null,
            };
          } catch (err) {
            return { item, image: null, error: err as Error };
          }
        }),
      ),
    );
  }

  // A JPEG the addon decodes, with the size the model wants it at (checked against the spec).
  #sizedJpeg(frame: JpegFrame, jpeg: Uint8Array): NativeJpeg {
    const { width, height } = frame;
    const [targetWidth, targetHeight] = checkedTarget(this.preprocess, width, height);
    return { jpeg, width, height, targetWidth, targetHeight };
  }

  // One batch through the model: one runImages call, and a second one only for JPEGs the
  // addon could not decode (corrupt or unusual files), which sharp then decodes as before.
  async #runBatch(
    prepared: Prepared[],
    predictor: Predictor,
    stream: number,
  ): Promise<FeatureResult[]> {
    const features = new Map<Prepared, Float32Array>();
    const run = async (ok: Prepared[]): Promise<Prepared[]> => {
      if (ok.length === 0) return [];
      const out = await predictor.runImages(
        ok.map((p) => p.image as NativeImage),
        this.#norm as Normalization,
        stream,
      );
      const failed = new Set(out.failed.map((f) => f.index));
      const dim = out.rows > 0 ? out.features.length / out.rows : 0;
      let row = 0;
      ok.forEach((p, k) => {
        if (failed.has(k)) return;
        features.set(p, out.features.slice(row * dim, (row + 1) * dim));
        row++;
      });
      return ok.filter((_, k) => failed.has(k));
    };
    const retry = await run(prepared.filter((p) => p.image !== null));
    if (retry.length > 0) {
      const redone = await Promise.all(
        retry.map(async (p): Promise<Prepared> => {
          try {
            return {
              item: p.item,
              image: sizedImage(this.preprocess, await decodeItem(p.item)),
              error: null,
            };
          } catch (err) {
            return { item: p.item, image: null, error: err as Error };
          }
        }),
      );
      await run(redone.filter((p) => p.image !== null));
      for (const [k, p] of retry.entries()) {
        const r = redone[k] as Prepared;
        const f = features.get(r);
        if (f !== undefined) features.set(p, f);
        else p.error = r.error;
      }
    }
    return prepared.map((p) => {
      const inputPath = itemPath(p.item);
      const f = features.get(p);
      return f === undefined
        ? new FeatureResult(inputPath, null, new Float32Array(0), p.error)
        : new FeatureResult(inputPath, null, f);
    });
  }

  /**
   * Features of every input, in input order (directories expanded in sorted order). An input
   * that cannot be read yields a result with `error` set and an empty feature; the others still
   * come out: a missing path (PIF_INPUT_NOT_FOUND), a directory without images, a failed URL
   * download, an undecodable file. Only arguments of the wrong type reject.
   */
  async *predict(input: PredictInput, options?: PredictOptions): AsyncGenerator<FeatureResult> {
    this.#live('predict');
    const batch =
      options?.batchSize === undefined
        ? this.batchSize
        : checkBatch(options.batchSize, 'batchSize');
    const onResolved = options?.onResolved;
    if (onResolved !== undefined && typeof onResolved !== 'function') {
      throw new InvalidArgumentError('predict: onResolved must be a function');
    }
    const items = await resolveInputs(input, { cacheDir: this.cacheDir });
    onResolved?.(items.length);
    yield* this.predictItems(items, batch);
  }

  /** @internal Features of resolved items (the Recognizer resolves its inputs itself). */
  async *predictItems(
    items: readonly InputItem[],
    batch: number = this.batchSize,
  ): AsyncGenerator<FeatureResult> {
    const predictor = this.#live('predict');
    const batches: InputItem[][] = [];
    for (let i = 0; i < items.length; i += batch) batches.push(items.slice(i, i + batch));
    // Reading and decoding run ahead of inference by up to PREFETCH_BATCHES batches, on the
    // cores the inference threads leave free: a decode that preempts an inference thread costs
    // more than it saves (measured: 2 vCPUs, 1 inference thread, 4 concurrent sharp decodes ->
    // 74 % of pure inference throughput). Until the first batch is read, nothing else runs: it
    // may use every core.
    const cores = availableParallelism();
    const slots = new DecodeSlots(cores);
    const pending: Promise<Prepared[]>[] = [];
    const prefetch = (b: number) => {
      if (b < batches.length) pending.push(this.#prepare(batches[b] as InputItem[], slots));
    };
    for (let b = 0; b <= PREFETCH_BATCHES; b++) prefetch(b);
    // Two batches in native code at once, one stream: the addon decodes (JPEG) and preprocesses
    // the second while the first runs, and runs them one at a time.
    const stream = nextStream++;
    const running: Promise<FeatureResult[]>[] = [];
    try {
      for (let b = 0; b < batches.length; b++) {
        const prepared = await (pending.shift() as Promise<Prepared[]>);
        if (b === 0) slots.setLimit(Math.max(1, cores - predictor.options.cpuThreads));
        prefetch(b + 1 + PREFETCH_BATCHES);
        const run = this.#runBatch(prepared, predictor, stream);
        run.catch(() => undefined); // awaited below, in order
        running.push(run);
        if (running.length === 2) yield* await (running.shift() as Promise<FeatureResult[]>);
      }
      while (running.length > 0) yield* await (running.shift() as Promise<FeatureResult[]>);
    } finally {
      // A consumer that stops early leaves the batches in flight to finish on their own.
      for (const p of [...pending, ...running]) p.catch(() => undefined);
    }
  }

  /** All results of predict() in an array. */
  async predictAll(input: PredictInput, options?: PredictOptions): Promise<FeatureResult[]> {
    const out: FeatureResult[] = [];
    for await (const r of this.predict(input, options)) out.push(r);
    return out;
  }

  /**
   * Name, directory, weights and preprocessing fingerprints (lib/model-fingerprint.ts; the
   * weights are sampled): computed on the first call, then cached. A vector index records them.
   */
  fingerprint(): Promise<ModelFingerprint> {
    return modelFingerprint(this);
  }

  /** Frees the native model; later calls throw PIF_CLOSED. */
  close(): void {
    this.#predictor?.close();
    this.#predictor = null;
  }
}

/**
 * The directory of an official model in the PaddleX cache (`<cache>/official_models/<name>`),
 * downloaded there first when missing. An unknown name is PaddleX's "not supported" error.
 */
export async function officialModelDir(
  modelName: string,
  options: { cacheDir?: string; download?: DownloadOptions | undefined } = {},
): Promise<string> {
  if (!(OFFICIAL_MODELS as readonly string[]).includes(modelName)) {
    throw new UnsupportedError(
      `The model (${modelName}) is not supported! Supported: ${OFFICIAL_MODELS.join(', ')}; ` +
        'or pass modelDir for your own export',
    );
  }
  const cache = paddlexCacheDir(options.cacheDir);
  await downloadOfficialModel(modelName, cache, options.download);
  return path.join(cache, 'official_models', modelName);
}

/**
 * Creates an image-feature model: an official name (PP-ShiTuV2_rec, ..._CLIP_vit_base,
 * ..._CLIP_vit_large) with the model in the PaddleX cache (`<cache>/official_models/<name>`), or
 * any name with `modelDir`; the directory's inference.yml must name the same model.
 * `createModel({ modelDir })` takes the name from the directory's inference.yml.
 */
export async function createModel(
  options: CreateModelOptions & { modelDir: string },
): Promise<FeatureModel>;
export async function createModel(
  modelName: string,
  options?: CreateModelOptions,
): Promise<FeatureModel>;
export async function createModel(
  nameOrOptions: string | (CreateModelOptions & { modelDir: string }),
  maybeOptions: CreateModelOptions = {},
): Promise<FeatureModel> {
  const convert = captureCaller(createModel);
  const named = typeof nameOrOptions === 'string';
  const options: CreateModelOptions = named ? maybeOptions : nameOrOptions;
  if (named && nameOrOptions === '') {
    throw new InvalidArgumentError('createModel: modelName must be a non-empty string');
  }
  if (!named) {
    if (typeof nameOrOptions !== 'object' || nameOrOptions === null) {
      throw new InvalidArgumentError(
        'createModel: expected a model name, or options with modelDir, got ' +
          (nameOrOptions === null ? 'null' : typeof nameOrOptions),
      );
    }
    if (typeof nameOrOptions.modelDir !== 'string' || nameOrOptions.modelDir === '') {
      throw new InvalidArgumentError(
        `createModel: without a model name, options.modelDir must name a model directory (or pass a name: ${OFFICIAL_MODELS.join(', ')})`,
      );
    }
  }
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('createModel: options must be an object');
  }
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string')
    throw new InvalidArgumentError('createModel: device must be a string');
  if (/^(gpu|npu|xpu|mlu|dcu|gcu)(:|$)/.test(device)) {
    throw new UnsupportedError(
      `device '${device}' is not available in this build (CPU only); use device 'cpu'`,
    );
  }
  if (device !== 'cpu' && !/^cpu:\d+$/.test(device)) {
    throw new InvalidArgumentError(`createModel: unknown device '${device}' (use 'cpu')`);
  }
  const batchSize = checkBatch(options.batchSize ?? 1, 'batchSize');
  let opts: ResolvedPredictorOptions;
  try {
    if (options.hpiConfig !== undefined && options.useHpip !== true) {
      throw new InvalidArgumentError(
        'hpiConfig needs useHpip: true (as PaddleX, it configures hpi)',
      );
    }
    opts = validatePredictorOptions({
      runMode: options.useHpip === true ? 'hpi' : 'normal',
      precision: options.precision ?? 'fp32',
      cpuThreads: options.cpuThreads ?? 1,
      // PaddleX's use_hpip without hpi_config is auto_config over the model's list.
      ...(options.useHpip === true ? { hpiConfig: options.hpiConfig ?? {} } : {}),
      ...(options.quantize === undefined ? {} : { quantize: options.quantize }),
    });
    if (options.calibration !== undefined && opts.precision !== 'int8') {
      throw new InvalidArgumentError("calibration applies to precision 'int8' only");
    }
  } catch (err) {
    (err as Error).message = `createModel: ${(err as Error).message}`;
    throw convert(err);
  }
  const cache = paddlexCacheDir(options.cacheDir);
  let dir: string;
  if (options.modelDir !== undefined) {
    dir = path.resolve(options.modelDir);
  } else {
    try {
      dir = await officialModelDir(nameOrOptions as string, {
        cacheDir: cache,
        download: options.download,
      });
    } catch (err) {
      throw convert(err);
    }
  }
  try {
    // The one check of the directory here (the native reader resolves it again as it loads).
    const resolved = await resolveModelDir(
      dir,
      (abs) => `${abs} is not exists! (model directory not found)`,
    );
    const cfg = await readInferenceConfig(resolved.configFile, resolved.dir);
    const found = cfg.Global.model_name;
    const modelName = named ? nameOrOptions : found;
    if (found !== modelName) {
      // PaddleX's words first (scripts match them), then what a person needs to act.
      throw new ModelConfigError(
        `Model name mismatch，please input the correct model dir. ` +
          `Expected ${modelName}, but ${cfg.file} has Global.model_name ${found}`,
        { file: cfg.file },
      );
    }
    const spec = preprocessFromConfig(cfg);
    if (options.calibration !== undefined) {
      opts = Object.freeze({ ...opts, calibration: await imageTensors(spec, options.calibration) });
    }
    const predictor = await openPredictor(dir, resolved, opts, convert, modelName);
    return new FeatureModel(modelName, dir, batchSize, spec, predictor, cache);
  } catch (err) {
    throw convert(err);
  }
}
