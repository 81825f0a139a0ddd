/**
 * Training's head tier (issue 17, under way; not exported yet): a PP-ShiTuV2_rec model cut at
 * its global pool (native/train/shitu_tail.h). Pooled features of images are computed once
 * (decoded as predict decodes them, the model's own preprocessing), then the tail (last_conv,
 * BNNeck, a new FC head) trains on them one epoch per native job, and the trained model is
 * written as a copy of the model directory with a new inference.pdiparams.
 */
import { captureCaller, InvalidArgumentError } from '../errors.js';
import { preprocessFromConfig, sizedImage, type ModelPreprocess } from '../image-feature.js';
import { decodeItem, type InputItem } from '../input.js';
import { readInferenceConfig, resolveModelDir } from '../modeldir.js';
import {
  nativeBinding,
  type NativeHeadEpoch,
  type NativeHeadParam,
  type NativeImage,
  type NativeHeadTier,
  type NativeHeadTrainConfig,
} from '../native.js';
import { checkSpec, type Normalization } from '../preprocess.js';

export type HeadTrainConfig = NativeHeadTrainConfig;
export type HeadEpoch = NativeHeadEpoch;

export interface HeadTierOptions {
  /** Pooled features through the fused oneDNN graph (default true: the frozen part is fixed). */
  useHpip?: boolean;
  cpuThreads?: number;
  /**
   * 'head' (default): the tail trains on cached pooled features. 'last-stage': stage 4 and the
   * tail train on each batch's images (trainStageEpoch); `pooledFeatures` then runs stage 4 as
   * trained so far, after begin().
   */
  tier?: 'head' | 'last-stage';
}

/** A last-stage epoch's options: the views of each batch and what to report per step. */
export interface StageEpochOptions {
  /** The training view's seed of train row `row` at `slot` of the epoch's batches. */
  seedOf: (row: number, slot: number) => number;
  onStep?: (
    done: number,
    total: number,
    loss: number,
    time: { frozenMs: number; trainMs: number },
  ) => void;
  signal?: AbortSignal;
  describeError?: (index: number, err: unknown) => Error;
}

/** Images per native call when computing pooled features. */
const POOLED_BATCH = 16;

export class HeadTier {
  readonly modelDir: string;
  readonly #native: NativeHeadTier;
  readonly #preprocess: ModelPreprocess;
  readonly #norm: Normalization;
  #labels = new BigInt64Array(0);

  private constructor(dir: string, native: NativeHeadTier, preprocess: ModelPreprocess) {
    this.modelDir = dir;
    this.#native = native;
    this.#preprocess = preprocess;
    const { scale, mean, std } = checkSpec({ ...preprocess, width: 1, height: 1 }, 3);
    this.#norm = { scale, mean, std };
  }

