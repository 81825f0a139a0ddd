/**
 * High-performance mode (runMode 'hpi'): graph passes plus oneDNN kernels must compute what
 * the reference kernels compute, the fast path must really be taken, each graph pass alone
 * (on the reference kernels) must keep the numbers, and the hpi options must be validated.
 *
 * Agreement metric, per output: the cosine similarity of every output row (first dimension)
 * of hpi vs normal, and the largest absolute difference over the whole output. Tolerances:
 * cosine ≥ 0.99999 and max |Δ| ≤ 1e-4 · max(1, max|normal|): an absolute 1e-4 for outputs
 * of magnitude ≤ 1 (probabilities, normalised features), scaled by the output's own
 * magnitude for large-magnitude outputs (raw features, image-valued outputs), where float32
 * rounding of a re-associated sum grows with the values summed.
 *
 * Both modes of an agreement run use cpuThreads 2 (faster here; the thread-count test checks
 * separately that threads do not change hpi results). A table of all numbers is printed at
 * the end. ViT-L (≈ 1.2 GB of weights built to a temp dir; ~16 s here, build included) runs
 * unless PIF_TEST_VIT_LARGE=0, as in onnx-oracle.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { buildModel, type BuildableModel } from '../lib/builder.js';
import { InvalidArgumentError, UnsupportedError, type PifError } from '../lib/errors.js';
import type { NativeEngineInfo } from '../lib/native.js';
import {
  GRAPH_PASSES,
  loadPredictor,
  type Predictor,
  type PredictorOptions,
} from '../lib/predictor.js';
import type { Tensor } from '../lib/tensor.js';
import { count, fixtureCaseInput, imageLike, RUNNABLE_FIXTURE_CASES } from './helpers/inputs.js';
import { fileTempDir, testEachFixture } from './helpers/fixture-tests.js';
import { needNative } from './helpers/native.js';
import { printTable } from './helpers/table.js';

const COS_MIN = 0.99999;
const ABS_TOL = 1e-4;
const BUILD_SEED = 3;
const GRAPH_ONLY_SEED = 11;
/** Threads of both modes in agreement and pass runs. */
const THREADS = 2;

const SHITU: BuildableModel = 'PP-ShiTuV2_rec';
const VIT_B: BuildableModel = 'PP-ShiTuV2_rec_CLIP_vit_base';
const VIT_L: BuildableModel = 'PP-ShiTuV2_rec_CLIP_vit_large';

type Outputs = Record<string, Tensor>;

// ---------------------------------------------------------------------------------------
// Comparison

interface Agreement {
  /** Smallest cosine similarity over all output rows. */
  minCos: number;
  maxAbs: number;
  /** max |reference|. */
  maxRef: number;
}

/** Per-row cosine (rows = first dimension) and max |Δ| of `a` against `ref`. */
function agreement(a: Float32Array, ref: Float32Array, rows: number): Agreement {
  assert.equal(a.length, ref.length, 'element count');
  assert.ok(rows >= 1 && ref.length % rows === 0, `${ref.length} elements in ${rows} rows`);
  const cols = ref.length / rows;
  let minCos = Infinity;
  let maxAbs = 0;
  let maxRef = 0;
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = r * cols; i < (r + 1) * cols; i++) {
      const x = a[i]!;
      const y = ref[i]!;
      assert.ok(Number.isFinite(x) && Number.isFinite(y), `non-finite value at ${i}: ${x} vs ${y}`);
      dot += x * y;
      na += x * x;
      nb += y * y;
      maxAbs = Math.max(maxAbs, Math.abs(x - y));
      maxRef = Math.max(maxRef, Math.abs(y));
    }
    // Two all-zero rows agree; one all-zero row against a non-zero one does not.
    const cos = na === 0 || nb === 0 ? (na === nb ? 1 : 0) : dot / Math.sqrt(na * nb);
    minCos = Math.min(minCos, cos);
  }
  return { minCos, maxAbs, maxRef };
}

