/**
 * hpi convolutions never fall back to the reference kernel because oneDNN refused a fused
 * primitive (issue 13). oneDNN 2.6's AVX-512 brgemm convolutions take no binary post-op, so a
 * convolution with a residual add gets `ref:any`; the kernel then computes the residual as a
 * sum post-op, or splits the convolution and its post-ops into separate oneDNN primitives.
 * The test hook PIF_TEST_DNNL_REFUSE forces those refusals, so both paths run on any CPU.
 *
 * Checked on PP-ShiTuV2_rec (the builder's graph and the official graph with random weights):
 * with the fused primitive refused (and with the sum path refused too) every convolution still
 * runs on oneDNN — `predictor.engine.fallbacks` lists no convolution on the reference kernel —
 * and hpi agrees with normal mode to 1e-5 relative (max |Δ| / max |normal|). A child process
 * capped to SSE4.1 (ONEDNN_MAX_CPU_ISA) shows the engine on a CPU without AVX2.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';

import { buildModel } from '../lib/builder.js';
import type { NativeEngineInfo } from '../lib/native.js';
import { loadPredictor, type PredictorOptions } from '../lib/predictor.js';
import { fixtureDir, needFixtures } from './helpers/fixtures.js';
import { count, imageLike } from './helpers/inputs.js';
import { needNative } from './helpers/native.js';
import { helperScript, resultOf, runTsx } from './helpers/tsx-child.js';

const REL_TOL = 1e-5;
const SHAPE = [2, 3, 224, 224];
const INPUT = imageLike(SHAPE, 21);
const OFFICIAL = 'pp_shituv2_rec_legacy_graphonly';

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pif-hpi-paths-'));
});
after(async () => {
  if (tmp !== '') await rm(tmp, { recursive: true, force: true });
});

let shituDir: Promise<string> | undefined;
function shitu(): Promise<string> {
  shituDir ??= (async () => {
    const d = path.join(tmp, 'shitu-legacy');
    await buildModel('PP-ShiTuV2_rec', d, { format: 'legacy', seed: 7 });
    return d;
  })();
  return shituDir;
}

interface Ran {
  out: Float32Array;
  engine: NativeEngineInfo;
}

/** Loads, runs once on INPUT and closes, with PIF_TEST_DNNL_REFUSE set to `refuse`. */
async function runWith(dir: string, options: PredictorOptions, refuse?: string): Promise<Ran> {
  const prev = process.env['PIF_TEST_DNNL_REFUSE'];
  if (refuse === undefined) delete process.env['PIF_TEST_DNNL_REFUSE'];
  else process.env['PIF_TEST_DNNL_REFUSE'] = refuse;
  try {
    const p = await loadPredictor(dir, { cpuThreads: 2, ...options });
    try {
      const out = await p.run({ [p.inputs[0]!.name]: { data: INPUT, shape: SHAPE } });
      const t = Object.values(out)[0]!;
      return { out: t.data as Float32Array, engine: p.engine };
    } finally {
      p.close();
    }
  } finally {
    if (prev === undefined) delete process.env['PIF_TEST_DNNL_REFUSE'];
    else process.env['PIF_TEST_DNNL_REFUSE'] = prev;
  }
}

