// Retrieval evaluation (lib/evaluate.ts, native/retrieval): recall@k and mAP with PaddleClas'
// definitions (ppcls/metric/metrics.py Recallk/mAP, ppcls/engine/evaluation/retrieval.py):
// hand-computed cases (ties, queries without relevant items, block weighting, identical images,
// NaN blocks), an independent straightforward JS reference (full stable sort per query) on
// random data with forced ties, exact top-k search against brute force, Python-compatible
// 5-decimal formatting, and typed errors for bad inputs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import { InvalidArgumentError } from '../lib/errors.js';
import {
  evalLogLine,
  evaluateFeatures,
  evaluateFeaturesWithStats,
  formatFixedPy,
  roundMetric,
} from '../lib/evaluate.js';
import { mulberry32 } from '../lib/rng.js';
import { searchTopK } from '../lib/search.js';
import { needNative } from './helpers/native.js';

// ---------------------------------------------------------------------------
// Helpers

function randInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function f32(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

/** The evaluateFeatures input for hand-written 2-D features: rows of [x, y] and their labels. */
function input2d(
  query: number[][],
  queryLabels: (number | bigint)[],
  gallery: number[][],
  galleryLabels: (number | bigint)[],
) {
  return {
    query: { features: f32(query), labels: queryLabels },
    gallery: { features: f32(gallery), labels: galleryLabels },
    dim: 2,
  };
}

function close(actual: number, expected: number, what: string, tol = 1e-6): void {
  if (Number.isNaN(expected)) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
    return;
  }
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (diff ${Math.abs(actual - expected)})`,
  );
}

function closeMetrics(
  actual: Readonly<Record<string, number>>,
  expected: Readonly<Record<string, number>>,
  what: string,
): void {
  assert.deepEqual(Object.keys(actual), Object.keys(expected), `${what}: keys`);
  for (const [k, v] of Object.entries(expected)) close(actual[k] ?? Number.NaN, v, `${what} ${k}`);
}

/** Row-wise x / max(||x||, 1e-12) as the native code does it (norm in double, float32 ops). */
function normalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[r * dim + j]! * x[r * dim + j]!;
    const denom = Math.max(Math.fround(Math.sqrt(ss)), Math.fround(1e-12));
    for (let j = 0; j < dim; j++) out[r * dim + j] = x[r * dim + j]! / denom;
  }
  return out;
}

interface RefOptions {
  blockSize: number;
  topk: readonly number[];
  normalize: boolean;
}

/**
 * The straightforward reference: for every query a full stable sort of the gallery by
 * descending similarity (ties: lower gallery index first), then Recallk / mAP per block as
 * PaddleClas writes them, accumulated as Σ metric_block × block_len / num_query.
 */
function reference(
  query: Float32Array,
  queryLabels: readonly number[],
  gallery: Float32Array,
  galleryLabels: readonly number[],
  dim: number,
  opts: RefOptions,
): Record<string, number> {
  const q = opts.normalize ? normalizeRows(query, dim) : query;
  const g = opts.normalize ? normalizeRows(gallery, dim) : gallery;
  const nq = q.length / dim;
  const ng = g.length / dim;
  const out: Record<string, number> = {};
  for (const k of opts.topk) out[`recall${k}`] = 0;
  out['mAP'] = 0;
  const sims = new Float64Array(ng);
  const order = Array.from({ length: ng }, (_, i) => i);
  for (let s = 0; s < nq; s += opts.blockSize) {
    const n = Math.min(opts.blockSize, nq - s);
    let valid = 0;
    let apSum = 0;
    const hits = opts.topk.map(() => 0);
    for (let qi = s; qi < s + n; qi++) {
      for (let j = 0; j < ng; j++) {
        let dot = 0;
        for (let t = 0; t < dim; t++) dot += q[qi * dim + t]! * g[j * dim + t]!;
        sims[j] = dot;
      }
      for (let j = 0; j < ng; j++) order[j] = j;
      order.sort((a, b) => sims[b]! - sims[a]! || a - b);
      const flags = order.map((j) => galleryLabels[j] === queryLabels[qi]);
      const first = flags.indexOf(true);
      if (first < 0) continue;
      valid++;
      opts.topk.forEach((k, t) => {
        if (first < k) hits[t]!++;
      });
      let found = 0;
      let sum = 0;
      flags.forEach((f, r) => {
        if (f) {
          found++;
          sum += found / (r + 1);
        }
      });
      apSum += sum / found;
    }
    opts.topk.forEach((k, t) => {
      out[`recall${k}`]! += ((valid === 0 ? Number.NaN : hits[t]! / valid) * n) / nq;
    });
    out['mAP'] += ((valid === 0 ? Number.NaN : apSum / valid) * n) / nq;
  }
  return out;
}

async function rejectsWith(
  p: Promise<unknown> | (() => Promise<unknown>),
  re: RegExp,
  what: string,
): Promise<void> {
  await assert.rejects(typeof p === 'function' ? p() : p, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `${what}: ${String(err)}`);
    assert.equal(err.code, 'PIF_INVALID_ARG');
    assert.match((err as Error).message, re, what);
    return true;
  });
}

// ---------------------------------------------------------------------------
// Hand-computed cases

test('ties keep gallery order: a tie at rank 0 decides recall@1; AP over all relevant items', async (t) => {
  if (!needNative(t)) return;
  // q0 = (1,0), label 1. Similarities: g0 1, g1 1, g2 0, g3 0, g4 0, g5 -1.
  // Ranking g0 g1 g2 g3 g4 g5; relevant (label 1) g1, g2, g5 at ranks 1, 2, 5:
  // recall1 0, recall5 1, AP = (1/2 + 2/3 + 3/6) / 3 = 5/9.
  // q1 = (0,1), label 3: ranking g2 g3 g4 g0 g1 g5, relevant g4 at rank 2: AP 1/3.
  const gallery = [
    [1, 0],
    [1, 0],
    [0, 1],
    [0, 1],
    [0, 1],
    [-1, 0],
  ];
  const gl = [2, 1, 1, 2, 3, 1];
  const m = await evaluateFeatures(
    input2d(
      [
        [1, 0],
        [0, 1],
      ],
      [1, 3],
      gallery,
      gl,
    ),
    { normalize: false },
  );
  close(m.recall1, 0, 'recall1');
  close(m.recall5, 1, 'recall5');
  close(m.mAP, (5 / 9 + 1 / 3) / 2, 'mAP');
  assert.deepEqual(Object.keys(m), ['recall1', 'recall5', 'mAP']);
  // The relevant item first among equals: now recall@1 hits.
  const m2 = await evaluateFeatures(input2d([[1, 0]], [2], gallery, gl), {
    normalize: false,
    topk: [1, 3],
  });
  close(m2.recall1, 1, 'recall1 (relevant first among equals)');
  close(m2.recall3, 1, 'recall3');
  close(m2.mAP, (1 / 1 + 2 / 4) / 2, 'mAP (g0 rank 0, g3 rank 3)');
  assert.deepEqual(Object.keys(m2), ['recall1', 'recall3', 'mAP']);
});

test('block weighting: nq = 70, blockSize 64, queries without relevant items (not the plain mean)', async (t) => {
  if (!needNative(t)) return;
  // Gallery: g0 = (1,0) label 0; g1..g4 = (0,1) labels 1..4.
  const gl = [0, 1, 2, 3, 4];
  // Block 1 (64 queries): 32 x ((1,0), label 0): g0 at rank 0 (AP 1); 32 x label 99: no relevant.
  // Block 2 (6 queries): (0,1), label 0: g0 ties g5.. no: g1..g4 score 1, g0 score 0 -> rank 4,
  // recall1 0, recall5 1, AP 1/5.
  const rows: number[][] = [];
  const ql: number[] = [];
  for (let i = 0; i < 64; i++) {
    rows.push(i % 2 === 0 ? [1, 0] : [0.6, 0.8]);
    ql.push(i % 2 === 0 ? 0 : 99);
  }
  for (let i = 0; i < 6; i++) {
    rows.push([0, 1]);
    ql.push(0);
  }
  const input = input2d(
    rows,
    ql,
    [
      [1, 0],
      [0, 1],
      [0, 1],
      [0, 1],
      [0, 1],
    ],
    gl,
  );
  const { metrics: m, stats } = await evaluateFeaturesWithStats(input);
  close(m.recall1, (1 * 64) / 70 + (0 * 6) / 70, 'recall1');
  close(m.recall5, 1, 'recall5');
  close(m.mAP, (1 * 64) / 70 + (0.2 * 6) / 70, 'mAP');
  // The plain mean over the 38 queries with a relevant item would differ.
  assert.ok(Math.abs(m.recall1 - 32 / 38) > 0.05);
  assert.equal(stats.numQuery, 70);
  assert.equal(stats.numValidQuery, 38);
  assert.equal(stats.blocks, 2);
  assert.equal(stats.emptyBlocks, 0);
  closeMetrics(
    m,
    reference(input.query.features, ql, input.gallery.features, gl, 2, {
      blockSize: 64,
      topk: [1, 5],
      normalize: true,
    }),
    'reference',
  );
  // One block of 70: the plain mean.
  const one = await evaluateFeatures(input, { blockSize: 70 });
  close(one.recall1, 32 / 38, 'recall1, one block');
  close(one.mAP, (32 + 6 * 0.2) / 38, 'mAP, one block');
});

test('an identical image in query and gallery counts as a correct match', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(7);
  const dim = 8;
  const gallery = Float32Array.from({ length: 12 * dim }, () => rnd() * 2 - 1);
  const gl = Array.from({ length: 12 }, (_, i) => i); // every label once
  const picks = [3, 7, 11];
  const query = new Float32Array(picks.length * dim);
  picks.forEach((p, i) => {
    query.set(gallery.subarray(p * dim, (p + 1) * dim), i * dim);
  });
  const m = await evaluateFeatures({
    query: { features: query, labels: picks },
    gallery: { features: gallery, labels: gl },
    dim,
  });
  assert.deepEqual(m, { recall1: 1, recall5: 1, mAP: 1 });
});

test('a block with no query having a relevant item makes the metrics NaN (as PaddleClas)', async (t) => {
  if (!needNative(t)) return;
  const gallery = [
    [1, 0],
    [0, 1],
    [1, 1],
    [-1, 0],
    [0, -1],
  ];
  const gl = [1, 2, 3, 4, 5];
  const query = [
    [1, 0],
    [0, 1],
    [1, 0],
    [0, 1],
  ];
  const ql = [1, 2, 77, 88]; // the last two have no relevant gallery item
  const input = input2d(query, ql, gallery, gl);
  const { metrics: m, stats } = await evaluateFeaturesWithStats(input, { blockSize: 2 });
  assert.ok(Number.isNaN(m.recall1) && Number.isNaN(m.recall5) && Number.isNaN(m.mAP));
  assert.equal(stats.emptyBlocks, 1);
  assert.equal(evalLogLine(m), '[Eval][Epoch 0][Avg]recall1: nan, recall5: nan, mAP: nan');
  assert.ok(Number.isNaN(roundMetric(m.mAP)));
  // The same queries in one block: defined, and weighted by the whole block.
  const whole = await evaluateFeatures(input, { blockSize: 4 });
  assert.deepEqual(whole, { recall1: 1, recall5: 1, mAP: 1 });
  // Blocks of 3: block 1 (q0..q2) valid 2 of 3, block 2 (q3) empty -> NaN.
  const three = await evaluateFeatures(input, { blockSize: 3 });
  assert.ok(Number.isNaN(three.recall1));
});

test('zero feature rows stay zero: every score ties and gallery order decides', async (t) => {
  if (!needNative(t)) return;
  const gallery = [
    [1, 2],
    [3, 4],
    [5, 6],
    [7, 8],
    [9, 1],
  ];
  const m = await evaluateFeatures(input2d([[0, 0]], [5], gallery, [1, 2, 3, 4, 5]));
  // All similarities 0: the relevant item (index 4) ranks 4th (0-based).
  closeMetrics(m, { recall1: 0, recall5: 1, mAP: 1 / 5 }, 'zero query');
});

test('gallery smaller than the largest k: a clear InvalidArgumentError naming both sizes', async (t) => {
  const native = needNative(t);
  if (!native) return;
  const gallery = f32([
    [1, 0],
    [0, 1],
    [1, 1],
    [-1, 0],
  ]);
  const input = {
    query: { features: f32([[1, 0]]), labels: [1] },
    gallery: { features: gallery, labels: [1, 2, 3, 4] },
    dim: 2,
  };
  await rejectsWith(evaluateFeatures(input), /gallery has 4 items, fewer than k = 5/, 'ts check');
  // The native check says the same.
  await assert.rejects(
    native.evaluateRetrieval(
      input.query.features,
      BigInt64Array.from([1n]),
      gallery,
      BigInt64Array.from([1n, 2n, 3n, 4n]),
      2,
      {},
    ),
    (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'PIF_INVALID_ARG');
      assert.match((err as Error).message, /gallery has 4 items, fewer than k = 5/);
      return true;
    },
  );
  // topk [1, 4] fits.
  const m = await evaluateFeatures(input, { topk: [1, 4] });
  assert.deepEqual(Object.keys(m), ['recall1', 'recall4', 'mAP']);
  close(m.recall1, 1, 'recall1');
});

test('labels: large int64 bigints and numbers compare exactly', async (t) => {
  if (!needNative(t)) return;
  const big = 2n ** 62n + 1n;
  const gallery = [
    [1, 0],
    [0.9, 0.1],
    [0, 1],
    [-1, 0],
    [0, -1],
  ];
  const query = [
    [1, 0],
    [0, 1],
  ];
  const m = await evaluateFeatures(
    input2d(query, [big, -3], gallery, [big - 1n, big, -3n, 2n ** 62n, -3n]),
  );
  // q0: ranking g0 g1 ...; relevant g1 at rank 1 -> AP 1/2. q1: ranking g2 g1 g0 g3 g4: relevant
  // g2 rank 0 and g4 rank 4 -> AP (1 + 2/5) / 2.
  close(m.recall1, 0.5, 'recall1');
  close(m.recall5, 1, 'recall5');
  close(m.mAP, (0.5 + 0.7) / 2, 'mAP');
});

// ---------------------------------------------------------------------------
// Random data against the reference

/** Features with exact float32 dot products: small integers, or ±1 rows of dim 4^k (normalised exactly). */
function quantised(rnd: () => number, rows: number, dim: number, signs: boolean): Float32Array {
  return Float32Array.from({ length: rows * dim }, () =>
    signs ? (rnd() < 0.5 ? -1 : 1) : randInt(rnd, -2, 2),
  );
}

test('random data with forced ties: equal to the straightforward reference (1e-6)', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(2024);
  for (let trial = 0; trial < 60; trial++) {
    const signs = trial % 2 === 1; // ±1 rows of dim 4 or 16 with normalisation, else integers raw
    const dim = signs ? (rnd() < 0.5 ? 4 : 16) : randInt(rnd, 1, 9);
    const normalize = signs; // exact: ±1 rows of dim 4^k normalise to ±2^-k
    const ng = randInt(rnd, 5, 90);
    const nq = randInt(rnd, 1, 150);
    const classes = randInt(rnd, 1, 12);
    const missing = trial % 3 === 0 ? 3 : 0; // query labels absent from the gallery
    const blockSize = [1, 3, 7, 16, 64, 200][randInt(rnd, 0, 5)]!;
    const topkPool = [1, 2, 3, 5, 10];
    const topk = topkPool.filter((k) => k <= ng && rnd() < 0.6);
    if (topk.length === 0) topk.push(1);
    const gallery = quantised(rnd, ng, dim, signs);
    const query = quantised(rnd, nq, dim, signs);
    const gl = Array.from({ length: ng }, () => randInt(rnd, 0, classes - 1));
    const ql = Array.from({ length: nq }, () => randInt(rnd, 0, classes - 1 + missing));
    const opts = { blockSize, topk, normalize };
    const threads = trial % 5 === 4 ? 2 : 1;
    const m = await evaluateFeatures(
      { query: { features: query, labels: ql }, gallery: { features: gallery, labels: gl }, dim },
      { ...opts, threads },
    );
    const want = reference(query, ql, gallery, gl, dim, opts);
    closeMetrics(
      m,
      want,
      `trial ${trial} (nq ${nq}, ng ${ng}, dim ${dim}, block ${blockSize}, topk ${topk.join(',')}, normalize ${normalize})`,
    );
  }
});

test('fine-grained exact features (few ties, many relevant items): equal to the reference', async (t) => {
  if (!needNative(t)) return;
  // Multiples of 1/256 in [-1, 1], dim <= 16, no normalisation: every dot product is a multiple
  // of 2^-16 below 16, exact in float32 and in double, and most scores are distinct.
  const rnd = mulberry32(77);
  for (let trial = 0; trial < 8; trial++) {
    const dim = randInt(rnd, 1, 16);
    const ng = randInt(rnd, 200, 3000);
    const nq = randInt(rnd, 1, 60);
    const fine = (n: number): Float32Array =>
      Float32Array.from({ length: n * dim }, () => randInt(rnd, -256, 256) / 256);
    const gallery = fine(ng);
    const query = fine(nq);
    const classes = randInt(rnd, 1, 6);
    const gl = Array.from({ length: ng }, () => randInt(rnd, 0, classes - 1));
    const ql = Array.from({ length: nq }, () => randInt(rnd, 0, classes - 1));
    const opts = { blockSize: randInt(rnd, 1, 64), topk: [1, 5, 50], normalize: false };
    const m = await evaluateFeatures(
      { query: { features: query, labels: ql }, gallery: { features: gallery, labels: gl }, dim },
      { ...opts, threads: 1 + (trial % 2) },
    );
    closeMetrics(
      m,
      reference(query, ql, gallery, gl, dim, opts),
      `fine trial ${trial} (ng ${ng}, dim ${dim})`,
    );
  }
});

test('random continuous features (no near ties): equal to the reference (1e-6)', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(99);
  for (let trial = 0; trial < 12; trial++) {
    const dim = randInt(rnd, 2, 32);
    const ng = randInt(rnd, 10, 60);
    const nq = randInt(rnd, 5, 120);
    const gallery = Float32Array.from({ length: ng * dim }, () => rnd() * 2 - 1);
    const g = normalizeRows(gallery, dim);
    const query = new Float32Array(nq * dim);
    // Redraw a query until all its similarities are 1e-4 apart, so float32 GEMM and the double
    // reference rank identically.
    for (let i = 0; i < nq; i++) {
      for (;;) {
        const row = Float32Array.from({ length: dim }, () => rnd() * 2 - 1);
        const qn = normalizeRows(row, dim);
        const s: number[] = [];
        for (let j = 0; j < ng; j++) {
          let d = 0;
          for (let u = 0; u < dim; u++) d += qn[u]! * g[j * dim + u]!;
          s.push(d);
        }
        s.sort((a, b) => a - b);
        if (s.every((v, k) => k === 0 || v - s[k - 1]! > 1e-4)) {
          query.set(row, i * dim);
          break;
        }
      }
    }
    const classes = randInt(rnd, 2, 8);
    const gl = Array.from({ length: ng }, () => randInt(rnd, 0, classes - 1));
    const ql = Array.from({ length: nq }, () => randInt(rnd, 0, classes - 1));
    const opts = { blockSize: randInt(rnd, 1, 70), topk: [1, 5], normalize: true };
    const m = await evaluateFeatures(
      { query: { features: query, labels: ql }, gallery: { features: gallery, labels: gl }, dim },
      opts,
    );
    closeMetrics(m, reference(query, ql, gallery, gl, dim, opts), `continuous trial ${trial}`);
  }
});

test('several similarity chunks (large gallery) with massive ties: equal to the reference', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(5);
  const dim = 3;
  const ng = 70000; // 32 MiB / (4 * 70000) = 119 query rows per GEMM chunk
  const nq = 130;
  const gallery = quantised(rnd, ng, dim, false).map((x) => Math.sign(x));
  const query = quantised(rnd, nq, dim, false).map((x) => Math.sign(x));
  const gl = Array.from({ length: ng }, () => randInt(rnd, 0, 49));
  const ql = Array.from({ length: nq }, () => randInt(rnd, 0, 50));
  const opts = { blockSize: 64, topk: [1, 5, 100], normalize: false };
  const m = await evaluateFeatures(
    { query: { features: query, labels: ql }, gallery: { features: gallery, labels: gl }, dim },
    opts,
  );
  // Reference with a keyed numeric sort (integer scores in [-3, 3], exact keys).
  const out: Record<string, number> = { recall1: 0, recall5: 0, recall100: 0, mAP: 0 };
  const keys = new Float64Array(ng);
  for (let s = 0; s < nq; s += 64) {
    const n = Math.min(64, nq - s);
    let valid = 0;
    let apSum = 0;
    const hits = [0, 0, 0];
    for (let qi = s; qi < s + n; qi++) {
      for (let j = 0; j < ng; j++) {
        let d = 0;
        for (let u = 0; u < dim; u++) d += query[qi * dim + u]! * gallery[j * dim + u]!;
        keys[j] = -(d * 2 ** 21) + j; // ascending key = descending score, then index
      }
      const order = Float64Array.from(keys).sort();
      let found = 0;
      let sum = 0;
      let first = -1;
      order.forEach((key, r) => {
        const j = ((key % 2 ** 21) + 2 ** 21) % 2 ** 21;
        if (gl[j] === ql[qi]) {
          if (first < 0) first = r;
          found++;
          sum += found / (r + 1);
        }
      });
      if (first < 0) continue;
      valid++;
      apSum += sum / found;
      [1, 5, 100].forEach((k, u) => {
        if (first < k) hits[u]!++;
      });
    }
    [1, 5, 100].forEach((k, u) => {
      out[`recall${k}`]! += ((valid === 0 ? Number.NaN : hits[u]! / valid) * n) / nq;
    });
    out['mAP']! += ((valid === 0 ? Number.NaN : apSum / valid) * n) / nq;
  }
  closeMetrics(m, out, 'chunked');
});

// ---------------------------------------------------------------------------
// searchTopK

function bruteTopK(
  q: Float32Array,
  g: Float32Array,
  dim: number,
  k: number,
  metric: 'IP' | 'L2',
): { ids: number[]; scores: number[] } {
  const nq = q.length / dim;
  const ng = g.length / dim;
  const kk = Math.min(k, ng);
  const ids: number[] = [];
  const scores: number[] = [];
  const sign = metric === 'IP' ? 1 : -1; // rank by key = sign * score, larger first
  const keys = new Float64Array(ng);
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < ng; j++) {
      let v = 0;
      for (let u = 0; u < dim; u++) {
        const d =
          metric === 'IP' ? q[i * dim + u]! * g[j * dim + u]! : q[i * dim + u]! - g[j * dim + u]!;
        v += metric === 'IP' ? d : d * d;
      }
      keys[j] = sign * v;
    }
    // Selection: kk passes, each taking the best remaining (larger key, then lower index).
    const taken = new Set<number>();
    for (let r = 0; r < kk; r++) {
      let best = -1;
      for (let j = 0; j < ng; j++) {
        if (taken.has(j)) continue;
        if (best < 0 || keys[j]! > keys[best]!) best = j;
      }
      taken.add(best);
      ids.push(best);
      scores.push(sign * keys[best]!);
    }
  }
  return { ids, scores };
}

test('searchTopK equals brute force (IP and L2, ties by gallery index, exact scores)', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(11);
  for (let trial = 0; trial < 40; trial++) {
    const dim = randInt(rnd, 1, 12);
    const ng = randInt(rnd, 1, 300);
    const nq = randInt(rnd, 0, 40);
    const k = randInt(rnd, 1, 20);
    const g = quantised(rnd, ng, dim, false);
    const q = quantised(rnd, nq, dim, false);
    for (const metric of ['IP', 'L2'] as const) {
      const borrowGallery = trial % 2 === 0; // reading the gallery in place changes nothing
      const r = await searchTopK(q, g, dim, k, {
        metric,
        threads: trial % 3 === 0 ? 2 : 1,
        borrowGallery,
      });
      const want = bruteTopK(q, g, dim, k, metric);
      assert.equal(r.k, Math.min(k, ng));
      assert.equal(r.numQueries, nq);
      assert.deepEqual([...r.ids], want.ids, `trial ${trial} ${metric} ids`);
      assert.deepEqual([...r.scores], want.scores, `trial ${trial} ${metric} scores`);
    }
  }
});

test('searchTopK on continuous data and several chunks matches brute force', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(12);
  const dim = 8;
  const ng = 40000; // 209 query rows per chunk
  const nq = 300;
  const g = Float32Array.from({ length: ng * dim }, () => rnd() * 2 - 1);
  const q = Float32Array.from({ length: nq * dim }, () => rnd() * 2 - 1);
  for (const metric of ['IP', 'L2'] as const) {
    const r = await searchTopK(q, g, dim, 5, { metric });
    const want = bruteTopK(q, g, dim, 5, metric);
    for (let i = 0; i < nq * 5; i++) {
      // Ids agree unless two brute-force scores are within float32 round-off.
      const a = r.ids[i]!;
      const b = want.ids[i]!;
      if (a !== b) {
        assert.ok(
          Math.abs(r.scores[i]! - want.scores[i]!) < 1e-4,
          `${metric} row ${Math.floor(i / 5)}: ${a} vs ${b}`,
        );
      }
      close(r.scores[i]!, want.scores[i]!, `${metric} score ${i}`, 1e-4);
    }
  }
});

// ---------------------------------------------------------------------------
// Formatting

test('formatFixedPy rounds like Python %.5f (half to even on the exact binary value)', () => {
  assert.equal(formatFixedPy(0.015625), '0.01562'); // 1/64: exact half, JS toFixed gives 0.01563
  assert.equal(formatFixedPy(0.046875), '0.04688');
  assert.equal(formatFixedPy(0.078125), '0.07812');
  assert.equal(formatFixedPy(0.03125), '0.03125');
  assert.equal(formatFixedPy(1), '1.00000');
  assert.equal(formatFixedPy(0), '0.00000');
  assert.equal(formatFixedPy(-0), '-0.00000');
  assert.equal(formatFixedPy(0.123455), '0.12345'); // just below the half in binary
  assert.equal(formatFixedPy(Number.NaN), 'nan');
  assert.equal(formatFixedPy(Infinity), 'inf');
  assert.equal(formatFixedPy(2 / 3, 3), '0.667');
  assert.equal(roundMetric(0.015625), 0.01562);
  assert.equal(roundMetric(0.8421052631578947), 0.84211);
  assert.equal(
    evalLogLine({ recall1: 0.5, recall5: 1, mAP: 0.015625 }),
    '[Eval][Epoch 0][Avg]recall1: 0.50000, recall5: 1.00000, mAP: 0.01562',
  );
  assert.equal(
    evalLogLine({ recall1: 0.25, mAP: 0.1 }, 3),
    '[Eval][Epoch 3][Avg]recall1: 0.25000, mAP: 0.10000',
  );
});

test('formatFixedPy equals Python on many values (when python3 is available)', (t) => {
  const rnd = mulberry32(3);
  const values: number[] = [];
  for (let d = 1; d <= 4096; d *= 2)
    for (let n = 0; n <= d; n += Math.max(1, d >> 6)) values.push(n / d);
  for (let i = 0; i < 2000; i++) values.push(rnd());
  for (let i = 0; i < 500; i++) values.push(randInt(rnd, 0, 70) / 70, randInt(rnd, 0, 38) / 38);
  const r = spawnSync(
    'python3',
    ['-c', 'import sys\nfor l in sys.stdin: print("%.5f" % float(l))'],
    {
      input: values.map((v) => v.toPrecision(17)).join('\n') + '\n',
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) {
    t.skip('python3 not available');
    return;
  }
  const py = r.stdout.trim().split('\n');
  values.forEach((v, i) => {
    assert.equal(formatFixedPy(v), py[i], `value ${v.toPrecision(17)}`);
    assert.equal(roundMetric(v), Number(py[i]));
  });
});

// ---------------------------------------------------------------------------
// Bad inputs

test('bad inputs are InvalidArgumentErrors, never crashes', async (t) => {
  const native = needNative(t);
  if (!native) return;
  const g = f32([
    [1, 0],
    [0, 1],
    [1, 1],
    [-1, 0],
    [0, -1],
  ]);
  const gl = [1, 2, 3, 4, 5];
  const q = f32([[1, 0]]);
  const ok = { query: { features: q, labels: [1] }, gallery: { features: g, labels: gl }, dim: 2 };
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['dim 0', () => evaluateFeatures({ ...ok, dim: 0 }), /dim must be an integer/],
    ['dim 1.5', () => evaluateFeatures({ ...ok, dim: 1.5 }), /dim must be an integer/],
    [
      'Float64Array features',
      () =>
        evaluateFeatures({
          ...ok,
          query: { features: new Float64Array(2) as unknown as Float32Array, labels: [1] },
        }),
      /query.features must be a Float32Array/,
    ],
    [
      'length not a multiple of dim',
      () => evaluateFeatures({ ...ok, gallery: { features: g.subarray(0, 9), labels: gl } }),
      /gallery.features has 9 values, not a multiple of dim \(2\)/,
    ],
    [
      'label count',
      () => evaluateFeatures({ ...ok, gallery: { features: g, labels: [1, 2] } }),
      /2 labels for 5 rows/,
    ],
    [
      'fractional label',
      () => evaluateFeatures({ ...ok, query: { features: q, labels: [1.5] } }),
      /labels must be integers/,
    ],
    [
      'NaN label',
      () => evaluateFeatures({ ...ok, query: { features: q, labels: [Number.NaN] } }),
      /labels must be integers/,
    ],
    [
      'bigint out of int64',
      () => evaluateFeatures({ ...ok, query: { features: q, labels: [2n ** 63n] } }),
      /labels must be integers/,
    ],
    [
      'labels not array-like',
      () => evaluateFeatures({ ...ok, query: { features: q, labels: 5 as unknown as number[] } }),
      /array-like/,
    ],
    [
      'NaN feature',
      () =>
        evaluateFeatures({
          ...ok,
          gallery: {
            features: f32([
              [1, 0],
              [0, 1],
              [1, Number.NaN],
              [-1, 0],
              [0, -1],
            ]),
            labels: gl,
          },
        }),
      /gallery features: row 2, column 1 is NaN/,
    ],
    [
      'infinite feature',
      () => evaluateFeatures({ ...ok, query: { features: f32([[Infinity, 0]]), labels: [1] } }),
      /query features: row 0, column 0 is infinite/,
    ],
    [
      'overflowing similarities',
      () =>
        evaluateFeatures(
          { ...ok, query: { features: f32([[3e38, 0]]), labels: [1] } },
          { normalize: false },
        ),
      /overflow float32/,
    ],
    [
      'empty query set',
      () => evaluateFeatures({ ...ok, query: { features: new Float32Array(0), labels: [] } }),
      /query set is empty/,
    ],
    ['blockSize 0', () => evaluateFeatures(ok, { blockSize: 0 }), /blockSize must be an integer/],
    ['threads 0', () => evaluateFeatures(ok, { threads: 0 }), /threads must be an integer/],
    ['topk []', () => evaluateFeatures(ok, { topk: [] }), /topk must be a non-empty array/],
    ['topk [0]', () => evaluateFeatures(ok, { topk: [0] }), /topk value must be an integer/],
    ['topk [1, 1]', () => evaluateFeatures(ok, { topk: [1, 1] }), /k = 1 twice/],
    [
      'normalize string',
      () => evaluateFeatures(ok, { normalize: 'yes' as unknown as boolean }),
      /normalize must be a boolean/,
    ],
    ['input null', () => evaluateFeatures(null as unknown as typeof ok), /input must be an object/],
    ['searchTopK k 0', () => searchTopK(q, g, 2, 0), /k must be an integer/],
    [
      'searchTopK metric',
      () => searchTopK(q, g, 2, 1, { metric: 'cos' as 'IP' }),
      /metric must be 'IP' or 'L2'/,
    ],
    [
      'searchTopK empty gallery',
      () => searchTopK(q, new Float32Array(0), 2, 1),
      /gallery is empty/,
    ],
    [
      'searchTopK NaN',
      () => searchTopK(f32([[Number.NaN, 1]]), g, 2, 1),
      /queries: row 0, column 0 is NaN/,
    ],
    ['searchTopK shape', () => searchTopK(q, g.subarray(0, 3), 2, 1), /not a multiple of dim/],
  ];
  for (const [what, fn, re] of cases) await rejectsWith(fn, re, what);

  // The native binding itself refuses malformed arguments with PIF_INVALID_ARG.
  const nativeCases: [string, () => Promise<unknown>][] = [
    [
      'labels not BigInt64Array',
      () =>
        native.evaluateRetrieval(
          q,
          new Float64Array([1]) as unknown as BigInt64Array,
          g,
          BigInt64Array.from([1n, 2n, 3n, 4n, 5n]),
          2,
          {},
        ),
    ],
    [
      'label count',
      () =>
        native.evaluateRetrieval(
          q,
          BigInt64Array.from([1n, 2n]),
          g,
          BigInt64Array.from([1n, 2n, 3n, 4n, 5n]),
          2,
          {},
        ),
    ],
    [
      'features type',
      () =>
        native.evaluateRetrieval(
          new Float64Array(2) as unknown as Float32Array,
          BigInt64Array.from([1n]),
          g,
          BigInt64Array.from([1n, 2n, 3n, 4n, 5n]),
          2,
          {},
        ),
    ],
    [
      'dim',
      () =>
        native.evaluateRetrieval(
          q,
          BigInt64Array.from([1n]),
          g,
          BigInt64Array.from([1n, 2n, 3n, 4n, 5n]),
          0,
          {},
        ),
    ],
    [
      'topk',
      () =>
        native.evaluateRetrieval(
          q,
          BigInt64Array.from([1n]),
          g,
          BigInt64Array.from([1n, 2n, 3n, 4n, 5n]),
          2,
          { topk: [-1] },
        ),
    ],
    [
      'topk dup',
      () =>
        native.evaluateRetrieval(
          q,
          BigInt64Array.from([1n]),
          g,
          BigInt64Array.from([1n, 2n, 3n, 4n, 5n]),
          2,
          { topk: [2, 2] },
        ),
    ],
    [
      'empty gallery',
      () =>
        native.evaluateRetrieval(
          q,
          BigInt64Array.from([1n]),
          new Float32Array(0),
          new BigInt64Array(0),
          2,
          { topk: [1] },
        ),
    ],
    ['search k', () => native.searchTopK(q, g, 2, 0, {})],
    ['search metric', () => native.searchTopK(q, g, 2, 1, { metric: 'x' as 'IP' })],
    ['search threads', () => native.searchTopK(q, g, 2, 1, { threads: 0 })],
  ];
  for (const [what, fn] of nativeCases) {
    let err: unknown;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    assert.equal(
      (err as { code?: unknown } | undefined)?.code,
      'PIF_INVALID_ARG',
      `native ${what}: ${String(err)}`,
    );
  }
});

test('evaluateFeatures runs off the main thread: timers keep firing during a larger job', async (t) => {
  if (!needNative(t)) return;
  const rnd = mulberry32(1);
  const dim = 64;
  const ng = 20000;
  const nq = 400;
  const gallery = Float32Array.from({ length: ng * dim }, () => rnd() - 0.5);
  const query = Float32Array.from({ length: nq * dim }, () => rnd() - 0.5);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const { stats } = await evaluateFeaturesWithStats({
    query: { features: query, labels: Array.from({ length: nq }, (_, i) => i % 100) },
    gallery: { features: gallery, labels: Array.from({ length: ng }, (_, i) => i % 100) },
    dim,
  });
  clearInterval(timer);
  assert.ok(stats.timing.gemmSeconds > 0);
  if (stats.timing.wallSeconds > 0.05)
    assert.ok(ticks > 2, `only ${ticks} timer ticks in ${stats.timing.wallSeconds}s`);
});
