/**
 * The `onnxruntime` backend of the high-performance mode (lib/hpi-config.ts): onnxruntime-node,
 * an optional peer dependency imported on first use, runs our own ONNX export of the model,
 * made in memory (no file is written). It implements the addon's NativeModel, so Predictor and
 * FeatureModel run it as they run our engine: images are prepared by the addon
 * (prepareImages: the same decoding, OpenCV-exact resize and normalisation as runImages), the
 * session runs each batch, and rows are scaled to unit length here as the addon does.
 */
import { UnsupportedError, RunError } from './errors.js';
import {
  nativeBinding,
  type NativeEngineInfo,
  type NativeImage,
  type NativeImageRows,
  type NativeLimits,
  type NativeModel,
  type NativeModelInfo,
  type NativeOutputTensor,
  type NativeTensor,
} from './native.js';
import { normalizeRows, toTensor } from './tensor.js';

type Ort = typeof import('onnxruntime-node');
type OrtSession = Awaited<ReturnType<Ort['InferenceSession']['create']>>;

let ortModule: Promise<Ort | string> | undefined;

/** onnxruntime-node, or why it cannot be imported. Imported once per process. */
function importOrt(): Promise<Ort | string> {
  ortModule ??= import('onnxruntime-node').then(
    (m) => m,
    (err: unknown) =>
      `onnxruntime-node is not installed (npm install onnxruntime-node): ${
        err instanceof Error ? err.message.split('\n')[0] : String(err)
      }`,
  );
  return ortModule;
}

/** Why the onnxruntime backend cannot run here, or null when it can. */
export async function ortUnavailable(): Promise<string | null> {
  const m = await importOrt();
  return typeof m === 'string' ? m : null;
}

/** onnxruntime-node; PIF_UNSUPPORTED saying why when it cannot be imported. */
export async function loadOrt(): Promise<Ort> {
  const m = await importOrt();
  if (typeof m === 'string') throw new UnsupportedError(`backend onnxruntime: ${m}`);
  return m;
}

/** Input dtypes onnxruntime-node takes (as typed arrays of run()'s checked inputs). */
const ORT_DTYPES = new Set(['float32', 'float64', 'int32', 'int64', 'uint8', 'int8', 'bool']);

class OrtModel implements NativeModel {
  #session: OrtSession | null;
  readonly #ort: Ort;
  readonly #info: NativeModelInfo;
  readonly #dir: string;
  // Batches of one stream run one at a time, in call order (as the addon's stream gate).
  readonly #streams = new Map<number, Promise<unknown>>();

  constructor(ort: Ort, session: OrtSession, info: NativeModelInfo, dir: string) {
    this.#ort = ort;
    this.#session = session;
    this.#info = info;
    this.#dir = dir;
  }

  get closed(): boolean {
    return this.#session === null;
  }

  info(): NativeModelInfo {
    return this.#info;
  }

  engine(): NativeEngineInfo {
    return { nodes: 0, dnnlNodes: 0, passes: {}, ops: {}, fallbacks: [] };
  }

  close(): void {
    const s = this.#session;
    this.#session = null;
    if (s !== null) void s.release().catch(() => undefined);
  }

  #live(): OrtSession {
    if (this.#session === null)
      throw new RunError(`the onnxruntime session of ${this.#dir} is closed`);
    return this.#session;
  }

  async run(inputs: NativeTensor[]): Promise<NativeOutputTensor[]> {
    const session = this.#live();
    const names = session.inputNames;
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = {};
    for (const t of inputs) {
      const pos = this.#info.inputs.findIndex((i) => i.name === t.name);
      const name = names.includes(t.name) ? t.name : names[pos];
      if (name === undefined)
        throw new RunError(`${this.#dir}: the model has no input '${t.name}'`);
      if (!ORT_DTYPES.has(t.dtype)) {
        throw new UnsupportedError(
          `onnxruntime backend: input dtype '${t.dtype}' is not supported`,
        );
      }
      const view = ArrayBuffer.isView(t.data) ? t.data : toTensor(t.dtype, t.shape, t.data).data;
      feeds[name] = new this.#ort.Tensor(t.dtype as 'float32', view as Float32Array, [...t.shape]);
    }
    const res = await session.run(feeds);
    return session.outputNames.map((name, k) => {
      const out = res[name];
      if (out === undefined) throw new RunError(`onnxruntime returned no output '${name}'`);
      const data = out.data as ArrayBufferView;
      const copy = new Uint8Array(data.byteLength);
      copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return {
        name: this.#info.outputs[k]?.name ?? name,
        dtype: out.type,
        shape: [...out.dims],
        data: copy.buffer,
      };
    });
  }

  async runImages(
    images: NativeImage[],
    norm: { scale: number; mean: number[]; std: number[] },
    opts: { threads: number; stream?: number },
  ): Promise<NativeImageRows> {
    const session = this.#live();
    // Preparation (decode, resize, normalise) runs outside the stream's order, as the addon's.
    const prepared = await nativeBinding().prepareImages(images, norm);
    const runAll = async (): Promise<NativeImageRows> => {
      const parts: Float32Array[] = [];
      let rows = 0;
      let dim = -1;
      const inName = session.inputNames[0] ?? 'x';
      const outName = session.outputNames[0] ?? '';
      for (const g of prepared.groups) {
        const res = await session.run({
          [inName]: new this.#ort.Tensor('float32', g.data, g.shape),
        });
        const out = res[outName];
        if (out === undefined || !(out.data instanceof Float32Array)) {
          throw new RunError(`${this.#dir}: the model's first output is not a float32 tensor`);
        }
        const n = out.data.length;
        if (n % g.rows !== 0 || (dim >= 0 && n / g.rows !== dim)) {
          throw new RunError("the model's first output has no row per image");
        }
        dim = n / g.rows;
        const o = Float32Array.from(out.data);
        normalizeRows(o, dim);
        parts.push(o);
        rows += g.rows;
      }
      const features = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) {
        features.set(p, at);
        at += p.length;
      }
      return { features, rows, failed: prepared.failed };
    };
    if (opts.stream === undefined) return runAll();
    const before = this.#streams.get(opts.stream) ?? Promise.resolve();
    const mine = before.then(runAll, runAll);
    const settled = mine.catch(() => undefined);
    this.#streams.set(opts.stream, settled);
    void settled.then(() => {
      if (this.#streams.get(opts.stream as number) === settled)
        this.#streams.delete(opts.stream as number);
    });
    return mine;
  }
}

/**
 * Opens `modelPath` on onnxruntime: the model exported to ONNX in memory by the addon, one
 * session with `threads` intra-op threads (sequential execution, all graph optimisations).
 * Throws PIF_UNSUPPORTED when onnxruntime-node is missing; export errors as exportOnnx.
 */
export async function openOrtModel(
  modelPath: string,
  opts: { threads: number; limits: NativeLimits; randomWeights?: number },
): Promise<NativeModel> {
  const ort = await loadOrt();
  const load = {
    requireParams: true,
    limits: { ...opts.limits },
    ...(opts.randomWeights === undefined ? {} : { randomWeights: opts.randomWeights }),
  };
  const info = await nativeBinding().inspectModel(modelPath, load);
  const onnx = (await nativeBinding().exportOnnx(modelPath, null, load)).onnx;
  let session: OrtSession;
  try {
    session = await ort.InferenceSession.create(onnx, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
  } catch (err) {
    throw new RunError(
      `onnxruntime could not load the ONNX export of ${modelPath}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  return new OrtModel(ort, session, info, modelPath);
}
