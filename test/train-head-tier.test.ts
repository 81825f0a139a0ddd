// Training's head tier through the addon (lib/train/head-tier.ts): pooled features of JPEG files
// in normal and hpi mode, a seeded run of a few epochs on them, the trained model written as a
// model directory that createModel loads (program file unchanged, features changed), the same
// seed giving the same file bit for bit, and the errors a caller can cause.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel } from '../lib/image-feature.js';
import type { InputItem } from '../lib/input.js';
import { HeadTier } from '../lib/train/head-tier.js';
import { noiseRgb } from './helpers/inputs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-head-tier-'));
const modelDir = path.join(dir, 'model');
const items: InputItem[] = [];
const labels: number[] = [];

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 4 });
  // 4 "products", 8 photos each: one base picture per product, each photo a crop of it with
  // its own blur and brightness.
  for (let c = 0; c < 4; c++) {
    const base = noiseRgb(96, 96, 100 + c);
    for (let k = 0; k < 8; k++) {
      const f = path.join(dir, `p${c}-${k}.jpg`);
      await sharp(base, { raw: { width: 96, height: 96, channels: 3 } })
        .extract({ left: k, top: 8 - k, width: 80, height: 80 })
        .blur(1 + k / 4)
        .modulate({ brightness: 0.8 + k / 20 })
        .jpeg({ quality: 90 })
        .toFile(f);
      items.push({ kind: 'file', path: f });
      labels.push(c);
    }
  }
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const config = {
  classes: 4,
  epochs: 3,
  batchSize: 8,
  perLabel: 4,
  warmupEpochs: 1,
  learningRate: 0.05,
  seed: 11,
};

async function train(tier: HeadTier, features: Float32Array, out: string) {
  await tier.begin(features, labels, config);
  const epochs = [];
  for (let e = 0; e < config.epochs; e++) epochs.push(await tier.trainEpoch());
  await tier.save(out);
  return epochs;
}

test('head tier: pooled features, a seeded run, a model directory that predicts', async () => {
  const normal = await HeadTier.open(modelDir, { useHpip: false });
  const hpi = await HeadTier.open(modelDir);
  try {
    assert.deepEqual({ in: normal.info.in, dim: normal.info.dim }, { in: 1024, dim: 512 });
    assert.ok(Math.abs(normal.info.dropoutScale - 0.8) < 1e-6);
    const features = await normal.pooledFeatures(items);
    const fast = await hpi.pooledFeatures(items);
    assert.equal(features.length, items.length * 1024);
    let worst = 0;
    for (let i = 0; i < features.length; i++)
      worst = Math.max(worst, Math.abs((features[i] as number) - (fast[i] as number)));
    assert.ok(worst < 1e-4, `hpi pooled features differ by ${worst}`);

    const out1 = path.join(dir, 'trained-1');
    const out2 = path.join(dir, 'trained-2');
    const epochs = await train(normal, features, out1);
    assert.deepEqual(
      epochs.map((e) => e.epoch),
      [1, 2, 3],
    );
    for (const e of epochs) assert.ok(Number.isFinite(e.loss.total) && e.loss.total > 0);
    const first = epochs[0] as (typeof epochs)[number];
    assert.ok(Math.abs(first.loss.total - (first.loss.ce + first.loss.triplet)) < 1e-9);
    await train(normal, features, out2);
    assert.deepEqual(
      readFileSync(path.join(out1, 'inference.pdiparams')),
      readFileSync(path.join(out2, 'inference.pdiparams')),
      'the same seed gives the same parameters',
    );
    assert.deepEqual(
      readFileSync(path.join(out1, 'inference.json')),
      readFileSync(path.join(modelDir, 'inference.json')),
      'the program file is copied unchanged',
    );
    const before = await createModel({ modelDir });
    const after = await createModel({ modelDir: out1 });
    try {
      const files = items.slice(0, 4).map((it) => (it.kind === 'file' ? it.path : ''));
      const a = await before.predictAll(files);
      const b = await after.predictAll(files);
      for (const [i, r] of b.entries()) {
        assert.equal(r.error, null);
        assert.equal(r.feature.length, 512);
        assert.notDeepEqual(r.feature, a[i]?.feature, 'training changed the features');
      }
    } finally {
      before.close();
      after.close();
    }
  } finally {
    normal.close();
    hpi.close();
  }
});

test('head tier: what a caller can get wrong', async () => {
  const tier = await HeadTier.open(modelDir, { useHpip: false });
  try {
    await assert.rejects(tier.trainEpoch(), {
      code: 'PIF_INVALID_ARG',
      message: /begin\(\) first/,
    });
    const f = new Float32Array(16 * 1024);
    const l = Array.from({ length: 16 }, (_, i) => i % 4);
    await assert.rejects(tier.begin(f, l, { ...config, classes: 3 }), {
      code: 'PIF_INVALID_ARG',
      message: /label 3 is not in \[0, 3\)/,
    });
    await assert.rejects(tier.begin(f.subarray(1), l, config), {
      code: 'PIF_INVALID_ARG',
      message: /rows of 1024/,
    });
    await assert.rejects(tier.begin(f, l, { ...config, learningRate: -1 }), {
      code: 'PIF_INVALID_ARG',
      message: /learningRate/,
    });
    await tier.begin(f, l, { ...config, batchSize: 6 });
    await assert.rejects(tier.trainEpoch(), {
      message: /batch size \(6\) must be a multiple of the images per label \(4\)/,
    });
  } finally {
    tier.close();
  }
  assert.throws(() => tier.info, { code: 'PIF_CLOSED' });
  await assert.rejects(HeadTier.open(path.join(dir, 'nothing-here')), {
    code: 'PIF_MODEL_NOT_FOUND',
  });
});
