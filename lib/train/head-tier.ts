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
}

/** Images per native call when computing pooled features. */
const POOLED_BATCH = 16;

export class HeadTier {
  readonly modelDir: string;
  readonly #native: NativeHeadTier;
  readonly #preprocess: ModelPreprocess;
  readonly #norm: Normalization;

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

  /** Pooled features of `items`, rows of `info.in`, in order; an undecodable image rejects. */
  async pooledFeatures(items: readonly InputItem[]): Promise<Float32Array> {
    const width = this.info.in;
    const out = new Float32Array(items.length * width);
    for (let i = 0; i < items.length; i += POOLED_BATCH) {
      const batch = items.slice(i, i + POOLED_BATCH);
      const images = await Promise.all(
        batch.map(async (item) => sizedImage(this.#preprocess, await decodeItem(item))),
      );
      const rows = await this.#native.pooled(images, this.#norm);
      if (rows.rows !== batch.length) throw new Error('pooled: a row is missing');
      out.set(rows.features, i * width);
    }
    return out;
  }

  /** Starts a run on cached features (rows of `info.in`) and their labels (0 ... classes-1). */
  async begin(features: Float32Array, labels: readonly number[], config: HeadTrainConfig) {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only its identity is used
    const convert = captureCaller(HeadTier.prototype.begin);
    try {
      await this.#native.begin(
        features,
        BigInt64Array.from(labels, (l) => BigInt(l)),
        config,
      );
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