function relError(got: Float32Array, ref: Float32Array): number {
  assert.equal(got.length, ref.length);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Number.isFinite(got[i]!), `non-finite hpi value at ${i}`);
    maxAbs = Math.max(maxAbs, Math.abs(got[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  assert.ok(maxRef > 0, 'reference output is all zeros');
  return maxAbs / maxRef;
}

const referenceConvs = (e: NativeEngineInfo) =>
  e.fallbacks.filter((f) => f.kernel === 'dnnl.fused_conv2d' && f.path === 'reference');

/** Runs hpi under each refusal and checks paths and numbers against normal mode. */
async function checkModel(t: TestContext, dir: string, extra: PredictorOptions): Promise<void> {
  const normal = await runWith(dir, { ...extra, runMode: 'normal' });
  assert.equal(normal.out.length, count([SHAPE[0]!, 512]));
  const convs = normal.engine.ops['conv2d'] ?? 0;
  assert.ok(convs >= 30, `the model has convolutions: ${JSON.stringify(normal.engine.ops)}`);
  const rows: string[] = [];
  for (const refuse of [undefined, 'fused', 'fused,sum']) {
    const hpi = await runWith(dir, { ...extra, runMode: 'hpi' }, refuse);
    const e = hpi.engine;
    const label = refuse ?? 'none';
    // Every convolution is a oneDNN node, and none ran its reference kernel.
    assert.equal(e.ops['dnnl.fused_conv2d'], convs, `${label}: ${JSON.stringify(e.ops)}`);
    assert.deepEqual(referenceConvs(e), [], `${label}: convolutions on the reference kernel`);
    assert.deepEqual(
      e.fallbacks.filter((f) => f.fusedRefused),
      [],
      `${label}: nodes on the reference kernel after a refused fused primitive`,
    );
    // Every node without a oneDNN kernel is listed once, as a reference node.
    const unbound = Object.entries(e.ops)
      .filter(([op]) => !op.startsWith('dnnl.'))
      .reduce((n, [, k]) => n + k, 0);
    const listed = e.fallbacks.filter((f) => f.reason === 'no oneDNN kernel for this op');
    assert.equal(listed.length, unbound, `${label}: ${JSON.stringify(listed)}`);
    assert.ok(listed.every((f) => f.path === 'reference' && !f.kernel.startsWith('dnnl.')));
    const paths = new Map<string, number>();
    for (const f of e.fallbacks) {
      assert.ok(f.node.length > 0 && f.kernel.length > 0 && f.reason.length > 0, JSON.stringify(f));
      if (f.kernel === 'dnnl.fused_conv2d') paths.set(f.path, (paths.get(f.path) ?? 0) + 1);
    }
    if (refuse === 'fused') {
      // The residual convolutions take the sum path, every other convolution with post-ops
      // is split; none keeps a fused primitive with post-ops.
      assert.ok((paths.get('sum') ?? 0) >= 1, `${label}: ${JSON.stringify([...paths])}`);
      assert.ok((paths.get('split') ?? 0) >= 1, `${label}: ${JSON.stringify([...paths])}`);
    }
    if (refuse === 'fused,sum') {
      assert.equal(paths.get('sum'), undefined);
      assert.ok((paths.get('split') ?? 0) >= convs / 2, `${label}: ${JSON.stringify([...paths])}`);
      const split = e.fallbacks.find((f) => f.path === 'split')!;
      assert.ok(split.stages >= 1, JSON.stringify(split));
      assert.match(split.reason, /PIF_TEST_DNNL_REFUSE/);
    }
    const rel = relError(hpi.out, normal.out);
    rows.push(
      `refused ${label}: paths ${JSON.stringify([...paths])}, max rel ${rel.toExponential(2)}`,
    );
    assert.ok(rel <= REL_TOL, `${label}: hpi vs normal max relative error ${rel}`);
  }
  for (const r of rows) t.diagnostic(r);
}

describe('hpi convolutions stay on oneDNN when a fused primitive is refused', () => {
  test('PP-ShiTuV2_rec (builder, legacy)', async (t) => {
    if (needNative(t) === null) return;
    await checkModel(t, await shitu(), {});
  });

  test('official PP-ShiTuV2_rec graph with random weights', async (t) => {
    if (needNative(t) === null) return;
    const root = needFixtures(t);
    if (root === null) return;
    await checkModel(t, fixtureDir(root, OFFICIAL), { randomWeights: 13 });
  });

  test('the report names what oneDNN offered and why it was not taken', async (t) => {
    if (needNative(t) === null) return;
    const hpi = await runWith(await shitu(), { runMode: 'hpi' }, 'fused,sum,split');
    // With every oneDNN path refused the convolutions with post-ops run their reference
    // kernel, and each one is reported with the reason.
    const refs = referenceConvs(hpi.engine);
    assert.ok(refs.length >= 30, `reference convolutions: ${refs.length}`);
    for (const f of refs) {
      assert.match(f.node, /^op \d+ \(/);
      assert.match(f.reason, /refused by the test hook PIF_TEST_DNNL_REFUSE/);
      assert.equal(f.fusedRefused, true, JSON.stringify(f));
      assert.match(f.shape, /^\[2,\d+,\d+,\d+\]$/);
    }
  });
});

describe('a CPU without AVX2 (oneDNN capped to SSE4.1)', () => {
  test('loads and runs PP-ShiTuV2_rec in normal and hpi mode with the same numbers', async (t) => {
    if (needNative(t) === null) return;
    const dir = path.join(tmp, 'shitu-sse41');
    await buildModel('PP-ShiTuV2_rec', dir, { format: 'pir', seed: 9 });
    const child = runTsx(helperScript('isa-child.ts'), [dir, '1'], {
      env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'SSE41', ONEDNN_VERBOSE: '1' },
    });
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    // oneDNN says which instruction set it dispatched to.
    assert.match(child.stdout, /onednn_verbose,info,cpu,isa:Intel SSE4\.1/);
    assert.doesNotMatch(child.stdout, /avx/i);
    const r = resultOf(child.stdout) as {
      maxAbs: number;
      maxRef: number;
      elements: number;
      engine: NativeEngineInfo;
    };
    assert.equal(r.elements, 512);
    const rel = r.maxAbs / r.maxRef;
    t.diagnostic(
      `SSE4.1: hpi vs normal max rel ${rel.toExponential(2)}; fallbacks ${JSON.stringify(r.engine.fallbacks.map((f) => `${f.kernel} ${f.path} ${f.impl}`))}`,
    );
    assert.ok(rel <= REL_TOL, `hpi vs normal max relative error ${rel}`);
    assert.deepEqual(referenceConvs(r.engine), []);
  });
});
