/**
 * Recognition over a gallery: PaddleX's PP-ShiTuV2 pipeline (../shared/spec/paddlex-behaviour.md
 * §9) without its detector. Each image is one box covering the whole image, which is PaddleX's own
 * fallback when its main-body detector finds nothing (`label "full_img"`, score 0, coordinate
 * [0, 0, W, H]); main-body detection comes in a later issue. The box's features are searched in a
 * vector index and thresholded:
 *
 * - IP (inner product, larger = closer): the box is rejected when the top-1 score is **less
 *   than** `recThreshold` (as PaddleX);
 * - L2 (squared distance, smaller = closer): the box is rejected when the top-1 distance is
 *   **greater than** `recThreshold` (PaddleX applies the IP test to distances, backwards);
 * - a value equal to the threshold is kept, for both metrics;
 * - a rejected box has `labels` and `recScores` `[null]` (PaddleX's `[None]`); a kept box has
 *   every top-k hit, including hits past the threshold (as PaddleX);
 * - an empty index rejects every box the same way (nothing to match), never throws;
 * - `recTopk` (alias `topk`, which PaddleX silently ignores) is honoured; hits with equal
 *   scores are ordered by id, so results are deterministic.
 */
import sharp from 'sharp';

import { InvalidArgumentError } from './errors.js';
import type { FeatureModel } from './image-feature.js';
import { resolveInputs, type InputItem, type PredictInput } from './input.js';
import { describeValue } from './limits.js';
import { preprocessFingerprint, preprocessRecord } from './model-fingerprint.js';
import { PyInt, pyJsonDumps, type PyJsonValue } from './pyjson.js';
import {
  modelDifferences,
  modelMismatchError,
  recordOf,
  type IndexModelRecord,
} from './vector-index/model-record.js';
import type { Metric, SearchHit, VectorIndex } from './vector-index/types.js';

export const DEFAULT_REC_THRESHOLD = 0.5;
export const DEFAULT_REC_TOPK = 5;

/** One recognised box: PaddleX's ShiTuResult box, camel-cased. */
export interface RecognitionBox {
  /** Labels of the top-k hits, best first; `[null]` when the box was rejected. */
  labels: (string | null)[];
  /** Their scores (IP) or squared distances (L2); `[null]` when rejected. */
  recScores: (number | null)[];
  /** Detection score: 0 for the full-image box (PaddleX's fallback box). */
  detScore: number;
  /** `[xmin, ymin, xmax, ymax]`; `[0, 0, W, H]` for the full-image box. */
  coordinate: [number, number, number, number];
}

/** PaddleX's JSON view of a result (`{res: {input_path, boxes}}`, snake_case). */
export interface RecognitionResultJson {
  res: {
    input_path: string | null;
    boxes: {
      labels: (string | null)[];
      rec_scores: (number | null)[];
      det_score: number;
      coordinate: [number, number, number, number];
    }[];
  };
}

export class RecognitionResult {
  /** The local file the image came from (null for buffers and pixels, see spec 9.3). */
  readonly inputPath: string | null;
  /** One box per recognised object; the whole image for now. Empty when `error` is set. */
  readonly boxes: readonly RecognitionBox[];
  /** Set when this input could not be read (the other inputs still come out); else null. */
  readonly error: Error | null;

  constructor(inputPath: string | null, boxes: readonly RecognitionBox[], error: Error | null) {
    this.inputPath = inputPath;
    this.boxes = boxes;
    this.error = error;
  }

  /** `{res: {input_path, boxes: [{labels, rec_scores, det_score, coordinate}]}}` (PaddleX's keys). */
  get json(): RecognitionResultJson {
    return this.toJson();
  }

  toJson(): RecognitionResultJson {
    return {
      res: {
        input_path: this.inputPath,
        boxes: this.boxes.map((b) => ({
          labels: [...b.labels],
          rec_scores: [...b.recScores],
          det_score: b.detScore,
          coordinate: [...b.coordinate],
        })),
      },
    };
  }

