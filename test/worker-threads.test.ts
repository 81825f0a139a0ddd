// worker_threads (spec B3): the addon loaded in several workers and the main thread at once gives
// the same features as a single-thread run; workers that end while native work is in flight
// (terminate() or process.exit() inside) crash nothing and the process still exits cleanly; a
// main-thread model cloned into a worker is inert there; and everything the addon returns lives
// in JS-owned ArrayBuffers (the Electron memory cage forbids external ones), which a
// transfer list can detach, so a worker's output can move to the main thread without a copy.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MessageChannel, type Worker } from 'node:worker_threads';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel } from '../lib/image-feature.js';
import { loadPredictor } from '../lib/predictor.js';
import { searchTopK } from '../lib/search.js';
import type { FeatureWorkerData } from './helpers/feature-worker.js';
import { repoRoot } from './helpers/fixtures.js';
import { imageLike, noiseRgb, randomFloats } from './helpers/inputs.js';
import { needNative } from './helpers/native.js';
import { tsWorker } from './helpers/ts-worker.js';
import { helperScript, resultOf, runTsx } from './helpers/tsx-child.js';

const MODEL = 'PP-ShiTuV2_rec';
const dir = mkdtempSync(path.join(tmpdir(), 'pif-workers-'));
const modelDir = path.join(dir, 'model');
const images: string[] = [];
const entry = new URL('./helpers/feature-worker.ts', import.meta.url);

