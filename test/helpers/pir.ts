/**
 * Hand-written PIR programs for tests: the inference.json op records and the save_combine
 * parameter file of a one-layer model, x [-1, 4] → matmul(x, w [4, 3]) → activation → fetch.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The weight w [4, 3], row-major. */
export const W = [0.5, -1, 2, 0.25, 1, -0.5, -2, 0.75, 1.5, 1, 0, -1];

/** One save_combine tensor record: version, LoD, tensor version, TensorDesc, data. */
export function tensorRecord(dims: number[], values: number[]): Buffer {
  const desc = Buffer.from([0x08, 0x05, ...dims.flatMap((d) => [0x10, d])]); // FP32, dims
  const head = Buffer.alloc(4 + 8 + 4 + 4); // version, LoD, tensor version: all 0
  head.writeInt32LE(desc.length, 16);
  return Buffer.concat([head, desc, Buffer.from(new Float32Array(values).buffer)]);
}

export const tt = (dims: number[]) => ({
  '#': '0.t_dtensor',
  D: [{ '#': '0.t_f32' }, dims, 'NCHW', [], 0],
});

export const attr = (name: string, kind: string, value: unknown) => ({
  AT: { '#': kind, D: value },
  N: name,
});

/** The whole inference.json text around one block's ops. */
export function program(ops: unknown[]): string {
  return JSON.stringify({
    base_code: { magic: 'pir', trainable: true, version: 1 },
    program: { regions: [{ '#': 'region_0', blocks: [{ '#': 'block_0', args: [], ops }] }] },
  });
}

/** The released compressed `p` parameter op: value 1, linear_0.w_0 [4, 3]. */
export const compressedParameter = () => ({
  '#': 'p',
  A: [0, 1, 1, 'linear_0.w_0'],
  DA: [],
  O: { '%': 1, TT: tt([4, 3]) },
  OA: [1, 0, 1],
  QA: [],
});

/**
 * x → matmul(x, parameter 1) → `activation` → fetch, in one spelling: value ids under `id`
 * (`%` released, `#` pre-release), op names after `prefix` (`1.` released, `pd_op.` pre-release).
 */
export function linearOps(id: '%' | '#', prefix: string, activation: string): unknown[] {
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
    { '#': `${prefix}${activation}`, A: [], I: [v(3)], O: [v(4, [-1, 3])] },
    {
      '#': `${prefix}fetch`,
      A: [attr('name', '0.a_str', 'fetch_name_0'), attr('col', '0.a_i32', 0)],
      I: [v(4)],
      O: [v(5, [-1, 3])],
    },
  ];
}

/** Writes inference.json and the W parameter file into root/name; returns the model folder. */
export function writeLinearModel(root: string, name: string, json: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'inference.json'), json);
  writeFileSync(path.join(dir, 'inference.pdiparams'), tensorRecord([4, 3], W));
  return dir;
}

/** The reference output: activation(x [rows, 4] · W), row-major. */
export function linearExpected(x: Float32Array, rows: number, activation: (s: number) => number) {
  const expected: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += x[r * 4 + k]! * W[k * 3 + c]!;
      expected.push(activation(s));
    }
  }
  return expected;
}
