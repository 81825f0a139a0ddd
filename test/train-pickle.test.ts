// Paddle checkpoint files (lib/train/pdparams.ts over lib/train/pickle.ts), loaded back by
// Python's own pickle with numpy (Debian's python3-numpy), as
// `pickle.load(f, encoding='latin1')` in paddle.load does: names, dtypes, shapes and the bytes
// of every array, the name table, and the plain values of a .pdstates file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';

import { seededFloats } from '../lib/rng.js';
import { encodePickle, NdArray, PyFloat, PyTuple } from '../lib/train/pickle.js';
import {
  NAME_TABLE_KEY,
  pdparamsBytes,
  writePdparams,
  writePdstates,
} from '../lib/train/pdparams.js';
import { requireFixtures } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-pickle-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

// Loads a pickle in Python and prints, per top-level key, what it holds: arrays as
// [dtype, shape, sha256 of the bytes], anything else as itself (JSON), tuples marked.
const SUMMARY = `
import hashlib, json, pickle, sys
import numpy as np
def show(v):
    if isinstance(v, np.ndarray):
        return {"dtype": v.dtype.str, "shape": list(v.shape), "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}
    if isinstance(v, tuple):
        return {"tuple": [show(x) for x in v]}
    if isinstance(v, list):
        return [show(x) for x in v]
    if isinstance(v, dict):
        return {k: show(x) for k, x in v.items()}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, int) and not isinstance(v, bool):
        return {"int": str(v)}
    return v
with open(sys.argv[1], "rb") as f:
    d = pickle.load(f, encoding="latin1")
print(json.dumps(show(d)))
`;

function python(t: TestContext): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0) return py;
  }
  const why = 'no python3 with numpy (install the Debian package python3-numpy)';
  if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${why}`);
  t.skip(why);
  return null;
}

function load(py: string, file: string): unknown {
  const r = spawnSync(py, ['-W', 'error', '-c', SUMMARY, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown;
}

const sha = (a: NdArray) =>
  createHash('sha256')
    .update(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength))
    .digest('hex');
const shown = (a: NdArray, dtype: string) => ({ dtype, shape: [...a.shape], sha256: sha(a) });

test('a .pdparams file loads in Python + numpy with its names, shapes and values', async (t) => {
  const py = python(t);
  if (py === null) return;
  const weight = new NdArray('float32', [512, 1024, 1, 1], seededFloats(512 * 1024, 3, -1, 1));
  const bias = new NdArray('float32', [512], seededFloats(512, 4, -1, 1));
  const fc = new NdArray('float32', [512, 7], seededFloats(512 * 7, 5, -0.1, 0.1));
  const file = path.join(dir, 'best_model.pdparams');
  await writePdparams(file, [
    { structuredName: 'backbone.last_conv.weight', name: 'conv2d_0.w_0', array: weight },
    { structuredName: 'neck.feat_bn.bias', name: 'batch_norm_0.b_0', array: bias },
    { structuredName: 'head.fc.weight', array: fc },
  ]);
  assert.deepEqual(readdirSync(dir), ['best_model.pdparams'], 'no temporary file left');
  assert.deepEqual(load(py, file), {
    'backbone.last_conv.weight': shown(weight, '<f4'),
    'neck.feat_bn.bias': shown(bias, '<f4'),
    'head.fc.weight': shown(fc, '<f4'),
    [NAME_TABLE_KEY]: {
      'backbone.last_conv.weight': 'conv2d_0.w_0',
      'neck.feat_bn.bias': 'batch_norm_0.b_0',
    },
  });
});

test('a .pdstates file is a plain dict of a float metric and an int epoch', async (t) => {
  const py = python(t);
  if (py === null) return;
  const file = path.join(dir, 'best_model.pdstates');
  await writePdstates(file, { metric: 1, epoch: 12 });
  assert.deepEqual(load(py, file), { metric: { float: '1.0' }, epoch: { int: '12' } });
});

test('every value kind the pickle writer knows, as Python reads it', (t) => {
  const py = python(t);
  if (py === null) return;
  const arrays = {
    u8: new NdArray('uint8', [2, 2], Uint8Array.of(1, 2, 3, 255)),
    i32: new NdArray('int32', [3], Int32Array.of(-1, 0, 2 ** 31 - 1)),
    i64: new NdArray('int64', [2], BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n)),
    f64scalar: new NdArray('float64', [], Float64Array.of(3.25)),
    empty: new NdArray('float32', [0, 4], new Float32Array(0)),
  };
  const file = path.join(dir, 'values.pkl');
  const value = {
    ...arrays,
    ints: [0, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2n ** 63n - 1n, -(2n ** 63n)],
    floats: [1.5, new PyFloat(2), -0.0, 1e300],
    tuple: new PyTuple([1, 'x', null, true, false]),
    emptyTuple: new PyTuple([]),
    emptyList: [],
    emptyDict: {},
    unicode: 'é✓ 特征',
    long: 'z'.repeat(300),
  };
  writeFileSync(file, encodePickle(value));
  const expectArrays = {
    u8: shown(arrays.u8, '|u1'),
    i32: shown(arrays.i32, '<i4'),
    i64: shown(arrays.i64, '<i8'),
    f64scalar: shown(arrays.f64scalar, '<f8'),
    empty: shown(arrays.empty, '<f4'),
  };
  const int = (v: number | bigint) => ({ int: String(v) });
  assert.deepEqual(load(py, file), {
    ...expectArrays,
    ints: value.ints.map(int),
    floats: [{ float: '1.5' }, { float: '2.0' }, { float: '-0.0' }, { float: '1e+300' }],
    tuple: { tuple: [int(1), 'x', null, true, false] },
    emptyTuple: { tuple: [] },
    emptyList: [],
    emptyDict: {},
    unicode: 'é✓ 特征',
    long: 'z'.repeat(300),
  });
});

test('bad arrays and parameter lists are refused', () => {
  assert.throws(() => new NdArray('float32', [2, 2], new Float32Array(3)), {
    code: 'PIF_INVALID_ARG',
    message: /12 bytes for float32\[2, 2\] \(16 expected\)/,
  });
  assert.throws(() => new NdArray('float32', [-1], new Float32Array(0)), /bad shape/);
  const a = new NdArray('float32', [1], new Float32Array(1));
  assert.throws(
    () =>
      pdparamsBytes([
        { structuredName: 'w', array: a },
        { structuredName: 'w', array: a },
      ]),
    /'w' given twice/,
  );
  assert.throws(
    () => pdparamsBytes([{ structuredName: NAME_TABLE_KEY, array: a }]),
    /bad parameter name/,
  );
});
