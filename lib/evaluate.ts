/**
 * Retrieval evaluation exactly as PaddleClas computes it for the image-feature module
 * (../shared/spec/paddlex-behaviour.md §8; ppcls/metric/metrics.py `Recallk`, `mAP`,
 * ppcls/engine/evaluation/retrieval.py), on features you already have. The work runs in native
 * code off the main thread (native/retrieval): L2 normalisation, similarity query · galleryᵀ by
 * `dnnl_sgemm` in chunks (the full nq × ng matrix never exists), ranking and metrics.
 *
 * Definitions:
 * - Ranking: each query ranks the whole gallery by descending similarity. **Ties: equal scores
 *   keep gallery order (the lower gallery index ranks first)**; PaddleClas leaves the order of
 *   ties to `paddle.argsort`, which is not stable, so its numbers with exact ties may differ.
 *   Nothing is excluded: an identical image in query and gallery is a correct match.
 * - Relevant items of a query: gallery items with its label.
 * - recall@k of a block = queries with a relevant item in the first k / queries of the block with
 *   at least one relevant item. AP = mean over all relevant items of the precision at their rank
 *   in the full ranking; mAP of a block = mean AP over its queries with a relevant item.
 * - Queries are split into blocks of `blockSize` (PaddleClas `sim_block_size`, default 64); the
 *   final value is Σ metric_block × block_length / num_query (not the plain mean over queries
 *   when some queries have no relevant item). Block values are float32 as in PaddleClas.
 * - A block in which no query has a relevant item is NaN in PaddleClas (0/0 in Recallk, np.nan
 *   in mAP), and NaN added into the sum makes the final metric NaN; we return NaN too, and
 *   {@link evalLogLine} prints `nan` as Python does.
 * - A gallery smaller than the largest k is an InvalidArgumentError naming both sizes
 *   (PaddleClas fails with an IndexError).
 */
import { captureCaller, InvalidArgumentError } from './errors.js';
import { nativeBinding, type NativeEvaluateResult } from './native.js';
import { featureRows, positiveInt } from './search.js';

/** One side of the evaluation: `rows × dim` float32 features (row-major) and one label per row. */
export interface LabeledFeatures {
  features: Float32Array;
  /** Integer class labels (numbers must be safe integers; bigints must fit in int64). */
  labels: ArrayLike<number | bigint>;
}

export interface EvaluateFeaturesInput {
  query: LabeledFeatures;
  gallery: LabeledFeatures;
  /** Feature dimension (values per row). */
  dim: number;
}

export interface EvaluateFeaturesOptions<K extends readonly number[] = readonly number[]> {
  /** Queries per metric block (PaddleClas `Global.sim_block_size`). Default 64. */
  blockSize?: number;
  /** The k of recall@k, distinct positive integers, in output order. Default [1, 5]. */
  topk?: K;
  /** L2-normalise every row first (PaddleClas `Global.feature_normalize`). Default true. */
  normalize?: boolean;
  /** Native threads for the GEMM and the ranking. Default 1. */
  threads?: number;
}

/**
 * Raw fractions (not rounded): `recall<k>` for every requested k, in topk order, then `mAP`.
 * With the default topk that is `{ recall1, recall5, mAP }`.
 */
export type RetrievalMetrics<K extends number = 1 | 5> = {
  [P in K as `recall${P}`]: number;
} & { mAP: number };

export interface EvaluationStats {
  numQuery: number;
  numGallery: number;
  /** Queries with at least one gallery item of their label. */
  numValidQuery: number;
  blocks: number;
  /** Blocks in which no query has a relevant item: each one makes every metric NaN. */
  emptyBlocks: number;
  /** Seconds: native phases, plus `prepareSeconds` (argument checks, label conversion, copy). */
  timing: NativeEvaluateResult['timing'] & { prepareSeconds: number; wallSeconds: number };
}

