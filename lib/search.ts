/**
 * Exact top-k search by the native blockwise GEMM (native/retrieval), off the main thread:
 * used by the Flat vector index and on its own; the retrieval evaluation (lib/evaluate.ts)
 * shares its argument checks.
 */
import { markAsUntransferable } from 'node:worker_threads';

import { captureCaller, InvalidArgumentError } from './errors.js';
import { nativeBinding } from './native.js';

/** An integer in [1, max], else an InvalidArgumentError naming `what`. */
export function positiveInt(v: unknown, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidArgumentError(`${what} must be an integer from 1 to ${max}, got ${String(v)}`);
  }
  return v;
}

/** The rows of `rows × dim` float32 features, else an InvalidArgumentError naming `what`. */
export function featureRows(f: unknown, dim: number, what: string): number {
  if (!(f instanceof Float32Array)) {
    throw new InvalidArgumentError(`${what} must be a Float32Array`);
  }
  if (f.length % dim !== 0) {
    throw new InvalidArgumentError(
      `${what} has ${f.length} values, not a multiple of dim (${dim})`,
    );
  }
  return f.length / dim;
}

export interface SearchTopKOptions {
  /** 'IP' (inner product, larger first; default) or 'L2' (squared distance, smaller first). */
  metric?: 'IP' | 'L2';
  /** Native threads. Default 1. */
  threads?: number;
  /**
   * Read the gallery in place instead of copying it on the calling thread (default false).
   * The caller must not change the gallery's values until the promise settles; the array is
   * kept alive meanwhile. Saves a full gallery copy per call (the Flat index uses it).
   *
   * The gallery's ArrayBuffer is marked untransferable (worker_threads.markAsUntransferable,
   * for good): moving it to another thread in a transfer list would free the memory the search
   * reads (Node 20 then copies it instead, Node 22 throws DataCloneError). Nor may the caller
   * detach it otherwise (ArrayBuffer.prototype.transfer()) before the promise settles.
   */
  borrowGallery?: boolean;
}

export interface SearchTopKResult {
  numQueries: number;
  /** Results per query: min(requested k, gallery rows). */
  k: number;
  /** Gallery row indices, row-major numQueries × k, best first; ties: lower index first. */
  ids: Int32Array;
  /** Inner products (IP) or squared L2 distances |q|² + |g|² − 2 q·g clamped at 0 (L2). */
  scores: Float32Array;
}

/**
 * Exact top-k search of every query row over the gallery rows (both `rows × dim` float32),
 * blockwise in native code off the main thread. Equal scores keep gallery order (lower index
 * first). k larger than the gallery is clamped to the gallery size.
 */
export async function searchTopK(
  queries: Float32Array,
  gallery: Float32Array,
  dim: number,
  k: number,
  options: SearchTopKOptions = {},
): Promise<SearchTopKResult> {
  const convert = captureCaller(searchTopK);
  positiveInt(dim, 'dim', 16777216);
  const nq = featureRows(queries, dim, 'queries');
  const ng = featureRows(gallery, dim, 'gallery');
  if (ng === 0) throw new InvalidArgumentError('the gallery is empty');
  positiveInt(k, 'k', 2147483647);
  const metric = options.metric ?? 'IP';
  if (metric !== 'IP' && metric !== 'L2') {
    throw new InvalidArgumentError(`metric must be 'IP' or 'L2', got ${String(metric)}`);
  }
  const threads = positiveInt(options.threads ?? 1, 'threads', 1024);
  try {
    const borrowGallery = options.borrowGallery ?? false;
    if (typeof borrowGallery !== 'boolean') {
      throw new InvalidArgumentError('borrowGallery must be a boolean');
    }
    if (borrowGallery && gallery.buffer instanceof ArrayBuffer)
      markAsUntransferable(gallery.buffer);
    const r = await nativeBinding().searchTopK(queries, gallery, dim, k, {
      metric,
      threads,
      borrowGallery,
    });
    return { numQueries: nq, k: r.k, ids: r.ids, scores: r.scores };
  } catch (err) {
    throw convert(err);
  }
}
