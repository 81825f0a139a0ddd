/**
 * The only module that loads the native addon. Everything else imports `nativeBinding()`
 * and the types below.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { NativeLoadError } from './errors.js';
import type { LoadLimits } from './limits.js';

/** Load-time limits understood by the native readers (all optional): lib/limits.ts LoadLimits. */
export type NativeLimits = LoadLimits;

export interface NativeTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
}

export interface NativeModelInfo {
  format: 'pir' | 'pdmodel';
  version: number | null;
  programFile: string;
  paramsFile: string | null;
  paramsLayout: 'combined' | 'separate' | 'none';
  blocks: number;
  opCount: number;
  ops: Record<string, number>;
  inputs: NativeTensorInfo[];
  outputs: NativeTensorInfo[];
  parameters: { count: number; bytes: number; loaded: boolean };
}

export interface NativeLoadOptions {
  requireParams?: boolean;
  /** Build the executor at load (lists every unsupported op up front). */
  executable?: boolean;
  /** Seed: bind seeded random weights to parameters missing from the model directory. */
  randomWeights?: number;
  limits?: NativeLimits;
  /** Executor mode: 'hpi' = fusion passes + oneDNN kernels. */
  runMode?: 'normal' | 'hpi';
  /** hpi only: 'bf16' needs AVX512-BF16 or AMX (PIF_UNSUPPORTED otherwise). */
  precision?: 'fp32' | 'bf16';
  /** hpi only: the convolutions to run in int8 (lib/quantize.ts). */
  quant?: NativeQuantTable;
  /** Graph passes to apply on the reference kernels (tests; normal mode only). */
  passes?: string[];
}

/** A program as dumpModel(path, { json: true }) returns it (native/graph/ir.h program_json). */
export interface NativeProgramJson {
  format: 'legacy' | 'pir';
  version: number | null;
  /** Feed / fetch bindings; `var` is the variable name (PIR: "%<id>"). */
  inputs: { name: string; var: string }[];
  outputs: { name: string; var: string }[];
  params: { name: string; dtype: string; shape: number[] }[];
  blocks: {
    idx: number;
    ops: {
      type: string;
      inputs: { slot: string; args: string[] }[];
      outputs: { slot: string; args: string[] }[];
      /** value: JSON for booleans, numbers, strings and their lists; text for other kinds. */
      attrs: { name: string; kind: string; value: unknown }[];
    }[];
  }[];
}

/** A tensor crossing the native boundary: raw bytes plus dtype name and shape. */
export interface NativeTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: ArrayBufferView | ArrayBuffer;
}

/** A decoded image (HWC uint8) and the size the model wants it at. */
export interface NativePixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
  targetWidth: number;
  targetHeight: number;
}

/**
 * A JPEG file's bytes that runImages decodes itself (to RGB) when the addon has libjpeg
 * (NativeBinding.jpegDecode), with the size its frame header gives (lib/jpeg-header.ts).
 */
export interface NativeJpeg {
  jpeg: Uint8Array;
  width: number;
  height: number;
  targetWidth: number;
  targetHeight: number;
}

/**
 * An image of a batch; with `augmentSeed`, a seeded training view of it (flip, pad, crop,
 * rotation: native/preprocess/augment.h) is what runs.
 */
export type NativeImage = (NativePixels | NativeJpeg) & { augmentSeed?: number };

/** runImages' result: a unit-length row per image it ran, and the JPEGs it could not decode. */
export interface NativeImageRows {
  /** `rows` rows, in image order, the failed images left out. */
  features: Float32Array;
  rows: number;
  /** JPEGs the addon could not decode (lib/ decodes those with sharp). */
  failed: { index: number; message: string }[];
}

export interface NativeOutputTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: ArrayBuffer;
}

export interface NativeSaveOptions extends NativeLoadOptions {
  paramsLayout?: 'combined' | 'separate';
}