  /** JSON text as Python's json.dumps writes PaddleX's result (ints stay ints). */
  toJsonString(options: { indent?: number | null; ensureAscii?: boolean } = {}): string {
    const int = (x: number): PyJsonValue => (Number.isInteger(x) ? new PyInt(x) : x);
    const res: PyJsonValue = {
      input_path: this.inputPath,
      boxes: this.boxes.map((b) => ({
        labels: b.labels,
        rec_scores: b.recScores,
        det_score: int(b.detScore),
        coordinate: b.coordinate.map(int),
      })),
    };
    return pyJsonDumps(
      { res },
      {
        indent: options.indent === undefined ? 4 : options.indent,
        ensureAscii: options.ensureAscii ?? false,
      },
    );
  }
}

/** Per-call settings (override the recognizer's). */
export interface RecognizeOptions {
  /** Rejection threshold (see the module comment); default the recognizer's (0.5). */
  recThreshold?: number;
  /** Hits per box; default the recognizer's (5). */
  recTopk?: number;
  /** Alias of recTopk. */
  topk?: number;
  /** Images per inference call (predict only; default the model's batchSize). */
  batchSize?: number;
}

export interface RecognizerOptions {
  /** The feature model (needed by predict; recognizeFeatures works without one). */
  model?: FeatureModel;
  /** The gallery. */
  index: VectorIndex;
  /** Default 0.5 (PaddleX's rec_threshold). */
  recThreshold?: number;
  /** Default 5 (PaddleX's rec_topk). */
  recTopk?: number;
  /** Alias of recTopk. */
  topk?: number;
}

/** Width and height of an image, and where it came from, for the full-image box. */
export interface ImageMeta {
  inputPath?: string | null;
  width: number;
  height: number;
}

function checkThreshold(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InvalidArgumentError(`${what} must be a finite number, got ${describeValue(v)}`);
  }
  return v;
}

function checkTopk(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new InvalidArgumentError(`${what} must be a positive integer, got ${describeValue(v)}`);
  }
  return v;
}

/** recTopk / topk from options (both given: they must agree); undefined when neither. */
function pickTopk(o: { recTopk?: number; topk?: number }, what: string): number | undefined {
  const a = o.recTopk === undefined ? undefined : checkTopk(o.recTopk, `${what}.recTopk`);
  const b = o.topk === undefined ? undefined : checkTopk(o.topk, `${what}.topk`);
  if (a !== undefined && b !== undefined && a !== b) {
    throw new InvalidArgumentError(
      `${what}: recTopk (${a}) and its alias topk (${b}) disagree; give one`,
    );
  }
  return a ?? b;
}

/** Hits best first: by score (IP: larger first; L2: smaller first), equal scores by id. */
export function rankHits(hits: readonly SearchHit[], metric: Metric): SearchHit[] {
  const sign = metric === 'IP' ? -1 : 1;
  return hits
    .filter((h) => h.id >= 0)
    .sort((a, b) => (a.score === b.score ? a.id - b.id : sign * (a.score - b.score)));
}

/** Whether a box whose best hit has `top1` is rejected (see the module comment). */
export function isRejected(top1: number, metric: Metric, threshold: number): boolean {
  return metric === 'IP' ? top1 < threshold : top1 > threshold;
}

/** Labels and scores of one box from its hits: thresholded as the module comment says. */
export function decideBox(
  hits: readonly SearchHit[],
  metric: Metric,
  threshold: number,
  topk: number,
): { labels: (string | null)[]; recScores: (number | null)[] } {
  const ranked = rankHits(hits, metric).slice(0, topk);
  const top = ranked[0];
  if (top === undefined || Number.isNaN(top.score) || isRejected(top.score, metric, threshold)) {
    return { labels: [null], recScores: [null] };
  }
  return { labels: ranked.map((h) => h.label), recScores: ranked.map((h) => h.score) };
}

/**
 * Searches `features` (n × index.dim, one row per image) and thresholds the hits: one result
 * per image, each with its full-image box. Used by Recognizer and the HTTP service.
 */
export async function recognizeWithIndex(
  index: VectorIndex,
  features: Float32Array,
  images: readonly ImageMeta[],
  settings: { recThreshold: number; topk: number },
): Promise<RecognitionResult[]> {
  const n = images.length;
  let hits: SearchHit[][] = [];
  if (n > 0 && index.size > 0) {
    if (features.length !== n * index.dim) {
      throw new InvalidArgumentError(
        `features have ${features.length} values; ${n} image(s) of the index's dimension ${index.dim} need ${n * index.dim}`,
      );
    }
    hits = await index.search(features, Math.min(settings.topk, index.size));
  }
  return images.map((img, i) => {
    const { labels, recScores } = decideBox(
      hits[i] ?? [],
      index.metric,
      settings.recThreshold,
      settings.topk,
    );
    const box: RecognitionBox = {
      labels,
      recScores,
      detScore: 0,
      coordinate: [0, 0, img.width, img.height],
    };
    return new RecognitionResult(img.inputPath ?? null, [box], null);
  });
}

