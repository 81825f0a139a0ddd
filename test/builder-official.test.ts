/**
 * The builder emits the official graphs (issue 13, items 3 and 4).
 *
 * PP-ShiTuV2_rec: the builder's legacy graph is compared with the official PaddleClas export
 * (fixture pp_shituv2_rec_legacy_graphonly: inference.pdmodel written by Paddle 2.3.2, no
 * weights) op by op — type, input/output slots and the variable names in them, every
 * attribute with its kind and value — and parameter by parameter (name, dtype, shape), plus
 * the model's feed/fetch variables. Paddle 2.3.2 also saved attributes that later Paddle
 * versions treat as run-time extras and no longer write; those are listed below per op type
 * and are the only ones allowed to be missing from the builder's graph.
 *
 * The official graph itself then runs: with seeded random weights in normal and hpi mode
 * (agreement ≤ 1e-5 relative), with the builder's weights (the same function as the builder
 * model, bit for bit — possible only because the parameter names, and so the sorted order of
 * inference.pdiparams, are the official ones), and as our ONNX export under onnxruntime-node
 * (≤ 1e-5 relative). Relative error = max|a − ref| / max|ref|.
 *
 * CLIP: default builds use exact GELU (gelu, approximate=false, as PaddleClas since 2024-05),
 * never the sigmoid-based QuickGELU, and in hpi mode the gelu runs as a oneDNN post-op of the
 * fused matmul before it. ViT-L (≈ 1.2 GB of weights per format, built to a temp dir) is
 * skipped with PIF_TEST_VIT_LARGE=0, as in onnx-oracle.test.ts.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';

import * as ort from 'onnxruntime-node';

import { buildModel, type BuildableModel } from '../lib/builder.js';
import { exportOnnx } from '../lib/export.js';
import { nativeBinding, type NativeProgramJson } from '../lib/native.js';
import { loadPredictor, type PredictorOptions } from '../lib/predictor.js';
import { fixtureDir, needFixtures } from './helpers/fixtures.js';
import { imageLike } from './helpers/inputs.js';
import { needNative } from './helpers/native.js';

const OFFICIAL = 'pp_shituv2_rec_legacy_graphonly';
const SHITU: BuildableModel = 'PP-ShiTuV2_rec';
const VIT_B: BuildableModel = 'PP-ShiTuV2_rec_CLIP_vit_base';
const VIT_L: BuildableModel = 'PP-ShiTuV2_rec_CLIP_vit_large';
const SEED = 5;
const REL_TOL = 1e-5;
const SHAPE = [2, 3, 224, 224];

/**
 * Attributes Paddle 2.3.2 saved that Paddle ≥ 2.4 treats as run-time extras (oneDNN, cuDNN
 * and quantisation switches, the Python call stack) and strips on export; none changes what
 * an op computes at inference. '*' applies to every op type.
 */
const PADDLE23_EXTRA_ATTRS: Readonly<Record<string, readonly string[]>> = (() => {
  const conv = [
    'Scale_in',
    'Scale_in_eltwise',
    'Scale_out',
    'Scale_weights',
    'exhaustive_search',
    'force_fp32_output',
    'fuse_activation',
    'fuse_alpha',
    'fuse_beta',
    'fuse_brelu',
    'fuse_brelu_threshold',
    'fuse_relu',
    'fuse_relu_before_depthwise_conv',
    'fuse_residual_connection',
    'is_test',
    'mkldnn_data_type',
    'use_addto',
    'use_cudnn',
    'use_mkldnn',
    'use_quantizer',
    'workspace_size_MB',
  ];
  const elementwise = [
    'Scale_out',
    'Scale_x',
    'Scale_y',
    'mkldnn_data_type',
    'use_mkldnn',
    'use_quantizer',
    'x_data_format',
    'y_data_format',
  ];
  return {
    '*': ['op_callstack', 'with_quant_attr'],
    conv2d: conv,
    depthwise_conv2d: conv,
    batch_norm: ['fuse_with_relu', 'use_mkldnn'],
    dropout: ['fix_seed', 'seed'],
    elementwise_add: elementwise,
    elementwise_mul: elementwise,
    pool2d: ['is_test', 'mkldnn_data_type', 'use_mkldnn', 'use_quantizer'],
    relu: ['use_cudnn', 'use_mkldnn'],
    sigmoid: ['use_cudnn', 'use_mkldnn'],
  };
})();

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pif-builder-official-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function programJson(modelPath: string): Promise<NativeProgramJson> {
  const text = await nativeBinding().dumpModel(path.resolve(modelPath), {
    requireParams: false,
    json: true,
  });
  return JSON.parse(text) as NativeProgramJson;
}

