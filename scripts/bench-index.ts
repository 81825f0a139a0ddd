// Vector index benchmark (lib/vector-index): HNSW (usearch) recall@k against the exact Flat
// search, build, save/load and search times, on synthetic unit features.
//
//   npm run bench:index -- [--n 50000] [--dim 512] [--queries 1000] [--k 10]
//                          [--data clustered|uniform] [--classes 1000] [--noise 0.6]
//                          [--ef-search 32,64,128,256] [--ef-add 128] [--connectivity 32]
//                          [--threads N] [--json]
//
// Data: `clustered` (default) draws every feature as centre + noise × N(0, 1) per component
// around one of `classes` random N(0, 1) centres, then L2-normalises it: like image features,
// several views per object (same-class cosine ≈ 1 / (1 + noise²)). `uniform` is isotropic
// Gaussian directions, with no structure at all: the worst case for any graph index (no ANN
// index reaches high recall there at small expansion; printed for honesty). Queries are fresh
// draws from the same distribution. The HNSW graph is built once, saved, and loaded again for
// every efSearch value (the graph does not depend on it). Search times: all queries in one call
// (`--threads` threads), and single queries one by one (one thread, as a service would).
// Metric IP (features are unit vectors: cosine). A script, not a test.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';

import { mulberry32 } from '../lib/rng.js';
import { createIndex, INDEX_FILE, loadIndex } from '../lib/vector-index/index.js';
import type { SearchHit, VectorIndex } from '../lib/vector-index/types.js';
import { arg, intArg } from './bench-args.js';

const n = intArg('n', 50000);
const dim = intArg('dim', 512);
const nq = intArg('queries', 1000);
const k = intArg('k', 10);
const data = arg('data', 'clustered');
if (data !== 'clustered' && data !== 'uniform') throw new Error('--data clustered|uniform');
const classes = intArg('classes', 1000);
const noise = Number(arg('noise', '0.6'));
const efSearch = arg('ef-search', '32,64,128,256')
  .split(',')
  .map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) throw new Error('--ef-search: positive integers');
    return v;
  });
const efAdd = intArg('ef-add', 128);
const connectivity = intArg('connectivity', 32);
const threads = intArg('threads', availableParallelism());
const singles = Math.min(nq, 200);
const asJson = process.argv.includes('--json');
const log = (s: string): void => {
  if (!asJson) console.log(s);
};

// Seeded generator (mulberry32) and Box-Muller normals.
const uniform = mulberry32(0x2545f491);
const normal = (): number =>
  Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());

const centres = Float32Array.from({ length: classes * dim }, normal);
function draw(count: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const c = Math.floor(uniform() * classes) * dim;
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = data === 'clustered' ? (centres[c + d] as number) + noise * normal() : normal();
      out[i * dim + d] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[i * dim + d] = (out[i * dim + d] as number) / norm;
  }
  return out;
}

const seconds = (t0: number): number => (performance.now() - t0) / 1000;

async function singleQueryMs(index: VectorIndex, q: Float32Array): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < singles; i++) {
    const t0 = performance.now();
    await index.search(q.subarray(i * dim, (i + 1) * dim), k);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

function recall(approx: SearchHit[][], exact: SearchHit[][]): number {
  let found = 0;
  let total = 0;
  approx.forEach((hits, i) => {
    const truth = new Set((exact[i] ?? []).map((h) => h.id));
    total += truth.size;
    for (const h of hits) if (truth.has(h.id)) found++;
  });
  return found / total;
}

log(
  `vector index bench: ${n} × ${dim} ${data}${data === 'clustered' ? ` (${classes} classes, noise ${noise})` : ''}, ${nq} queries, recall@${k}, ${threads} threads, IP`,
);
let t0 = performance.now();
const gallery = draw(n);
const queries = draw(nq);
log(`data generated in ${seconds(t0).toFixed(1)} s`);
const labels = Array.from({ length: n }, (_, i) => `item${i}`);

// Flat: the truth.
const flat = createIndex({ metric: 'IP', dim, searchThreads: threads });
t0 = performance.now();
await flat.add({ features: gallery, labels });
const flatBuild = seconds(t0);
t0 = performance.now();
const exact = await flat.search(queries, k);
const flatSearch = seconds(t0);
const flatSingle = await singleQueryMs(flat, queries);

// HNSW: build once, save, then load once per efSearch.
const hnsw = createIndex({
  type: 'HNSW',
  metric: 'IP',
  dim,
  searchThreads: threads,
  hnsw: { connectivity, expansionAdd: efAdd, addThreads: threads },
});
t0 = performance.now();
await hnsw.add({ features: gallery, labels });
const hnswBuild = seconds(t0);
log(`HNSW build: ${hnswBuild.toFixed(1)} s (M ${connectivity}, efConstruction ${efAdd})`);
const dir = await mkdtemp(path.join(tmpdir(), 'pif-bench-index-'));
t0 = performance.now();
await hnsw.save(dir);
const hnswSave = seconds(t0);
const fileBytes = (await stat(path.join(dir, INDEX_FILE))).size;

interface Row {
  index: string;
  efSearch: number | null;
  recall: number;
  buildSeconds: number;
  loadSeconds: number | null;
  batchSearchSeconds: number;
  batchQps: number;
  singleQueryMsP50: number;
}
const rows: Row[] = [
  {
    index: 'Flat',
    efSearch: null,
    recall: 1,
    buildSeconds: flatBuild,
    loadSeconds: null,
    batchSearchSeconds: flatSearch,
    batchQps: nq / flatSearch,
    singleQueryMsP50: flatSingle,
  },
];
try {
  for (const ef of efSearch) {
    t0 = performance.now();
    const loaded = await loadIndex(dir, { searchThreads: threads, hnsw: { expansionSearch: ef } });
    const loadSeconds = seconds(t0);
    t0 = performance.now();
    const approx = await loaded.search(queries, k);
    const batch = seconds(t0);
    rows.push({
      index: `HNSW${connectivity}`,
      efSearch: ef,
      recall: recall(approx, exact),
      buildSeconds: hnswBuild,
      loadSeconds,
      batchSearchSeconds: batch,
      batchQps: nq / batch,
      singleQueryMsP50: await singleQueryMs(loaded, queries),
    });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

log('');
log('index      efSearch  recall@k  build s  load s  batch s  batch q/s  1-query p50 ms');
for (const r of rows) {
  log(
    `${r.index.padEnd(10)} ${String(r.efSearch ?? '-').padStart(8)}  ${r.recall.toFixed(4).padStart(8)}  ${r.buildSeconds.toFixed(1).padStart(7)}  ${(r.loadSeconds === null ? '-' : r.loadSeconds.toFixed(2)).padStart(6)}  ${r.batchSearchSeconds.toFixed(3).padStart(7)}  ${r.batchQps.toFixed(0).padStart(9)}  ${r.singleQueryMsP50.toFixed(3).padStart(14)}`,
  );
}
log(`HNSW save ${hnswSave.toFixed(2)} s, vector.index ${(fileBytes / 1048576).toFixed(1)} MiB`);
console.log(
  JSON.stringify({
    n,
    dim,
    queries: nq,
    k,
    data,
    classes: data === 'clustered' ? classes : null,
    noise: data === 'clustered' ? noise : null,
    threads,
    connectivity,
    expansionAdd: efAdd,
    hnswSaveSeconds: hnswSave,
    hnswFileBytes: fileBytes,
    rows,
  }),
);