export interface NativeModel {
  info(): NativeModelInfo;
  close(): void;
  /** Runs the graph off the main thread; rejects with PIF_INPUT / PIF_RUN errors. */
  run(inputs: NativeTensor[], opts: { threads: number }): Promise<NativeOutputTensor[]>;
  /**
   * The image-feature batch in one job: each decoded image resized (OpenCV-exact) and normalised
   * into the model's one input, consecutive images of one target size run together, and the
   * first output's rows scaled to unit length. Resolves images.length rows, in order.
   */
  runImages(
    images: NativeImage[],
    norm: { scale: number; mean: number[]; std: number[] },
    opts: { threads: number; stream?: number },
  ): Promise<NativeImageRows>;
  /** How the executor runs the model (null for inspection-only loads). */
  engine(): NativeEngineInfo | null;
  /**
   * hpi: the input statistics of every fused convolution over one run (int8 calibration);
   * |x| at each requested percentile.
   */
  calibrate?(
    inputs: NativeTensor[],
    opts: { threads: number; percentiles?: number[] },
  ): Promise<{ layers: NativeConvStats[]; outputs: NativeOutputTensor[] }>;
  /** hpi: the fused convolutions by ordinal, and whether each runs in int8. */
  convLayers?(): NativeConvLayer[];
  readonly closed: boolean;
}

/** One fused convolution's input statistics over a calibration run. */
export interface NativeConvStats {
  ordinal: number;
  min: number;
  max: number;
  absMax: number;
  /** The input's H * W. */
  pixels: number;
  percentiles: number[];
}

/** A fused convolution of an hpi model (pif.fused_conv2d, by ordinal). */
export interface NativeConvLayer {
  ordinal: number;
  outChannels: number;
  inChannels: number;
  kh: number;
  kw: number;
  groups: number;
  int8: boolean;
  /** The node, as NativeFallback.node names it. */
  node: string;
}

/** loadModel's int8 table: the convolutions to run quantised, with their input scales. */
export interface NativeQuantTable {
  convs: { ordinal: number; scale: number; unsigned: boolean }[];
}

/** The head tier's configuration (native/train/head_tier.h HeadTrainConfig). */
export interface NativeHeadTrainConfig {
  classes: number;
  epochs?: number;
  batchSize?: number;
  perLabel?: number;
  warmupEpochs?: number;
  learningRate?: number;
  etaMin?: number;
  warmupStartLr?: number;
  momentum?: number;
  l2?: number;
  seed?: number;
  labelSmoothing?: number;
}

export interface NativeHeadEpoch {
  epoch: number;
  lr: number;
  loss: { ce: number; triplet: number; total: number };
}

export interface NativeHeadParam {
  /** The program's parameter name ('' for the FC head, which the program does not have). */
  name: string;
  /** Which trained parameter it is (the tail's, or stage 4's), or '' for the frozen rest. */
  role:
    | ''
    | 'convWeight'
    | 'convBias'
    | 'bnScale'
    | 'bnBias'
    | 'bnMean'
    | 'bnVariance'
    | 'fc'
    | 'stageDwWeight'
    | 'stageDwBias'
    | 'stagePwWeight'
    | 'stageBnScale'
    | 'stageBnBias'
    | 'stageBnMean'
    | 'stageBnVariance';
  dims: number[];
  data: Float32Array;
}

export interface NativeHeadTier {
  info(): {
    in: number;
    dim: number;
    dropoutScale: number;
    bnEpsilon: number;
    input: string;
    /** PP-ShiTuV2_rec's tail (last_conv, BNNeck) or the CLIP models' (an FC neck). */
    kind: 'shitu' | 'clip';
    /** What trains: the tail on cached pooled features, or stage 4 and the tail on images. */
    tier: 'head' | 'last-stage';
    /** Stage 4's blocks that train (0 for the head tier). */
    blocks: number;
  };
  /** Pooled features of a batch: rows of `in`, not scaled; JPEGs it cannot decode in `failed`. */
  pooled(
    images: NativeImage[],
    norm: { scale: number; mean: number[]; std: number[] },
  ): Promise<NativeImageRows>;
  begin(
    features: Float32Array,
    labels: BigInt64Array,
    config: NativeHeadTrainConfig,
  ): Promise<void>;
  trainEpoch(): Promise<NativeHeadEpoch>;
  /** Last-stage tier: the next epoch's batches (train row indexes), drawn from the run. */
  epochBatches(): Promise<number[][]>;
  /** Last-stage tier: one optimiser step on a batch of training views and their labels. */
  step(
    images: NativeImage[],
    norm: { scale: number; mean: number[]; std: number[] },
    labels: BigInt64Array,
    stepsPerEpoch: number,
  ): Promise<{
    lr: number;
    loss: NativeHeadEpoch['loss'];
    /** Milliseconds in the frozen part (views to stage 4's input) and in stage 4 + tail. */
    frozenMs: number;
    trainMs: number;
  }>;
  /** Unit-length features of pooled rows through the tail as trained so far. */
  features(pooled: Float32Array): Promise<Float32Array>;
  /** The run's state as bytes (weights, velocities, counts, generator). */
  state(): Promise<Buffer>;
  /** Loads state() bytes into a run begun with the same data and config; resolves its epoch. */
  restore(bytes: Uint8Array): Promise<number>;
  /** Every float32 parameter (tail ones as trained), then the FC head (role 'fc'). */
  params(): Promise<NativeHeadParam[]>;
  save(outDir: string): Promise<string>;
  close(): void;
}

