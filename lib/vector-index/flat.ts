/**
 * Flat (exact) storage: the vectors in one growable row-major Float32Array with the id of every
 * row beside it. Rows stay in ascending id order (ids only grow, removal keeps the order), so
 * the native search's tie rule "lower row first" is "lower id first". Search is the native
 * blockwise top-k of lib/evaluate.ts (oneDNN sgemm, off the main thread) reading the rows in
 * place (no copy per search). So that a running search never sees a change, rows it reads are
 * never rewritten: `add` writes only past the live rows, and `remove` builds new arrays
 * (copy-on-write) instead of compacting in place.
 */
import { searchTopK } from '../search.js';

import type { Metric } from './types.js';

/** Raw results of one search call: `nq × k` row-major, `-1` ids where fewer than k exist. */
export interface RawHits {
  k: number;
  ids: Float64Array;
  scores: Float32Array;
}

export class FlatStore {
  readonly dim: number;
  #data: Float32Array;
  #ids: Float64Array;
  #count = 0;

  constructor(dim: number, capacity = 0) {
    this.dim = dim;
    this.#data = new Float32Array(capacity * dim);
    this.#ids = new Float64Array(capacity);
  }

  /** Takes ownership of `vectors` (count × dim) and `ids` (ascending). */
  static from(dim: number, ids: Float64Array, vectors: Float32Array): FlatStore {
    const s = new FlatStore(dim);
    s.#data = vectors;
    s.#ids = ids;
    s.#count = ids.length;
    return s;
  }

  get size(): number {
    return this.#count;
  }

  /** The live rows (a view, valid until the next change). */
  vectors(): Float32Array {
    return this.#data.subarray(0, this.#count * this.dim);
  }

  /** The id of every row (a view, valid until the next change). */
  rowIds(): Float64Array {
    return this.#ids.subarray(0, this.#count);
  }

  #reserve(rows: number): void {
    if (rows * this.dim <= this.#data.length && rows <= this.#ids.length) return;
    const cap = Math.max(rows, Math.ceil(this.#ids.length * 1.5), 16);
    const data = new Float32Array(cap * this.dim);
    data.set(this.vectors());
    const ids = new Float64Array(cap);
    ids.set(this.rowIds());
    this.#data = data;
    this.#ids = ids;
  }

  /** Appends rows; `ids` must be larger than every id present (the caller guarantees it). */
  add(ids: readonly number[], vectors: Float32Array): void {
    this.#reserve(this.#count + ids.length);
    this.#data.set(vectors, this.#count * this.dim);
    this.#ids.set(ids, this.#count);
    this.#count += ids.length;
  }

  /** Removes the rows of these ids (a set) into new arrays; returns how many went. */
  remove(ids: ReadonlySet<number>): number {
    const dim = this.dim;
    const keep: number[] = [];
    for (let r = 0; r < this.#count; r++) {
      if (!ids.has(this.#ids[r] as number)) keep.push(r);
    }
    const removed = this.#count - keep.length;
    if (removed === 0) return 0;
    // New arrays, not an in-place compaction: a search in flight reads the old ones.
    const cap = Math.max(keep.length, 16);
    const data = new Float32Array(cap * dim);
    const rowIds = new Float64Array(cap);
    keep.forEach((r, w) => {
      rowIds[w] = this.#ids[r] as number;
      data.set(this.#data.subarray(r * dim, (r + 1) * dim), w * dim);
    });
    this.#data = data;
    this.#ids = rowIds;
    this.#count = keep.length;
    return removed;
  }

  clear(): void {
    this.#data = new Float32Array(0);
    this.#ids = new Float64Array(0);
    this.#count = 0;
  }

  /** Exact top-k of `nq` queries; k is clamped to the size. Empty store: no hits. */
  async search(
    queries: Float32Array,
    nq: number,
    topk: number,
    metric: Metric,
    threads: number,
  ): Promise<RawHits> {
    if (this.#count === 0 || nq === 0) {
      return { k: 0, ids: new Float64Array(0), scores: new Float32Array(0) };
    }
    // A view, not a copy: like the rows, ids below the live count are never rewritten.
    const rowIds = this.rowIds();
    const r = await searchTopK(queries, this.vectors(), this.dim, topk, {
      metric,
      // A single query never needs more than one thread.
      threads: nq === 1 ? 1 : threads,
      // Safe: rows being searched are never rewritten (see the header).
      borrowGallery: true,
    });
    const ids = new Float64Array(r.ids.length);
    for (let i = 0; i < r.ids.length; i++) {
      const row = r.ids[i] as number;
      ids[i] = row < 0 ? -1 : (rowIds[row] as number);
    }
    return { k: r.k, ids, scores: r.scores };
  }
}