/** Width and height after EXIF orientation (what the decoder gives the model), or null. */
async function imageSize(item: InputItem): Promise<{ width: number; height: number } | null> {
  if (item.kind === 'pixels') return { width: item.pixels.width, height: item.pixels.height };
  if (item.kind === 'failed') return null;
  try {
    const m = await sharp(item.kind === 'file' ? item.path : item.data, {
      limitInputPixels: false,
    }).metadata();
    const width = m.autoOrient?.width ?? m.width;
    const height = m.autoOrient?.height ?? m.height;
    return typeof width === 'number' && typeof height === 'number' ? { width, height } : null;
  } catch {
    return null; // the model reports the decode error
  }
}

/** Every value of an async iterable, in order. */
async function collect<T>(results: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const r of results) out.push(r);
  return out;
}

/**
 * The model an index's vectors come from: the index's own model (loadIndex checked it against
 * the record), else the one recorded on disk; null when unknown or when it is `model` itself.
 */
function indexModel(
  index: VectorIndex,
  model: FeatureModel,
): FeatureModel | IndexModelRecord | null {
  const own = index.model;
  if (own === model) return null;
  if (own !== undefined && typeof own.fingerprint === 'function') return own;
  return infoOf(index).model;
}

/** The index's directory and recorded model (null for an index without `info()`). */
function infoOf(index: VectorIndex): { dir: string | null; model: IndexModelRecord | null } {
  if (typeof index.info !== 'function') return { dir: null, model: null };
  const { dir, model } = index.info();
  return { dir: dir ?? null, model: model ?? null };
}

/**
 * A model's record without reading files: name, directory and preprocessing; its `weights`
 * (a fingerprint of the files) is left empty, checked by checkModel.
 */
function recordNow(m: FeatureModel, dim: number): IndexModelRecord {
  const preprocessSpec = preprocessRecord(m.preprocess);
  const preprocess = preprocessFingerprint(preprocessSpec);
  return {
    modelName: m.modelName,
    modelDir: m.modelDir,
    dim,
    weights: '',
    preprocess,
    preprocessSpec,
  };
}

/** Throws the PIF_INDEX error when `found` is not the index's model `expected`. */
function refuseModel(
  index: VectorIndex,
  expected: IndexModelRecord,
  found: Omit<IndexModelRecord, 'dim'>,
): void {
  const differences = modelDifferences(expected, { ...found, dim: null });
  if (differences.length === 0) return;
  throw modelMismatchError(
    infoOf(index).dir,
    expected,
    found,
    differences,
    "the recognizer's model",
  );
}

/** The name and preprocessing check, which needs no file reads (createRecognizer). */
function checkModelNow(index: VectorIndex, model: FeatureModel): void {
  const own = indexModel(index, model);
  if (own === null || typeof model.fingerprint !== 'function') return;
  const expected = 'preprocessSpec' in own ? own : recordNow(own, index.dim);
  // The weights are compared by checkModel, at the first predict().
  refuseModel(index, expected, { ...recordNow(model, 0), weights: expected.weights });
}

/** The whole check (weights too; the first predict() waits for it). */
async function checkModel(index: VectorIndex, model: FeatureModel): Promise<void> {
  const own = indexModel(index, model);
  if (own === null || typeof model.fingerprint !== 'function') return;
  const expected = 'preprocessSpec' in own ? own : recordOf(await own.fingerprint(), index.dim);
  refuseModel(index, expected, await model.fingerprint());
}

export class Recognizer {
  readonly model: FeatureModel | null;
  readonly index: VectorIndex;
  readonly recThreshold: number;
  readonly recTopk: number;
  #modelChecked: Promise<void> | null = null;

  /** @internal Use createRecognizer(). */
  constructor(
    model: FeatureModel | null,
    index: VectorIndex,
    recThreshold: number,
    recTopk: number,
  ) {
    this.model = model;
    this.index = index;
    this.recThreshold = recThreshold;
    this.recTopk = recTopk;
  }

