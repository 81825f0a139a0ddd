// Training (issue 17), measured through train() as users run it, on real photos: each photo of
// a folder is a product (a class), seeded sharp augmentations make its train, gallery and query
// views (lib/bench/photo-dataset.ts). The builder's PP-ShiTuV2_rec (seeded random weights:
// official weights are unreachable here) is the start. Per thread count: pooled-feature caching
// (images and rows per second), ms per training step and per epoch (checkpoints included),
// recall@1/5 and mAP on gallery/query before training and of the best epoch, peak RSS, and the
// projected time of the issue's target run (10k images x 20 epochs, caching included).
// With --tier last-stage (PP-ShiTuV2_rec): ms per image per training step, split into the frozen
// part (decoded image to stage 4's input, with its training view) and stage 4 + tail (forward,
// backward, update), and the projected 10k x 20 epochs.
//
//   npm run bench:train -- [--model PP-ShiTuV2_rec|PP-ShiTuV2_rec_CLIP_vit_base] [--photos DIR]
//        [--tier head|last-stage]
//        [--classes 40] [--images 4] [--views 4] [--epochs 20] [--batch 32] [--lr 0.004]
//        [--threads 1,2] [--seed 1] [--json]
//
// A script, not a test: numbers depend on the machine and the photos.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { cpuLine, machineInfo } from '../lib/bench/machine.js';
import { listPhotos, OPENCV_PHOTOS, writePhotoDataset } from '../lib/bench/photo-dataset.js';
import { buildModel } from '../lib/builder.js';
import type { RetrievalMetrics } from '../lib/evaluate.js';
import { train } from '../lib/train/train.js';
import { arg, intArg } from './bench-args.js';

const modelName = arg('model', 'PP-ShiTuV2_rec');
const photosDir = arg('photos', process.env['PIF_PHOTOS'] ?? OPENCV_PHOTOS);
const classes = intArg('classes', 40);
const images = intArg('images', 4);
const views = intArg('views', 4);
const epochs = intArg('epochs', 20);
const batch = intArg('batch', 32);
const seed = intArg('seed', 1);
const lr = Number(arg('lr', '0.004'));
const tier = arg('tier', 'head') as 'head' | 'last-stage';
const stage = tier === 'last-stage';
const threadList = arg('threads', '1,2').split(',').map(Number);
const asJson = process.argv.includes('--json');
const log = (s: string) => {
  if (!asJson) console.log(s);
};

const photos = listPhotos(photosDir, classes);
if (photos.length < 8) throw new Error(`need at least 8 JPEG photos in ${photosDir}`);
const dir = mkdtempSync(path.join(tmpdir(), 'pif-bench-train-'));
const fmt = (m: RetrievalMetrics) =>
  `recall@1 ${m.recall1.toFixed(4)}, recall@5 ${m.recall5.toFixed(4)}, mAP ${m.mAP.toFixed(4)}`;