const DEFAULT_TOPK = [1, 5] as const;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Labels as int64: safe-integer numbers or int64 bigints, one per row. */
function toInt64Labels(labels: unknown, rows: number, what: string): BigInt64Array {
  if (labels instanceof BigInt64Array) {
    if (labels.length !== rows) {
      throw new InvalidArgumentError(`${what} has ${labels.length} labels for ${rows} rows`);
    }
    return labels;
  }
  if (
    typeof labels !== 'object' ||
    labels === null ||
    typeof (labels as { length?: unknown }).length !== 'number'
  ) {
    throw new InvalidArgumentError(`${what} must be an array-like of integer labels`);
  }
  const src = labels as ArrayLike<unknown>;
  if (src.length !== rows) {
    throw new InvalidArgumentError(`${what} has ${src.length} labels for ${rows} rows`);
  }
  const out = new BigInt64Array(rows);
  for (let i = 0; i < rows; i++) {
    const v = src[i];
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      out[i] = BigInt(v);
    } else if (typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX) {
      out[i] = v;
    } else {
      throw new InvalidArgumentError(
        `${what}[${i}] is ${typeof v === 'bigint' ? `${v}n` : String(v)}; labels must be integers (safe-integer numbers or int64 bigints)`,
      );
    }
  }
  return out;
}

function sideOf(input: EvaluateFeaturesInput, key: 'query' | 'gallery'): LabeledFeatures {
  const side = (input as unknown as Record<string, unknown>)[key];
  if (typeof side !== 'object' || side === null) {
    throw new InvalidArgumentError(`${key} must be an object { features, labels }`);
  }
  return side as LabeledFeatures;
}

function checkTopk(topk: unknown): number[] {
  if (!Array.isArray(topk) || topk.length === 0) {
    throw new InvalidArgumentError('topk must be a non-empty array of positive integers');
  }
  const seen = new Set<number>();
  for (const k of topk) {
    positiveInt(k, 'each topk value', 2147483647);
    if (seen.has(k as number))
      throw new InvalidArgumentError(`topk lists k = ${k as number} twice`);
    seen.add(k as number);
  }
  return topk as number[];
}

/**
 * recall@k (for every k of `topk`) and mAP of `query` against `gallery`, exactly as PaddleClas
 * (see the module comment), plus run statistics. Rejects with InvalidArgumentError
 * (PIF_INVALID_ARG) on bad shapes, labels, options, a gallery smaller than max(topk) or
 * non-finite features.
 */
export async function evaluateFeaturesWithStats<
  const K extends readonly number[] = typeof DEFAULT_TOPK,
>(
  input: EvaluateFeaturesInput,
  options: EvaluateFeaturesOptions<K> = {},
): Promise<{ metrics: RetrievalMetrics<K[number]>; stats: EvaluationStats }> {
  const convert = captureCaller(evaluateFeaturesWithStats);
  const t0 = performance.now();
  if (typeof input !== 'object' || input === null) {
    throw new InvalidArgumentError('input must be an object { query, gallery, dim }');
  }
  const dim = positiveInt(input.dim, 'dim', 16777216);
  const query = sideOf(input, 'query');
  const gallery = sideOf(input, 'gallery');
  const nq = featureRows(query.features, dim, 'query.features');
  const ng = featureRows(gallery.features, dim, 'gallery.features');
  if (nq === 0) throw new InvalidArgumentError('the query set is empty');
  if (ng === 0) throw new InvalidArgumentError('the gallery is empty');
  const blockSize = positiveInt(options.blockSize ?? 64, 'blockSize', 2147483647);
  const threads = positiveInt(options.threads ?? 1, 'threads', 1024);
  const normalize = options.normalize ?? true;
  if (typeof normalize !== 'boolean') throw new InvalidArgumentError('normalize must be a boolean');
  const topk = checkTopk(options.topk ?? DEFAULT_TOPK);
  const maxK = Math.max(...topk);
  if (ng < maxK) {
    throw new InvalidArgumentError(
      `the gallery has ${ng} item${ng === 1 ? '' : 's'}, fewer than k = ${maxK} (the largest topk): ` +
        `recall@${maxK} needs at least ${maxK} gallery items`,
    );
  }
  const ql = toInt64Labels(query.labels, nq, 'query.labels');
  const gl = toInt64Labels(gallery.labels, ng, 'gallery.labels');
  let r: NativeEvaluateResult;
  let prepareSeconds: number;
  try {
    const pending = nativeBinding().evaluateRetrieval(
      query.features,
      ql,
      gallery.features,
      gl,
      dim,
      {
        blockSize,
        topk: [...topk],
        normalize,
        threads,
      },
    );
    prepareSeconds = (performance.now() - t0) / 1000;
    r = await pending;
  } catch (err) {
    throw convert(err);
  }
  const metrics: Record<string, number> = {};
  r.topk.forEach((k, i) => {
    metrics[`recall${k}`] = r.recall[i] ?? Number.NaN;
  });
  metrics['mAP'] = r.mAP;
  return {
    metrics: metrics as RetrievalMetrics<K[number]>,
    stats: {
      numQuery: r.numQuery,
      numGallery: r.numGallery,
      numValidQuery: r.numValidQuery,
      blocks: r.blocks,
      emptyBlocks: r.emptyBlocks,
      timing: { ...r.timing, prepareSeconds, wallSeconds: (performance.now() - t0) / 1000 },
    },
  };
}

