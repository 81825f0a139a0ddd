/**
 * Reading + writing + re-reading every fixture is lossless: the same canonical IR, and
 * byte-identical parameters.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { inspectModel } from '../lib/inspect.js';
import { dumpModel, saveModel } from '../lib/model.js';
import { fixtureDir, needFixtures } from './helpers/fixtures.js';
import { fileTempRoot, fixtureModelsOrReasonTest } from './helpers/fixture-tests.js';
import { needNative } from './helpers/native.js';

const tmpRoot = fileTempRoot('pif-roundtrip-');
let counter = 0;
function tmp(name: string): string {
  return path.join(tmpRoot, `${String(counter++)}-${name}`);
}

describe('save → re-read is lossless', () => {
  const models = fixtureModelsOrReasonTest();
  for (const f of models) {
    test(f.name, async (t: TestContext) => {
      if (needNative(t) === null) return;
      const dst = tmp(f.name);
      const opts = { requireParams: f.hasParams };
      // Graph-only fixtures (no parameter data) save as their program alone.
      const saved = await saveModel(f.dir, dst, opts);
      assert.equal(path.dirname(path.resolve(saved.programFile)), path.resolve(dst));
      const [a, b] = await Promise.all([dumpModel(f.dir, opts), dumpModel(dst, opts)]);
      assert.ok(a.length > 0);
      assert.equal(b, a, 'canonical IR of the copy equals the original');

      const orig = await inspectModel(f.dir);
      const copy = await inspectModel(dst);
      assert.equal(copy.format, orig.format);
      assert.deepEqual(copy.ops, orig.ops);
      assert.deepEqual(copy.inputs, orig.inputs);
      assert.deepEqual(copy.outputs, orig.outputs);
      assert.deepEqual(copy.parameters, orig.parameters);

      if (orig.paramsLayout !== 'separate') {
        // The legacy writer keeps proto2 field presence and the PIR writer Paddle's key order
        // and number formatting, so both reproduce Paddle's bytes.
        assert.ok(
          readFileSync(saved.programFile).equals(readFileSync(orig.programFile)),
          'program file byte-identical',
        );
      }
      if (!f.hasParams) {
        assert.equal(saved.paramsFile, null, 'graph-only model: no params written');
      } else if (orig.paramsLayout === 'combined') {
        assert.ok(orig.paramsFile !== null && saved.paramsFile !== null);
        assert.ok(
          readFileSync(saved.paramsFile).equals(readFileSync(orig.paramsFile)),
          'params file byte-identical',
        );
      }
    });
  }
});

describe('mnist separate layout', () => {
  const PARAMS = ['fc_0.b_0', 'fc_0.w_0', 'fc_1.b_0', 'fc_1.w_0', 'fc_2.b_0', 'fc_2.w_0'];

  test('separate → separate: every parameter file byte-identical', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const src = fixtureDir(root, 'mnist_mlp_legacy_separate');
    const dst = tmp('mnist-separate');
    await saveModel(src, dst, { paramsLayout: 'separate' });
    const written = readdirSync(dst).filter((n) => n.startsWith('fc_'));
    assert.deepEqual(written.sort(), PARAMS);
    for (const name of PARAMS) {
      assert.ok(
        readFileSync(path.join(dst, name)).equals(readFileSync(path.join(src, name))),
        `${name} byte-identical`,
      );
    }
    assert.equal(await dumpModel(dst), await dumpModel(src));
    assert.equal((await inspectModel(dst)).paramsLayout, 'separate');
  });

  test('separate → combined: the combined file is the separate files concatenated in sorted-name order', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const src = fixtureDir(root, 'mnist_mlp_legacy_separate');
    const dst = tmp('mnist-combined');
    const saved = await saveModel(src, dst, { paramsLayout: 'combined' });
    assert.ok(saved.paramsFile !== null);
    const expected = Buffer.concat(
      [...PARAMS].sort().map((name) => readFileSync(path.join(src, name))),
    );
    assert.ok(readFileSync(saved.paramsFile).equals(expected));
    assert.equal(await dumpModel(dst), await dumpModel(src));
    const info = await inspectModel(dst);
    assert.equal(info.paramsLayout, 'combined');
    assert.equal(info.parameters.count, 6);
  });

  test('paramsLayout is validated', async () => {
    await assert.rejects(
      saveModel('x', tmp('bad'), { paramsLayout: 'zip' as 'combined' }),
      (err: unknown) => (err as { code?: string }).code === 'PIF_INVALID_ARG',
    );
  });
});
