/**
 * PIR inference.json spellings: the released compressed form (`%` value ids, `1.matmul`,
 * `p` parameter ops) and the pre-release form (`#` value ids, `pd_op.matmul`,
 * `builtin.parameter` as an ordinary op with named attributes) describe the same program:
 * both load to the same inputs, outputs and op census and compute the same numbers.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { inspectModel } from '../lib/inspect.js';
import { dumpModel } from '../lib/model.js';
import { loadPredictor } from '../lib/predictor.js';
import { needNative } from './helpers/native.js';

const root = mkdtempSync(path.join(tmpdir(), 'pif-pir-spellings-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const W = [0.5, -1, 2, 0.25, 1, -0.5, -2, 0.75, 1.5, 1, 0, -1]; // [4, 3], row-major

/** One save_combine tensor record: version, LoD, tensor version, TensorDesc, data. */
function tensorRecord(dims: number[], values: number[]): Buffer {
  const desc = Buffer.from([0x08, 0x05, ...dims.flatMap((d) => [0x10, d])]); // FP32, dims
  const head = Buffer.alloc(4 + 8 + 4 + 4);
  head.writeUInt32LE(0, 0);
  head.writeBigUInt64LE(0n, 4);
  head.writeUInt32LE(0, 12);
  head.writeInt32LE(desc.length, 16);
  return Buffer.concat([head, desc, Buffer.from(new Float32Array(values).buffer)]);
}

const tt = (dims: number[]) => ({
  '#': '0.t_dtensor',
  D: [{ '#': '0.t_f32' }, dims, 'NCHW', [], 0],
});
const attr = (name: string, kind: string, value: unknown) => ({
  AT: { '#': kind, D: value },
  N: name,
});
const boolArray = (v: boolean) => ({ '#': '0.a_array', D: [{ '#': '0.a_bool', D: v }] });

function program(ops: unknown[]): string {
  return JSON.stringify({
    base_code: { magic: 'pir', trainable: true, version: 1 },
    program: { regions: [{ '#': 'region_0', blocks: [{ '#': 'block_0', args: [], ops }] }] },
  });
}

/**
 * x → matmul(x, parameter 1) → relu → fetch, in one spelling: value ids under `id` (`%`
 * released, `#` pre-release), op names after `prefix` (`1.` released, `pd_op.` pre-release).
 */
function linearOps(id: '%' | '#', prefix: string): unknown[] {
  const v = (n: number, dims?: number[]) => ({ [id]: n, ...(dims ? { TT: tt(dims) } : {}) });
  return [
    {
      '#': `${prefix}data`,
      A: [
        attr('name', '0.a_str', 'x'),
        attr('shape', '1.a_intarray', [-1, 4]),
        attr('dtype', '1.a_dtype', 'float32'),
        attr('place', '1.a_place', [0, 0, '']),
      ],
      I: [],
      O: [v(2, [-1, 4])],
    },
    {
      '#': `${prefix}matmul`,
      A: [attr('transpose_x', '0.a_bool', false), attr('transpose_y', '0.a_bool', false)],
      I: [v(2), v(1)],
      O: [v(3, [-1, 3])],
    },
    { '#': `${prefix}relu`, A: [], I: [v(3)], O: [v(4, [-1, 3])] },
    {
      '#': `${prefix}fetch`,
      A: [attr('name', '0.a_str', 'fetch_name_0'), attr('col', '0.a_i32', 0)],
      I: [v(4)],
      O: [v(5, [-1, 3])],
    },
  ];
}

function compressed(): string {
  return program([
    {
      '#': 'p',
      A: [0, 1, 1, 'linear_0.w_0'],
      DA: [],
      O: { '%': 1, TT: tt([4, 3]) },
      OA: [1, 0, 1],
      QA: [],
    },
    ...linearOps('%', '1.'),
  ]);
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
    ...linearOps('#', 'pd_op.'),
  ]);
  return JSON.stringify(JSON.parse(text), null, 4);
}

function writeModel(name: string, json: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'inference.json'), json);
  writeFileSync(path.join(dir, 'inference.pdiparams'), tensorRecord([4, 3], W));
  return dir;
}

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
    const expected: number[] = [];
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += x[r * 4 + k]! * W[k * 3 + c]!;
        expected.push(Math.max(s, 0));
      }
    }
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
