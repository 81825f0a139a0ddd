/**
 * The vector index (issue 7): Flat against brute force, HNSW recall against Flat, remove / add /
 * save / load round trips, kill -9 during save, damaged and mismatched files, and the whole path
 * gallery → model → index → search with a builder model (random weights: only ids, labels and
 * self-retrieval are asserted), plus the `index` CLI commands.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';

import { buildModel } from '../lib/builder.js';
import { IndexError, InvalidArgumentError, PifError } from '../lib/errors.js';
import { createModel, type FeatureModel } from '../lib/image-feature.js';
import { cliContext } from '../lib/cli/context.js';
import { registerIndexCommands } from '../lib/cli/index-commands.js';
import {
  createIndex,
  ID_MAP_FILE,
  INDEX_FILE,
  loadIndex,
  type Metric,
  type VectorIndex,
} from '../lib/vector-index/index.js';
import { renderImage, tempDir } from './helpers/dataset.js';
import { killTestVector } from './helpers/index-kill-child.js';
import { needNative } from './helpers/native.js';
import { Rng } from './helpers/render.js';
import { helperScript, spawnTsx } from './helpers/tsx-child.js';

// ---------------------------------------------------------------------------------------------
// Data

function gauss(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
}

function normalizeRows(v: Float32Array, dim: number): Float32Array {
  for (let i = 0; i < v.length; i += dim) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += (v[i + d] as number) ** 2;
    s = Math.sqrt(s) || 1;
    for (let d = 0; d < dim; d++) v[i + d] = (v[i + d] as number) / s;
  }
  return v;
}

/** Unit vectors around `clusters` random centres (image features are clustered, not uniform). */
function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const centres = Float32Array.from({ length: clusters * dim }, () => gauss(r));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = r.int(0, clusters - 1);
    for (let d = 0; d < dim; d++)
      out[i * dim + d] = (centres[c * dim + d] as number) + 0.6 * gauss(r);
  }
  return normalizeRows(out, dim);
}

function uniformUnit(n: number, dim: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return normalizeRows(
    Float32Array.from({ length: n * dim }, () => gauss(r)),
    dim,
  );
}

/** Small integers: every score is exact in float32, and ties are everywhere. */
function smallInts(n: number, dim: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * dim }, () => r.int(-1, 1));
}

/** Exact top-k in float64: IP larger first, L2 (squared) smaller first, ties by the lower id. */
function bruteForce(
  q: Float32Array,
  gallery: Float32Array,
  ids: readonly number[],
  dim: number,
  k: number,
  metric: Metric,
): { id: number; score: number }[][] {
  const out: { id: number; score: number }[][] = [];
  for (let i = 0; i < q.length / dim; i++) {
    const scored = ids.map((id, row) => {
      let s = 0;
      for (let d = 0; d < dim; d++) {
        const a = q[i * dim + d] as number;
        const b = gallery[row * dim + d] as number;
        s += metric === 'IP' ? a * b : (a - b) * (a - b);
      }
      return { id, score: s };
    });
    scored.sort((x, y) =>
      x.score === y.score ? x.id - y.id : metric === 'IP' ? y.score - x.score : x.score - y.score,
    );
    out.push(scored.slice(0, k));
  }
  return out;
}

function rows(v: Float32Array, dim: number, which: readonly number[]): Float32Array {
  const out = new Float32Array(which.length * dim);
  which.forEach((r, i) => {
    out.set(v.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  return out;
}

const labelsFor = (ids: readonly number[]): string[] => ids.map((i) => `L${i}`);

async function rejectsIndexError(
  p: Promise<unknown>,
  file: string,
  pattern: RegExp,
): Promise<IndexError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IndexError, `expected IndexError, got ${String(err)}`);
    assert.equal(err.code, 'PIF_INDEX');
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(file), `message names ${file}: ${err.message}`);
    return err;
  }
  assert.fail(`expected an IndexError matching ${pattern}`);
}

// ---------------------------------------------------------------------------------------------
// Flat

test('Flat search equals brute force (IP and L2, exact ties, after removals)', async (t) => {
  if (needNative(t) === null) return;
  const dim = 24;
  const n = 700;
  const base = smallInts(n, dim, 7);
  // Exact duplicates: identical scores that must come out lower id first.
  base.copyWithin(10 * dim, 3 * dim, 4 * dim);
  base.copyWithin(500 * dim, 3 * dim, 4 * dim);
  const q = smallInts(37, dim, 8);
  q.set(base.subarray(3 * dim, 4 * dim), 0);
  for (const metric of ['IP', 'L2'] as const) {
    const index = createIndex({ metric, searchThreads: 2 });
    const all = Array.from({ length: n }, (_, i) => i);
    await index.add({ features: base, labels: labelsFor(all) });
    const removed = [0, 1, 2, 10, 99, 350, 699];
    assert.equal(await index.remove([...removed, 5000]), removed.length);
    const kept = all.filter((i) => !removed.includes(i));
    for (const k of [1, 15, 40]) {
      const got = await index.search(q, k);
      const want = bruteForce(q, rows(base, dim, kept), kept, dim, k, metric);
      assert.equal(got.length, want.length);
      got.forEach((hits, i) => {
        assert.deepEqual(
          hits.map((h) => [h.id, h.score]),
          (want[i] ?? []).map((w) => [w.id, w.score]),
          `${metric} k=${k} query ${i}`,
        );
        for (const h of hits) assert.equal(h.label, `L${h.id}`);
      });
    }
    // The duplicated query row: ids 3, 500 (10 was removed) tie at the top, lower id first.
    const [dup] = await index.search(q.subarray(0, dim), 2);
    assert.deepEqual(
      dup?.map((h) => h.id),
      [3, 500],
    );
  }
});