function rowsOf(shape: readonly number[]): number {
  return shape.length > 0 && shape[0]! > 0 ? shape[0]! : 1;
}

interface Tolerance {
  cos: number;
  /** Absolute tolerance before scaling by max(1, max|ref|). */
  abs: number;
}

const AGREE: Tolerance = { cos: COS_MIN, abs: ABS_TOL };

/**
 * Checks every output of `ours` against `ref` (same names, dtypes, shapes; float outputs
 * within `tol`, others exactly equal) and returns the worst numbers over all outputs.
 */
function checkOutputs(what: string, ours: Outputs, ref: Outputs, tol: Tolerance): Agreement {
  assert.deepEqual(Object.keys(ours), Object.keys(ref), `${what}: output names`);
  const worst: Agreement = { minCos: Infinity, maxAbs: 0, maxRef: 0 };
  for (const [name, r] of Object.entries(ref)) {
    const o = ours[name]!;
    assert.equal(o.dtype, r.dtype, `${what} ${name}: dtype`);
    assert.deepEqual(o.shape, r.shape, `${what} ${name}: shape`);
    if (r.dtype !== 'float32') {
      assert.deepEqual(o.data, r.data, `${what} ${name}: ${r.dtype} output differs`);
      continue;
    }
    const d = agreement(o.data as Float32Array, r.data as Float32Array, rowsOf(r.shape));
    assert.ok(d.maxRef > 0, `${what} ${name}: reference output is all zeros`);
    const absTol = tol.abs * Math.max(1, d.maxRef);
    assert.ok(
      d.minCos >= tol.cos,
      `${what} ${name}: worst row cosine ${d.minCos} < ${tol.cos} (max |Δ| ${d.maxAbs})`,
    );
    assert.ok(
      d.maxAbs <= absTol,
      `${what} ${name}: max |Δ| ${d.maxAbs} > ${absTol} (max|ref| ${d.maxRef}, cosine ${d.minCos})`,
    );
    worst.minCos = Math.min(worst.minCos, d.minCos);
    worst.maxAbs = Math.max(worst.maxAbs, d.maxAbs);
    worst.maxRef = Math.max(worst.maxRef, d.maxRef);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------
// Report

interface Row extends Agreement {
  label: string;
  check: string;
  normalMs: number;
  hpiMs: number;
}

const rows: Row[] = [];

const fmt = (x: number): string => (x === 0 ? '0' : x.toExponential(2));
const fmtCos = (c: number): string => (c === 1 ? '1' : `1 - ${fmt(1 - c)}`);
const fmtMs = (ms: number): string => (Number.isNaN(ms) ? '-' : ms.toFixed(0));

function record(t: TestContext, row: Row): void {
  rows.push(row);
  t.diagnostic(
    `${row.label} [${row.check}]: worst cosine ${fmtCos(row.minCos)}, max |Δ| ${fmt(row.maxAbs)}, max|ref| ${fmt(row.maxRef)}; ms ${fmtMs(row.normalMs)} / ${fmtMs(row.hpiMs)}`,
  );
}

function printRows(): void {
  if (rows.length === 0) return;
  const head = ['model', 'check', 'worst cosine', 'max |Δ|', 'max|ref|', 'ref ms', 'test ms'];
  const body = rows.map((r) => [
    r.label,
    r.check,
    fmtCos(r.minCos),
    fmt(r.maxAbs),
    fmt(r.maxRef),
    fmtMs(r.normalMs),
    fmtMs(r.hpiMs),
  ]);
  printTable(
    `hpi / graph passes vs normal mode (tolerance: cosine ≥ ${COS_MIN}, max |Δ| ≤ ${ABS_TOL}·max(1, max|ref|))`,
    head,
    body,
  );
}

// ---------------------------------------------------------------------------------------
// Models and runs

const tmpDir = fileTempDir('pif-hpi-', printRows);

const builtDirs = new Map<string, Promise<string>>();

/** Builds a target model once per file run (seeded random weights) and returns its dir. */
function built(model: BuildableModel, format: 'pir' | 'legacy' = 'pir'): Promise<string> {
  const key = `${model}-${format}`;
  let dir = builtDirs.get(key);
  if (dir === undefined) {
    const d = path.join(tmpDir(), key);
    dir = buildModel(model, d, { format, seed: BUILD_SEED }).then(() => d);
    builtDirs.set(key, dir);
  }
  return dir;
}

async function run(p: Predictor, input: Float32Array, shape: number[]): Promise<Outputs> {
  assert.equal(p.inputs.length, 1, `inputs: ${p.inputs.map((i) => i.name).join(', ')}`);
  return p.run({ [p.inputs[0]!.name]: { data: input, shape } });
}

interface Timed {
  out: Outputs;
  engine: NativeEngineInfo;
  ms: number;
}

/** Loads `dir` with `options`, runs it once on `input`, closes it. */
async function loadAndRun(
  dir: string,
  options: PredictorOptions,
  input: Float32Array,
  shape: number[],
): Promise<Timed> {
  const p = await loadPredictor(dir, options);
  try {
    const engine = p.engine;
    const t0 = performance.now();
    const out = await run(p, input, shape);
    return { out, engine, ms: performance.now() - t0 };
  } finally {
    p.close();
  }
}

const normalCache = new Map<string, Promise<Timed>>();

/** Normal-mode (reference) outputs, memoised per model dir, options and input. */
function normalRun(
  key: string,
  dir: string,
  input: Float32Array,
  shape: number[],
  extra: PredictorOptions = {},
): Promise<Timed> {
  const k = `${dir}|${key}|${shape.join('x')}`;
  let r = normalCache.get(k);
  if (r === undefined) {
    r = loadAndRun(dir, { ...extra, runMode: 'normal', cpuThreads: THREADS }, input, shape);
    normalCache.set(k, r);
  }
  return r;
}

interface Case {
  label: string;
  dir: string;
  shape: number[];
  input: Float32Array;
  /** Input key for the normal-run cache. */
  key: string;
  extra?: PredictorOptions;
}

/** hpi fp32 vs normal on one input: every output within AGREE. Returns both runs. */
async function hpiVsNormal(t: TestContext, c: Case): Promise<{ normal: Timed; hpi: Timed }> {
  const extra = c.extra ?? {};
  const normal = await normalRun(c.key, c.dir, c.input, c.shape, extra);
  assert.equal(normal.engine.dnnlNodes, 0, `${c.label}: normal mode has oneDNN nodes`);
  assert.deepEqual(normal.engine.passes, {}, `${c.label}: normal mode ran graph passes`);
  const hpi = await loadAndRun(
    c.dir,
    { ...extra, runMode: 'hpi', precision: 'fp32', cpuThreads: THREADS },
    c.input,
    c.shape,
  );
  assert.ok(hpi.engine.dnnlNodes > 0, `${c.label}: hpi bound no node to oneDNN`);
  assert.ok(hpi.engine.dnnlNodes <= hpi.engine.nodes);
  const d = checkOutputs(`${c.label} hpi vs normal`, hpi.out, normal.out, AGREE);
  record(t, {
    label: c.label,
    check: `hpi fp32 vs normal ${JSON.stringify(c.shape)}`,
    ...d,
    normalMs: normal.ms,
    hpiMs: hpi.ms,
  });
  return { normal, hpi };
}

const SHITU_SHAPE = [2, 3, 224, 224];
const shituInput = imageLike(SHITU_SHAPE, 401);
const VIT_SHAPE = [2, 3, 224, 224];
const vitInput = imageLike(VIT_SHAPE, 402);
/** ViT-B pass-by-pass runs use batch 1 (9 passes × ~1 s per image). */
const VIT_PASS_SHAPE = [1, 3, 224, 224];
const vitPassInput = vitInput.slice(0, count(VIT_PASS_SHAPE));

async function shituCase(format: 'pir' | 'legacy'): Promise<Case> {
  return {
    label: `${SHITU} ${format}`,
    dir: await built(SHITU, format),
    shape: SHITU_SHAPE,
    input: shituInput,
    key: 'shitu-401',
  };
}

async function vitCase(): Promise<Case> {
  return {
    label: `${VIT_B} pir`,
    dir: await built(VIT_B),
    shape: VIT_SHAPE,
    input: vitInput,
    key: 'vit-402',
  };
}

function cpuHasBf16(): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return false;
  }
  const flags = new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith('flags'))
      .flatMap((l) =>
        l
          .slice(l.indexOf(':') + 1)
          .trim()
          .split(/\s+/),
      ),
  );
  return flags.has('avx512_bf16') || flags.has('amx_bf16');
}

