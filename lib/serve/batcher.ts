/**
 * Dynamic batching: feature requests that arrive close together are collected, up to `maxBatch`
 * images or until the oldest has waited `maxWaitMs`, and run as one `model.predictAll(items,
 * { batchSize: items.length })` call (one native inference job); results are handed back to
 * each caller in order. While `maxInFlight` batches run, new images keep collecting, so under
 * load batches fill up by themselves. `maxBatch: 1` turns batching off (one call per image).
 *
 * Errors stay per item: an image that cannot be decoded rejects only its own promise. Should a
 * whole call fail, its images are retried one by one, so one poisonous image never fails the
 * others of its batch.
 */
import { ClosedError, InvalidArgumentError } from '../errors.js';
import type { FeatureModel } from '../image-feature.js';
import type { ImageInput } from '../input.js';
import type { FeatureResult } from '../result.js';

export interface BatcherOptions {
  /** Most images per inference call (default 8; 1 turns batching off). */
  maxBatch?: number;
  /** Longest wait of the oldest queued image before its batch runs, ms (default 5). */
  maxWaitMs?: number;
  /** Batches running at once (default 1: one native inference job at a time). */
  maxInFlight?: number;
}

export interface BatcherStats {
  /** Inference calls made (batches, including one-by-one retries). */
  batches: number;
  /** Images sent through them. */
  items: number;
  /** Largest batch so far. */
  largestBatch: number;
  /** Images waiting now. */
  queued: number;
  /** Batches running now. */
  inFlight: number;
}

interface Pending {
  input: ImageInput;
  since: number;
  resolve: (f: Float32Array) => void;
  reject: (err: Error) => void;
}

type Model = Pick<FeatureModel, 'predictAll'>;

function positiveInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > 4096) {
    throw new InvalidArgumentError(
      `${what} must be an integer from ${min} to 4096, got ${String(v)}`,
    );
  }
  return v;
}

export class FeatureBatcher {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxInFlight: number;
  readonly #model: Model;
  #queue: Pending[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #idle: (() => void)[] = [];
  #batches = 0;
  #items = 0;
  #largest = 0;

  constructor(model: Model, options: BatcherOptions = {}) {
    this.#model = model;
    this.maxBatch = positiveInt(options.maxBatch ?? 8, 'maxBatch', 1);
    const wait = options.maxWaitMs ?? 5;
    if (typeof wait !== 'number' || !Number.isFinite(wait) || wait < 0 || wait > 60_000) {
      throw new InvalidArgumentError(
        `maxWaitMs must be a number from 0 to 60000, got ${String(wait)}`,
      );
    }
    this.maxWaitMs = wait;
    this.maxInFlight = positiveInt(options.maxInFlight ?? 1, 'maxInFlight', 1);
  }

  /** The L2-normalised feature of one image; rejects with that image's own error. */
  submit(input: ImageInput): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(new ClosedError('the feature batcher is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, since: performance.now(), resolve, reject });
      this.#pump();
    });
  }

  /** Features of several images (each batched with everyone else's); rejects on the first error. */
  submitAll(inputs: readonly ImageInput[]): Promise<Float32Array[]> {
    return Promise.all(inputs.map((x) => this.submit(x)));
  }

  stats(): BatcherStats {
    return {
      batches: this.#batches,
      items: this.#items,
      largestBatch: this.#largest,
      queued: this.#queue.length,
      inFlight: this.#inFlight,
    };
  }

  /** Resolves once nothing is queued or running. */
  drain(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Refuses new images; those already queued still run. Resolves when all are done. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
  }

  #pump(): void {
    while (this.#inFlight < this.maxInFlight && this.#queue.length > 0) {
      const oldest = (this.#queue[0] as Pending).since;
      const waited = performance.now() - oldest;
      if (this.#queue.length < this.maxBatch && waited < this.maxWaitMs) {
        this.#arm(this.maxWaitMs - waited);
        return;
      }
      this.#disarm();
      void this.#run(this.#queue.splice(0, this.maxBatch));
    }
    if (this.#queue.length === 0) this.#disarm();
    if (this.#queue.length === 0 && this.#inFlight === 0) {
      for (const f of this.#idle.splice(0)) f();
    }
  }

  #arm(ms: number): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#pump();
      },
      Math.max(0, Math.ceil(ms)),
    );
  }

  #disarm(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #call(batch: readonly Pending[]): Promise<FeatureResult[]> {
    this.#batches++;
    this.#items += batch.length;
    this.#largest = Math.max(this.#largest, batch.length);
    return this.#model.predictAll(
      batch.map((p) => p.input),
      { batchSize: batch.length },
    );
  }

  async #run(batch: Pending[]): Promise<void> {
    this.#inFlight++;
    try {
      let results: FeatureResult[] | null = null;
      try {
        results = await this.#call(batch);
      } catch (err) {
        if (batch.length === 1) (batch[0] as Pending).reject(err as Error);
      }
      if (results === null && batch.length > 1) {
        // Isolate the failure: one call per image.
        for (const p of batch) {
          try {
            const [r] = await this.#call([p]);
            settle(p, r);
          } catch (err) {
            p.reject(err as Error);
          }
        }
        return;
      }
      if (results !== null)
        batch.forEach((p, i) => {
          settle(p, results[i]);
        });
    } finally {
      this.#inFlight--;
      this.#pump();
    }
  }
}

function settle(p: Pending, r: FeatureResult | undefined): void {
  if (r === undefined) p.reject(new Error('the model returned fewer results than inputs'));
  else if (r.error !== null) p.reject(r.error);
  else p.resolve(r.feature);
}
