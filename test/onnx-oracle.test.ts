/**
 * Own exporter vs ONNX Runtime (issue 3, acceptance item 3): for every runnable fixture, the
 * three graph-only fixtures (seeded random weights) and the three target architectures built
 * by buildModel, our Predictor.run() output is compared with onnxruntime-node running the
 * ONNX file that exportOnnx() wrote from the same model directory, on the same input.
 *
 * Metric, per output: relative error = max|ours − ort| / max(max|ort|, 1e-30), i.e. the
 * largest absolute difference scaled by the output's own magnitude (so it is meaningful for
 * logits, probabilities and feature vectors alike). The tolerance is 1e-4 everywhere,
 * ViT-L included (the issue allows 5e-4 there; it is not needed). Relative L2
 * (‖ours − ort‖₂ / ‖ort‖₂) is reported alongside. A table of all numbers is printed at the
 * end. Times are the first run() of each side on a fresh session (so they include one-off
 * warm-up), ours with cpuThreads 2, ORT with intraOpNumThreads 1.
 *
 * Graph-only fixtures run with random weights, so their outputs are not realistic: the two
 * recognisers' softmax outputs are close to uniform (ppocrv5_server_rec: max ≈ 1e-4 over
 * 18 385 classes), which a relative error over the max still compares element by element.
 *
 * ViT-L (≈ 1.2 GB of weights, built and exported to a temp dir, ≈ 2.4 GB of disk) takes about
 * a minute here; set PIF_TEST_VIT_LARGE=0 to skip it.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import * as ort from 'onnxruntime-node';

import { buildModel, type BuildableModel } from '../lib/builder.js';
import { exportOnnx } from '../lib/export.js';
import { loadPredictor } from '../lib/predictor.js';
import { fixtureCaseInput, imageLike, RUNNABLE_FIXTURE_CASES } from './helpers/inputs.js';
import { fileTempDir, testEachFixture } from './helpers/fixture-tests.js';
import { needNative } from './helpers/native.js';
import { printTable } from './helpers/table.js';

const REL_TOL = 1e-4;
const GRAPH_ONLY_SEED = 11;
const BUILD_SEED = 3;

interface Diff {
  maxAbs: number;
  maxRef: number;
  /** max|a − ref| / max(max|ref|, tiny). */
  rel: number;
  /** ‖a − ref‖₂ / ‖ref‖₂. */
  relL2: number;
}

function compare(a: Float32Array, ref: Float32Array): Diff {
  assert.equal(a.length, ref.length, 'element count');
  let maxAbs = 0;
  let maxRef = 0;
  let d2 = 0;
  let r2 = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = ref[i]!;
    assert.ok(Number.isFinite(x) && Number.isFinite(y), `non-finite value at ${i}: ${x} vs ${y}`);
    const d = Math.abs(x - y);
    if (d > maxAbs) maxAbs = d;
    if (Math.abs(y) > maxRef) maxRef = Math.abs(y);
    d2 += d * d;
    r2 += y * y;
  }
  return {
    maxAbs,
    maxRef,
    rel: maxAbs / Math.max(maxRef, 1e-30),
    relL2: Math.sqrt(d2) / Math.max(Math.sqrt(r2), 1e-30),
  };
}

interface Row extends Diff {
  label: string;
  output: string;
  shape: number[];
  oursMs: number;
  ortMs: number;
}

const rows: Row[] = [];

function fmt(x: number): string {
  return x === 0 ? '0' : x.toExponential(2);
}

function printRows(): void {
  if (rows.length === 0) return;
  const head = [
    'case',
    'output',
    'shape',
    'max|ort|',
    'max abs',
    'rel err',
    'rel L2',
    'our ms',
    'ort ms',
  ];
  const body = rows.map((r) => [
    r.label,
    r.output,
    `[${r.shape.join(',')}]`,
    fmt(r.maxRef),
    fmt(r.maxAbs),
    fmt(r.rel),
    fmt(r.relL2),
    Number.isNaN(r.oursMs) ? '-' : r.oursMs.toFixed(0),
    Number.isNaN(r.ortMs) ? '-' : r.ortMs.toFixed(0),
  ]);
  printTable(
    `our run vs ONNX Runtime on our export (rel err = max|Δ| / max|ort|, tolerance ${REL_TOL})`,
    head,
    body,
  );
}