const isCode = (code: string, text?: RegExp) => (err: unknown) => {
  assert.equal((err as PifError).code, code, String(err));
  if (text !== undefined) assert.match((err as Error).message, text);
  return true;
};

// ---------------------------------------------------------------------------------------

describe('hpi fp32 agrees with normal mode', () => {
  describe(`built target models (seed ${BUILD_SEED})`, () => {
    for (const format of ['pir', 'legacy'] as const) {
      test(`${SHITU} ${format}, batch 2`, async (t) => {
        if (needNative(t) === null) return;
        await hpiVsNormal(t, await shituCase(format));
      });
    }

    test(`${VIT_B} pir, batch 2`, async (t) => {
      if (needNative(t) === null) return;
      await hpiVsNormal(t, await vitCase());
    });

    test(`${VIT_L} pir, batch 1`, async (t) => {
      if (process.env['PIF_TEST_VIT_LARGE'] === '0') {
        t.skip('PIF_TEST_VIT_LARGE=0 (ViT-L: ~16 s, 1.2 GB of temp disk)');
        return;
      }
      if (needNative(t) === null) return;
      const dir = path.join(tmpDir(), `${VIT_L}-pir`);
      try {
        await buildModel(VIT_L, dir, { seed: BUILD_SEED });
        const shape = [1, 3, 224, 224];
        await hpiVsNormal(t, {
          label: `${VIT_L} pir`,
          dir,
          shape,
          input: imageLike(shape, 403),
          key: 'vitl-403',
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('runnable fixtures (real weights)', () => {
    // The same fixtures, shapes and input generators as onnx-oracle.test.ts.
    testEachFixture(
      RUNNABLE_FIXTURE_CASES,
      (c) => `${c.name} ${JSON.stringify(c.shape)}${c.note ? ` (${c.note})` : ''}`,
      async (t, dir, c, i) =>
        hpiVsNormal(t, {
          label: c.name,
          dir,
          shape: c.shape,
          input: await fixtureCaseInput(c, i),
          key: c.name,
        }),
    );
  });

  describe(`graph-only fixtures (random weights, seed ${GRAPH_ONLY_SEED})`, () => {
    const cases = [
      { name: 'svtrnet_rus_rec_legacy_graphonly', shape: [2, 3, 64, 256] },
      { name: 'ppocrv5_server_rec_pir_graphonly', shape: [2, 3, 48, 320] },
      { name: 'ppocrv5_server_det_pir_v3_graphonly', shape: [1, 3, 320, 320] },
    ];
    testEachFixture(
      cases,
      (c) => `${c.name} ${JSON.stringify(c.shape)}`,
      (t, dir, c, i) =>
        hpiVsNormal(t, {
          label: c.name,
          dir,
          shape: c.shape,
          input: imageLike(c.shape, 200 + i),
          key: c.name,
          extra: { randomWeights: GRAPH_ONLY_SEED },
        }),
    );
  });
});

/** The normal-mode engine summary of `dir` (that predictor closed), then `dir` loaded in hpi mode. */
async function normalEngineThenHpi(
  dir: string,
): Promise<{ base: Predictor['engine']; p: Predictor }> {
  const normal = await loadPredictor(dir);
  const base = normal.engine;
  normal.close();
  return { base, p: await loadPredictor(dir, { runMode: 'hpi' }) };
}

describe('hpi takes the fast path', () => {
  for (const format of ['pir', 'legacy'] as const) {
    test(`${SHITU} ${format}: convolutions on oneDNN, batch norms folded, activations fused`, async (t) => {
      if (needNative(t) === null) return;
      const dir = await built(SHITU, format);
      const { base, p } = await normalEngineThenHpi(dir);
      try {
        const e = p.engine;
        t.diagnostic(`${SHITU} ${format} hpi engine: ${JSON.stringify(e)}`);
        assert.ok(e.dnnlNodes > 0, `dnnlNodes ${e.dnnlNodes}`);
        assert.ok(e.nodes < base.nodes, `hpi nodes ${e.nodes} vs normal ${base.nodes}`);
        assert.ok((base.ops['conv2d'] ?? 0) > 0, 'the model has convolutions');
        // Every convolution runs as a oneDNN fused convolution; none on the reference kernel.
        assert.equal(e.ops['dnnl.fused_conv2d'], base.ops['conv2d'], JSON.stringify(e.ops));
        assert.equal(e.ops['conv2d'], undefined);
        assert.equal(e.ops['pif.fused_conv2d'], undefined);
        // Only the BNNeck's batch_norm (on the 2-D feature, after no convolution) remains.
        assert.ok((e.ops['batch_norm'] ?? 0) <= 1, `batch_norm ×${e.ops['batch_norm']}`);
        assert.ok((e.passes['fold_batch_norm'] ?? 0) > 0, JSON.stringify(e.passes));
        assert.ok((e.passes['fuse_activation'] ?? 0) > 0, JSON.stringify(e.passes));
        assert.equal(e.ops['relu'], undefined, 'every relu fused as a post-op');
      } finally {
        p.close();
      }
    });
  }

  test(`${VIT_B}: matmuls on oneDNN with folded transposes, fused bias and residuals`, async (t) => {
    if (needNative(t) === null) return;
    const dir = await built(VIT_B);
    const { base, p } = await normalEngineThenHpi(dir);
    try {
      const e = p.engine;
      t.diagnostic(`${VIT_B} hpi engine: ${JSON.stringify(e)}`);
      assert.ok(e.dnnlNodes > 0, `dnnlNodes ${e.dnnlNodes}`);
      assert.ok((base.ops['matmul'] ?? 0) > 0, 'the model has matmuls');
      assert.equal(e.ops['dnnl.fused_matmul'], base.ops['matmul'], JSON.stringify(e.ops));
      assert.equal(e.ops['matmul'], undefined);
      assert.equal(e.ops['pif.fused_matmul'], undefined);
      for (const pass of ['fuse_bias', 'fold_transpose', 'fuse_residual']) {
        assert.ok((e.passes[pass] ?? 0) > 0, `${pass}: ${JSON.stringify(e.passes)}`);
      }
      assert.equal(e.ops['dnnl.layer_norm'], base.ops['layer_norm'], JSON.stringify(e.ops));
      assert.equal(e.ops['dnnl.softmax'], base.ops['softmax'], JSON.stringify(e.ops));
      assert.equal(e.ops['layer_norm'], undefined);
      assert.equal(e.ops['softmax'], undefined);
      // Folded transposes are gone from the graph.
      assert.equal(
        e.ops['transpose'] ?? 0,
        (base.ops['transpose'] ?? 0) - (e.passes['fold_transpose'] ?? 0),
        JSON.stringify(e.ops),
      );
    } finally {
      p.close();
    }
  });
});

describe('each graph pass keeps the numbers (normal mode, reference kernels)', () => {
  type Effect = (prev: NativeEngineInfo, e: NativeEngineInfo, n: number) => void;
  const op = (e: NativeEngineInfo, name: string) => e.ops[name] ?? 0;
  /** The pass rewrote n `from` nodes into `to` nodes, leaving no `from`. */
  const converts =
    (from: string, to: string): Effect =>
    (prev, e, n) => {
      assert.equal(op(e, to) - op(prev, to), n, `${to}: ${JSON.stringify(e.ops)}`);
      assert.equal(op(e, from), 0, `${from} left: ${JSON.stringify(e.ops)}`);
    };
  /** The pass removed exactly n `name` nodes. */
  const removes =
    (name: string): Effect =>
    (prev, e, n) => {
      assert.equal(op(prev, name) - op(e, name), n, `${name}: ${JSON.stringify(e.ops)}`);
      assert.ok(e.nodes < prev.nodes, `nodes ${prev.nodes} -> ${e.nodes}`);
    };
  const fewerNodes: Effect = (prev, e) => {
    assert.ok(e.nodes < prev.nodes, `nodes ${prev.nodes} -> ${e.nodes}`);
  };
  const EFFECTS: Readonly<Record<string, Effect>> = {
    remove_identity: fewerNodes,
    conv_to_fused: converts('conv2d', 'pif.fused_conv2d'),
    matmul_to_fused: converts('matmul', 'pif.fused_matmul'),
    fold_transpose: removes('transpose'),
    fuse_bias: removes('add'),
    fold_batch_norm: removes('batch_norm'),
    fuse_swish: removes('sigmoid'),
    fuse_activation: fewerNodes,
    fuse_residual: removes('add'),
  };

  async function passByPass(
    t: TestContext,
    label: string,
    dir: string,
    input: Float32Array,
    shape: number[],
    key: string,
    mustApply: readonly string[],
  ): Promise<void> {
    const base = await normalRun(key, dir, input, shape);
    let prev = base.engine;
    for (const [i, name] of GRAPH_PASSES.entries()) {
      const passes = GRAPH_PASSES.slice(0, i + 1);
      const r = await loadAndRun(
        dir,
        { runMode: 'normal', passes, cpuThreads: THREADS },
        input,
        shape,
      );
      const e = r.engine;
      const what = `${label} passes ${passes.join('+')}`;
      assert.equal(e.dnnlNodes, 0, `${what}: oneDNN nodes in normal mode`);
      assert.deepEqual(Object.keys(e.passes).sort(), [...passes].sort(), `${what}: passes run`);
      const n = e.passes[name]!;
      assert.ok(Number.isInteger(n) && n >= 0, `${what}: ${name} rewrites ${n}`);
      if (mustApply.includes(name)) assert.ok(n > 0, `${what}: ${name} rewrote nothing`);
      if (n > 0) {
        assert.notDeepEqual(e.ops, prev.ops, `${what}: ${name} rewrote ${n} but ops unchanged`);
        assert.ok(e.nodes <= prev.nodes, `${what}: nodes ${prev.nodes} -> ${e.nodes}`);
        EFFECTS[name]?.(prev, e, n);
      } else {
        assert.deepEqual(e.ops, prev.ops, `${what}: ${name} rewrote nothing but ops changed`);
        assert.equal(e.nodes, prev.nodes);
      }
      const d = checkOutputs(what, r.out, base.out, AGREE);
      record(t, {
        label,
        check: `+${name} (${n})`,
        ...d,
        normalMs: base.ms,
        hpiMs: r.ms,
      });
      prev = e;
    }
  }

  test(`${SHITU} pir, batch 2: every prefix of ${GRAPH_PASSES.join(', ')}`, async (t) => {
    if (needNative(t) === null) return;
    const c = await shituCase('pir');
    await passByPass(t, c.label, c.dir, c.input, c.shape, c.key, [
      'conv_to_fused',
      'fuse_bias',
      'fold_batch_norm',
      'fuse_activation',
    ]);
  });

  test(`${VIT_B} pir, batch 1: every prefix of the pass list`, async (t) => {
    if (needNative(t) === null) return;
    const dir = await built(VIT_B);
    await passByPass(t, `${VIT_B} pir`, dir, vitPassInput, VIT_PASS_SHAPE, 'vit-402-b1', [
      'conv_to_fused',
      'matmul_to_fused',
      'fold_transpose',
      'fuse_bias',
      'fuse_residual',
    ]);
  });
});

describe('hpi options', () => {
  test("precision 'bf16' needs runMode 'hpi'; passes are normal-mode only and must be known", async (t) => {
    if (needNative(t) === null) return;
    const dir = await built(SHITU);
    await assert.rejects(
      loadPredictor(dir, { runMode: 'normal', precision: 'bf16' }),
      (err: unknown) => err instanceof UnsupportedError && isCode('PIF_UNSUPPORTED')(err),
    );
    await assert.rejects(
      loadPredictor(dir, { precision: 'bf16' }),
      (err: unknown) => err instanceof UnsupportedError && isCode('PIF_UNSUPPORTED')(err),
    );
    await assert.rejects(
      loadPredictor(dir, { runMode: 'normal', passes: ['fold_batch_norm', 'no_such_pass'] }),
      (err: unknown) =>
        err instanceof InvalidArgumentError && isCode('PIF_INVALID_ARG', /no_such_pass/)(err),
    );
    await assert.rejects(
      loadPredictor(dir, { runMode: 'hpi', passes: ['conv_to_fused'] }),
      (err: unknown) =>
        err instanceof InvalidArgumentError && isCode('PIF_INVALID_ARG', /passes/)(err),
    );
    await assert.rejects(
      loadPredictor(dir, { passes: 'conv_to_fused' as unknown as string[] }),
      (err: unknown) => err instanceof InvalidArgumentError && isCode('PIF_INVALID_ARG')(err),
    );
    await assert.rejects(
      loadPredictor(dir, { runMode: 'fast' as unknown as 'hpi' }),
      (err: unknown) => err instanceof InvalidArgumentError && isCode('PIF_INVALID_ARG')(err),
    );
    // An empty pass list is plain normal mode.
    const p = await loadPredictor(dir, { passes: [] });
    try {
      assert.deepEqual(p.engine.passes, {});
      assert.equal(p.engine.dnnlNodes, 0);
    } finally {
      p.close();
    }
  });

  const bf16 = cpuHasBf16();
  test(`precision 'bf16' in hpi: ${bf16 ? 'runs (cosine ≥ 0.999 vs fp32)' : 'PIF_UNSUPPORTED without AVX512-BF16/AMX'}`, async (t) => {
    if (needNative(t) === null) return;
    const c = await shituCase('pir');
    if (!bf16) {
      await assert.rejects(
        loadPredictor(c.dir, { runMode: 'hpi', precision: 'bf16' }),
        (err: unknown) =>
          err instanceof UnsupportedError && isCode('PIF_UNSUPPORTED', /AVX512-BF16/)(err),
      );
      return;
    }
    const fp32 = await loadAndRun(
      c.dir,
      { runMode: 'hpi', precision: 'fp32', cpuThreads: THREADS },
      c.input,
      c.shape,
    );
    const b = await loadAndRun(
      c.dir,
      { runMode: 'hpi', precision: 'bf16', cpuThreads: THREADS },
      c.input,
      c.shape,
    );
    assert.ok(b.engine.dnnlNodes > 0);
    const d = checkOutputs(`${c.label} bf16 vs fp32`, b.out, fp32.out, {
      cos: 0.999,
      abs: Infinity,
    });
    record(t, {
      label: c.label,
      check: 'hpi bf16 vs hpi fp32',
      ...d,
      normalMs: fp32.ms,
      hpiMs: b.ms,
    });
  });
});

describe('hpi runs', () => {
  // ViT-B: the matmul, layer_norm and softmax primitives are shape-keyed too (batch 1 and 3,
  // ~0.6 s per image here).
  for (const model of [SHITU, VIT_B]) {
    test(`${model}: concurrent runs with batch 1 and 3 on one predictor match sequential runs`, async (t) => {
      if (needNative(t) === null) return;
      const dir = await built(model);
      const s1 = [1, 3, 224, 224];
      const s3 = [3, 3, 224, 224];
      const x1 = imageLike(s1, 501);
      // Row 0 of the batch-3 input is the batch-1 input.
      const x3 = new Float32Array(count(s3));
      x3.set(x1);
      x3.set(imageLike([2, 3, 224, 224], 502), x1.length);

      const seq = await loadPredictor(dir, { runMode: 'hpi' });
      let a1: Outputs;
      let a3: Outputs;
      try {
        a1 = await run(seq, x1, s1);
        a3 = await run(seq, x3, s3);
      } finally {
        seq.close();
      }
      // The same row computed in a batch of 1 and in a batch of 3 (different primitives).
      const name = Object.keys(a1)[0]!;
      const row = a3[name]!.data.length / 3;
      const d = agreement(
        (a3[name]!.data as Float32Array).subarray(0, row),
        a1[name]!.data as Float32Array,
        1,
      );
      assert.ok(
        d.minCos >= COS_MIN && d.maxAbs <= ABS_TOL * Math.max(1, d.maxRef),
        `row 0 of batch 3 vs batch 1: ${JSON.stringify(d)}`,
      );

      // A fresh predictor (cold primitive caches: both shapes created at once), then warm.
      const p = await loadPredictor(dir, { runMode: 'hpi' });
      try {
        for (const state of ['cold', 'warm']) {
          const [c1, c3] = await Promise.all([run(p, x1, s1), run(p, x3, s3)]);
          for (const [got, want, what] of [
            [c1, a1, 'batch 1'],
            [c3, a3, 'batch 3'],
          ] as const) {
            assert.deepEqual(got[name]!.shape, want[name]!.shape, `${state} ${what}`);
            assert.deepEqual(
              got[name]!.data,
              want[name]!.data,
              `${state} ${what}: concurrent result differs from the sequential one`,
            );
          }
        }
      } finally {
        p.close();
      }
      record(t, {
        label: `${model} pir`,
        check: 'hpi row 0 of batch 3 vs batch 1',
        ...d,
        normalMs: NaN,
        hpiMs: NaN,
      });
    });
  }

  for (const [model, batch] of [
    [SHITU, 2],
    [VIT_B, 1],
  ] as const) {
    test(`${model}, batch ${batch}: cpuThreads 2 gives the numbers of cpuThreads 1 (max |Δ| ≤ 1e-5)`, async (t) => {
      if (needNative(t) === null) return;
      const dir = await built(model);
      const shape = [batch, 3, 224, 224];
      const x = imageLike(shape, 601);
      const one = await loadAndRun(dir, { runMode: 'hpi', cpuThreads: 1 }, x, shape);
      const two = await loadAndRun(dir, { runMode: 'hpi', cpuThreads: 2 }, x, shape);
      const d = checkOutputs(`${model} hpi 2 threads vs 1`, two.out, one.out, {
        cos: COS_MIN,
        abs: Infinity,
      });
      assert.ok(d.maxAbs <= 1e-5, `max |Δ| ${d.maxAbs} > 1e-5`);
      record(t, {
        label: `${model} pir`,
        check: `hpi 2 threads vs 1 ${JSON.stringify(shape)}`,
        ...d,
        normalMs: one.ms,
        hpiMs: two.ms,
      });
    });
  }
});