test('Flat search equals brute force on random float features', async (t) => {
  if (needNative(t) === null) return;
  const dim = 48;
  const g = uniformUnit(3000, dim, 11);
  const q = uniformUnit(25, dim, 12);
  const ids = Array.from({ length: 3000 }, (_, i) => i);
  for (const metric of ['IP', 'L2'] as const) {
    const index = createIndex({ metric, dim });
    await index.add({ features: g, labels: labelsFor(ids) });
    const got = await index.search(q, 10);
    const want = bruteForce(q, g, ids, dim, 10, metric);
    got.forEach((hits, i) => {
      const w = want[i] ?? [];
      assert.deepEqual(
        hits.map((h) => h.id),
        w.map((x) => x.id),
      );
      hits.forEach((h, j) => {
        assert.ok(Math.abs(h.score - (w[j]?.score ?? NaN)) < 1e-5);
      });
    });
  }
});

test('sizes: empty index, topk above the size, dim checks', async (t) => {
  if (needNative(t) === null) return;
  for (const type of ['Flat', 'HNSW'] as const) {
    const fresh = createIndex({ type });
    assert.equal(fresh.dim, 0);
    assert.deepEqual(await fresh.search(new Float32Array(4), 3), [[]]);
    const sized = createIndex({ type, dim: 4 });
    assert.deepEqual(await sized.search(new Float32Array(8), 3), [[], []]);
    await assert.rejects(
      sized.add({ features: new Float32Array(16), labels: ['a', 'b'] }),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        /dim 8/.test(err.message) &&
        /dim 4/.test(err.message),
    );
    await fresh.add({ features: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]), labels: ['a', 'b'] });
    assert.equal(fresh.dim, 4);
    await assert.rejects(
      fresh.add({ features: new Float32Array(6), labels: ['c'] }),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        /dim 6/.test(err.message) &&
        /dim 4/.test(err.message),
    );
    await assert.rejects(fresh.search(new Float32Array(6), 1), /multiple of the index dim 4/);
    await assert.rejects(fresh.search(new Float32Array(4), 0), InvalidArgumentError);
    await assert.rejects(
      fresh.add({ features: new Float32Array([NaN, 0, 0, 0]), labels: ['x'] }),
      /non-finite/,
    );
    const hits = await fresh.search(new Float32Array([1, 0, 0, 0]), 10);
    assert.deepEqual(
      hits[0]?.map((h) => [h.id, h.label]),
      [
        [0, 'a'],
        [1, 'b'],
      ],
    );
    assert.equal(hits[0]?.[0]?.score, 1);
    assert.equal(await fresh.remove([0, 1]), 2);
    assert.deepEqual(await fresh.search(new Float32Array([1, 0, 0, 0]), 10), [[]]);
  }
  assert.throws(() => createIndex({ metric: 'cos' as Metric }), InvalidArgumentError);
  assert.throws(() => createIndex({ type: 'HNSW32' as 'HNSW' }), /hnsw.connectivity/);
  assert.throws(() => createIndex({ hnsw: { connectivity: 1 } }), InvalidArgumentError);
  assert.throws(() => createIndex({ searchThreads: 0 }), InvalidArgumentError);
});

// ---------------------------------------------------------------------------------------------
// HNSW

