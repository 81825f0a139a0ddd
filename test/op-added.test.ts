/**
 * An op added after the registration split (issue 16): `softsign` (y = x / (1 + |x|)) exists in
 * one file, native/kernels/ref/activation.cc. A hand-written PIR program runs it after a matmul,
 * in normal mode and in hpi mode (oneDNN has no softsign algorithm, so the node keeps its
 * reference kernel there), and both give the formula's numbers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { inspectModel } from '../lib/inspect.js';
import { loadPredictor } from '../lib/predictor.js';
import { fileTempRoot } from './helpers/fixture-tests.js';
import { needNative } from './helpers/native.js';
import {
  compressedParameter,
  linearExpected,
  linearOps,
  program,
  writeLinearModel,
} from './helpers/pir.js';

const root = fileTempRoot('pif-op-added-');

describe('an op added in one file', () => {
  test('softsign runs in normal and hpi mode', async (t) => {
    if (needNative(t) === null) return;
    const dir = writeLinearModel(
      root,
      'softsign',
      program([compressedParameter(), ...linearOps('%', '1.', 'softsign')]),
    );
    assert.equal((await inspectModel(dir)).ops['pd_op.softsign'], 1);

    const x = new Float32Array([1, 2, 3, 4, -1, 0.5, 0, 2, 0, 0, 0, 0]);
    const expected = linearExpected(x, 3, (s) => s / (1 + Math.abs(s)));
    for (const runMode of ['normal', 'hpi'] as const) {
      const p = await loadPredictor(dir, { runMode });
      try {
        const out = await p.run({ data: x, shape: [3, 4] });
        const got = Array.from(out['fetch_name_0']!.data as Float32Array);
        assert.equal(got.length, expected.length);
        for (let i = 0; i < got.length; i++) {
          assert.ok(
            Math.abs(got[i]! - expected[i]!) <= 1e-6,
            `${runMode} [${i}]: ${got[i]} vs ${expected[i]}`,
          );
        }
      } finally {
        p.close();
      }
    }
  });
});