export interface NativeEngineInfo {
  /** Nodes the executor runs (after fusion in hpi mode). */
  nodes: number;
  /** Nodes bound to oneDNN kernels (0 in normal mode). */
  dnnlNodes: number;
  /** Rewrites per graph pass. */
  passes: Record<string, number>;
  /** Nodes per canonical op name (pif.* = fused ops, dnnl.* = oneDNN kernels). */
  ops: Record<string, number>;
  /**
   * hpi: every node that runs a reference kernel because no oneDNN kernel covers its op (shape
   * '', reason 'no oneDNN kernel for this op'), and every input configuration (shape) in which
   * a oneDNN-bound node did not run its fused primitive, recorded as primitives are made (at
   * the first run of each shape). Empty in normal mode.
   */
  fallbacks: NativeFallback[];
}

/** How a oneDNN-bound node ran one input configuration off its fused primitive. */
export interface NativeFallback {
  /** The node, e.g. "op 152 (conv2d)". */
  node: string;
  /** Its kernel, e.g. "dnnl.fused_conv2d". */
  kernel: string;
  /**
   * 'sum' (residual as a sum post-op) and 'split' (convolution and post-ops as separate oneDNN
   * primitives) still run on oneDNN; 'reference' runs the node's reference kernel.
   */
  path: 'sum' | 'split' | 'reference';
  /** The implementation oneDNN offered for the refused primitive ('' when it offered none). */
  impl: string;
  /** Why it was not taken. */
  reason: string;
  /** The node's first input dims, e.g. "[1,1024,7,7]". */
  shape: string;
  /** 'split': the oneDNN primitives run after the main one (binary or eltwise). */
  stages: number;
  /**
   * 'reference' although oneDNN has the bare op: only its fused primitive with post-ops was
   * refused (hpi avoids this; the report would show a regression).
   */
  fusedRefused: boolean;
}

export interface NativePeakProbe {
  fmaGflops: number;
  sgemmGflops: number;
  threads: number;
  avx2Fma: boolean;
}

/** Options of evaluateRetrieval (native/retrieval/metrics.h). */
export interface NativeEvaluateOptions {
  /** Queries per metric block (PaddleClas `sim_block_size`). Default 64. */
  blockSize?: number;
  /** The k of recall@k, distinct positive integers. Default [1, 5]. */
  topk?: number[];
  /** L2-normalise every feature row first. Default true. */
  normalize?: boolean;
  /** OpenMP threads for the GEMM and the ranking. Default 1. */
  threads?: number;
}

/** What evaluateRetrieval resolves to: block-weighted metrics (NaN when a block had no query with a relevant item). */
export interface NativeEvaluateResult {
  topk: number[];
  /** recall@topk[i] as a fraction. */
  recall: number[];
  mAP: number;
  numQuery: number;
  numGallery: number;
  /** Queries with at least one gallery item of their label. */
  numValidQuery: number;
  blocks: number;
  /** Blocks in which no query has a relevant item (each makes every metric NaN). */
  emptyBlocks: number;
  timing: {
    checkSeconds: number;
    normalizeSeconds: number;
    gemmSeconds: number;
    rankSeconds: number;
    totalSeconds: number;
  };
}

/** What searchTopK resolves to: row-major nq x k, best first. */
export interface NativeTopKResult {
  /** Results per query: min(requested k, gallery rows). */
  k: number;
  ids: Int32Array;
  /** Inner products (IP) or squared L2 distances (L2). */
  scores: Float32Array;
}