const tmpDir = fileTempDir('pif-onnx-oracle-', printRows);

interface OracleCase {
  /** Row label in the table. */
  label: string;
  dir: string;
  shape: number[];
  input: Float32Array;
  randomWeights?: number;
  /** Absolute tolerance instead of the relative one (with the reason), if ever needed. */
  absTol?: { value: number; why: string };
}

/**
 * Exports `c.dir` to ONNX, runs ORT then ours on the same input, checks every output and
 * returns our outputs by name.
 */
async function oracle(t: TestContext, c: OracleCase): Promise<Record<string, Float32Array>> {
  const onnxFile = path.join(tmpDir(), `${c.label.replace(/[^\w.-]+/g, '_')}.onnx`);
  const rw = c.randomWeights === undefined ? {} : { randomWeights: c.randomWeights };
  try {
    await exportOnnx(c.dir, onnxFile, rw);

    // ORT first, released before ours loads, to keep peak memory down on the big models.
    const ortOut: Record<string, Float32Array> = {};
    const ortShapes: Record<string, number[]> = {};
    let ortMs: number;
    const session = await ort.InferenceSession.create(onnxFile, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    try {
      assert.equal(session.inputNames.length, 1, `ONNX inputs: ${session.inputNames.join(', ')}`);
      const t0 = performance.now();
      const res = await session.run({
        [session.inputNames[0]!]: new ort.Tensor('float32', c.input, c.shape),
      });
      ortMs = performance.now() - t0;
      for (const name of session.outputNames) {
        const v = res[name]!;
        assert.equal(v.type, 'float32', `ORT output ${name} type`);
        ortOut[name] = v.data as Float32Array;
        ortShapes[name] = v.dims.map(Number);
      }
    } finally {
      await session.release();
    }

    const p = await loadPredictor(c.dir, { cpuThreads: 2, ...rw });
    const ours: Record<string, Float32Array> = {};
    try {
      assert.equal(p.inputs.length, 1);
      const t0 = performance.now();
      const out = await p.run({ [p.inputs[0]!.name]: { data: c.input, shape: c.shape } });
      const oursMs = performance.now() - t0;
      assert.deepEqual(Object.keys(out).sort(), Object.keys(ortOut).sort(), 'output names');
      for (const [name, tensor] of Object.entries(out)) {
        assert.equal(tensor.dtype, 'float32', `${name} dtype`);
        assert.deepEqual(tensor.shape, ortShapes[name], `${name} shape`);
        const d = compare(tensor.data as Float32Array, ortOut[name]!);
        const row: Row = { label: c.label, output: name, shape: tensor.shape, oursMs, ortMs, ...d };
        rows.push(row);
        t.diagnostic(
          `${c.label} ${name} [${tensor.shape.join(',')}]: max|ort| ${fmt(d.maxRef)}, max abs ${fmt(d.maxAbs)}, rel ${fmt(d.rel)}, rel L2 ${fmt(d.relL2)}; ours ${oursMs.toFixed(0)} ms, ort ${ortMs.toFixed(0)} ms`,
        );
        if (c.absTol !== undefined) {
          assert.ok(
            d.maxAbs <= c.absTol.value,
            `${c.label} ${name}: max abs ${d.maxAbs} > ${c.absTol.value} (${c.absTol.why})`,
          );
        } else {
          assert.ok(d.maxRef > 0, `${c.label} ${name}: ORT output is all zeros`);
          assert.ok(d.rel <= REL_TOL, `${c.label} ${name}: rel err ${d.rel} > ${REL_TOL}`);
        }
        ours[name] = tensor.data as Float32Array;
      }
    } finally {
      p.close();
    }
    return ours;
  } finally {
    await rm(onnxFile, { force: true });
  }
}

describe('our run vs ONNX Runtime on our own ONNX export', () => {
  describe('runnable fixtures (real weights)', () => {
    testEachFixture(
      RUNNABLE_FIXTURE_CASES,
      (c) =>
        `${c.name} ${JSON.stringify(c.shape)}${c.note ? ` (${c.note})` : ''}: rel err ≤ ${REL_TOL}`,
      async (t, dir, c, i) =>
        oracle(t, { label: c.name, dir, shape: c.shape, input: await fixtureCaseInput(c, i) }),
    );
  });

  describe(`graph-only fixtures (random weights, seed ${GRAPH_ONLY_SEED})`, () => {
    const cases = [
      { name: 'svtrnet_rus_rec_legacy_graphonly', shape: [1, 3, 64, 256] },
      { name: 'ppocrv5_server_rec_pir_graphonly', shape: [1, 3, 48, 320] },
      { name: 'ppocrv5_server_det_pir_v3_graphonly', shape: [1, 3, 320, 320] },
    ];
    testEachFixture(
      cases,
      (c) => `${c.name} ${JSON.stringify(c.shape)}: rel err ≤ ${REL_TOL}`,
      (t, dir, c, i) =>
        oracle(t, {
          label: c.name,
          dir,
          shape: c.shape,
          input: imageLike(c.shape, 200 + i),
          randomWeights: GRAPH_ONLY_SEED,
        }),
    );
  });

  describe(`built target models (seed ${BUILD_SEED})`, () => {
    async function built(
      t: TestContext,
      model: BuildableModel,
      formats: ('pir' | 'legacy')[],
      batch: number,
      seed: number,
    ): Promise<void> {
      if (needNative(t) === null) return;
      const shape = [batch, 3, 224, 224];
      const input = imageLike(shape, seed);
      const outs: Partial<Record<'pir' | 'legacy', Record<string, Float32Array>>> = {};
      for (const format of formats) {
        const dir = path.join(tmpDir(), `${model}-${format}`);
        try {
          await buildModel(model, dir, { format, seed: BUILD_SEED });
          const out = await oracle(t, { label: `${model} ${format}`, dir, shape, input });
          const feats = Object.values(out);
          assert.equal(feats.length, 1, `outputs: ${Object.keys(out).join(', ')}`);
          assert.equal(feats[0]!.length, batch * 512);
          outs[format] = out;
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }
      if (outs.pir !== undefined && outs.legacy !== undefined) {
        // Same builder seed ⇒ same weights; the two formats must compute the same thing.
        const a = Object.values(outs.pir)[0]!;
        const b = Object.values(outs.legacy)[0]!;
        const d = compare(b, a);
        rows.push({
          label: `${model} legacy vs pir (ours)`,
          output: '-',
          shape: [batch, 512],
          oursMs: NaN,
          ortMs: NaN,
          ...d,
        });
        t.diagnostic(
          `${model}: ours legacy vs ours pir: max abs ${fmt(d.maxAbs)}, rel ${fmt(d.rel)}, rel L2 ${fmt(d.relL2)}`,
        );
        assert.ok(d.rel <= 1e-6, `legacy vs pir rel err ${d.rel}`);
      }
    }

    test(`PP-ShiTuV2_rec, pir and legacy, batch 2: rel err ≤ ${REL_TOL}; formats agree`, async (t) => {
      await built(t, 'PP-ShiTuV2_rec', ['pir', 'legacy'], 2, 301);
    });

    test(`PP-ShiTuV2_rec_CLIP_vit_base, pir and legacy, batch 1: rel err ≤ ${REL_TOL}; formats agree`, async (t) => {
      await built(t, 'PP-ShiTuV2_rec_CLIP_vit_base', ['pir', 'legacy'], 1, 302);
    });

    test(`PP-ShiTuV2_rec_CLIP_vit_large, pir, batch 1: rel err ≤ ${REL_TOL}`, async (t) => {
      if (process.env['PIF_TEST_VIT_LARGE'] === '0') {
        t.skip('PIF_TEST_VIT_LARGE=0 (ViT-L: ~1 min, 2.4 GB temp disk, ~6 GB RSS)');
        return;
      }
      await built(t, 'PP-ShiTuV2_rec_CLIP_vit_large', ['pir'], 1, 303);
    });
  });
});