before(async () => {
  await buildModel(MODEL, modelDir, { seed: 5 });
  mkdirSync(path.join(dir, 'images'));
  const specs: [number, number, 'png' | 'jpeg'][] = [
    [320, 240, 'png'],
    [200, 300, 'jpeg'],
    [97, 61, 'png'],
    [150, 150, 'jpeg'],
  ];
  for (const [k, [w, h, fmt]] of specs.entries()) {
    const raw = sharp(noiseRgb(w, h, k + 1), { raw: { width: w, height: h, channels: 3 } }).blur(2);
    const file = path.join(dir, 'images', `${k}.${fmt === 'png' ? 'png' : 'jpg'}`);
    writeFileSync(file, await (fmt === 'png' ? raw.png() : raw.jpeg({ quality: 90 })).toBuffer());
    images.push(file);
  }
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const sameBits = (a: Float32Array, b: Float32Array): boolean => bytes(a).equals(bytes(b));

/** Features of `list`, one image per call, on this thread. */
async function predictEach(list: string[], useHpip: boolean, rounds = 1): Promise<Float32Array[]> {
  // hpi = our oneDNN engine, as in the workers (auto_config would pick onnxruntime here).
  const model = await createModel(MODEL, {
    modelDir,
    ...(useHpip ? { useHpip, hpiConfig: { backend: 'paddle_mkldnn' as const } } : {}),
  });
  try {
    const out: Float32Array[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const img of list) {
        const [res] = await model.predictAll(img);
        assert.equal(res?.error, null);
        out.push(res?.feature ?? new Float32Array(0));
      }
    }
    return out;
  } finally {
    model.close();
  }
}

type Message = Record<string, unknown>;

interface Started {
  worker: Worker;
  exit: Promise<number>;
  /** Settles with the worker's k-th message (k < expected); a worker error rejects it. */
  message(k: number): Promise<Message>;
}

function start(data: FeatureWorkerData, expected: number): Started {
  const worker = tsWorker(entry, data);
  const waiting: ((m: Message) => void)[] = [];
  const failing: ((e: Error) => void)[] = [];
  const messages = Array.from(
    { length: expected },
    (_, k) =>
      new Promise<Message>((resolve, reject) => {
        waiting[k] = resolve;
        failing[k] = reject;
      }),
  );
  let n = 0;
  worker.on('message', (m: Message) => waiting[n++]?.(m));
  worker.on('error', (err) => {
    for (const f of failing) f(err);
  });
  const exit = new Promise<number>((resolve) => worker.once('exit', resolve));
  const message = (k: number): Promise<Message> =>
    messages[k] ?? Promise.reject(new Error(`message ${k} of ${expected} expected`));
  return { worker, exit, message };
}

const rotate = <T>(a: T[], k: number): T[] => [...a.slice(k), ...a.slice(0, k)];

describe('worker_threads', () => {
  for (const useHpip of [false, true]) {
    const mode = useHpip ? 'high-performance mode' : 'normal mode';
    test(`${mode}: 4 workers and the main thread predicting at once give the single-thread features`, async (t) => {
      if (needNative(t) === null) return;
      const rounds = 1;
      const ref = await predictEach(images, useHpip);
      // Each worker goes through the images in its own order.
      const workers = [0, 1, 2, 3].map((k) =>
        start({ task: 'predict', modelDir, images: rotate(images, k), useHpip, rounds }, 2),
      );
      await Promise.all(workers.map((w) => w.message(0)));
      for (const w of workers) w.worker.postMessage('go');
      const [main, ...got] = await Promise.all([
        predictEach(images, useHpip, rounds),
        ...workers.map(async (w) => (await w.message(1))['features'] as Float32Array[]),
      ]);
      // Bit-equal: every run, on any thread, uses 1 CPU thread and the same kernels (oneDNN
      // in hpi mode, on the same ISA), so nothing may depend on which thread ran it.
      for (const [k, feats] of got.entries()) {
        assert.equal(feats.length, images.length * rounds);
        for (const [i, f] of feats.entries()) {
          const want = ref[(i + k) % images.length] as Float32Array;
          assert.ok(sameBits(f, want), `worker ${k}, result ${i} differs from the reference`);
        }
      }
      for (const [i, f] of main.entries())
        assert.ok(sameBits(f, ref[i % images.length] as Float32Array), `main result ${i}`);
      // The workers end by themselves once their model is closed.
      assert.deepEqual(await Promise.all(workers.map((w) => w.exit)), [0, 0, 0, 0]);
    });
  }

  test("a worker's output moves to the main thread without a copy and outlives the worker", async (t) => {
    if (needNative(t) === null) return;
    const w = start({ task: 'transfer', modelDir }, 2);
    const out = (await w.message(0))['buffer'] as ArrayBuffer;
    assert.equal((await w.message(1))['byteLength'], 0, 'the transferred buffer was detached');
    assert.equal(await w.exit, 0);
    // The worker's environment, its addon instance and its model are gone; the features are not.
    const p = await loadPredictor(modelDir);
    const shape = [1, 3, 224, 224];
    const want = Object.values(await p.run({ data: imageLike(shape, 11), shape }))[0];
    p.close();
    assert.equal(out.byteLength, 512 * 4);
    assert.ok(sameBits(new Float32Array(out), want?.data as Float32Array));
  });

  test('a main-thread model cloned into a worker is inert there and keeps working here', async (t) => {
    const native = needNative(t);
    if (native === null) return;
    const p = await loadPredictor(modelDir);
    const nm = await native.loadModel(modelDir, { executable: true });
    // postMessage / workerData structured-clone them: only plain own properties survive.
    const w = start({ task: 'foreign', modelDir, predictor: p, nativeModel: nm }, 1);
    const r = await w.message(0);
    assert.equal(await w.exit, 0);
    assert.deepEqual(r['predictorKeys'], [
      'backend',
      'inputs',
      'modelDir',
      'options',
      'outputs',
      'quantization',
    ]);
    assert.equal(r['predictorRun'], 'undefined');
    assert.deepEqual(r['nativeKeys'], []);
    assert.equal(r['nativeRun'], 'undefined');
    // The worker's own NativeModel methods refuse the clone as their receiver (V8's signature
    // check of napi_define_class methods: the call never reaches the addon).
    assert.match(r['info'] as string, /^threw TypeError: Illegal invocation/);
    assert.match(r['close'] as string, /^threw TypeError: Illegal invocation/);
    assert.equal(nm.closed, false);
    const shape = [1, 3, 224, 224];
    const input = imageLike(shape, 11);
    const a = Object.values(await p.run({ data: input, shape }))[0];
    const name = nm.info().inputs[0]?.name ?? '';
    const [b] = await nm.run([{ name, dtype: 'float32', shape, data: input }], { threads: 1 });
    assert.ok(sameBits(a?.data as Float32Array, new Float32Array(b?.data as ArrayBuffer)));
    p.close();
    nm.close();
  });

  test('a gallery that a search in flight reads in place cannot be moved to another thread', async (t) => {
    if (needNative(t) === null) return;
    // searchTopK({ borrowGallery }) reads the caller's memory off the main thread. Moved to
    // another thread in a transfer list (and freed there) it would be read after free: with a
    // large gallery that was a segfault.
    const dim = 64;
    const gallery = randomFloats(5000 * dim, 3, -1, 1);
    const queries = randomFloats(8 * dim, 4, -1, 1);
    const want = await searchTopK(queries, gallery.slice(), dim, 5);
    const pending = searchTopK(queries, gallery, dim, 5, { borrowGallery: true });
    const { port1, port2 } = new MessageChannel();
    try {
      port1.postMessage(gallery.buffer, [gallery.buffer as ArrayBuffer]); // Node 20: a copy
    } catch (err) {
      assert.equal((err as Error).name, 'DataCloneError'); // Node 22
    }
    port1.close();
    port2.close();
    assert.equal(gallery.byteLength, 5000 * dim * 4, 'the borrowed gallery was detached');
    assert.deepEqual(await pending, want);
  });

  test('workers ended with native work in flight crash nothing; the process exits cleanly', (t) => {
    if (needNative(t) === null) return;
    const child = runTsx(
      helperScript('worker-terminate-child.ts'),
      [modelDir, ...images.slice(0, 2)],
      { timeout: 120_000 },
    );
    assert.equal(child.signal, null, `child killed by ${child.signal}: ${child.stderr}`);
    assert.doesNotMatch(child.stderr, /Abort|Segmentation|FATAL|terminate called/i);
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    const r = resultOf(child.stdout) as {
      ended: { phase: string; how: string; delay: number; code: number }[];
      mainRuns: number;
      mainDiffer: number;
    };
    assert.equal(r.ended.length, 12);
    for (const e of r.ended)
      assert.equal(e.code, e.how === 'terminate' ? 1 : 3, `${e.phase} ${e.how} ${e.delay} ms`);
    assert.ok(r.mainRuns > 0);
    assert.equal(r.mainDiffer, 0, 'main-thread features changed while workers were ending');
    t.diagnostic(`main thread predicted ${r.mainRuns} times meanwhile`);
  });
});

describe('the addon returns only JS-owned memory', () => {
  // A JS-owned ArrayBuffer is detached by a transfer. One over native memory
  // (napi_create_external_arraybuffer / an external Buffer) is marked untransferable: Node 20
  // copies it and leaves it attached, Node 22 throws DataCloneError. Checked against a tiny
  // addon making both kinds on Node 20.20 and 22.23.
  function assertJsOwned(what: string, buf: ArrayBufferLike): void {
    const before = Buffer.from(new Uint8Array(buf));
    const moved = structuredClone(buf, { transfer: [buf as ArrayBuffer] });
    assert.equal(buf.byteLength, 0, `${what}: not detached by a transfer (external memory?)`);
    assert.ok(Buffer.from(new Uint8Array(moved)).equals(before), `${what}: contents changed`);
  }

  test('the check tells an untransferable buffer apart (Node’s Buffer pool)', () => {
    const pooled = Buffer.from('abc').buffer;
    let attached: boolean;
    try {
      structuredClone(pooled, { transfer: [pooled] });
      attached = pooled.byteLength > 0;
    } catch (err) {
      assert.equal((err as Error).name, 'DataCloneError');
      attached = true;
    }
    assert.ok(attached, 'an untransferable buffer was detached: the check proves nothing');
  });

  test('run() outputs, preprocessImage() and searchTopK() results are transferable', async (t) => {
    const native = needNative(t);
    if (native === null) return;
    const nm = await native.loadModel(modelDir, { executable: true });
    const shape = [2, 3, 224, 224];
    const name = nm.info().inputs[0]?.name ?? '';
    const outs = await nm.run([{ name, dtype: 'float32', shape, data: imageLike(shape, 2) }], {
      threads: 1,
    });
    nm.close();
    assert.ok(outs.length > 0);
    for (const o of outs) assertJsOwned(`run() output ${o.name}`, o.data);
    const pre = await native.preprocessImage(
      new Uint8Array(noiseRgb(40, 30, 9)),
      { width: 40, height: 30, channels: 3 },
      { width: 24, height: 24, scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    );
    assertJsOwned('preprocessImage().resized', pre.resized.buffer);
    assertJsOwned('preprocessImage().tensor', pre.tensor.buffer);
    const gallery = randomFloats(100 * 16, 1, -1, 1);
    for (const borrowGallery of [false, true]) {
      const top = await native.searchTopK(randomFloats(3 * 16, 2, -1, 1), gallery, 16, 4, {
        borrowGallery,
      });
      assertJsOwned('searchTopK().ids', top.ids.buffer);
      assertJsOwned('searchTopK().scores', top.scores.buffer);
    }
  });

  test('native/addon makes no external buffers', () => {
    // Calls the tests above do not reach. node-addon-api's external ArrayBuffer / Buffer
    // overloads are compiled out (NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED); the C calls are not.
    const src = readFileSync(path.join(repoRoot, 'native', 'addon', 'addon.cc'), 'utf8');
    assert.doesNotMatch(src, /napi_create_external_(arraybuffer|buffer)/);
  });
});