test('HNSW recall@10 ≥ 0.95 against Flat (10 000 × 128), scores as faiss reports them', async (t) => {
  if (needNative(t) === null) return;
  const dim = 128;
  const n = 10000;
  const g = clustered(n, dim, 100, 21);
  const q = clustered(200, dim, 100, 22);
  const labels = labelsFor(Array.from({ length: n }, (_, i) => i));
  for (const metric of ['IP', 'L2'] as const) {
    const flat = createIndex({ metric, dim });
    await flat.add({ features: g, labels });
    // One insertion thread: the same graph every run (parallel insertion order varies).
    const hnsw = createIndex({ type: 'HNSW', metric, dim, hnsw: { addThreads: 1 } });
    const started = performance.now();
    await hnsw.add({ features: g, labels });
    const buildMs = performance.now() - started;
    const exact = await flat.search(q, 10);
    const approx = await hnsw.search(q, 10);
    let found = 0;
    approx.forEach((hits, i) => {
      const truth = new Map((exact[i] ?? []).map((h) => [h.id, h.score]));
      for (const h of hits) {
        const s = truth.get(h.id);
        if (s === undefined) continue;
        found++;
        // The same score as the exact search: inner product (IP), squared distance (L2).
        assert.ok(Math.abs(h.score - s) < 1e-5, `${metric} score ${h.score} vs ${s}`);
        assert.equal(h.label, `L${h.id}`);
      }
    });
    const recall = found / (200 * 10);
    t.diagnostic(`${metric}: recall@10 ${recall.toFixed(4)}, build ${buildMs.toFixed(0)} ms`);
    assert.ok(recall >= 0.95, `${metric} recall@10 ${recall}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Round trips

const UNICODE_LABELS = [
  '红牛-强化型',
  'yes',
  '123',
  'a b',
  'tab\there',
  'quote"back\\slash',
  'émoji 😀',
  '',
];

for (const type of ['Flat', 'HNSW'] as const) {
  test(`${type}: remove / add / save / load round trip (ids from max + 1, unicode labels)`, async (t) => {
    if (needNative(t) === null) return;
    const dir = await tempDir(t, 'pif-index-');
    const dim = 16;
    const n = 40;
    const data = uniformUnit(n + 10, dim, 31);
    const index = createIndex({ type, metric: 'IP' });
    const labels = Array.from(
      { length: n },
      (_, i) => UNICODE_LABELS[i % UNICODE_LABELS.length] ?? '',
    );
    assert.deepEqual(
      await index.add({ features: data.subarray(0, n * dim), labels }),
      Array.from({ length: n }, (_, i) => i),
    );
    // Remove the largest id too: it is never handed out again.
    assert.equal(await index.remove([0, 5, 39, 39, 1000]), 3);
    assert.equal(index.size, n - 3);
    assert.equal(index.nextId, n);
    assert.deepEqual(
      await index.add({ features: data.subarray(n * dim, (n + 2) * dim), labels: ['新-1', 'x'] }),
      [40, 41],
    );
    const removedQueries = rows(data, dim, [0, 5, 39]);
    const check = async (idx: VectorIndex): Promise<void> => {
      assert.equal(idx.type, type);
      assert.equal(idx.size, n - 1);
      assert.equal(idx.dim, dim);
      assert.deepEqual(idx.ids(), [
        ...Array.from({ length: n }, (_, i) => i).filter((i) => ![0, 5, 39].includes(i)),
        40,
        41,
      ]);
      assert.equal(idx.labelOf(1), labels[1]);
      assert.equal(idx.labelOf(40), '新-1');
      assert.equal(idx.labelOf(0), undefined);
      for (const hits of await idx.search(removedQueries, idx.size)) {
        assert.equal(hits.length, idx.size);
        for (const h of hits) assert.ok(![0, 5, 39].includes(h.id), `removed id ${h.id} returned`);
      }
      // Each kept vector finds itself first.
      const self = await idx.search(rows(data, dim, [7, 40]), 1);
      assert.deepEqual(
        self.map((h) => h[0]?.id),
        [7, 40],
      );
      assert.ok(Math.abs((self[0]?.[0]?.score ?? 0) - 1) < 1e-5);
      assert.equal(self[0]?.[0]?.label, labels[7]);
    };
    await check(index);
    await index.save(dir);
    assert.deepEqual((await readdir(dir)).sort(), [ID_MAP_FILE, INDEX_FILE]);
    const yamlText = await readFile(path.join(dir, ID_MAP_FILE), 'utf8');
    assert.match(yamlText, /^ {2}8: 红牛-强化型$/m);
    const doc = parseYaml(yamlText, { version: '1.1' }) as Record<string, unknown>;
    assert.equal(doc['index_type'], type === 'Flat' ? 'Flat' : 'HNSW32');
    assert.equal(doc['metric_type'], 'IP');
    const idMap = doc['id_map'] as Record<string, unknown>;
    assert.equal(Object.keys(idMap).length, n - 1);
    for (const id of index.ids()) assert.equal(idMap[String(id)], index.labelOf(id));

    const loaded = await loadIndex(dir);
    await check(loaded);
    assert.equal(loaded.nextId, 42);
    assert.deepEqual(
      await loaded.add({ features: data.subarray((n + 2) * dim, (n + 3) * dim), labels: ['z'] }),
      [42],
    );
    await loaded.remove([42, 41]);
    assert.deepEqual(
      await loaded.add({ features: data.subarray((n + 3) * dim, (n + 4) * dim), labels: ['w'] }),
      [43],
    );
    // Save over the earlier save; load again.
    await loaded.save(dir);
    const again = await loadIndex(dir);
    assert.equal(again.nextId, 44);
    assert.equal(again.labelOf(43), 'w');
    assert.equal(again.labelOf(41), undefined);
    assert.deepEqual(again.info().hnsw === null, type === 'Flat');
    // Removing everything: an empty index saves and loads, and keeps its next id.
    await again.remove(again.ids());
    await again.save(dir);
    const empty = await loadIndex(dir);
    assert.equal(empty.size, 0);
    assert.equal(empty.nextId, 44);
    assert.deepEqual(await empty.search(data.subarray(0, dim), 3), [[]]);
  });
}

test('an index that never held a vector saves and loads', async (t) => {
  const dir = await tempDir(t, 'pif-index-');
  for (const type of ['Flat', 'HNSW'] as const) {
    await createIndex({ type, metric: 'L2' }).save(dir);
    const idx = await loadIndex(dir);
    assert.deepEqual([idx.type, idx.metric, idx.dim, idx.size], [type, 'L2', 0, 0]);
    await idx.add({ features: new Float32Array([1, 2]), labels: ['a'] });
    assert.deepEqual(await idx.search(new Float32Array([1, 2]), 1), [
      [{ id: 0, label: 'a', score: 0 }],
    ]);
  }
});

test('HNSW: a graph with most vectors removed saves and loads (usearch deleted slots)', async (t) => {
  if (needNative(t) === null) return;
  const dir = await tempDir(t, 'pif-index-');
  const dim = 8;
  const data = uniformUnit(400, dim, 51);
  const index = createIndex({ type: 'HNSW', metric: 'L2', dim });
  await index.add({
    features: data.subarray(0, 300 * dim),
    labels: labelsFor([...Array(300).keys()]),
  });
  await index.remove([...Array(290).keys()]);
  // usearch 2.25 corrupts memory loading a file with this many deleted slots; ours has none.
  await index.save(dir);
  const loaded = await loadIndex(dir);
  assert.deepEqual(
    loaded.ids(),
    [...Array(10).keys()].map((i) => 290 + i),
  );
  const all = await loaded.search(data.subarray(0, 3 * dim), 50);
  for (const hits of all) {
    assert.deepEqual(
      hits.map((h) => h.id).sort((a, b) => a - b),
      loaded.ids(),
    );
  }
  await loaded.add({
    features: data.subarray(300 * dim, 305 * dim),
    labels: labelsFor([0, 1, 2, 3, 4]),
  });
  await loaded.remove(loaded.ids().slice(0, 12));
  await loaded.save(dir);
  const again = await loadIndex(dir);
  assert.deepEqual(again.ids(), [302, 303, 304]);
  const [self] = await again.search(data.subarray(304 * dim, 305 * dim), 1);
  assert.equal(self?.[0]?.id, 304);
  assert.ok((self?.[0]?.score ?? 1) < 1e-6);
  await again.remove(again.ids());
  await again.save(dir);
  assert.equal((await loadIndex(dir)).size, 0);

  // Recall survives: remove 90 % of a clustered gallery, save, load, compare with Flat.
  const n = 3000;
  const g = clustered(n, 32, 30, 52);
  const q = clustered(100, 32, 30, 53);
  const rng = new Rng(54);
  const gone = [...Array(n).keys()].filter(() => rng.next() < 0.9);
  const flat = createIndex({ metric: 'L2', dim: 32 });
  const hnsw = createIndex({ type: 'HNSW', metric: 'L2', dim: 32, hnsw: { addThreads: 1 } });
  for (const idx of [flat, hnsw]) {
    await idx.add({ features: g, labels: labelsFor([...Array(n).keys()]) });
    await idx.remove(gone);
  }
  await hnsw.save(dir);
  const exact = await flat.search(q, 10);
  const approx = await (await loadIndex(dir)).search(q, 10);
  let found = 0;
  approx.forEach((hits, i) => {
    const truth = new Set((exact[i] ?? []).map((h) => h.id));
    for (const h of hits) if (truth.has(h.id)) found++;
  });
  t.diagnostic(`recall@10 after removing 90 % and reloading: ${found / 1000}`);
  assert.ok(found / 1000 >= 0.95, `recall ${found / 1000}`);
});

test('a save interrupted between its two renames loads as the new save', async (t) => {
  if (needNative(t) === null) return;
  const dir = await tempDir(t, 'pif-index-');
  const index = createIndex({ dim: 2 });
  await index.add({ features: new Float32Array([1, 0, 0, 1]), labels: ['a', 'b'] });
  await index.save(dir);
  const oldYaml = await readFile(path.join(dir, ID_MAP_FILE));
  await index.add({ features: new Float32Array([1, 1]), labels: ['c'] });
  await index.save(dir);
  // As if killed after vector.index was renamed but before id_map.yaml was.
  await writeFile(path.join(dir, ID_MAP_FILE), oldYaml);
  const loaded = await loadIndex(dir);
  assert.deepEqual(loaded.ids(), [0, 1, 2]);
  assert.equal(loaded.labelOf(2), 'c');
  // The next save makes the pair consistent again.
  await loaded.save(dir);
  assert.match(await readFile(path.join(dir, ID_MAP_FILE), 'utf8'), /^ {2}2: c$/m);
});

// ---------------------------------------------------------------------------------------------
// Damage

async function savedCopy(
  t: TestContext,
  source: string,
  damage: (dir: string) => Promise<void>,
): Promise<string> {
  const dir = await tempDir(t, 'pif-index-bad-');
  for (const f of [INDEX_FILE, ID_MAP_FILE])
    await copyFile(path.join(source, f), path.join(dir, f));
  await damage(dir);
  return dir;
}

/** Rewrites a file: `edit` changes the buffer in place or returns a new one. */
async function patchFile(file: string, edit: (b: Buffer) => unknown): Promise<void> {
  const b = await readFile(file);
  const out = edit(b);
  await writeFile(file, Buffer.isBuffer(out) ? out : b);
}

/** Recomputes vector.index's checksum and writes it into id_map.yaml too (a forged save). */
async function restamp(dir: string): Promise<void> {
  const file = path.join(dir, INDEX_FILE);
  const b = await readFile(file);
  const digest = createHash('sha256')
    .update(b.subarray(0, b.length - 32))
    .digest();
  digest.copy(b, b.length - 32);
  await writeFile(file, b);
  await patchFile(path.join(dir, ID_MAP_FILE), (y) =>
    Buffer.from(
      y
        .toString('utf8')
        .replace(/^vector_index_sha256: .*$/m, `vector_index_sha256: ${digest.toString('hex')}`),
    ),
  );
}

test('damaged or mismatched index files give IndexError naming the file', async (t) => {
  if (needNative(t) === null) return;
  const good: Record<string, string> = {};
  for (const type of ['Flat', 'HNSW'] as const) {
    const dir = await tempDir(t, 'pif-index-good-');
    const index = createIndex({ type, metric: 'IP' });
    await index.add({
      features: uniformUnit(300, 8, 41),
      labels: labelsFor([...Array(300).keys()]),
    });
    await index.save(dir);
    good[type] = dir;
    await loadIndex(dir);
  }
  const flat = good['Flat'] as string;
  const vi = (dir: string): string => path.join(dir, INDEX_FILE);
  const ym = (dir: string): string => path.join(dir, ID_MAP_FILE);
  const yamlEdit = (re: RegExp, to: string) => async (dir: string) => {
    await patchFile(ym(dir), (b) => Buffer.from(b.toString('utf8').replace(re, to)));
  };

  const cases: [string, string, (dir: string) => Promise<void>, (dir: string) => string, RegExp][] =
    [
      ['truncated', flat, (d) => truncate(vi(d), 5000), vi, /truncated: 5000 bytes/],
      ['truncated header', flat, (d) => truncate(vi(d), 20), vi, /truncated/],
      [
        'bit flip in the vectors',
        flat,
        (d) =>
          patchFile(vi(d), (b) => void (b[b.length - 2000] = (b[b.length - 2000] as number) ^ 4)),
        vi,
        /checksum/,
      ],
      [
        'bit flip in the HNSW graph',
        good['HNSW'] as string,
        (d) =>
          patchFile(vi(d), (b) => void (b[b.length - 100] = (b[b.length - 100] as number) ^ 1)),
        vi,
        /checksum/,
      ],
      [
        'bit flip in a label',
        flat,
        (d) => patchFile(vi(d), (b) => void (b[128 + 300 * 8 + 3] = 0x4d)),
        vi,
        /checksum/,
      ],
      [
        'wrong magic',
        flat,
        (d) => patchFile(vi(d), (b) => void b.write('FAISSIDX', 0, 'latin1')),
        vi,
        /wrong magic/,
      ],
      [
        'unknown metric code',
        flat,
        (d) => patchFile(vi(d), (b) => void (b[17] = 7)),
        vi,
        /unknown metric code 7/,
      ],
      [
        'newer format version',
        flat,
        (d) => patchFile(vi(d), (b) => void b.writeUInt32LE(9, 8)),
        vi,
        /format version 9 is newer/,
      ],
      ['missing vector.index', flat, (d) => rm(vi(d)), vi, /missing/],
      ['missing id_map.yaml', flat, (d) => rm(ym(d)), ym, /missing/],
      ['id_map count', flat, yamlEdit(/^ {2}299: .*\n/m, ''), ym, /299 entries but .* 300 vectors/],
      ['id_map label', flat, yamlEdit(/^ {2}7: L7$/m, '  7: L8'), ym, /id 7 the label "L8"/],
      ['id_map unknown id', flat, yamlEdit(/^ {2}7: L7$/m, '  7000: L7'), ym, /id 7000/],
      [
        'unknown metric_type',
        flat,
        yamlEdit(/^metric_type: IP$/m, 'metric_type: hamming'),
        ym,
        /unknown metric_type "hamming"/,
      ],
      [
        'metric mismatch',
        flat,
        yamlEdit(/^metric_type: IP$/m, 'metric_type: L2'),
        ym,
        /metric_type L2 does not match/,
      ],
      [
        'index_type mismatch',
        flat,
        yamlEdit(/^index_type: Flat$/m, 'index_type: HNSW32'),
        ym,
        /index_type HNSW32 does not match/,
      ],
      [
        'unknown index_type',
        flat,
        yamlEdit(/^index_type: Flat$/m, 'index_type: IVF'),
        ym,
        /unknown index_type "IVF"/,
      ],
      [
        'id_map of another save',
        flat,
        yamlEdit(/^vector_index_sha256: .*$/m, `vector_index_sha256: ${'ab'.repeat(32)}`),
        ym,
        /another save/,
      ],
      ['not YAML', flat, (d) => writeFile(ym(d), 'id_map: [\n'), ym, /not valid YAML/],
      [
        'no stamp, count mismatch',
        flat,
        yamlEdit(/^vector_index_sha256: .*\n|^ {2}3: L3\n/gm, ''),
        ym,
        /299 entries/,
      ],
    ];
  for (const [name, source, damage, file, pattern] of cases) {
    const dir = await savedCopy(t, source, damage);
    await rejectsIndexError(loadIndex(dir), file(dir), pattern).catch((err: unknown) => {
      throw new Error(`case '${name}': ${(err as Error).message}`);
    });
  }
  // A consistent-looking file (checksum and stamp recomputed) whose usearch head disagrees:
  // refused before usearch's loader sees it.
  const hnswDir = await savedCopy(t, good['HNSW'] as string, async (d) => {
    await patchFile(vi(d), (b) => {
      const count = Number(b.readBigUInt64LE(24));
      const payload = 128 + count * 8 + Number(b.readBigUInt64LE(56));
      const head = payload + 8 + b.readUInt32LE(payload) * b.readUInt32LE(payload + 4);
      assert.equal(b.toString('latin1', head, head + 7), 'usearch');
      b.writeBigUInt64LE(5n, head + 25); // count_deleted
    });
    await restamp(d);
  });
  await rejectsIndexError(loadIndex(hnswDir), vi(hnswDir), /5 deleted/);
  // id_map.yaml edited by hand but still equivalent (quoting, key order, comments): loads.
  const edited = await savedCopy(t, flat, async (d) => {
    const text = await readFile(ym(d), 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const entries = lines
      .filter((l) => /^ {2}\d+: /.test(l))
      .map((l) => l.replace(/: (.*)$/, ": '$1'"));
    const rest = lines.filter((l) => !/^ {2}\d+: /.test(l) && l !== 'id_map:');
    await writeFile(
      ym(d),
      `# edited\n${rest.reverse().join('\n')}\nid_map:\n${entries.join('\n')}\n`,
    );
  });
  assert.equal((await loadIndex(edited)).labelOf(299), 'L299');
  // A directory that does not exist.
  const nowhere = path.join(flat, 'nope');
  await rejectsIndexError(loadIndex(nowhere), path.join(nowhere, INDEX_FILE), /missing/);
});

