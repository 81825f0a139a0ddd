// Retrieval evaluation throughput (lib/evaluate.ts, native/retrieval): features given, how long
// do similarity (dnnl_sgemm), ranking and metrics take, and how close is the whole to the GEMM?
//
//   npm run bench:evaluate -- [--gallery 100000] [--queries 10000] [--dim 512] [--threads 1]
//                             [--classes 1000] [--noise 2] [--block 64] [--random] [--json]
//
// Synthetic data: `classes` random class centres in [-1, 1]^dim; gallery item i has label
// i % classes, queries a random label; feature = centre + noise * uniform[-1, 1]^dim
// (--random: no class structure at all, every feature uniform; the slowest case for ranking,
// since relevant items are then spread over the whole ranking). The GEMM is 2 * nq * ng * dim
// flops; the ranking is a few operations per score. A script, not a test.
import { evaluateFeaturesWithStats } from '../lib/evaluate.js';
import { nativeBinding } from '../lib/native.js';
import { arg, intArg } from './bench-args.js';

const ng = intArg('gallery', 100000);
const nq = intArg('queries', 10000);
const dim = intArg('dim', 512);
const threads = intArg('threads', 1);
const classes = intArg('classes', 1000);
const blockSize = intArg('block', 64);
const noise = Number(arg('noise', '2'));
const random = process.argv.includes('--random');
const asJson = process.argv.includes('--json');
const log = (s: string) => {
  if (!asJson) console.log(s);
};

// xorshift32: fast, seeded.
let state = 0x9e3779b9;
const uniform = (): number => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return (state / 4294967296) * 2 - 1;
};

const tGen = performance.now();
const centres = new Float32Array(classes * dim);
for (let i = 0; i < centres.length; i++) centres[i] = uniform();
function makeSet(n: number, labelOf: (i: number) => number) {
  const features = new Float32Array(n * dim);
  const labels = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = labelOf(i);
    labels[i] = c;
    const off = i * dim;
    const coff = c * dim;
    for (let j = 0; j < dim; j++) {
      features[off + j] = random ? uniform() : (centres[coff + j] as number) + noise * uniform();
    }
  }
  return { features, labels };
}
const gallery = makeSet(ng, (i) => i % classes);
const query = makeSet(nq, () => Math.floor(((uniform() + 1) / 2) * classes) % classes);
const genSeconds = (performance.now() - tGen) / 1000;

const peak = nativeBinding().probePeak({ threads, seconds: 0.5 });
log(
  `retrieval evaluation: ${nq} queries x ${ng} gallery x dim ${dim}, ${classes} classes, ` +
    `${random ? 'random features' : `noise ${noise}`}, block ${blockSize}, ${threads} thread(s)`,
);
log(
  `  (data generated in ${genSeconds.toFixed(1)} s; sgemm peak 512^3: ${peak.sgemmGflops.toFixed(1)} GFLOP/s)`,
);

const { metrics, stats } = await evaluateFeaturesWithStats(
  { query, gallery, dim },
  { blockSize, threads },
);
const tm = stats.timing;
const flops = 2 * nq * ng * dim;
const other = Math.max(
  0,
  tm.wallSeconds - tm.gemmSeconds - tm.rankSeconds - tm.normalizeSeconds - tm.checkSeconds,
);
const result = {
  gallery: ng,
  queries: nq,
  dim,
  classes,
  threads,
  blockSize,
  data: random ? 'random' : `clustered, noise ${noise}`,
  metrics,
  validQueries: stats.numValidQuery,
  seconds: {
    prepare: tm.prepareSeconds,
    check: tm.checkSeconds,
    normalize: tm.normalizeSeconds,
    gemm: tm.gemmSeconds,
    rank: tm.rankSeconds,
    nativeTotal: tm.totalSeconds,
    wall: tm.wallSeconds,
  },
  gemmGflops: flops / tm.gemmSeconds / 1e9,
  overallGflops: flops / tm.wallSeconds / 1e9,
  rankNsPerScore: (tm.rankSeconds / (nq * ng)) * 1e9,
  rankShareOfGemm: tm.rankSeconds / tm.gemmSeconds,
  sgemmPeakGflops: peak.sgemmGflops,
};
const row = (name: string, s: number, extra = ''): void => {
  log(
    `  ${name.padEnd(30)} ${s.toFixed(3).padStart(9)} s ${((s / tm.wallSeconds) * 100).toFixed(1).padStart(6)} %  ${extra}`,
  );
};
log(`  ${'phase'.padEnd(30)} ${'seconds'.padStart(11)} ${'share'.padStart(8)}`);
row('copy + label conversion (JS)', tm.prepareSeconds);
row('checks + label grouping', tm.checkSeconds);
row('L2 normalisation', tm.normalizeSeconds);
row('similarity GEMM (dnnl_sgemm)', tm.gemmSeconds, `${result.gemmGflops.toFixed(1)} GFLOP/s`);
row('ranking + AP', tm.rankSeconds, `${result.rankNsPerScore.toFixed(2)} ns per score`);
row('other', other);
row('total (wall)', tm.wallSeconds, `${result.overallGflops.toFixed(1)} GFLOP/s overall`);
log(
  `  recall1 ${metrics.recall1.toFixed(5)}, recall5 ${metrics.recall5.toFixed(5)}, mAP ${metrics.mAP.toFixed(5)} ` +
    `(${stats.numValidQuery} of ${nq} queries have a relevant item)`,
);
console.log(JSON.stringify(result));
