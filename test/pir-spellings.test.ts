/**
 * PIR inference.json spellings: the released compressed form (`%` value ids, `1.matmul`,
 * `p` parameter ops) and the pre-release form (`#` value ids, `pd_op.matmul`,
 * `builtin.parameter` as an ordinary op with named attributes) describe the same program:
 * both load to the same inputs, outputs and op census and compute the same numbers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { inspectModel } from '../lib/inspect.js';
import { dumpModel } from '../lib/model.js';
import { loadPredictor } from '../lib/predictor.js';
import { fileTempRoot } from './helpers/fixture-tests.js';
import { needNative } from './helpers/native.js';
import {
  attr,
  compressedParameter,
  linearExpected,
  linearOps,
  program,
  tt,
  writeLinearModel,
} from './helpers/pir.js';

const root = fileTempRoot('pif-pir-spellings-');

const boolArray = (v: boolean) => ({ '#': '0.a_array', D: [{ '#': '0.a_bool', D: v }] });

function compressed(): string {
  return program([compressedParameter(), ...linearOps('%', '1.', 'relu')]);
}

function preRelease(): string {
  // Indented, as a readable dump would be; ids under "#", long op names.
  const text = program([
    {
      '#': 'builtin.parameter',
      A: [
        { N: 'is_distributed', AT: boolArray(false) },
        { N: 'is_parameter', AT: boolArray(true) },
        { N: 'need_clip', AT: boolArray(true) },
        attr('parameter_name', '0.a_str', 'linear_0.w_0'),
      ],
      I: [],
      O: [{ '#': 1, TT: tt([4, 3]) }],
      OA: [
        { N: 'persistable', AT: boolArray(true) },
        { N: 'stop_gradient', AT: boolArray(false) },
        { N: 'trainable', AT: boolArray(true) },
      ],
    },
    ...linearOps('#', 'pd_op.', 'relu'),
  ]);
  return JSON.stringify(JSON.parse(text), null, 4);
}

const writeModel = (name: string, json: string) => writeLinearModel(root, name, json);

describe('PIR spellings', () => {
  test('released and pre-release spellings load and compute the same program', async (t) => {
    if (needNative(t) === null) return;
    const a = writeModel('compressed', compressed());
    const b = writeModel('pre-release', preRelease());
    const [ia, ib] = await Promise.all([inspectModel(a), inspectModel(b)]);
    assert.deepEqual(ia.ops, {
      'builtin.parameter': 1,
      'pd_op.data': 1,
      'pd_op.fetch': 1,
      'pd_op.matmul': 1,
      'pd_op.relu': 1,
    });
    assert.deepEqual(ib.ops, ia.ops);
    assert.deepEqual(ib.inputs, ia.inputs);
    assert.deepEqual(ib.outputs, ia.outputs);
    assert.deepEqual(ia.inputs, [{ name: 'x', dtype: 'float32', shape: [-1, 4] }]);
    assert.equal(ib.parameters.count, 1);
    assert.equal(ib.parameters.loaded, true);
    // Same parameters, same data: the IR dumps differ only in how the files spelled ops.
    assert.match(await dumpModel(b), /param 0 linear_0\.w_0/);

    const x = new Float32Array([1, 2, 3, 4, -1, 0.5, 0, 2]);
    const expected = linearExpected(x, 2, (s) => Math.max(s, 0));
    for (const dir of [a, b]) {
      const p = await loadPredictor(dir);
      try {
        const out = await p.run({ data: x, shape: [2, 4] });
        assert.deepEqual(Array.from(out['fetch_name_0']!.data as Float32Array), expected);
      } finally {
        p.close();
      }
    }
  });
});
