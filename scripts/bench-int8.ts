// Accuracy of every precision and backend on retrieval over real photos (issue 18): each photo
// is a class, seeded sharp augmentations make its gallery and query views and one calibration
// view (lib/bench/photo-dataset.ts; calibration never sees a gallery or query image). The model
// is the builder's PP-ShiTuV2_rec (seeded random weights: official weights are unreachable
// here) or --model-dir. Per mode (normal = backend paddle, hpi = paddle_mkldnn fp32, hpi-bf16,
// hpi-int8 quantised on the calibration views, ort = backend onnxruntime): recall@1/5 and mAP
// over gallery/query, the change in recall@1 against fp32 (normal mode), the feature cosine of
// every gallery and query image against normal mode (worst, mean), and ms per image.
//
//   npm run bench:int8 -- [--photos DIR] [--classes 60] [--threads 1] [--model-dir DIR] [--json]
//
// A script, not a test: numbers depend on the machine and the photos.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { cpuLine, machineInfo } from '../lib/bench/machine.js';
import { compareOutputs } from '../lib/bench/runners.js';
import { listPhotos, OPENCV_PHOTOS, writePhotoDataset } from '../lib/bench/photo-dataset.js';
import { buildModel } from '../lib/builder.js';
import { evaluateFeatures } from '../lib/evaluate.js';
import { createModel, type CreateModelOptions } from '../lib/image-feature.js';
import { arg, intArg } from './bench-args.js';

const photosDir = arg('photos', process.env['PIF_PHOTOS'] ?? OPENCV_PHOTOS);
const classes = intArg('classes', 60);
const threads = intArg('threads', 1);
const modelDirArg = arg('model-dir', '');
const asJson = process.argv.includes('--json');
const log = (s: string): void => {
  (asJson ? process.stderr : process.stdout).write(`${s}\n`);
};

const work = mkdtempSync(path.join(tmpdir(), 'pif-bench-int8-'));
try {
  const machine = await machineInfo();
  log(`[bench:int8] ${cpuLine(machine)}`);
  const modelDir = modelDirArg !== '' ? modelDirArg : path.join(work, 'model');
  if (modelDirArg === '') await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 1 });
  const photos = listPhotos(photosDir, classes);
  const root = path.join(work, 'dataset');
  await writePhotoDataset(photos, root, { train: 1, gallery: 2, query: 2, seed: 7 });
  const calibration = photos.map((_, c) => path.join(root, 'images', `c${c}-train0.jpg`));
  const lists = (tag: string) =>
    photos.flatMap((_, c) => [0, 1].map((k) => path.join(root, 'images', `c${c}-${tag}${k}.jpg`)));
  const gallery = lists('gallery');
  const query = lists('query');
  const labels = (n: number) => Float64Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2));
  log(
    `[bench:int8] ${photos.length} photos: ${gallery.length} gallery, ${query.length} query, ` +
      `${calibration.length} calibration images; ${threads} thread(s)`,
  );

  const modes: [string, CreateModelOptions][] = [
    ['normal', {}],
    ['hpi', { useHpip: true, hpiConfig: { backend: 'paddle_mkldnn' } }],
    ['hpi-bf16', { useHpip: true, precision: 'bf16' }],
    ['hpi-int8', { useHpip: true, precision: 'int8', calibration }],
    ['ort', { useHpip: true, hpiConfig: { backend: 'onnxruntime' } }],
  ];
  const rows: Record<string, unknown>[] = [];
  let ref: Float32Array | null = null;
  let refRecall = 0;
  for (const [mode, options] of modes) {
    let model;
    try {
      model = await createModel({ modelDir, cpuThreads: threads, batchSize: 8, ...options });
    } catch (err) {
      rows.push({ mode, error: `n/a: ${(err as Error).message.split('\n')[0]}` });
      continue;
    }
    try {
      const t0 = performance.now();
      const feats = (await model.predictAll([...gallery, ...query])).map((r) => {
        if (r.error !== null) throw r.error;
        return r.feature;
      });
      const msPerImage = (performance.now() - t0) / feats.length;
      const dim = feats[0]?.length ?? 0;
      const pack = (list: Float32Array[]) => {
        const out = new Float32Array(list.length * dim);
        list.forEach((f, i) => {
          out.set(f, i * dim);
        });
        return out;
      };
      const metrics = await evaluateFeatures({
        gallery: { features: pack(feats.slice(0, gallery.length)), labels: labels(photos.length) },
        query: { features: pack(feats.slice(gallery.length)), labels: labels(photos.length) },
        dim,
      });
      const all = pack(feats);
      ref ??= all;
      const cos = compareOutputs(all, ref, feats.length);
      if (mode === 'normal') refRecall = metrics.recall1;
      const q = model.quantization?.report;
      rows.push({
        mode,
        backend: model.engine.backend,
        recall1: metrics.recall1,
        recall5: metrics.recall5,
        mAP: metrics.mAP,
        recall1DeltaPoints: (metrics.recall1 - refRecall) * 100,
        cosWorst: cos.cosWorst,
        cosMean: cos.cosMean,
        msPerImage,
        ...(q === undefined ? {} : { int8Layers: `${q.int8Layers}/${q.totalLayers}` }),
      });
    } finally {
      model.close();
    }
  }
  const report = { machine, photos: photos.length, threads, rows };
  if (asJson) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    log(
      'mode      backend        recall@1  recall@5  mAP     Δr@1 pts  cos worst  cos mean  ms/img',
    );
    for (const r of rows) {
      if (typeof r['error'] === 'string') {
        log(`${String(r['mode']).padEnd(10)}${r['error']}`);
        continue;
      }
      const f = (k: string, d: number) => (r[k] as number).toFixed(d);
      log(
        `${String(r['mode']).padEnd(10)}${String(r['backend']).padEnd(15)}${f('recall1', 4).padEnd(10)}` +
          `${f('recall5', 4).padEnd(10)}${f('mAP', 4).padEnd(8)}${f('recall1DeltaPoints', 2).padEnd(10)}` +
          `${f('cosWorst', 6).padEnd(11)}${f('cosMean', 6).padEnd(10)}${f('msPerImage', 2)}` +
          (typeof r['int8Layers'] === 'string' ? `  (${r['int8Layers']} convolutions int8)` : ''),
      );
    }
  }
  await mkdir('bench-results', { recursive: true });
  const out = path.join(
    'bench-results',
    `bench-int8-${new Date().toISOString().slice(0, 10)}.json`,
  );
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  log(`[bench:int8] wrote ${out}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
