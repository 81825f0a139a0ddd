/**
 * HNSW storage over usearch (prebuilt binaries for linux x64/arm64, Node ≥ 20). usearch is loaded
 * on first use only, so Flat indexes never need it; if it cannot load, HNSW is refused with an
 * UnsupportedError that says so (spec §10 row 2: every offered type works, or is refused up front).
 *
 * Metric mapping: IP → usearch `ip`, whose distance is 1 − q·x; we report the score q·x as faiss
 * does (so the score loses float32 precision below ~1e-7 relative to 1). L2 → `l2sq`, the squared
 * distance, reported as is. usearch keys are uint64 (BigInt in JS); ids are converted.
 *
 * Threads: usearch runs a call with more than one query on the given number of threads and
 * starts them for that call (std::thread); a single query always runs on the calling thread.
 * Calls are synchronous (they block the event loop for their duration).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';

import { InternalError, UnsupportedError } from '../errors.js';

import type { RawHits } from './flat.js';
import type { HnswOptions, Metric } from './types.js';

type Usearch = typeof import('usearch');
type UsearchIndex = InstanceType<Usearch['Index']>;
type UsearchMatches = InstanceType<Usearch['Matches']> | InstanceType<Usearch['BatchMatches']>;

let usearchModule: Usearch | null = null;

/**
 * The usearch versions this code reads and writes (package.json's optional peer dependency:
 * not installed by default, since npm >= 11 blocks its install script and warns).
 */
export const USEARCH_RANGE = '~2.25.3';

/**
 * The usearch module (CommonJS build, loaded synchronously on first use); an UnsupportedError
 * when it cannot load here. createIndex calls it for HNSW so the refusal comes up front.
 */
export function usearch(): Usearch {
  if (usearchModule !== null) return usearchModule;
  try {
    const req = createRequire(import.meta.url);
    usearchModule = req('usearch') as Usearch;
    return usearchModule;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND';
    throw new UnsupportedError(
      missing
        ? `the HNSW index needs the optional package usearch, which is not installed: ` +
            `npm install usearch@${USEARCH_RANGE} (or use type 'Flat', exact and built in)`
        : `the HNSW index needs the usearch native module, which failed to load on this platform ` +
            `(${process.platform}-${process.arch}): ${(err as Error).message}; use type 'Flat'`,
      { cause: err },
    );
  }
}

/** Keys of placeholder vectors (far above any id, which are safe integers). */
export const PLACEHOLDER_BASE = 1n << 62n;

function placeholderKeys(n: number): BigUint64Array {
  return BigUint64Array.from({ length: n }, (_, i) => PLACEHOLDER_BASE + BigInt(i));
}

/** What the head of a usearch dense file says. */
export interface UsearchHead {
  /** Slots in the file (rows of the vector matrix that comes first). */
  rows: number;
  /** Bytes per stored vector. */
  rowBytes: number;
  present: number;
  deleted: number;
  dimensions: number;
}

/** Bytes needed to read the head: the 8-byte matrix shape, then (after the rows) the head. */
const HEAD_BYTES = 64;

