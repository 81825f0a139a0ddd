/**
 * The service's index store (PaddleX keeps pickled indexes under `.index/`, spec §9.5; here each
 * index is a directory `<indexDir>/<indexKey>/` written with the index's atomic save, so a crash
 * never leaves a half-written index). Indexes are loaded lazily on first use and kept in memory
 * (least recently used ones are dropped past `maxCached`); they survive restarts. Without an
 * `indexDir` the store lives in memory only.
 *
 * Every operation on one key runs alone (a per-key queue), so an add, a remove and a search
 * never interleave; different keys run independently. A change is saved before it is answered;
 * if the save fails, the in-memory copy is dropped so the next use reloads what is on disk.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

import type { FeatureModel } from '../image-feature.js';
import { loadIndex } from '../vector-index/index.js';
import type { VectorIndex } from '../vector-index/types.js';
import { RequestError } from './schemas.js';

export interface IndexStoreOptions {
  /** Where indexes persist; undefined: memory only. */
  indexDir?: string | undefined;
  /** The model indexes are loaded with (its feature size must match theirs). */
  model?: FeatureModel | undefined;
  /** Most indexes kept loaded (default 64); others are reloaded from disk when used. */
  maxCached?: number;
}

interface Entry {
  index: VectorIndex;
}

export class IndexStore {
  readonly indexDir: string | null;
  readonly #model: FeatureModel | undefined;
  readonly #maxCached: number;
  /** Loaded indexes, least recently used first. */
  readonly #cache = new Map<string, Entry>();
  /** The tail of each key's operation queue. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(options: IndexStoreOptions = {}) {
    this.indexDir = options.indexDir === undefined ? null : path.resolve(options.indexDir);
    this.#model = options.model;
    this.#maxCached = options.maxCached ?? 64;
  }

  /** Creates the directory (once, at start). */
  async init(): Promise<void> {
    if (this.indexDir !== null) await mkdir(this.indexDir, { recursive: true });
  }

  /** Indexes loaded in memory now. */
  get loaded(): number {
    return this.#cache.size;
  }

  #dirOf(key: string): string {
    return path.join(this.indexDir as string, key);
  }

  /** Runs `fn` after every earlier operation on `key` settled. */
  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  #remember(key: string, entry: Entry): void {
    this.#cache.delete(key);
    this.#cache.set(key, entry);
    if (this.indexDir === null) return; // memory only: nothing to reload from
    for (const k of this.#cache.keys()) {
      if (this.#cache.size <= this.#maxCached) break;
      if (k !== key && !this.#queues.has(k)) this.#cache.delete(k);
    }
  }

  async #get(key: string): Promise<Entry> {
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      this.#remember(key, hit);
      return hit;
    }
    if (!(await this.has(key))) throw new RequestError(404, `unknown indexKey '${key}'`);
    const dir = this.#dirOf(key);
    const index = await loadIndex(dir, this.#model === undefined ? {} : { model: this.#model });
    const entry = { index };
    this.#remember(key, entry);
    return entry;
  }

  async #save(key: string, index: VectorIndex): Promise<void> {
    if (this.indexDir === null) return;
    try {
      await index.save(this.#dirOf(key));
    } catch (err) {
      this.#cache.delete(key); // reload what is on disk next time
      throw err;
    }
  }

  /** Whether `key` names an index (loaded, or saved under indexDir). */
  async has(key: string): Promise<boolean> {
    if (this.#cache.has(key)) return true;
    if (this.indexDir === null) return false;
    return (await stat(this.#dirOf(key)).catch(() => null))?.isDirectory() ?? false;
  }

  /** Stores a new index under a fresh key (uuid4, as PaddleX) and saves it; returns the key. */
  async create(index: VectorIndex): Promise<string> {
    const key = randomUUID();
    return this.#serial(key, async () => {
      await this.#save(key, index);
      this.#remember(key, { index });
      return key;
    });
  }

  /** Runs `fn` on the index of `key` (404 when unknown); nothing else touches it meanwhile. */
  read<T>(key: string, fn: (index: VectorIndex) => Promise<T>): Promise<T> {
    return this.#serial(key, async () => fn((await this.#get(key)).index));
  }

  /** Like read(), then saves the index before answering. */
  update<T>(key: string, fn: (index: VectorIndex) => Promise<T>): Promise<T> {
    return this.#serial(key, async () => {
      const { index } = await this.#get(key);
      let out: T;
      try {
        out = await fn(index);
      } catch (err) {
        // A half-applied change must not stay in memory: reload what is on disk next time.
        if (this.indexDir !== null) this.#cache.delete(key);
        throw err;
      }
      await this.#save(key, index);
      return out;
    });
  }

  /** Waits for every queued operation. */
  async idle(): Promise<void> {
    while (this.#queues.size > 0) await Promise.all(this.#queues.values());
  }
}
