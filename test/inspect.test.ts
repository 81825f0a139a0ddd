/**
 * `inspect` on every fixture model reports exactly what its SOURCE.md states (format and
 * version, inputs, outputs, op census, persistable-tensor count), through the API and
 * through the CLI process.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { formatModelInfo, inspectModel } from '../lib/inspect.js';
import type { ModelInfo } from '../lib/model.js';
import { cli } from './helpers/cli.js';
import { fixtureDir, fixtureModels, needFixtures, type ModelFacts } from './helpers/fixtures.js';
import { fixtureModelsOrReasonTest } from './helpers/fixture-tests.js';
import { needNative } from './helpers/native.js';

function checkFacts(info: ModelInfo | Record<string, unknown>, f: ModelFacts): void {
  const i = info as ModelInfo;
  assert.equal(i.format, f.format, 'format');
  assert.equal(i.version, f.version, 'version');
  if (f.blocks !== null) assert.equal(i.blocks, f.blocks, 'blocks');
  assert.equal(i.opCount, f.opCount, 'opCount');
  assert.deepEqual({ ...i.ops }, f.ops, 'op census');
  assert.deepEqual(
    i.inputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })),
    f.inputs,
    'inputs',
  );
  assert.deepEqual(
    i.outputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })),
    f.outputs,
    'outputs',
  );
  assert.equal(i.parameters.count, f.persistable, 'persistable tensors');
  assert.ok(Number.isSafeInteger(i.parameters.bytes) && i.parameters.bytes >= 0, 'parameter bytes');
  if (f.hasParams) {
    assert.ok(i.parameters.bytes > 0, 'parameter bytes > 0');
    assert.notEqual(i.paramsLayout, 'none', 'params layout');
  } else {
    assert.equal(i.parameters.loaded, false, 'graph-only model: parameters not loaded');
  }
}

// The model list is read at load time so each model gets its own test; an empty list
// (fixtures absent) still yields one test that skips or fails with the reason.
describe('inspect matches SOURCE.md', () => {
  const models = fixtureModelsOrReasonTest();
  for (const f of models) {
    test(`API: ${f.name}`, async (t: TestContext) => {
      if (needNative(t) === null) return;
      const info = await inspectModel(f.dir);
      checkFacts(info, f);
      assert.ok(path.isAbsolute(info.programFile) || info.programFile.startsWith(f.dir));
    });

    test(`CLI --json: ${f.name}`, async (t: TestContext) => {
      if (needNative(t) === null) return;
      const r = await cli(['inspect', f.dir, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as Record<string, unknown>;
      checkFacts(doc, f);
      assert.equal(doc['model'], f.dir);
    });
  }
});

describe('inspect details', () => {
  test('the v1 twin of the PIR v3 detector reads the same, with version 1', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'ppocrv5_server_det_pir_v3_graphonly');
    const facts = fixtureModels(root).find((m) => m.name === path.basename(dir));
    assert.ok(facts);
    const twin = await inspectModel(path.join(dir, 'v1_twin_self4m'));
    checkFacts(twin, { ...facts, version: 1 });
  });

  test('mnist separate layout: parameter bytes are the sum of the tensor data', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const info = await inspectModel(fixtureDir(root, 'mnist_mlp_legacy_separate'));
    assert.equal(info.paramsLayout, 'separate');
    // fc_0.w_0 [784,100], fc_0.b_0 [100], fc_1.w_0 [100,100], fc_1.b_0 [100], fc_2.w_0 [100,10], fc_2.b_0 [10]
    assert.equal(info.parameters.bytes, 4 * (784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10));
  });

  test('combined params: total bytes fit in the params file', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const info = await inspectModel(fixtureDir(root, 'pplcnet_x0_25_textline_ori_pir'));
    assert.equal(info.paramsLayout, 'combined');
    assert.ok(info.paramsFile !== null);
    const size = statSync(info.paramsFile).size;
    assert.ok(info.parameters.bytes > 0 && info.parameters.bytes < size);
  });

  test('requireParams on a graph-only model fails with a typed error naming the file', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'ppocrv5_server_rec_pir_graphonly');
    await assert.rejects(inspectModel(dir, { requireParams: true }), (err: unknown) => {
      const e = err as { code?: string; message?: string };
      assert.ok(e.code === 'PIF_MODEL_NOT_FOUND' || e.code === 'PIF_MODEL_PARAMS', String(e.code));
      return true;
    });
  });

  test('human text names format, tensors and ops', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'pplcnet_x0_25_textline_ori_pir');
    const r = await cli(['inspect', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^format: +PIR JSON program .*version 1$/m);
    assert.match(r.stdout, /^ {2}x +float32 +\[-1, 3, 80, 160\]$/m);
    assert.match(r.stdout, /^ {2}builtin\.parameter +145$/m);
    assert.match(r.stdout, /^parameters: +145 tensors, /m);
    const info = await inspectModel(dir);
    assert.equal(r.stdout, formatModelInfo(info, { modelPath: dir }));
  });

  test('--ir appends the canonical IR', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'mnist_mlp_legacy_separate');
    const r = await cli(['inspect', dir, '--json', '--ir']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { ir?: unknown };
    assert.equal(typeof doc.ir, 'string');
    assert.ok((doc.ir as string).length > 0);
  });

  test('every fixture directory has a SOURCE.md with parsed facts', (t) => {
    const root = needFixtures(t);
    if (root === null) return;
    const dirs = readdirSync(path.join(root, 'paddle-models'), { withFileTypes: true }).filter(
      (d) => d.isDirectory(),
    );
    assert.equal(fixtureModels(root).length, dirs.length);
    assert.ok(dirs.length >= 8);
  });
});
