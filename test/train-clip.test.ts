// Training the CLIP models' head tier (issue 17): a one-block PP-ShiTuV2_rec_CLIP_vit_base from
// the builder (the same tail as the full model: mean of the projected tokens -> FC neck), the
// CLIP recipe (shuffled batches, labels as written, ArcMargin + CE): the loss falls, the log has
// no triplet term, best_model/inference gives the trainer's features through createModel, the
// .pdparams carries the neck and ArcMargin head under PaddleClas's names, and labels beyond
// Train.num_classes are refused with their line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { buildModel } from '../lib/builder.js';
import { DatasetCheckError } from '../lib/errors.js';
import { createModel } from '../lib/image-feature.js';
import { train } from '../lib/train/train.js';
import {
  assertModelGives,
  checkpointFeatures,
  maxAbsDiff,
  pythonOrSkip,
  writeShiftDataset,
} from './helpers/train-data.js';

const root = mkdtempSync(path.join(tmpdir(), 'pif-train-clip-'));
const modelDir = path.join(root, 'model');
const ds = path.join(root, 'ds');
after(() => {
  rmSync(root, { recursive: true, force: true });
});

before(async () => {
  await buildModel('PP-ShiTuV2_rec_CLIP_vit_base', modelDir, { seed: 1, vitDepth: 1 });
  await writeShiftDataset(ds, { classes: 8, train: 4, gallery: 1, query: 1, seed: 3 });
});

const files = (tag: string) =>
  readFileSync(path.join(ds, `${tag}.txt`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => path.join(ds, l.split(' ')[0] as string));

test('the CLIP head tier trains the FC neck with ArcMargin and writes a loadable model', async (t) => {
  const out = path.join(root, 'out');
  const lines: string[] = [];
  // Batch 6: no PK sampler, so no multiple of 4 is needed.
  const r = await train(ds, {
    pretrainWeightPath: modelDir,
    output: out,
    epochs: 6,
    batchSize: 6,
    views: 2,
    learningRate: 0.01,
    warmupEpochs: 1,
    seed: 2,
    onLog: (l) => lines.push(l),
  });
  assert.equal(r.classes, 8);
  const losses = r.history.map((h) => h.loss);
  assert.ok((losses.at(-1) as number) < 0.9 * (losses[0] as number), losses.join(' '));
  assert.ok(lines.some((l) => /^\[Train\]\[Epoch 6\/6\]\[Avg\]CELoss: \d+\.\d{5}, loss: /.test(l)));
  assert.ok(!lines.some((l) => l.includes('Triplet')));
  assert.ok(r.best !== null);

  const best = path.join(out, 'best_model');
  const gallery = files('gallery');
  const trainer = await checkpointFeatures(modelDir, best, gallery, 8);
  assert.equal(trainer.epoch, r.best.epoch);
  await assertModelGives(path.join(best, 'inference'), gallery, trainer.features);
  // The untrained model gives other features: the neck did train.
  const m0 = await createModel({ modelDir, useHpip: true });
  try {
    const rows = await m0.predictAll(gallery);
    assert.ok(
      maxAbsDiff(
        rows.flatMap((x) => [...x.feature]),
        trainer.features,
      ) > 1e-3,
    );
  } finally {
    m0.close();
  }

  const py = pythonOrSkip(t);
  if (py === null) return;
  const script = `
import json, pickle, sys
d = pickle.load(open(sys.argv[1], "rb"), encoding="latin1")
print(json.dumps({k: list(d[k].shape) for k in ("neck.fc.weight", "neck.fc.bias", "head.weight")} | {"bn": [k for k in d if "feat_bn" in k]}))`;
  const res = spawnSync(py, ['-W', 'error', '-c', script, path.join(best, 'best_model.pdparams')], {
    encoding: 'utf8',
  });
  assert.equal(res.status, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout), {
    'neck.fc.weight': [512, 512],
    'neck.fc.bias': [512],
    'head.weight': [512, 8],
    bn: [],
  });
});

test('CLIP labels are class ids: one at or above Train.num_classes is refused with its line', async () => {
  const bad = path.join(root, 'bad');
  await cp(ds, bad, { recursive: true });
  const list = path.join(bad, 'train.txt');
  const lines = readFileSync(list, 'utf8').trim().split('\n');
  lines[4] = `${(lines[4] as string).split(' ')[0] as string} 9`;
  writeFileSync(list, `${lines.join('\n')}\n`);
  await assert.rejects(
    train(bad, {
      pretrainWeightPath: modelDir,
      output: path.join(root, 'bad-out'),
      numClasses: 8,
      batchSize: 6,
      epochs: 1,
    }),
    (e: unknown) =>
      e instanceof DatasetCheckError &&
      e.file === list &&
      e.line === 5 &&
      /label 9 is not in \[0, 8\)/.test(e.message),
  );
});