// ---------------------------------------------------------------------------------------------
// kill -9

interface ChildLog {
  saved: number;
  begun: number;
  lines: string;
}

async function runAndKill(
  dir: string,
  type: 'Flat' | 'HNSW',
  n: number,
  dim: number,
  delayMs: number,
): Promise<ChildLog> {
  const child = spawnTsx(helperScript('index-kill-child.ts'), [dir, type, String(n), String(dim)]);
  const log: ChildLog = { saved: -1, begun: -1, lines: '' };
  let err = '';
  let firstSave: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    firstSave = resolve;
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (s: string) => {
    log.lines += s;
    for (const m of s.matchAll(/^(begin|saved) (\d+)$/gm)) {
      const v = Number(m[2]);
      if (m[1] === 'saved') {
        log.saved = v;
        firstSave();
      } else log.begun = v;
    }
  });
  child.stderr.on('data', (s: string) => {
    err += s;
  });
  const exited = once(child, 'exit');
  await Promise.race([
    ready,
    exited.then(() => {
      throw new Error(`the child exited before saving: ${err}`);
    }),
  ]);
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill('SIGKILL');
  await exited;
  // Lines written before the kill may still be in the pipe.
  await new Promise((r) => setImmediate(r));
  return log;
}

for (const [type, n, dim, rounds] of [
  ['Flat', 60000, 48, 6],
  ['HNSW', 4000, 16, 5],
] as const) {
  test(`kill -9 during ${type} saves always leaves a loadable index`, async (t) => {
    if (needNative(t) === null) return;
    const dir = await tempDir(t, 'pif-index-kill-');
    const seed = Date.now() % 100000;
    const rng = new Rng(seed);
    let midSave = 0;
    for (let round = 0; round < rounds; round++) {
      const delay = rng.int(0, 400);
      const log = await runAndKill(dir, type, n, dim, delay);
      if (log.begun > log.saved) midSave++;
      const idx = await loadIndex(dir);
      const s = idx.ids()[0] ?? -1;
      assert.ok(
        s === log.saved || s === log.begun,
        `round ${round} (seed ${seed}, delay ${delay} ms): loaded version ${s}, last saved ${log.saved}, last begun ${log.begun}`,
      );
      assert.equal(idx.size, n);
      assert.equal(idx.nextId, s + n);
      assert.deepEqual(
        idx.ids(),
        Array.from({ length: n }, (_, i) => s + i),
      );
      for (const id of [s, s + 1, s + Math.floor(n / 2), s + n - 1]) {
        assert.equal(idx.labelOf(id), `L${id}`);
      }
      const probe = [s, s + Math.floor(n / 3), s + n - 1];
      const hits = await idx.search(
        Float32Array.from(probe.flatMap((id) => [...killTestVector(id, dim)])),
        1,
      );
      assert.deepEqual(
        hits.map((h) => h[0]?.id),
        probe,
      );
    }
    t.diagnostic(`seed ${seed}: ${midSave} of ${rounds} kills landed inside a save`);
    // The next save removes the temp files the killed savers left.
    await (await loadIndex(dir)).save(dir);
    assert.deepEqual((await readdir(dir)).sort(), [ID_MAP_FILE, INDEX_FILE]);
  });
}