/** The addon's exports (native/addon/addon.cc). Every call returns a Promise; work runs off the main thread. */
export interface NativeBinding {
  inspectModel(path: string, opts: NativeLoadOptions): Promise<NativeModelInfo>;
  /** Canonical IR text; with `json: true` the program as JSON (NativeProgramJson). */
  dumpModel(path: string, opts: NativeLoadOptions & { json?: boolean }): Promise<string>;
  saveModel(
    srcPath: string,
    dstDir: string,
    opts: NativeSaveOptions,
  ): Promise<{ programFile: string; paramsFile: string | null }>;
  loadModel(path: string, opts: NativeLoadOptions): Promise<NativeModel>;
  exportOnnx(
    path: string,
    outFile: string,
    opts: NativeLoadOptions & { opset?: number },
  ): Promise<{ file: string; bytes: number }>;
  /** outFile null: nothing written, the ONNX model comes back in memory. */
  exportOnnx(
    path: string,
    outFile: null,
    opts: NativeLoadOptions & { opset?: number },
  ): Promise<{ file: null; bytes: number; onnx: Uint8Array }>;
  buildModel(
    name: string,
    outDir: string,
    opts: {
      format?: 'pir' | 'legacy';
      seed?: number;
      clipActivation?: 'gelu' | 'quick_gelu';
      vitDepth?: number;
    },
  ): Promise<{ programFile: string; paramsFile: string; configFile: string }>;
  readonly buildableModels: readonly string[];
  /** Changes whenever a built graph or its weights change (model caches key on it). */
  readonly builderVersion: number;
  /**
   * Training's head tier (issue 17): a PP-ShiTuV2_rec model cut at its global pool. Rejects
   * with PIF_MODEL_UNSUPPORTED for a model without that tail.
   */
  openHeadTier(
    path: string,
    opts: NativeLoadOptions & { threads?: number; tier?: 'head' | 'last-stage' },
  ): Promise<NativeHeadTier>;
  /** Whether runImages decodes JPEG bytes itself (the addon was built with libjpeg). */
  readonly jpegDecode?: boolean;
  /** OpenCV-exact INTER_LINEAR resize + normalisation to CHW float32, off the main thread. */
  preprocessImage(
    pixels: Uint8Array,
    source: { width: number; height: number; channels: number },
    target: { width: number; height: number; scale: number; mean: number[]; std: number[] },
  ): Promise<{ resized: Uint8Array; tensor: Float32Array }>;
  /**
   * runImages' preparation without a model (another runtime runs the tensors): JPEGs decoded,
   * images resized (OpenCV-exact) and normalised into one NCHW float32 tensor per run of equal
   * target sizes, off the main thread.
   */
  prepareImages(
    images: NativeImage[],
    norm: { scale: number; mean: number[]; std: number[] },
  ): Promise<{
    groups: { data: Float32Array; shape: number[]; rows: number }[];
    failed: { index: number; message: string }[];
  }>;
  /** This machine's fp32 peak, measured synchronously (for the benchmark). */
  probePeak(opts: { threads?: number; seconds?: number }): NativePeakProbe;
  /**
   * Retrieval metrics exactly as PaddleClas (recall@k, mAP; blockwise GEMM similarity), off the
   * main thread. Rejects with PIF_INVALID_ARG on bad shapes, options or non-finite features.
   */
  evaluateRetrieval(
    query: Float32Array,
    queryLabels: BigInt64Array,
    gallery: Float32Array,
    galleryLabels: BigInt64Array,
    dim: number,
    opts: NativeEvaluateOptions,
  ): Promise<NativeEvaluateResult>;
  /** Exact blockwise top-k search (ties: lower gallery index first), off the main thread. */
  searchTopK(
    queries: Float32Array,
    gallery: Float32Array,
    dim: number,
    k: number,
    opts: { metric?: 'IP' | 'L2'; threads?: number; borrowGallery?: boolean },
  ): Promise<NativeTopKResult>;
}

/** The package root (where package.json, build/ and prebuilds/ live): one level above lib/ or dist/. */
export const packageRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const require = createRequire(import.meta.url);

/** The Node-API version the addon is built for (binding.gyp / CMakeLists.txt NAPI_VERSION). */
export const ADDON_NAPI_VERSION = 8;

/** Platforms a prebuilt binary ships for, and the C runtime each needs (measured floors). */
export const PREBUILT_PLATFORMS: readonly string[] = ['linux-x64', 'linux-arm64'];
export const GLIBC_FLOOR = '2.34';

/** The name of the prebuilt binary: @electron/rebuild skips a rebuild when it sees it. */
export const PREBUILT_ADDON_NAME = 'node.napi.node';

/** One place the loader looks for the addon, in order. */
export interface AddonCandidate {
  path: string;
  what: string;
}

/**
 * Where the addon is looked for, first match wins: $PIF_NATIVE_PATH alone when set; else a
 * local build (build/Release, from npm run build or build:from-source) before the prebuilt
 * binary for this platform (prebuilds/<platform>-<arch>/node.napi.node, shipped in the
 * package with its libraries beside it).
 */
