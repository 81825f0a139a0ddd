/**
 * An op added after the registration split (issue 16): `softsign` (y = x / (1 + |x|)) exists in
 * one file, native/kernels/ref/activation.cc. A hand-written PIR program runs it after a matmul,
 * in normal mode and in hpi mode (oneDNN has no softsign algorithm, so the node keeps its
 * reference kernel there), and both give the formula's numbers.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { inspectModel } from '../lib/inspect.js';
import { loadPredictor } from '../lib/predictor.js';
import { needNative } from './helpers/native.js';

const root = mkdtempSync(path.join(tmpdir(), 'pif-op-added-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const W = [0.5, -1, 2, 0.25, 1, -0.5, -2, 0.75, 1.5, 1, 0, -1]; // [4, 3], row-major

/** One save_combine tensor record: version, LoD, tensor version, TensorDesc, data. */
function tensorRecord(dims: number[], values: number[]): Buffer {
  const desc = Buffer.from([0x08, 0x05, ...dims.flatMap((d) => [0x10, d])]); // FP32, dims
  const head = Buffer.alloc(4 + 8 + 4 + 4);
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

/** parameter w [4, 3]; x [-1, 4] -> matmul(x, w) -> softsign -> fetch. */
function softsignProgram(): string {
  const ops = [
    {
      '#': 'p',
      A: [0, 1, 1, 'linear_0.w_0'],
      DA: [],
      O: { '%': 1, TT: tt([4, 3]) },
      OA: [1, 0, 1],
      QA: [],
    },
    {
      '#': '1.data',
      A: [
        attr('name', '0.a_str', 'x'),
        attr('shape', '1.a_intarray', [-1, 4]),
        attr('dtype', '1.a_dtype', 'float32'),
        attr('place', '1.a_place', [0, 0, '']),
      ],
      I: [],
      O: [{ '%': 2, TT: tt([-1, 4]) }],
    },
    {
      '#': '1.matmul',
      A: [attr('transpose_x', '0.a_bool', false), attr('transpose_y', '0.a_bool', false)],
      I: [{ '%': 2 }, { '%': 1 }],
      O: [{ '%': 3, TT: tt([-1, 3]) }],
    },
    { '#': '1.softsign', A: [], I: [{ '%': 3 }], O: [{ '%': 4, TT: tt([-1, 3]) }] },
    {
      '#': '1.fetch',
      A: [attr('name', '0.a_str', 'fetch_name_0'), attr('col', '0.a_i32', 0)],
      I: [{ '%': 4 }],
      O: [{ '%': 5, TT: tt([-1, 3]) }],
    },
  ];
  return JSON.stringify({
    base_code: { magic: 'pir', trainable: true, version: 1 },
    program: { regions: [{ '#': 'region_0', blocks: [{ '#': 'block_0', args: [], ops }] }] },
  });
}

describe('an op added in one file', () => {
  test('softsign runs in normal and hpi mode', async (t) => {
    if (needNative(t) === null) return;
    const dir = path.join(root, 'softsign');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'inference.json'), softsignProgram());
    writeFileSync(path.join(dir, 'inference.pdiparams'), tensorRecord([4, 3], W));
    assert.equal((await inspectModel(dir)).ops['pd_op.softsign'], 1);

    const x = new Float32Array([1, 2, 3, 4, -1, 0.5, 0, 2, 0, 0, 0, 0]);
    const expected: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += x[r * 4 + k]! * W[k * 3 + c]!;
        expected.push(s / (1 + Math.abs(s)));
      }
    }
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