try {
  const modelDir = path.join(dir, 'model');
  await buildModel(modelName, modelDir, { seed });
  const ds = path.join(dir, 'ds');
  const counts = await writePhotoDataset(photos, ds, { train: images, gallery: 1, query: 1, seed });
  const machine = await machineInfo();
  log(cpuLine(machine));
  log(
    `${tier} tier, builder ${modelName} (random weights), ${photos.length} photos: ${counts.train} ` +
      `train images x ${stage ? 'a new view per epoch' : `${views} views`}, ${counts.gallery} gallery, ${counts.query} query; batch ${batch}, ` +
      `lr ${lr}, ${epochs} epochs`,
  );
  const runs = [];
  for (const threads of threadList) {
    const out = path.join(dir, `out-${threads}`);
    let cacheStart = 0;
    let cacheEnd = 0;
    const epochMs: number[] = [];
    const stepMsList: number[] = [];
    const frozenMs: number[] = [];
    const stageMs: number[] = [];
    let last = 0;
    const t0 = performance.now();
    const r = await train(ds, {
      pretrainWeightPath: modelDir,
      output: out,
      epochs,
      batchSize: batch,
      views,
      tier,
      learningRate: lr,
      warmupEpochs: Math.min(5, Math.max(1, Math.floor(epochs / 4))),
      seed,
      cpuThreads: threads,
      onProgress: (p) => {
        const now = performance.now();
        if (p.phase === 'cache') {
          if (cacheStart === 0) cacheStart = t0;
          cacheEnd = now;
          last = now;
        } else if (p.phase === 'step') {
          frozenMs.push(p.frozenMs);
          stageMs.push(p.trainMs);
        } else if (p.phase === 'epoch') {
          stepMsList.push((1000 * batch) / p.imagesPerSec);
          epochMs.push(now - last);
          last = now;
        } else last = now;
      },
    });
    const totalMs = performance.now() - t0;
    const rowsPerImage = stage ? 0 : views;
    const cacheRows = counts.train * rowsPerImage + counts.gallery + counts.query;
    const cacheSec = (cacheEnd - cacheStart) / 1000;
    const steps = Math.floor((counts.train * (stage ? 1 : views)) / batch);
    const meanEpoch = epochMs.reduce((a, b) => a + b, 0) / epochMs.length;
    // The target: 10k images x `views` rows cached, then 20 epochs of 10k x views / batch steps.
    const rowsPerSec = cacheRows / cacheSec;
    const stepMs = stepMsList.reduce((a, b) => a + b, 0) / stepMsList.length;
    // Per epoch at 10k: its steps, plus this run's evaluation and checkpoint time per epoch.
    const overheadMs = meanEpoch - stepMs * steps;
    const perEpochRows = 10000 * (stage ? 1 : views);
    const projectedMin =
      ((10000 * rowsPerImage) / rowsPerSec +
        (20 * (stepMs * Math.floor(perEpochRows / batch) + overheadMs)) / 1000) /
      60;
    const mean = (a: number[]) => (a.length === 0 ? 0 : a.reduce((x, y) => x + y, 0) / a.length);
    // The first step of a run makes oneDNN's primitives: left out of the per-image means.
    const perImage = (a: number[]) => mean(a.slice(1)) / batch;
    const run = {
      threads,
      cacheImagesPerSec: (counts.train + counts.gallery + counts.query) / cacheSec,
      cacheRowsPerSec: rowsPerSec,
      msPerStep: stepMs,
      ...(stage
        ? {
            msPerImageStep: perImage(frozenMs) + perImage(stageMs),
            msPerImageFrozen: perImage(frozenMs),
            msPerImageStage: perImage(stageMs),
          }
        : {}),
      msPerEpoch: meanEpoch,
      totalSec: totalMs / 1000,
      before: r.initial,
      best: r.best,
      projected10kx20Min: projectedMin,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    };
    runs.push(run);
    log(`threads ${threads}:`);
    if (!stage)
      log(
        `  caching: ${run.cacheImagesPerSec.toFixed(1)} images/s, ${rowsPerSec.toFixed(1)} pooled rows/s (hpi)`,
      );
    log(
      `  training: ${stepMs.toFixed(2)} ms/step (${steps} steps/epoch); ${meanEpoch.toFixed(0)} ms/epoch with its evaluation and checkpoints`,
    );
    if (stage)
      log(
        `  per image per step: ${(perImage(frozenMs) + perImage(stageMs)).toFixed(2)} ms = frozen part ${perImage(frozenMs).toFixed(2)} + stage 4 and tail ${perImage(stageMs).toFixed(2)} (target <= 20)`,
      );
    log(`  before:              ${fmt(r.initial)}`);
    if (r.best !== null) log(`  best (epoch ${r.best.epoch}): ${fmt(r.best.metrics)}`);
    log(
      `  projected 10k images x ${stage ? '' : `${views} views x `}20 epochs: ${projectedMin.toFixed(1)} min${stage ? '' : ' (target < 15)'}`,
    );
    log(`  whole run ${run.totalSec.toFixed(1)} s, peak RSS so far ${run.peakRssMB.toFixed(0)} MB`);
  }
  if (asJson)
    console.log(
      JSON.stringify({ machine, model: modelName, tier, counts, views, epochs, batch, lr, runs }),
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
