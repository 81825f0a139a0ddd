// One call into our addon per predicted batch (issue 16): predictAll on JPEG files decodes with
// sharp, then makes exactly one native call per batch (NativeModel.runImages: preprocessing,
// inference and L2 normalisation in one job), counted through lib/native.ts' call tracer; the
// serve batcher's merged batches likewise. The features equal the step-by-step pipeline
// (preprocessImage, Predictor.run on the same batch, normalizeRows) bit for bit.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel, normalizeRows, type FeatureModel } from '../lib/image-feature.js';
import { decodeItem } from '../lib/input.js';
import { traceNativeCalls } from '../lib/native.js';
import { loadPredictor } from '../lib/predictor.js';
import { preprocessImage } from '../lib/preprocess.js';
import { FeatureBatcher } from '../lib/serve/batcher.js';
import { noiseRgb } from './helpers/inputs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-calls-'));
const modelDir = path.join(dir, 'model');
const files: string[] = [];
const calls: string[] = [];
let untrace: () => void = () => undefined;
let model: FeatureModel;

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 3 });
  for (let k = 0; k < 19; k++) {
    const [w, h] = [120 + (k % 4) * 9, 90 - (k % 3) * 7];
    const f = path.join(dir, `img${String(k).padStart(2, '0')}.jpg`);
    await sharp(noiseRgb(w, h, k + 1), { raw: { width: w, height: h, channels: 3 } })
      .blur(2)
      .jpeg({ quality: 90 })
      .toFile(f);
    files.push(f);
  }
  // Traced from the load on, so that the model's own methods are counted too.
  untrace = traceNativeCalls((name) => calls.push(name));
  model = await createModel('PP-ShiTuV2_rec', { modelDir, batchSize: 8 });
});

after(() => {
  model.close();
  untrace();
  rmSync(dir, { recursive: true, force: true });
});

test('predictAll: one addon call per batch of 8 JPEG files', async () => {
  calls.length = 0;
  const results = await model.predictAll(files);
  assert.deepEqual(calls, new Array(3).fill('NativeModel.runImages'), 'batches of 8, 8 and 3');
  assert.equal(results.length, files.length);
  for (const r of results) {
    assert.equal(r.error, null);
    assert.equal(r.feature.length, 512);
  }

  // A batch with a missing file still makes one call; a batch with nothing to run makes none.
  calls.length = 0;
  const missing = path.join(dir, 'missing.jpg');
  const mixed = await model.predictAll([files[0] as string, missing, files[1] as string]);
  assert.deepEqual(calls, ['NativeModel.runImages']);
  assert.equal(mixed[1]?.error?.message, `Not found any files in path: ${missing}`);
  assert.deepEqual(mixed[0]?.feature, results[0]?.feature);
  assert.deepEqual(mixed[2]?.feature, results[1]?.feature);
  calls.length = 0;
  const none = await model.predictAll([missing, missing]);
  assert.deepEqual(calls, []);
  assert.equal(none.length, 2);
});

test('the features equal the step-by-step pipeline on the same batch, bit for bit', async () => {
  const results = await model.predictAll(files.slice(0, 8));
  const p = await loadPredictor(modelDir);
  try {
    const per = 3 * 224 * 224;
    const data = new Float32Array(per * 8);
    for (const [k, f] of files.slice(0, 8).entries()) {
      const img = await decodeItem({ kind: 'file', path: f });
      data.set((await preprocessImage(img, model.preprocess)).tensor, k * per);
    }
    const out = Object.values(await p.run({ data, shape: [8, 3, 224, 224] }))[0]
      ?.data as Float32Array;
    normalizeRows(out, 512);
    for (let k = 0; k < 8; k++) {
      assert.deepEqual(results[k]?.feature, out.slice(k * 512, (k + 1) * 512), `image ${k}`);
    }
  } finally {
    p.close();
  }
});

test('the serve batcher: one addon call per merged batch', async () => {
  const batcher = new FeatureBatcher(model, { maxBatch: 8, maxWaitMs: 1000 });
  calls.length = 0;
  const encoded = files.slice(0, 16).map((f) => readFileSync(f));
  const features = await batcher.submitAll(encoded);
  await batcher.close();
  assert.equal(features.length, 16);
  assert.equal(batcher.stats().batches, 2);
  assert.deepEqual(calls, ['NativeModel.runImages', 'NativeModel.runImages']);
});

test('the tracer hears calls on the binding and stops when uninstalled', async () => {
  const heard: string[] = [];
  const stop = traceNativeCalls((name) => heard.push(name));
  const p = await loadPredictor(modelDir);
  await p.run({ data: new Float32Array(3 * 224 * 224), shape: [1, 3, 224, 224] });
  p.close();
  stop();
  assert.deepEqual(heard.slice(0, 2), ['loadModel', 'NativeModel.info']);
  assert.ok(heard.includes('NativeModel.run'));
  assert.ok(heard.includes('NativeModel.close'));
  // The suite's listener was replaced above: put it back.
  untrace = traceNativeCalls((name) => calls.push(name));
});