/**
 * recall@k (default recall1, recall5) and mAP of `query` against `gallery`, exactly as
 * PaddleClas' retrieval evaluation (see the module comment), as raw fractions. NaN when some
 * block of `blockSize` queries has no query with a relevant gallery item (as PaddleClas).
 */
export async function evaluateFeatures<const K extends readonly number[] = typeof DEFAULT_TOPK>(
  input: EvaluateFeaturesInput,
  options: EvaluateFeaturesOptions<K> = {},
): Promise<RetrievalMetrics<K[number]>> {
  const convert = captureCaller(evaluateFeatures);
  try {
    return (await evaluateFeaturesWithStats(input, options)).metrics;
  } catch (err) {
    throw convert(err);
  }
}

/** Exact bits of a finite non-negative double: value = mant × 2^exp. */
function decompose(x: number): { mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const e = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  return e === 0 ? { mant: frac, exp: -1074 } : { mant: frac | (1n << 52n), exp: e - 1075 };
}

/**
 * Python's `f"{x:.{digits}f}"`: the exact binary value rounded half to even (JavaScript's
 * toFixed rounds exact halves up: (0.015625).toFixed(5) is "0.01563", Python gives "0.01562").
 * NaN and infinities as Python spells them: "nan", "inf", "-inf".
 */
export function formatFixedPy(x: number, digits = 5): string {
  if (!Number.isInteger(digits) || digits < 0 || digits > 100) {
    throw new InvalidArgumentError('digits must be an integer from 0 to 100');
  }
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  const neg = x < 0 || Object.is(x, -0);
  const { mant, exp } = decompose(Math.abs(x));
  const scaled = mant * 10n ** BigInt(digits);
  let n: bigint;
  if (exp >= 0) {
    n = scaled << BigInt(exp);
  } else {
    const den = 1n << BigInt(-exp);
    const q = scaled / den;
    const twice = 2n * (scaled % den);
    n = twice > den || (twice === den && (q & 1n) === 1n) ? q + 1n : q;
  }
  const s = n.toString().padStart(digits + 1, '0');
  const body = digits === 0 ? s : `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  return `${neg ? '-' : ''}${body}`;
}

/**
 * A metric as PaddleX reports it: PaddleX parses the 5-decimal value of PaddleClas' log line
 * (`f"{value:.5f}"`, then Python `float()`), so this is the double nearest to that 5-decimal
 * string. NaN and infinities pass through (PaddleX's regex finds no number in "nan").
 */
export function roundMetric(x: number): number {
  if (!Number.isFinite(x)) return x;
  return Number(formatFixedPy(x, 5));
}

/**
 * PaddleClas' evaluation log line, `[Eval][Epoch 0][Avg]recall1: 0.xxxxx, recall5: 0.xxxxx,
 * mAP: 0.xxxxx`: every metric in the object's key order, five decimals, Python formatting.
 */
export function evalLogLine(metrics: Readonly<Record<string, number>>, epoch = 0): string {
  const parts = Object.entries(metrics).map(([k, v]) => `${k}: ${formatFixedPy(v, 5)}`);
  return `[Eval][Epoch ${epoch}][Avg]${parts.join(', ')}`;
}