/** `count` rows of the vector matrix at the start of a usearch file, spread evenly over it. */
function placeholderVectors(
  file: string,
  head: UsearchHead,
  count: number,
  dim: number,
): Float32Array {
  if (head.rowBytes !== dim * 4 || head.rows === 0) {
    throw new InternalError(
      `unexpected usearch vector matrix: ${head.rows} rows of ${head.rowBytes} bytes for dim ${dim}`,
    );
  }
  const out = new Float32Array(count * dim);
  const bytes = new Uint8Array(out.buffer);
  const fd = openSync(file, 'r');
  try {
    for (let i = 0; i < count; i++) {
      const row = Math.floor((i * head.rows) / count);
      readSync(fd, bytes, i * head.rowBytes, head.rowBytes, 8 + row * head.rowBytes);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The head of a usearch file on disk (reads only the shape and the head). */
function readFileHead(file: string): UsearchHead {
  const fd = openSync(file, 'r');
  try {
    const shape = Buffer.alloc(8);
    readSync(fd, shape, 0, 8, 0);
    const head = Buffer.alloc(HEAD_BYTES);
    const at = 8 + shape.readUInt32LE(0) * shape.readUInt32LE(4);
    const n = readSync(fd, head, 0, HEAD_BYTES, at);
    return parseHead(shape, head.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses usearch's dense-file head (v2 layout: u32 rows, u32 bytes per row, the vectors, then
 * `usearch` magic, 3 × u16 version, 4 kind bytes, u64 present, u64 deleted, u64 dimensions).
 * `shape` holds the first 8 bytes, `head` starts at the magic. Throws on anything else.
 */
function parseHead(shape: Buffer, head: Buffer): UsearchHead {
  if (shape.length < 8) throw new Error('shorter than its shape');
  if (head.length < 41) throw new Error('shorter than its head');
  if (head.toString('latin1', 0, 7) !== 'usearch') throw new Error('no usearch head');
  const u64 = (off: number): number => {
    const v = head.readBigUInt64LE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`head field at ${off} is ${v}`);
    return Number(v);
  };
  return {
    rows: shape.readUInt32LE(0),
    rowBytes: shape.readUInt32LE(4),
    present: u64(17),
    deleted: u64(25),
    dimensions: u64(33),
  };
}

/** The head of a whole usearch file held in memory. */
export function readUsearchHead(payload: Uint8Array): UsearchHead {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (b.length < 8) throw new Error('shorter than its shape');
  const at = 8 + b.readUInt32LE(0) * b.readUInt32LE(4);
  if (at > b.length) throw new Error('shorter than its vectors');
  return parseHead(b.subarray(0, 8), b.subarray(at, at + HEAD_BYTES));
}

export const HNSW_DEFAULTS = {
  connectivity: 32,
  expansionAdd: 128,
  expansionSearch: 128,
} as const;

/** Resolved HNSW settings. */
export type HnswSettings = Readonly<Required<HnswOptions>>;

export function defaultAddThreads(): number {
  return availableParallelism();
}

export class HnswStore {
  readonly dim: number;
  readonly metric: Metric;
  readonly settings: HnswSettings;
  #index: UsearchIndex;

  constructor(dim: number, metric: Metric, settings: HnswSettings) {
    this.dim = dim;
    this.metric = metric;
    this.settings = settings;
    this.#index = HnswStore.#make(dim, metric, settings);
  }

  static #make(dim: number, metric: Metric, s: HnswSettings): UsearchIndex {
    const u = usearch();
    return new u.Index({
      dimensions: dim,
      metric: metric === 'IP' ? u.MetricKind.IP : u.MetricKind.L2sq,
      quantization: u.ScalarKind.F32,
      connectivity: s.connectivity,
      expansion_add: s.expansionAdd,
      expansion_search: s.expansionSearch,
      multi: false,
    });
  }

  get size(): number {
    return this.#index.size();
  }

  add(ids: readonly number[], vectors: Float32Array): void {
    if (ids.length === 0) return;
    const keys = new BigUint64Array(ids.length);
    for (let i = 0; i < ids.length; i++) keys[i] = BigInt(ids[i] as number);
    this.#index.add(keys, vectors, Math.max(1, Math.min(this.settings.addThreads, ids.length)));
  }

  /** Removes these ids; returns how many were present. */
  remove(ids: ReadonlySet<number>): number {
    if (ids.size === 0) return 0;
    const keys = BigUint64Array.from([...ids], (id) => BigInt(id));
    const r = this.#index.remove(keys);
    const counts = Array.isArray(r) ? r : [r];
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Starts over empty (same settings). */
  clear(): void {
    this.#index = HnswStore.#make(this.dim, this.metric, this.settings);
  }

  /** Approximate top-k of `nq` queries; fewer hits when the index is smaller. */
  search(queries: Float32Array, nq: number, topk: number, threads: number): RawHits {
    const size = this.size;
    if (size === 0 || nq === 0) {
      return { k: 0, ids: new Float64Array(0), scores: new Float32Array(0) };
    }
    const k = Math.min(topk, size);
    const r: UsearchMatches = this.#index.search(queries, k, nq === 1 ? 1 : Math.max(1, threads));
    const counts =
      (r as { counts?: BigUint64Array }).counts ?? BigUint64Array.of(BigInt(r.keys.length));
    const ids = new Float64Array(nq * k).fill(-1);
    const scores = new Float32Array(nq * k).fill(Number.NaN);
    for (let q = 0; q < nq; q++) {
      const n = Math.min(Number(counts[q] ?? 0n), k);
      for (let j = 0; j < n; j++) {
        const key = r.keys[q * k + j] as bigint;
        const d = r.distances[q * k + j] as number;
        ids[q * k + j] = Number(key);
        scores[q * k + j] = this.metric === 'IP' ? 1 - d : d;
      }
    }
    return { k, ids, scores };
  }

  /**
   * Writes usearch's own serialisation to `file`; returns how many placeholders it holds.
   *
   * usearch 2.25 corrupts memory when it loads a file whose deleted slots outnumber the room its
   * loader reserves (it reserves for the present vectors only: a graph with many removals crashes
   * the process on load). So a saved graph never has deleted slots: they are filled with
   * placeholder vectors (keys from {@link PLACEHOLDER_BASE}) for the save and removed again
   * right after, here and after loading. Placeholders are never search results. Their vectors
   * are copies of stored vectors (rows spread over the graph's own vector matrix), so they sit
   * among the data like any removed vector does; zero vectors, tried first, all land on one
   * point that traps the search once many are removed (recall 0.74 after removing 90 %).
   */
  saveTo(file: string): number {
    this.#index.save(file);
    const head0 = readFileHead(file);
    const deleted = head0.deleted;
    if (deleted === 0) return 0;
    const keys = placeholderKeys(deleted);
    this.#index.add(keys, placeholderVectors(file, head0, deleted, this.dim), 1);
    try {
      this.#index.save(file);
    } finally {
      this.#index.remove(keys);
    }
    const head = readFileHead(file);
    if (head.deleted !== 0) {
      throw new InternalError(`usearch kept ${head.deleted} deleted slots after filling them`);
    }
    return deleted;
  }

  /**
   * An index read from a usearch file written by {@link saveTo} (its head already checked by
   * the caller: no deleted slots), with its placeholders removed again.
   */
  static loadFrom(
    file: string,
    dim: number,
    metric: Metric,
    settings: HnswSettings,
    placeholders: number,
  ): HnswStore {
    const s = new HnswStore(dim, metric, settings);
    s.#index.load(file);
    if (placeholders > 0) {
      const r = s.#index.remove(placeholderKeys(placeholders));
      const removed = (Array.isArray(r) ? r : [r]).reduce((a, b) => a + b, 0);
      if (removed !== placeholders) {
        throw new Error(`${removed} of ${placeholders} placeholders were in the graph`);
      }
    }
    return s;
  }

  /** Which of these ids are present. */
  contains(ids: readonly number[]): boolean[] {
    if (ids.length === 0) return [];
    const r = this.#index.contains(BigUint64Array.from(ids, (id) => BigInt(id)));
    return Array.isArray(r) ? r : [r];
  }

  /** usearch's own view of the loaded graph (for the load checks). */
  graphDims(): number {
    return this.#index.dimensions();
  }
}