export function addonCandidates(
  root: string = packageRoot,
  env: NodeJS.ProcessEnv = process.env,
  platform: string = process.platform,
  arch: string = process.arch,
): AddonCandidate[] {
  const explicit = env.PIF_NATIVE_PATH;
  if (explicit !== undefined && explicit !== '') {
    return [{ path: path.resolve(explicit), what: 'PIF_NATIVE_PATH' }];
  }
  return [
    {
      path: path.join(root, 'build', 'Release', 'paddle_image_feature.node'),
      what: 'a local build',
    },
    {
      path: path.join(root, 'prebuilds', `${platform}-${arch}`, PREBUILT_ADDON_NAME),
      what: 'the prebuilt binary',
    },
  ];
}

/** What this process runs on, for error messages: platform, arch, C library, Node. */
export function runtimeDescription(): string {
  let libc = '';
  if (process.platform === 'linux') {
    const glibc = glibcVersion();
    libc = glibc === undefined ? ', musl libc' : `, glibc ${glibc}`;
  }
  return (
    `${process.platform}-${process.arch}${libc}, Node ${process.versions.node}, ` +
    `Node-API ${process.versions.napi ?? '?'}`
  );
}

/** The running glibc's version, or undefined on another C library (musl) or OS. */
export function glibcVersion(): string | undefined {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } })
    ?.header;
  return header?.glibcVersionRuntime;
}

/** How to build the addon from source, for the package at `root`. */
function buildHint(root: string): string {
  return (
    `  Build it from source (needs g++, make, python3 and oneDNN 2.6:
` +
    `    apt-get install -y g++ make python3 libdnnl-dev ocl-icd-opencl-dev), then
` +
    `    cd ${root} && npm run build:from-source
` +
    `  or set PIF_NATIVE_PATH to a paddle_image_feature.node you built.`
  );
}

/**
 * Loads the addon found under `root` (see addonCandidates). Throws NativeLoadError (code
 * PIF_NATIVE_LOAD) whose message lists what was looked for, says why it failed and what to run.
 */
export function loadAddon(root: string = packageRoot): NativeBinding {
  const candidates = addonCandidates(root);
  const found = candidates.find((c) => existsSync(c.path));
  if (found === undefined) {
    throw new NativeLoadError(explainNotFound(root, candidates));
  }
  try {
    return require(found.path) as NativeBinding;
  } catch (err) {
    throw new NativeLoadError(explainLoadFailure(err, root, found.path), { cause: err });
  }
}

/** The message when no candidate file exists. */
export function explainNotFound(
  root: string,
  candidates: AddonCandidate[],
  here = `${process.platform}-${process.arch}`,
): string {
  const lines = [
    `cannot load the native addon of paddle-image-feature: no binary for this platform ` +
      `(${runtimeDescription()}).`,
    `  looked for:`,
    ...candidates.map((c) => `    ${c.path} (${c.what}): not found`),
  ];
  if (PREBUILT_PLATFORMS.includes(here) && candidates.some((c) => c.what !== 'PIF_NATIVE_PATH')) {
    lines.push(
      `  a prebuilt binary for ${here} should ship in the package: reinstall it ` +
        `(npm install paddle-image-feature), or build it:`,
    );
  } else {
    lines.push(
      `  prebuilt binaries ship for ${PREBUILT_PLATFORMS.join(', ')} with glibc >= ${GLIBC_FLOOR}.`,
    );
  }
  lines.push(buildHint(root));
  return lines.join('\n');
}