// ---------------------------------------------------------------------------------------------
// With a model

const GALLERY = [
  { rel: 'a/one.png', cls: 0, label: '红牛-强化型' },
  { rel: 'a/two.png', cls: 1, label: 'cola' },
  { rel: 'b/three.png', cls: 2, label: '红牛-强化型' },
  { rel: 'b/four.jpg', cls: 3, label: 'water' },
  { rel: 'five.png', cls: 4, label: 'juice' },
];

async function galleryFixture(t: TestContext): Promise<{
  root: string;
  galleryDir: string;
  labelFile: string;
  modelDir: string;
  model: FeatureModel;
}> {
  const root = await tempDir(t, 'pif-index-model-');
  const modelDir = path.join(root, 'model');
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 3 });
  const model = await createModel('PP-ShiTuV2_rec', { modelDir, batchSize: 2 });
  t.after(() => {
    model.close();
  });
  const galleryDir = path.join(root, 'gallery');
  await Promise.all(
    GALLERY.map((g, i) =>
      renderImage(path.join(galleryDir, g.rel), {
        rel: g.rel,
        width: 40 + 8 * i,
        height: 36 + 4 * i,
        cls: g.cls,
      }),
    ),
  );
  const labelFile = path.join(galleryDir, 'labels.txt');
  await writeFile(labelFile, `\ufeff${GALLERY.map((g) => `${g.rel} ${g.label}`).join('\r\n')}\n\n`);
  return { root, galleryDir, labelFile, modelDir, model };
}