  static async open(modelDir: string, options: HeadTierOptions = {}): Promise<HeadTier> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(HeadTier.open);
    const resolved = await resolveModelDir(modelDir);
    const cfg = await readInferenceConfig(resolved.configFile, resolved.dir);
    const preprocess = preprocessFromConfig(cfg);
    const threads = options.cpuThreads ?? 1;
    if (!Number.isInteger(threads) || threads < 1)
      throw new InvalidArgumentError('HeadTier.open: cpuThreads must be a positive integer');
    try {
      const native = await nativeBinding().openHeadTier(resolved.dir, {
        runMode: options.useHpip === false ? 'normal' : 'hpi',
        threads,
        tier: options.tier ?? 'head',
      });
      return new HeadTier(resolved.dir, native, preprocess);
    } catch (err) {
      throw convert(err);
    }
  }

  /** Width of the pooled features (`in`) and of the model's features (`dim`). */
  get info(): ReturnType<NativeHeadTier['info']> {
    return this.#native.info();
  }

  /**
   * Pooled features of `items`, rows of `info.in`, in order; an undecodable image rejects. With
   * `views`, each item gives `views.length` rows in a row: its training views drawn with those
   * seeds (`views(index)` per item), decoded once.
   */
  async pooledFeatures(
    items: readonly InputItem[],
    options: {
      views?: (index: number) => readonly number[];
      onProgress?: (done: number, total: number) => void;
      signal?: AbortSignal;
      /** The error for item `index` that could not be decoded (default: the decoder's). */
      describeError?: (index: number, err: unknown) => Error;
    } = {},
  ): Promise<Float32Array> {
    const width = this.info.in;
    const seedsOf = (k: number): readonly (number | undefined)[] =>
      options.views?.(k) ?? [undefined];
    const perItem = seedsOf(0).length;
    const out = new Float32Array(items.length * perItem * width);
    const step = Math.max(1, Math.floor(POOLED_BATCH / perItem));
    for (let i = 0; i < items.length; i += step) {
      options.signal?.throwIfAborted();
      const batch = items.slice(i, i + step);
      const decoded = await Promise.all(
        batch.map(async (item, k) => {
          try {
            return sizedImage(this.#preprocess, await decodeItem(item));
          } catch (err) {
            throw options.describeError?.(i + k, err) ?? err;
          }
        }),
      );
      const images: NativeImage[] = decoded.flatMap((img, k) => {
        const seeds = seedsOf(i + k);
        if (seeds.length !== perItem) throw new InvalidArgumentError('views: one count for all');
        return seeds.map((seed) => (seed === undefined ? img : { ...img, augmentSeed: seed }));
      });
      const rows = await this.#native.pooled(images, this.#norm);
      if (rows.rows !== images.length) throw new Error('pooled: a row is missing');
      out.set(rows.features, i * perItem * width);
      options.onProgress?.(Math.min(items.length, i + step), items.length);
    }
    return out;
  }

  async #decode(
    items: readonly InputItem[],
    rows: readonly number[],
    describeError?: (index: number, err: unknown) => Error,
  ): Promise<NativeImage[]> {
    return Promise.all(
      rows.map(async (r) => {
        try {
          return sizedImage(this.#preprocess, await decodeItem(items[r] as InputItem));
        } catch (err) {
          throw describeError?.(r, err) ?? err;
        }
      }),
    );
  }

  /**
   * Last-stage tier: one epoch over the train `items` given to begin() (by their labels' rows).
   * Each batch is decoded (the next one while this one trains), drawn as training views and
   * trained in one native step.
   */
  async trainStageEpoch(
    items: readonly InputItem[],
    options: StageEpochOptions,
  ): Promise<HeadEpoch> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(HeadTier.prototype.trainStageEpoch);
    try {
      const batches = await this.#native.epochBatches();
      const epoch: HeadEpoch = { epoch: 0, lr: 0, loss: { ce: 0, triplet: 0, total: 0 } };
      const decode = (k: number) => this.#decode(items, batches[k] ?? [], options.describeError);
      let next = batches.length > 0 ? decode(0) : null;
      for (let k = 0; k < batches.length; k++) {
        options.signal?.throwIfAborted();
        const rows = batches[k] as number[];
        const decoded = await (next as Promise<NativeImage[]>);
        next = k + 1 < batches.length ? decode(k + 1) : null;
        // A failed prefetch must not go unhandled while this step runs.
        next?.catch(() => undefined);
        const images = decoded.map((img, slot) => ({
          ...img,
          augmentSeed: options.seedOf(rows[slot] as number, k * rows.length + slot),
        }));
        const labels = BigInt64Array.from(rows, (r) => this.#labels[r] as bigint);
        const s = await this.#native.step(images, this.#norm, labels, batches.length);
        epoch.lr = s.lr;
        epoch.loss.ce += s.loss.ce / batches.length;
        epoch.loss.triplet += s.loss.triplet / batches.length;
        epoch.loss.total += s.loss.total / batches.length;
        options.onStep?.(k + 1, batches.length, s.loss.total, {
          frozenMs: s.frozenMs,
          trainMs: s.trainMs,
        });
      }
      return epoch;
    } catch (err) {
      throw convert(err);
    }
  }

  /** Unit-length features of pooled rows through the tail as trained so far. */
  async features(pooled: Float32Array): Promise<Float32Array> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    return this.#call(HeadTier.prototype.features, () => this.#native.features(pooled));
  }

  /** The run's state (to resume it exactly). */
  async state(): Promise<Buffer> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    return this.#call(HeadTier.prototype.state, () => this.#native.state());
  }

  /** Loads `state()` bytes into a run begun with the same data and config; its epoch. */
  async restore(bytes: Uint8Array): Promise<number> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    return this.#call(HeadTier.prototype.restore, () => this.#native.restore(bytes));
  }

  /** Every float32 parameter (the tail's as trained), then the FC head. */
  async params(): Promise<NativeHeadParam[]> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    return this.#call(HeadTier.prototype.params, () => this.#native.params());
  }

  // Runs a native call with `api`'s caller stack on its error.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- only its identity is used
  async #call<T>(api: Function, job: () => Promise<T>): Promise<T> {
    const convert = captureCaller(api);
    try {
      return await job();
    } catch (err) {
      throw convert(err);
    }
  }

  /** Starts a run on cached features (rows of `info.in`) and their labels (0 ... classes-1). */
  async begin(features: Float32Array, labels: readonly number[], config: HeadTrainConfig) {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(HeadTier.prototype.begin);
    try {
      this.#labels = BigInt64Array.from(labels, (l) => BigInt(l));
      await this.#native.begin(features, this.#labels, config);
    } catch (err) {
      throw convert(err);
    }
  }

  /** One epoch of the run (off the main thread). */
  async trainEpoch(): Promise<HeadEpoch> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(HeadTier.prototype.trainEpoch);
    try {
      return await this.#native.trainEpoch();
    } catch (err) {
      throw convert(err);
    }
  }

  /** Writes the trained model directory (program and inference.yml copied unchanged). */
  async save(outDir: string): Promise<string> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(HeadTier.prototype.save);
    try {
      return await this.#native.save(outDir);
    } catch (err) {
      throw convert(err);
    }
  }

  close(): void {
    this.#native.close();
  }
}
