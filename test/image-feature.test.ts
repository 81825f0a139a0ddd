// createModel / predict (lib/image-feature.ts): every input kind mixed in one list comes out in
// order with the right inputPath, unit-norm features equal to the step-by-step pipeline
// (decode -> OpenCV-exact preprocess -> inference -> L2), an unreadable input yields an error
// result without hiding the others, and PaddleX's create_model errors.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import {
  createModel,
  normalizeRows,
  preprocessFromConfig,
  targetSize,
} from '../lib/image-feature.js';
import { parseInferenceConfig } from '../lib/modeldir.js';
import { decodeItem } from '../lib/input.js';
import { loadPredictor } from '../lib/predictor.js';
import { preprocessImage } from '../lib/preprocess.js';
import { noiseRgb } from './helpers/inputs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-feature-'));
const modelDir = path.join(dir, 'model');
const imgDir = path.join(dir, 'images');

async function image(w: number, h: number, seed: number, fmt: 'png' | 'jpeg'): Promise<Buffer> {
  const raw = sharp(noiseRgb(w, h, seed), { raw: { width: w, height: h, channels: 3 } }).blur(2);
  return fmt === 'png' ? raw.png().toBuffer() : raw.jpeg({ quality: 90 }).toBuffer();
}

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 5 });
  mkdirSync(path.join(imgDir, 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'a.png'), await image(320, 240, 1, 'png'));
  writeFileSync(path.join(imgDir, 'b.jpg'), await image(200, 300, 2, 'jpeg'));
  writeFileSync(path.join(imgDir, 'sub', 'c.PNG'), await image(97, 61, 3, 'png'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('createModel / predict', () => {
  test('mixed inputs, batchSize 3: order, inputPath, features equal to the manual pipeline', async () => {
    const model = await createModel('PP-ShiTuV2_rec', { modelDir });
    const encoded = new Uint8Array(await image(150, 150, 4, 'jpeg'));
    const bgr = { data: new Uint8Array(noiseRgb(64, 48, 5)), width: 64, height: 48, channels: 3 };
    const a = path.join(dir, 'a.png');
    const missing = path.join(dir, 'missing.jpg');
    const inputs = [a, imgDir, encoded, bgr, { img: a }, missing];
    const results = await model.predictAll(inputs, { batchSize: 3 });
    assert.deepEqual(
      results.map((r) => r.inputPath),
      [a, path.join(imgDir, 'b.jpg'), path.join(imgDir, 'sub', 'c.PNG'), null, null, a, missing],
    );
    assert.ok(results.every((r) => r.pageIndex === null));
    const bad = results[6];
    // A missing file with an image suffix is "not found" (PaddleX's wording), not a decode error.
    assert.equal((bad?.error as Error & { code?: string }).code, 'PIF_INPUT_NOT_FOUND');
    assert.equal(bad?.error?.message, `Not found any files in path: ${missing}`);
    assert.equal(bad?.feature.length, 0);
    await assert.rejects(bad?.saveToJson(dir) ?? Promise.resolve(), /no feature to save/);

    // Step by step, one image at a time, on a separate predictor.
    const p = await loadPredictor(modelDir);
    const items = [
      { kind: 'file', path: a },
      { kind: 'file', path: path.join(imgDir, 'b.jpg') },
      { kind: 'file', path: path.join(imgDir, 'sub', 'c.PNG') },
      { kind: 'encoded', data: encoded },
      { kind: 'pixels', pixels: bgr },
      { kind: 'file', path: a },
    ] as const;
    for (const [k, item] of items.entries()) {
      const r = results[k];
      assert.equal(r?.error, null);
      assert.equal(r?.feature.length, 512);
      let norm = 0;
      for (const v of r?.feature ?? []) norm += v * v;
      assert.ok(Math.abs(norm - 1) < 1e-5, `result ${k}: |feature| = ${Math.sqrt(norm)}`);
      const img = await decodeItem(item);
      const { tensor } = await preprocessImage(img, model.preprocess);
      const out = await p.run({ data: tensor, shape: [1, 3, 224, 224] });
      const want = Object.values(out)[0]?.data as Float32Array;
      normalizeRows(want, 512);
      let maxDiff = 0;
      for (let i = 0; i < 512; i++)
        maxDiff = Math.max(maxDiff, Math.abs((want[i] as number) - (r?.feature[i] as number)));
      assert.ok(maxDiff <= 1e-5, `result ${k}: max |Δ| ${maxDiff} vs the manual pipeline`);
    }
    // The same input twice gives the same feature.
    assert.deepEqual(results[5]?.feature, results[0]?.feature);
    p.close();

    // hpi gives the same features to float rounding; concurrent predict calls are safe.
    const fast = await createModel('PP-ShiTuV2_rec', {
      modelDir,
      useHpip: true,
      hpiConfig: { backend: 'paddle_mkldnn' }, // our engine (auto would pick onnxruntime here)
      batchSize: 2,
    });
    const [r1, r2] = await Promise.all([fast.predictAll([a, imgDir]), fast.predictAll(imgDir)]);
    for (const [k, r] of [...(r1 ?? []), ...(r2 ?? [])].entries()) {
      const ref = k < 3 ? results[k] : results[k - 2];
      let dot = 0;
      for (let i = 0; i < 512; i++) dot += (r.feature[i] as number) * (ref?.feature[i] as number);
      assert.ok(dot >= 0.99999, `hpi result ${k}: cosine ${dot}`);
    }
    fast.close();
    model.close();
    await assert.rejects(
      model.predictAll(a),
      (e: Error & { code?: string }) => e.code === 'PIF_CLOSED',
    );
  });

  test("PaddleX's create_model errors, device and cache rules", async () => {
    const code = (c: string, re?: RegExp) => (e: Error & { code?: string }) => {
      assert.equal(e.code, c, e.message);
      if (re) assert.match(e.message, re);
      return true;
    };
    await assert.rejects(
      createModel('PP-ShiTuV2_rec_CLIP_vit_base', { modelDir }),
      code(
        'PIF_MODEL_CONFIG',
        /^Model name mismatch，please input the correct model dir\. Expected PP-ShiTuV2_rec_CLIP_vit_base, but \S+inference\.yml has Global\.model_name PP-ShiTuV2_rec$/,
      ),
    );
    const gone = path.join(dir, 'gone');
    await assert.rejects(
      createModel('PP-ShiTuV2_rec', { modelDir: gone }),
      code('PIF_MODEL_NOT_FOUND', /gone is not exists! \(model directory not found\)$/),
    );
    await assert.rejects(
      createModel('ResNet50'),
      code('PIF_UNSUPPORTED', /^The model \(ResNet50\) is not supported!/),
    );
    await assert.rejects(
      createModel('PP-ShiTuV2_rec', { modelDir, device: 'gpu:0' }),
      code('PIF_UNSUPPORTED', /not available in this build/),
    );
    await assert.rejects(
      createModel('PP-ShiTuV2_rec', { modelDir, device: 'tpu' }),
      code('PIF_INVALID_ARG'),
    );
    await assert.rejects(
      createModel('PP-ShiTuV2_rec', { modelDir, batchSize: 0 }),
      code('PIF_INVALID_ARG'),
    );
    const cache = path.join(dir, 'cache');
    await assert.rejects(
      createModel('PP-ShiTuV2_rec', { cacheDir: cache, download: { offline: true } }),
      code(
        'PIF_DOWNLOAD',
        /^offline mode \(PIF_OFFLINE=1\): PP-ShiTuV2_rec is not in the cache .* would be downloaded from https:\/\/paddle-model-ecology\.bj\.bcebos\.com\/paddlex\/official_inference_model\/paddle3\.0\.0\/PP-ShiTuV2_rec_infer\.tar; pass your own model directory \(modelDir; on the command line --model-dir\)/,
      ),
    );
    // A model in PaddleX's cache layout is found by name.
    mkdirSync(path.join(cache, 'official_models'), { recursive: true });
    symlinkSync(modelDir, path.join(cache, 'official_models', 'PP-ShiTuV2_rec'));
    const m = await createModel('PP-ShiTuV2_rec', { cacheDir: cache });
    assert.equal(m.modelDir, path.join(cache, 'official_models', 'PP-ShiTuV2_rec'));
    assert.deepEqual([m.preprocess.width, m.preprocess.height], [224, 224]);
    m.close();
  });

  test('inference.yml preprocessing: size, resize_short with Python rounding, normalisation', () => {
    const yml = (resize: string, norm = '') =>
      parseInferenceConfig(
        `Global:\n  model_name: m\nPreProcess:\n  transform_ops:\n  - ResizeImage:\n${resize}\n` +
          `  - NormalizeImage:\n      scale: 1.0/255.0\n${norm}  - ToCHWImage: null\n`,
      );
    const fixed = preprocessFromConfig(yml('      size: [320, 240]'));
    assert.deepEqual([fixed.width, fixed.height, fixed.resizeShort], [320, 240, undefined]);
    assert.ok(Math.abs((fixed.scale ?? 0) - 1 / 255) < 1e-15);
    assert.deepEqual(fixed.mean, [0.485, 0.456, 0.406]);
    const square = preprocessFromConfig(yml('      size: 224', '      mean: [0.5, 0.5, 0.5]\n'));
    assert.deepEqual([square.width, square.height, square.mean], [224, 224, [0.5, 0.5, 0.5]]);
    const short = preprocessFromConfig(yml('      resize_short: 3'));
    assert.equal(short.resizeShort, 3);
    // Python's round: 4.5 -> 4, 7.5 -> 8 (half to even); the short side is the target.
    assert.deepEqual(targetSize(short, 3, 2), [4, 3]);
    assert.deepEqual(targetSize(short, 2, 5), [3, 8]);
    assert.deepEqual(targetSize({ ...short, resizeShort: 256 }, 500, 333), [384, 256]);
    assert.throws(
      () => preprocessFromConfig(yml('      size: [1, 2, 3]')),
      /ResizeImage\.size must be an int or \[w, h\]/,
    );
    assert.throws(
      () => preprocessFromConfig(yml('      size: 224\n  - CropImage:\n      size: 200')),
      /unknown op 'CropImage'/,
    );
  });
});