test('build from a gallery + label file and from items with a model; search by image', async (t) => {
  if (needNative(t) === null) return;
  const { root, galleryDir, labelFile, model } = await galleryFixture(t);
  const progress: [number, number][] = [];
  const index = createIndex({ model, metric: 'IP' });
  const ids = await index.build(galleryDir, labelFile, {
    batchSize: 2,
    onProgress: (d, n) => progress.push([d, n]),
  });
  assert.deepEqual(ids, [0, 1, 2, 3, 4]);
  assert.deepEqual(progress.at(-1), [5, 5]);
  assert.equal(index.dim, 512);
  assert.deepEqual(
    index.ids().map((id) => index.labelOf(id)),
    GALLERY.map((g) => g.label),
  );
  // A gallery image finds itself first, with IP ≈ 1 (unit features).
  const images = GALLERY.map((g) => path.join(galleryDir, g.rel));
  const hits = await index.search(images, 2);
  hits.forEach((h, i) => {
    assert.equal(h[0]?.id, i);
    assert.equal(h[0]?.label, GALLERY[i]?.label);
    assert.ok(Math.abs((h[0]?.score ?? 0) - 1) < 1e-4, `score ${h[0]?.score}`);
  });

  // The same from items (HNSW, L2: the own image is at distance ≈ 0).
  const hnsw = createIndex({ model, type: 'HNSW', metric: 'L2' });
  const itemIds = await hnsw.build(
    images.map((image, i) => ({ image, label: GALLERY[i]?.label ?? '' })),
  );
  assert.deepEqual(itemIds, [0, 1, 2, 3, 4]);
  const [own] = await hnsw.search(images[3] ?? '', 1);
  assert.equal(own?.[0]?.id, 3);
  assert.ok((own?.[0]?.score ?? 1) < 1e-4);
  // add() with images continues the ids; save and load with the model.
  assert.deepEqual(await hnsw.add([{ image: images[0] ?? '', label: 'again' }]), [5]);
  const dir = path.join(root, 'saved');
  await hnsw.save(dir);
  const loaded = await loadIndex(dir, { model });
  assert.equal(loaded.labelOf(5), 'again');
  assert.equal((await loaded.search(images[1] ?? '', 1))[0]?.[0]?.id, 1);

  // Mismatches: a model whose features do not fit the index; images without a model.
  const small = createIndex({ dim: 8 });
  await small.add({ features: new Float32Array(8).fill(1), labels: ['x'] });
  const smallDir = path.join(root, 'small');
  await small.save(smallDir);
  await rejectsIndexError(
    loadIndex(smallDir, { model }),
    path.join(smallDir, INDEX_FILE),
    /8-dim vectors but the model PP-ShiTuV2_rec gives 512-dim/,
  );
  const withModel = createIndex({ dim: 8, model });
  await assert.rejects(
    withModel.add([{ image: images[0] ?? '', label: 'x' }]),
    (err: unknown) =>
      err instanceof IndexError && /512-dim features .* 8-dim vectors/.test(err.message),
  );
  await assert.rejects(small.search(images[0] ?? '', 1), /needs a model/);

  // Bad label files: one space only, missing images. Nothing changes on failure.
  const bad = path.join(root, 'bad.txt');
  await writeFile(bad, 'a/one.png cola\na/two.png two words\n');
  await assert.rejects(
    index.build(galleryDir, bad),
    (err: unknown) => err instanceof IndexError && /line 2/.test(err.message),
  );
  await writeFile(bad, 'a/one.png cola\nmissing.png x\n');
  await assert.rejects(
    index.build(galleryDir, bad),
    (err: unknown) =>
      err instanceof IndexError &&
      /line 2: the image .*missing\.png does not exist/.test(err.message),
  );
  assert.equal(index.size, 5);
});