type Op = NativeProgramJson['blocks'][number]['ops'][number];

function opsOf(p: NativeProgramJson): Op[] {
  return p.blocks.flatMap((b) => b.ops);
}

function slotsText(slots: Op['inputs']): string {
  return slots.map((s) => `${s.slot}:[${s.args.join(',')}]`).join(' ');
}

/** Every difference of `ours` from `official`, as readable lines (empty when equal). */
function graphDifferences(official: NativeProgramJson, ours: NativeProgramJson): string[] {
  const diffs: string[] = [];
  const a = opsOf(official);
  const b = opsOf(ours);
  if (a.length !== b.length) diffs.push(`op count: official ${a.length}, builder ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    const at = `op ${i} (${x.type})`;
    if (x.type !== y.type) {
      diffs.push(`${at}: builder has ${y.type}`);
      continue;
    }
    for (const dir of ['inputs', 'outputs'] as const) {
      if (slotsText(x[dir]) !== slotsText(y[dir]))
        diffs.push(`${at} ${dir}: official ${slotsText(x[dir])}, builder ${slotsText(y[dir])}`);
    }
    const extras = new Set([
      ...PADDLE23_EXTRA_ATTRS['*']!,
      ...(PADDLE23_EXTRA_ATTRS[x.type] ?? []),
    ]);
    const mine = new Map(y.attrs.map((t) => [t.name, t]));
    for (const attr of x.attrs) {
      const m = mine.get(attr.name);
      mine.delete(attr.name);
      if (m === undefined) {
        if (!extras.has(attr.name)) diffs.push(`${at}: attribute ${attr.name} missing`);
      } else if (m.kind !== attr.kind || JSON.stringify(m.value) !== JSON.stringify(attr.value)) {
        diffs.push(
          `${at}: ${attr.name} official ${attr.kind} ${JSON.stringify(attr.value)}, builder ${m.kind} ${JSON.stringify(m.value)}`,
        );
      }
    }
    for (const name of mine.keys()) diffs.push(`${at}: builder-only attribute ${name}`);
  }
  const params = (p: NativeProgramJson) =>
    p.params
      .map((q) => `${q.name} ${q.dtype}[${q.shape.join(',')}]`)
      .sort()
      .join('\n');
  if (params(official) !== params(ours)) {
    const mine = new Set(params(ours).split('\n'));
    const theirs = new Set(params(official).split('\n'));
    for (const q of theirs) if (!mine.has(q)) diffs.push(`parameter missing: ${q}`);
    for (const q of mine) if (!theirs.has(q)) diffs.push(`builder-only parameter: ${q}`);
  }
  for (const io of ['inputs', 'outputs'] as const) {
    const s = (p: NativeProgramJson) => p[io].map((v) => `${v.name}=${v.var}`).join(' ');
    if (s(official) !== s(ours)) diffs.push(`${io}: official ${s(official)}, builder ${s(ours)}`);
  }
  return diffs;
}

/** Loads `dir`, runs `input` (shape SHAPE) through its one input, returns its one output. */
async function runOnce(dir: string, options: PredictorOptions, input: Float32Array) {
  const p = await loadPredictor(dir, { cpuThreads: 2, ...options });
  try {
    assert.equal(p.inputs.length, 1);
    const out = await p.run({ [p.inputs[0]!.name]: { data: input, shape: SHAPE } });
    const entries = Object.entries(out);
    assert.equal(entries.length, 1, `outputs: ${Object.keys(out).join(', ')}`);
    const [name, tensor] = entries[0]!;
    assert.equal(tensor.dtype, 'float32');
    return { name, shape: tensor.shape, data: tensor.data as Float32Array, engine: p.engine };
  } finally {
    p.close();
  }
}

/** max|a − ref| / max|ref|. */
function relErr(a: Float32Array, ref: Float32Array): number {
  assert.equal(a.length, ref.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Number.isFinite(a[i]!) && Number.isFinite(ref[i]!), `non-finite value at ${i}`);
    d = Math.max(d, Math.abs(a[i]! - ref[i]!));
    m = Math.max(m, Math.abs(ref[i]!));
  }
  assert.ok(m > 0, 'reference output is all zeros');
  return d / m;
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

const builtDirs = new Map<string, Promise<string>>();

/** Builds a model once per file run (seed SEED) and returns its directory. */
function built(model: BuildableModel, format: 'pir' | 'legacy'): Promise<string> {
  const key = `${model}-${format}`;
  let dir = builtDirs.get(key);
  if (dir === undefined) {
    const d = path.join(tmp, key);
    dir = buildModel(model, d, { format, seed: SEED }).then(() => d);
    builtDirs.set(key, dir);
  }
  return dir;
}

describe(`${SHITU}: the builder emits the official graph (${OFFICIAL})`, () => {
  test('legacy graph equals the official export op by op, attribute by attribute, parameter by parameter', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const official = await programJson(path.join(fixtureDir(root, OFFICIAL), 'inference.pdmodel'));
    const ours = await programJson(await built(SHITU, 'legacy'));
    // The comparison must have something to compare: the official graph as SOURCE.md states it.
    assert.equal(official.format, 'legacy');
    assert.ok(opsOf(official).length > 100, `official ops: ${opsOf(official).length}`);
    assert.ok(official.params.length > 100, `official params: ${official.params.length}`);
    const diffs = graphDifferences(official, ours);
    assert.deepEqual(diffs, [], `${diffs.length} differences:\n${diffs.slice(0, 40).join('\n')}`);
    t.diagnostic(
      `${opsOf(ours).length} ops, ${ours.params.length} parameters, output ${ours.outputs[0]?.var}: identical`,
    );
  });

  test('the PIR build uses the same parameter names and shapes', async (t) => {
    if (needNative(t) === null) return;
    const names = (p: NativeProgramJson) =>
      p.params.map((q) => `${q.name} [${q.shape.join(',')}]`).sort();
    const legacy = await programJson(await built(SHITU, 'legacy'));
    const pir = await programJson(await built(SHITU, 'pir'));
    assert.deepEqual(names(pir), names(legacy));
  });

  test('PIR and legacy builds compute bit-identical outputs', async (t) => {
    if (needNative(t) === null) return;
    const input = imageLike(SHAPE, 31);
    const pir = await runOnce(await built(SHITU, 'pir'), {}, input);
    const legacy = await runOnce(await built(SHITU, 'legacy'), {}, input);
    assert.ok(sameBytes(pir.data, legacy.data), `rel err ${relErr(legacy.data, pir.data)}`);
  });
});

describe(`the official ${SHITU} graph runs`, () => {
  test(`normal and hpi with random weights agree (rel err ≤ ${REL_TOL})`, async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, OFFICIAL);
    const input = imageLike(SHAPE, 32);
    const normal = await runOnce(dir, { randomWeights: 11 }, input);
    const hpi = await runOnce(dir, { randomWeights: 11, runMode: 'hpi' }, input);
    assert.deepEqual(normal.shape, [2, 512]);
    assert.equal(normal.name, 'batch_norm_25.tmp_2');
    assert.ok(hpi.engine.dnnlNodes > 0, 'hpi bound nothing to oneDNN');
    const rel = relErr(hpi.data, normal.data);
    t.diagnostic(`hpi vs normal: rel err ${rel.toExponential(3)}`);
    assert.ok(rel <= REL_TOL, `hpi vs normal rel err ${rel}`);
  });

  test("with the builder's weights it is the builder's model, bit for bit", async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const ours = await built(SHITU, 'legacy');
    // The official program beside the builder's inference.pdiparams (stored in sorted-name
    // order, so it only loads under the official names).
    const dir = path.join(tmp, 'official-with-builder-weights');
    await mkdir(dir, { recursive: true });
    await copyFile(
      path.join(fixtureDir(root, OFFICIAL), 'inference.pdmodel'),
      path.join(dir, 'inference.pdmodel'),
    );
    await copyFile(path.join(ours, 'inference.pdiparams'), path.join(dir, 'inference.pdiparams'));
    const input = imageLike(SHAPE, 33);
    for (const runMode of ['normal', 'hpi'] as const) {
      const a = await runOnce(dir, { runMode }, input);
      const b = await runOnce(ours, { runMode }, input);
      assert.equal(a.name, b.name);
      assert.ok(sameBytes(a.data, b.data), `${runMode}: rel err ${relErr(a.data, b.data)}`);
    }
  });

  test(`its ONNX export matches onnxruntime-node (rel err ≤ ${REL_TOL})`, async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, OFFICIAL);
    const onnxFile = path.join(tmp, 'official.onnx');
    await exportOnnx(dir, onnxFile, { randomWeights: 11 });
    const input = imageLike(SHAPE, 34);
    const session = await ort.InferenceSession.create(onnxFile, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    let ref: Float32Array;
    try {
      const res = await session.run({
        [session.inputNames[0]!]: new ort.Tensor('float32', input, SHAPE),
      });
      assert.equal(session.outputNames.length, 1);
      ref = res[session.outputNames[0]!]!.data as Float32Array;
    } finally {
      await session.release();
    }
    const ours = await runOnce(dir, { randomWeights: 11 }, input);
    const rel = relErr(ours.data, ref);
    t.diagnostic(`ours vs ORT: rel err ${rel.toExponential(3)}`);
    assert.ok(rel <= REL_TOL, `ours vs ORT rel err ${rel}`);
  });
});

describe('CLIP builders use exact GELU by default', () => {
  /** gelu ops with their approximate attribute, and every sign of QuickGELU. */
  function activations(p: NativeProgramJson) {
    const ops = opsOf(p);
    const type = (o: Op) => o.type.replace(/^pd_op\./, '');
    return {
      gelu: ops.filter((o) => type(o) === 'gelu'),
      sigmoid: ops.filter((o) => type(o) === 'sigmoid').length,
      // QuickGELU's scale(1.702): legacy as an attribute, PIR as a full() constant.
      scale1702: ops.filter((o) =>
        o.attrs.some((a) => typeof a.value === 'number' && Math.abs(a.value - 1.702) < 1e-6),
      ).length,
    };
  }

  const cases: [BuildableModel, number][] = [
    [VIT_B, 12],
    [VIT_L, 24],
  ];
  for (const [model, depth] of cases) {
    for (const format of ['pir', 'legacy'] as const) {
      test(`${model} ${format}: ${depth} × gelu(approximate=false), no QuickGELU`, async (t) => {
        if (needNative(t) === null) return;
        if (model === VIT_L && process.env['PIF_TEST_VIT_LARGE'] === '0') {
          t.skip('PIF_TEST_VIT_LARGE=0 (ViT-L: 1.2 GB of weights per build)');
          return;
        }
        const dir = path.join(tmp, `${model}-${format}-default`);
        try {
          await buildModel(model, dir, { format, seed: SEED });
          const a = activations(await programJson(dir));
          assert.equal(a.gelu.length, depth);
          for (const g of a.gelu) {
            const approx = g.attrs.find((x) => x.name === 'approximate');
            assert.deepEqual(approx && [approx.kind, approx.value], ['bool', false]);
          }
          assert.equal(a.sigmoid, 0, 'sigmoid ops (QuickGELU)');
          assert.equal(a.scale1702, 0, 'scale(1.702) (QuickGELU)');
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  }

  test(`${VIT_B} pir with clipActivation 'quick_gelu' keeps QuickGELU`, async (t) => {
    if (needNative(t) === null) return;
    const dir = path.join(tmp, `${VIT_B}-quick`);
    try {
      await buildModel(VIT_B, dir, { seed: SEED, clipActivation: 'quick_gelu' });
      const a = activations(await programJson(dir));
      assert.equal(a.gelu.length, 0);
      assert.equal(a.sigmoid, 12);
      assert.equal(a.scale1702, 12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test(`${VIT_B} hpi: each gelu is a oneDNN post-op of the fused matmul before it`, async (t: TestContext) => {
    if (needNative(t) === null) return;
    const dir = await built(VIT_B, 'pir');
    const input = imageLike([1, 3, 224, 224], 35);
    const run = async (runMode: 'normal' | 'hpi') => {
      const p = await loadPredictor(dir, { runMode, cpuThreads: 2 });
      try {
        const out = await p.run({ x: { data: input, shape: [1, 3, 224, 224] } });
        return { engine: p.engine, data: Object.values(out)[0]!.data as Float32Array };
      } finally {
        p.close();
      }
    };
    const normal = await run('normal');
    const hpi = await run('hpi');
    const e = hpi.engine;
    t.diagnostic(`hpi engine: ${JSON.stringify(e)}`);
    assert.equal(normal.engine.ops['gelu'], 12, JSON.stringify(normal.engine.ops));
    // No gelu node is left: fuse_activation folded each into its producer, the fc1 matmul...
    const geluNodes = Object.keys(e.ops).filter((k) => k.includes('gelu'));
    assert.deepEqual(geluNodes, [], JSON.stringify(e.ops));
    assert.ok((e.passes['fuse_activation'] ?? 0) >= 12, JSON.stringify(e.passes));
    // ...and every fused matmul, post-ops included, runs on oneDNN (a post-op chain oneDNN
    // cannot encode would leave the node on the reference kernel, pif.fused_matmul); exact
    // GELU is oneDNN's eltwise_gelu_erf (kernels/dnnl/common.cc eltwise_of).
    assert.equal(e.ops['dnnl.fused_matmul'], normal.engine.ops['matmul'], JSON.stringify(e.ops));
    assert.equal(e.ops['pif.fused_matmul'], undefined);
    const rel = relErr(hpi.data, normal.data);
    t.diagnostic(`hpi vs normal: rel err ${rel.toExponential(3)}`);
    assert.ok(rel <= 1e-4, `hpi vs normal rel err ${rel}`);
  });
});
