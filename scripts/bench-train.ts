// Training's head tier (issue 17, under way) on real photos, measured: each photo of a folder is
// a product (a class); seeded sharp augmentations (crop, flip, quarter turns, brightness,
// saturation, blur) make its training views and its held-out query and gallery views. The
// builder's PP-ShiTuV2_rec (seeded random weights: official weights are unreachable here) is
// the start. Reports pooled-feature caching (images/s), ms per training step and per epoch,
// recall@1/5 and mAP on the held-out views before and after training, and peak RSS.
//
//   npm run bench:train -- [--photos DIR] [--classes 40] [--views 8] [--epochs 20]
//        [--batch 32] [--lr 0.05] [--threads 1] [--seed 1] [--json]
//
// A script, not a test: numbers depend on the machine and the photos.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp from 'sharp';

import { cpuLine, machineInfo } from '../lib/bench/machine.js';
import { buildModel } from '../lib/builder.js';
import { evaluateFeatures } from '../lib/evaluate.js';
import { createModel } from '../lib/image-feature.js';
import type { InputItem } from '../lib/input.js';
import { mulberry32 } from '../lib/rng.js';
import { HeadTier } from '../lib/train/head-tier.js';
import { arg, intArg } from './bench-args.js';

const photosDir = arg(
  'photos',
  process.env['PIF_PHOTOS'] ?? '/usr/share/doc/opencv-doc/examples/data',
);
const classes = intArg('classes', 40);
const views = intArg('views', 8);
const epochs = intArg('epochs', 20);
const batch = intArg('batch', 32);
const threads = intArg('threads', 1);
const seed = intArg('seed', 1);
const lr = Number(arg('lr', '0.05'));
const asJson = process.argv.includes('--json');
const log = (s: string) => {
  if (!asJson) console.log(s);
};

const photos = readdirSync(photosDir)
  .filter((f) => /\.jpe?g$/i.test(f))
  .sort()
  .slice(0, classes)
  .map((f) => path.join(photosDir, f));
if (photos.length < 8) throw new Error(`need at least 8 JPEG photos in ${photosDir}`);

const dir = mkdtempSync(path.join(tmpdir(), 'pif-bench-train-'));
const rnd = mulberry32(seed);

/** One seeded augmented view of `photo` as a JPEG file. */
async function view(photo: string, out: string): Promise<void> {
  const img = sharp(photo).rotate();
  const { width, height } = await img.metadata();
  const area = 0.55 + 0.4 * rnd();
  const w = Math.max(16, Math.round(width * Math.sqrt(area)));
  const h = Math.max(16, Math.round(height * Math.sqrt(area)));
  let v = sharp(photo)
    .rotate()
    .extract({
      left: Math.floor(rnd() * (width - w + 1)),
      top: Math.floor(rnd() * (height - h + 1)),
      width: w,
      height: h,
    });
  if (rnd() < 0.5) v = v.flop();
  if (rnd() < 0.3) v = v.rotate(90 * (1 + Math.floor(rnd() * 3)));
  v = v.modulate({ brightness: 0.7 + 0.6 * rnd(), saturation: 0.6 + 0.8 * rnd() });
  if (rnd() < 0.4) v = v.blur(0.5 + 1.5 * rnd());
  await v.jpeg({ quality: 85 }).toFile(out);
}

try {
  const modelDir = path.join(dir, 'model');
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed });
  const train: InputItem[] = [];
  const trainLabels: number[] = [];
  const query: string[] = [];
  const gallery: string[] = [];
  const qLabels: number[] = [];
  const gLabels: number[] = [];
  for (const [c, photo] of photos.entries()) {
    for (let k = 0; k < views + 2; k++) {
      const f = path.join(dir, `c${c}-v${k}.jpg`);
      await view(photo, f);
      if (k < views) {
        train.push({ kind: 'file', path: f });
        trainLabels.push(c);
      } else if (k === views) {
        query.push(f);
        qLabels.push(c);
      } else {
        gallery.push(f);
        gLabels.push(c);
      }
    }
  }
  const evaluate = async (model: string) => {
    const m = await createModel({ modelDir: model, useHpip: true, cpuThreads: threads });
    try {
      const feats = async (files: string[]) => {
        const rows = await m.predictAll(files);
        const out = new Float32Array(rows.length * 512);
        rows.forEach((r, i) => {
          out.set(r.feature, i * 512);
        });
        return out;
      };
      return await evaluateFeatures({
        query: { features: await feats(query), labels: qLabels },
        gallery: { features: await feats(gallery), labels: gLabels },
        dim: 512,
      });
    } finally {
      m.close();
    }
  };
  const before = await evaluate(modelDir);
  const tier = await HeadTier.open(modelDir, { cpuThreads: threads });
  let t0 = performance.now();
  const pooled = await tier.pooledFeatures(train);
  const cacheMs = performance.now() - t0;
  await tier.begin(pooled, trainLabels, {
    classes: photos.length,
    epochs,
    batchSize: batch,
    perLabel: 4,
    warmupEpochs: Math.min(5, Math.max(1, Math.floor(epochs / 4))),
    learningRate: lr,
    seed,
  });
  t0 = performance.now();
  const losses: number[] = [];
  for (let e = 0; e < epochs; e++) losses.push((await tier.trainEpoch()).loss.total);
  const trainMs = performance.now() - t0;
  const trained = path.join(dir, 'trained');
  await tier.save(trained);
  tier.close();
  const after = await evaluate(trained);
  const steps = Math.floor(train.length / batch) * epochs;
  const machine = await machineInfo();
  const result = {
    machine,
    photos: photos.length,
    trainViews: train.length,
    threads,
    cacheImagesPerSec: (train.length / cacheMs) * 1000,
    msPerStep: trainMs / steps,
    msPerEpoch: trainMs / epochs,
    loss: { first: losses[0], last: losses[losses.length - 1] },
    before,
    after,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
  log(cpuLine(machine));
  log(
    `head tier, builder PP-ShiTuV2_rec (random weights), ${photos.length} photos x ${views} views, ` +
      `batch ${batch}, ${epochs} epochs, ${threads} thread(s)`,
  );
  log(`  pooled-feature caching: ${result.cacheImagesPerSec.toFixed(1)} images/s (hpi)`);
  log(
    `  training: ${result.msPerStep.toFixed(2)} ms/step, ${result.msPerEpoch.toFixed(1)} ms/epoch`,
  );
  log(
    `  loss: ${String(result.loss.first?.toFixed(4))} -> ${String(result.loss.last?.toFixed(4))}`,
  );
  const fmt = (m: typeof before) =>
    `recall@1 ${m.recall1.toFixed(4)}, recall@5 ${m.recall5.toFixed(4)}, mAP ${m.mAP.toFixed(4)}`;
  log(`  held-out before: ${fmt(before)}`);
  log(`  held-out after:  ${fmt(after)}`);
  log(`  peak RSS: ${result.peakRssMB.toFixed(0)} MB`);
  if (asJson) console.log(JSON.stringify(result));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
