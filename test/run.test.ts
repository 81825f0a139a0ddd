/**
 * Predictor.run(): real models with real weights against independent oracles (ONNX Runtime
 * on the fixture's own Paddle2ONNX export; the MNIST author's sample digit), input
 * validation, concurrency, and the event loop staying free.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { describe, test } from 'node:test';

import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

import {
  InputError,
  InvalidArgumentError,
  ModelUnsupportedError,
  type PifError,
} from '../lib/errors.js';
import { loadPredictor } from '../lib/predictor.js';
import { fixtureDir, needFixtures, parseSourceMd } from './helpers/fixtures.js';
import { randomFloats } from './helpers/inputs.js';
import { needNative } from './helpers/native.js';
import {
  argmaxRows,
  loadFixturePredictor,
  withFixturePredictor,
  withOnnxOracle,
} from './helpers/predictors.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('run() on real weights', () => {
  test('mobilenetv3 matches ONNX Runtime on the fixture model.onnx (max |Δ| ≤ 1e-4, same argmax)', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'mobilenetv3_small_x0_35_meter_legacy');
    await withOnnxOracle(dir, undefined, async (p, session) => {
      for (const [batch, seed] of [
        [1, 1],
        [4, 2],
      ] as const) {
        // Normalised-image-like values: ImageNet normalisation maps [0,255] to about [-2.1, 2.6].
        const x = randomFloats(batch * 3 * 224 * 224, seed, -2.1, 2.6);
        const ours = await p.run({ x: { data: x, shape: [batch, 3, 224, 224] } });
        const out = ours['save_infer_model/scale_0.tmp_0'];
        assert.ok(out !== undefined, `outputs: ${Object.keys(ours).join(', ')}`);
        assert.deepEqual(out.shape, [batch, 3]);
        assert.equal(out.dtype, 'float32');
        const inputName = session.inputNames[0]!;
        const res = await session.run({
          [inputName]: new ort.Tensor('float32', x, [batch, 3, 224, 224]),
        });
        const ref = res[session.outputNames[0]!]!.data as Float32Array;
        const d = maxAbsDiff(out.data as Float32Array, ref);
        assert.ok(d <= 1e-4, `batch ${batch}: max |Δ| ${d}`);
        assert.deepEqual(argmaxRows(out.data as Float32Array, 3), argmaxRows(ref, 3));
      }
    });
  });

  test('mnist classifies the author’s sample digit as 3', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'mnist_mlp_legacy_separate');
    // As the author's script: grayscale, 28×28, x/255*2-1.
    const pixels = await sharp(path.join(dir, 'infer_3.png'))
      .grayscale()
      .resize(28, 28, { fit: 'fill' })
      .raw()
      .toBuffer();
    const x = Float32Array.from(pixels, (v) => (v / 255) * 2 - 1);
    const p = await loadPredictor(dir);
    try {
      const out = await p.run({ data: x, shape: [1, 1, 28, 28] });
      const probs = out['save_infer_model/scale_0.tmp_4']!.data as Float32Array;
      assert.equal(probs.length, 10);
      const sum = probs.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `softmax sums to ${sum}`);
      assert.equal(argmaxRows(probs, 10)[0], 3, `probabilities ${Array.from(probs).join(', ')}`);
    } finally {
      p.close();
    }
  });
});

describe('run() behaviour', () => {
  test('inputs are validated with typed errors naming the input', async (t) => {
    await withFixturePredictor(t, 'mobilenetv3_small_x0_35_meter_legacy', async (p) => {
      const x = new Float32Array(3 * 224 * 224);
      const is = (code: string, text: string) => (err: unknown) => {
        assert.equal((err as PifError).code, code, String(err));
        assert.ok((err as Error).message.includes(text), (err as Error).message);
        return true;
      };
      await assert.rejects(
        p.run({ y: { data: x, shape: [1, 3, 224, 224] } }),
        is('PIF_INPUT', "'y'"),
      );
      await assert.rejects(
        p.run({ x: { data: x, shape: [1, 3, 112, 448] } }),
        is('PIF_INPUT', 'shape'),
      );
      await assert.rejects(
        p.run({ x: { data: x, shape: [3, 224, 224] } }),
        is('PIF_INPUT', 'shape'),
      );
      await assert.rejects(
        p.run({ x: { data: new Int32Array(3 * 224 * 224), shape: [1, 3, 224, 224] } }),
        is('PIF_INPUT', 'dtype'),
      );
      await assert.rejects(
        p.run({ x: { data: x, shape: [2, 3, 224, 224] } }),
        InvalidArgumentError,
      );
      await assert.rejects(p.run({}), InputError);
      await assert.rejects(
        p.run({ x: { data: x, shape: [1, 3, 224, 224], dtype: 'int32' } }),
        InvalidArgumentError,
      );
    });
  });

  test('concurrent runs on one predictor give the same results as sequential ones', async (t) => {
    await withFixturePredictor(t, 'pplcnet_x0_25_textline_ori_pir', async (p) => {
      const inputs = [1, 2, 3, 4, 5, 6].map((s) => randomFloats(2 * 3 * 80 * 160, s, -2, 2));
      const sequential = [];
      for (const x of inputs) sequential.push(await p.run({ data: x, shape: [2, 3, 80, 160] }));
      const concurrent = await Promise.all(
        inputs.map((x) => p.run({ data: x, shape: [2, 3, 80, 160] })),
      );
      for (let i = 0; i < inputs.length; i++) {
        assert.deepEqual(
          concurrent[i]!['fetch_name_0']!.data,
          sequential[i]!['fetch_name_0']!.data,
        );
      }
      // Softmax rows of the 2-class orientation head.
      const row = sequential[0]!['fetch_name_0']!.data as Float32Array;
      assert.ok(Math.abs(row[0]! + row[1]! - 1) < 1e-5);
    });
  });

  test('the event loop keeps running while a model runs', async (t) => {
    await withFixturePredictor(t, 'en_ppocrv3_det_legacy', async (p) => {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const started = Date.now();
      await p.run({ data: randomFloats(3 * 640 * 640, 9), shape: [1, 3, 640, 640] });
      const elapsed = Date.now() - started;
      clearInterval(timer);
      // A blocked loop would tick at most once; allow for a slow, shared machine.
      assert.ok(ticks >= Math.min(5, Math.floor(elapsed / 50)), `${ticks} ticks in ${elapsed} ms`);
    });
  });

  test('every unsupported op is listed, with counts, in one load-time error', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    // Rename two op types in a copy of the MNIST program (same length, so the protobuf
    // stays valid; 0x1a is the key of OpDesc.type): relu (x2) -> relx, softmax -> softmaz.
    const src = fixtureDir(root, 'mnist_mlp_legacy_separate');
    const dir = mkdtempSync(path.join(tmpdir(), 'pif-unsupported-'));
    try {
      for (const f of readdirSync(src)) {
        copyFileSync(path.join(src, f), path.join(dir, f));
        chmodSync(path.join(dir, f), 0o644); // the fixtures are read-only
      }
      const program = readFileSync(path.join(dir, '__model__'));
      const patched = Buffer.from(
        program
          .toString('latin1')
          .replaceAll('\x1a\x04relu', '\x1a\x04relx')
          .replaceAll('\x1a\x07softmax', '\x1a\x07softmaz'),
        'latin1',
      );
      assert.notDeepEqual(patched, program);
      writeFileSync(path.join(dir, '__model__'), patched);
      await assert.rejects(loadPredictor(dir), (err: unknown) => {
        assert.ok(err instanceof ModelUnsupportedError, String(err));
        assert.equal(err.code, 'PIF_MODEL_UNSUPPORTED');
        assert.match(err.message, /relx x2/);
        assert.match(err.message, /softmaz x1/);
        assert.match(err.message, /2 unsupported op type\(s\) \(3 ops\)/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the unsupported-op error covers every block and names the block of each op type', async (t) => {
    // The official PP-ShiTuV2 detector: box decoding and NMS inside the graph, control flow
    // with bodies in blocks 1-9 whose ops block 0 does not show.
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'pp_shituv2_det_picodet_legacy_graphonly');
    const sourceMd = path.join(dir, 'SOURCE.md');
    const facts = parseSourceMd(readFileSync(sourceMd, 'utf8'), sourceMd, dir);
    assert.ok(facts.blocks !== null && facts.blocks > 1, `blocks: ${facts.blocks}`);
    await assert.rejects(loadPredictor(dir, { randomWeights: 1 }), (err: unknown) => {
      assert.ok(err instanceof ModelUnsupportedError, String(err));
      const listed = new Map<string, { count: number; blocks: number[] }>();
      const m = /(\d+) unsupported op type\(s\) \((\d+) ops\): (.*)$/s.exec(err.message);
      assert.ok(m, err.message);
      for (const item of m[3]!.split(/, (?=[a-z_0-9]+ x\d)/)) {
        const im = /^([a-z_0-9]+) x(\d+) \(blocks? ([\d, ]+)\)$/.exec(item.trim());
        assert.ok(im, `item '${item}' of: ${err.message}`);
        listed.set(im[1]!, { count: Number(im[2]), blocks: im[3]!.split(', ').map(Number) });
      }
      assert.equal(listed.size, Number(m[1]), err.message);
      let total = 0;
      for (const [type, { count, blocks }] of listed) {
        // Counted over all blocks: SOURCE.md's census (an independent parser) agrees.
        assert.equal(
          count,
          facts.ops[type],
          `${type}: ${count} listed, SOURCE.md ${facts.ops[type]}`,
        );
        for (const b of blocks) assert.ok(b >= 0 && b < facts.blocks!, `${type} block ${b}`);
        total += count;
      }
      assert.equal(total, Number(m[2]));
      // Control flow in block 0; the rest only inside the sub-blocks.
      assert.deepEqual(listed.get('while')?.blocks, [0]);
      for (const type of [
        'conditional_block',
        'select_input',
        'write_to_array',
        'lod_array_length',
        'top_k_v2',
        'greater_than',
        'logical_not',
        'meshgrid',
        'range',
        'reverse',
      ]) {
        const l = listed.get(type);
        assert.ok(l !== undefined, `${type} is not listed: ${err.message}`);
        assert.ok(
          l.blocks.every((b) => b > 0),
          `${type} blocks ${l.blocks.join(',')}`,
        );
      }
      // Ops the engine runs are not listed.
      for (const type of ['conv2d', 'batch_norm', 'leaky_relu', 'hard_swish', 'concat', 'slice'])
        assert.equal(listed.get(type), undefined, `${type} listed as unsupported`);
      t.diagnostic(err.message);
      return true;
    });
  });

  test('runs inside worker_threads (context-aware addon), also beside the main thread', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'mnist_mlp_legacy_separate');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.lib).then(async ({ loadPredictor }) => {
        const p = await loadPredictor(workerData.dir);
        const x = new Float32Array(784).map((_, i) => Math.sin(i));
        const out = await p.run({ data: x, shape: [1, 1, 28, 28] });
        p.close();
        parentPort.postMessage(Array.from(Object.values(out)[0].data));
      });`;
    const lib = new URL('../dist/index.js', import.meta.url).href;
    const inWorker = () =>
      new Promise<number[]>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { lib, dir } });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const [a, b] = await Promise.all([inWorker(), inWorker()]);
    const p = await loadPredictor(dir);
    try {
      const x = new Float32Array(784).map((_, i) => Math.sin(i));
      const main = Array.from(
        (await p.run({ data: x, shape: [1, 1, 28, 28] }))['save_infer_model/scale_0.tmp_4']!
          .data as Float32Array,
      );
      assert.equal(a.length, 10);
      assert.deepEqual(a, main);
      assert.deepEqual(b, main);
    } finally {
      p.close();
    }
  });

  test('a closed predictor rejects run() with PIF_CLOSED', async (t) => {
    const p = await loadFixturePredictor(t, 'mnist_mlp_legacy_separate');
    if (p === null) return;
    p.close();
    await assert.rejects(
      p.run({ data: new Float32Array(784), shape: [1, 1, 28, 28] }),
      (err: unknown) => {
        assert.equal((err as PifError).code, 'PIF_CLOSED');
        return true;
      },
    );
  });
});