  #settings(options: RecognizeOptions | undefined, what: string) {
    const o = options ?? {};
    return {
      recThreshold:
        o.recThreshold === undefined
          ? this.recThreshold
          : checkThreshold(o.recThreshold, `${what}: recThreshold`),
      topk: pickTopk(o, what) ?? this.recTopk,
    };
  }

  /** Recognition from features computed elsewhere (n × dim, one row per image). */
  async recognizeFeatures(
    features: Float32Array,
    images: readonly ImageMeta[],
    options?: RecognizeOptions,
  ): Promise<RecognitionResult[]> {
    return await recognizeWithIndex(
      this.index,
      features,
      images,
      this.#settings(options, 'recognizeFeatures'),
    );
  }

  /**
   * Results of every input in input order (directories expanded, as FeatureModel.predict): an
   * input that cannot be read yields a result with `error` set and no boxes.
   */
  async *predict(
    input: PredictInput,
    options?: RecognizeOptions,
  ): AsyncGenerator<RecognitionResult> {
    const model = this.model;
    if (model === null) {
      throw new InvalidArgumentError(
        'Recognizer.predict needs a model: createRecognizer({ model, index })',
      );
    }
    this.#modelChecked ??= checkModel(this.index, model);
    await this.#modelChecked;
    const settings = this.#settings(options, 'predict');
    const batchSize = options?.batchSize ?? model.batchSize;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 4096) {
      throw new InvalidArgumentError(
        `predict: batchSize must be an integer from 1 to 4096, got ${describeValue(batchSize)}`,
      );
    }
    const items = await resolveInputs(input, { cacheDir: model.cacheDir });
    for (let start = 0; start < items.length; start += batchSize) {
      const chunk = items.slice(start, start + batchSize);
      const [sizes, feats] = await Promise.all([
        Promise.all(chunk.map(imageSize)),
        collect(model.predictItems(chunk, batchSize)),
      ]);
      const ok: number[] = [];
      feats.forEach((f, i) => {
        if (f.error === null) ok.push(i);
      });
      const dim = ok.length > 0 ? (feats[ok[0] as number]?.feature.length ?? 0) : 0;
      const data = new Float32Array(ok.length * dim);
      ok.forEach((i, row) => {
        data.set((feats[i] as (typeof feats)[number]).feature, row * dim);
      });
      const recognised = await recognizeWithIndex(
        this.index,
        data,
        ok.map((i) => ({
          inputPath: feats[i]?.inputPath ?? null,
          width: sizes[i]?.width ?? 0,
          height: sizes[i]?.height ?? 0,
        })),
        settings,
      );
      const byItem = new Map<number, RecognitionResult>();
      ok.forEach((i, row) => byItem.set(i, recognised[row] as RecognitionResult));
      for (let i = 0; i < chunk.length; i++) {
        const r = byItem.get(i);
        const f = feats[i];
        yield r ?? new RecognitionResult(f?.inputPath ?? null, [], f?.error ?? null);
      }
    }
  }

  /** All results of predict() in an array. */
  async predictAll(input: PredictInput, options?: RecognizeOptions): Promise<RecognitionResult[]> {
    return await collect(this.predict(input, options));
  }
}

/**
 * A recognizer over `index` with `model` for the queries: `predict(image | images)` gives
 * PaddleX's result shape `{ inputPath, boxes: [{ labels, recScores, detScore, coordinate }] }`.
 * `model` must be the index's model (its own, or the one recorded when it was saved): another
 * model name or preprocessing throws PIF_INDEX here, other weights at the first predict()
 * (their fingerprint reads the files). An index without a record is not checked.
 */
export function createRecognizer(options: RecognizerOptions): Recognizer {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('createRecognizer: options must be an object');
  }
  const { index, model } = options;
  if (typeof index !== 'object' || index === null || typeof index.search !== 'function') {
    throw new InvalidArgumentError('createRecognizer: index must be a vector index');
  }
  const recThreshold =
    options.recThreshold === undefined
      ? DEFAULT_REC_THRESHOLD
      : checkThreshold(options.recThreshold, 'createRecognizer: recThreshold');
  const recTopk = pickTopk(options, 'createRecognizer') ?? DEFAULT_REC_TOPK;
  if (model !== undefined) checkModelNow(index, model);
  return new Recognizer(model ?? null, index, recThreshold, recTopk);
}