/** Turns a dlopen failure of `file` into a message that says why and what to run. */
export function explainLoadFailure(err: unknown, root: string, file = ''): string {
  const raw = err instanceof Error ? err.message : String(err);
  const first = raw.split('\n')[0] ?? raw;
  const head = `cannot load the native addon of paddle-image-feature${file ? ` (${file})` : ''}`;
  const prebuilt = file.includes(`${path.sep}prebuilds${path.sep}`);
  const inAsar = /\.asar[\\/]/.test(file) || /\.asar[\\/]/.test(raw);
  if (inAsar) {
    return (
      `${head}: it is inside an Electron asar archive, where its bundled libraries cannot be ` +
      `found. Unpack the package's prebuilds (electron-builder: asarUnpack: ` +
      `["**/node_modules/paddle-image-feature/prebuilds/**"]; Forge: packagerConfig.asar.unpack).\n  (${first})`
    );
  }
  if (process.platform === 'linux' && glibcVersion() === undefined) {
    return (
      `${head}: this system uses musl libc (e.g. Alpine); the binaries are built for glibc ` +
      `>= ${GLIBC_FLOOR}.\n${buildHint(root)}\n  (${first})`
    );
  }
  const missingLib = /([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file/.exec(raw);
  if (missingLib) {
    const lib = missingLib[1] ?? '';
    if (prebuilt) {
      return (
        `${head}: the library ${lib}, bundled beside it, is missing: the installed package is ` +
        `incomplete; reinstall it (npm install paddle-image-feature).\n  (${first})`
      );
    }
    const pkg = APT_PACKAGE_FOR_LIB[lib.replace(/\.so.*$/, '')];
    const fix =
      pkg !== undefined
        ? `install it: apt-get install -y ${pkg}` +
          (lib.startsWith('libdnnl')
            ? ' (oneDNN 2.6 from Debian 12; Ubuntu 22.04/24.04 ship another version: build from source with npm run build)'
            : '')
        : `install the system package that provides ${lib}`;
    return `${head}: the shared library ${lib} is missing; ${fix}.\n  (${first})`;
  }
  if (/GLIBC(XX)?_[\d.]+' not found|version `GLIBC/.test(raw)) {
    const glibc = glibcVersion();
    return (
      `${head}: this system's C/C++ runtime is too old for the binary (needs glibc >= ${GLIBC_FLOOR} ` +
      `and libstdc++ from GCC >= 11: Debian 12+, Ubuntu 22.04+, RHEL 9+; this system has ` +
      `${glibc !== undefined ? `glibc ${glibc}` : 'no glibc'}).\n${buildHint(root)}\n  (${first})`
    );
  }
  if (/undefined symbol/.test(raw)) {
    return (
      `${head}: the binary does not match the libraries it loaded (undefined symbol); rebuild it: ` +
      `cd ${root} && npm run build:from-source\n  (${first})`
    );
  }
  if (/invalid ELF header|wrong ELF class|ELF file|not a dynamic executable/.test(raw)) {
    return `${head}: the binary was built for another platform (this is ${runtimeDescription()}).\n${buildHint(root)}\n  (${first})`;
  }
  if (/did not self-register|NODE_MODULE_VERSION|Module version mismatch/.test(raw)) {
    return `${head}: the binary was built for another Node.js; rebuild it: cd ${root} && npm run build:from-source\n  (${first})`;
  }
  return `${head}: ${first}\n${buildHint(root)}`;
}

const APT_PACKAGE_FOR_LIB: Readonly<Record<string, string>> = {
  libdnnl: 'libdnnl2',
  libgomp: 'libgomp1',
  libOpenCL: 'ocl-icd-libopencl1',
  libjpeg: 'libjpeg62-turbo',
  libomp: 'libomp5',
  'libstdc++': 'libstdc++6',
};

let cached: NativeBinding | undefined;
let traced: NativeBinding | undefined;
let onCall: ((name: string) => void) | null = null;

/** The addon, loaded on first use. Throws NativeLoadError when it cannot be loaded. */
export function nativeBinding(): NativeBinding {
  cached ??= loadAddon();
  if (onCall === null) return cached;
  traced ??= traceCalls(cached, '');
  return traced;
}

/**
 * @internal For tests: `listener(name)` hears every call into the addon ('loadModel',
 * 'NativeModel.runImages', ...) made through nativeBinding() or a model loaded while it is
 * installed, until the returned function uninstalls it.
 */
export function traceNativeCalls(listener: (name: string) => void): () => void {
  onCall = listener;
  return () => {
    if (onCall === listener) onCall = null;
  };
}

// A view of `target` whose function properties report each call (while a listener is
// installed) and run on `target` itself (native methods need their own receiver). Models that
// loadModel resolves are traced too.
function traceCalls<T extends object>(target: T, prefix: string): T {
  return new Proxy(target, {
    get(t, key) {
      const v: unknown = Reflect.get(t, key);
      if (typeof v !== 'function' || typeof key !== 'string' || key === 'NativeModel') return v;
      const fn = v as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        onCall?.(prefix + key);
        const r = fn.apply(t, args);
        if (key !== 'loadModel' || !(r instanceof Promise)) return r;
        return r.then((m: object) => traceCalls(m, 'NativeModel.'));
      };
    },
  });
}