test('index CLI: build, info, search, remove, add', async (t) => {
  if (needNative(t) === null) return;
  const { root, galleryDir, labelFile, modelDir } = await galleryFixture(t);
  const run = async (args: string[]): Promise<{ out: string; err: string; code: number }> => {
    let out = '';
    let err = '';
    const program = new Command('pif').exitOverride().configureOutput({
      writeOut: (s) => {
        out += s;
      },
      writeErr: (s) => {
        err += s;
      },
    });
    const io = {
      stdout: (s: string) => {
        out += s;
      },
      stderr: (s: string) => {
        err += s;
      },
      isTTY: false,
    };
    registerIndexCommands(program, cliContext(io));
    try {
      await program.parseAsync(args, { from: 'user' });
      return { out, err, code: 0 };
    } catch (e) {
      if (e instanceof PifError) return { out, err: `${err}${e.message}`, code: 1 };
      return { out, err: `${err}${(e as Error).message}`, code: 2 };
    }
  };
  const dir = path.join(root, 'cli-index');
  const m = ['--model-dir', modelDir];
  let r = await run([
    'index',
    'build',
    galleryDir,
    labelFile,
    '--out',
    dir,
    ...m,
    '--type',
    'HNSW',
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /built HNSW32 IP index, 5 vectors of dim 512/);
  r = await run(['index', 'info', dir, '--json']);
  const info = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(info['size'], 5);
  assert.equal(info['indexTypeName'], 'HNSW32');
  const img = path.join(galleryDir, 'b', 'three.png');
  r = await run(['index', 'search', dir, img, '--topk', '2', '--json', ...m]);
  assert.equal(r.code, 0, r.err);
  const { res } = JSON.parse(r.out) as {
    res: { input_path: string; hits: { id: number; label: string }[] };
  };
  assert.equal(res.input_path, img);
  assert.equal(res.hits.length, 2);
  assert.deepEqual([res.hits[0]?.id, res.hits[0]?.label], [2, '红牛-强化型']);
  r = await run(['index', 'remove', dir, '2', '4', '77']);
  assert.match(r.out, /removed 2 of 3 ids; now HNSW32 IP index, 3 vectors/);
  await mkdir(path.join(root, 'more'));
  await copyFile(img, path.join(root, 'more', 'x.png'));
  await writeFile(path.join(root, 'more', 'l.txt'), 'x.png new\n');
  r = await run([
    'index',
    'add',
    dir,
    path.join(root, 'more'),
    path.join(root, 'more', 'l.txt'),
    ...m,
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /added 1 images \(ids 5\.\.5\); now HNSW32 IP index, 4 vectors/);
  r = await run(['index', 'search', dir, img, '--topk', '1', ...m]);
  assert.match(r.out, /rank +label +score +id\n +1 +new +[0-9.]+ +5\n/);
  r = await run(['index', 'info', path.join(root, 'nope')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /missing/);
  r = await run(['index', 'remove', dir, 'x1']);
  assert.equal(r.code, 2);
});

test('Flat: a remove while a search is in flight does not disturb that search', async (t) => {
  if (!needNative(t)) return;
  const dim = 64;
  const n = 20000;
  const rng = new Rng(5);
  const features = new Float32Array(n * dim);
  for (let i = 0; i < features.length; i++) features[i] = rng.next() * 2 - 1;
  const labels = Array.from({ length: n }, (_, i) => `L${i}`);
  const index = createIndex({ metric: 'IP', dim });
  await index.add({ features, labels });
  const queries = features.slice(0, 8 * dim); // rows 0..7: each finds itself first
  const before = await index.search(queries, 3);
  const inFlight = index.search(queries, 3); // reads the gallery in place
  const removed = await index.remove([0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(removed, 8);
  assert.deepEqual(await inFlight, before);
  const after = await index.search(queries, 3);
  for (const hits of after) assert.ok(hits.every((h) => h.id >= 8));
});
