// Training, tier last-stage (issue 17): a builder PP-ShiTuV2_rec (random weights) with stage 4
// and the tail trained end to end on a generated ShiTuRecDataset with a domain shift
// (test/helpers/train-data.ts), a new training view of every image in every epoch. Checks that
// mAP rises over the untrained model and the loss falls; that stage 4's weights change and reach
// best_model/inference and the .pdparams (Python + numpy); that best_model/inference gives,
// through createModel, the features the trainer computes; that kill -9 of the CLI mid-run and a
// resume end bit-identical to an uninterrupted run; the -c/-o entry point; and that the CLIP
// models refuse the tier with a typed error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { buildModel } from '../lib/builder.js';
import { ConfigError } from '../lib/errors.js';
import type { NativeHeadParam } from '../lib/native.js';
import { HeadTier } from '../lib/train/head-tier.js';
import { train, type TrainOptions } from '../lib/train/train.js';
import { modeArgs, runMain } from './helpers/cli.js';
import {
  assertModelGives,
  checkpointFeatures,
  listFiles,
  maxAbsDiff,
  pythonOrSkip,
  readJson,
  runCliAndKill,
  sha256,
  writeShiftDataset,
} from './helpers/train-data.js';

const root = mkdtempSync(path.join(tmpdir(), 'pif-train-stage-'));
const modelDir = path.join(root, 'model');
const ds = path.join(root, 'ds');
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const OPTS = {
  pretrainWeightPath: modelDir,
  tier: 'last-stage',
  epochs: 8,
  batchSize: 16,
  learningRate: 0.01,
  warmupEpochs: 1,
  seed: 3,
  saveInterval: 4,
} satisfies TrainOptions;

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 1 });
  await writeShiftDataset(ds, { classes: 16, train: 6, gallery: 2, query: 2, seed: 2 });
});

let full: Awaited<ReturnType<typeof train>> | null = null;
const fullOut = path.join(root, 'full');

test('last-stage training raises mAP, changes stage 4, and best_model gives the trainer features', async (t) => {
  const phases = new Set<string>();
  const lines: string[] = [];
  full = await train(ds, {
    ...OPTS,
    output: fullOut,
    onLog: (l) => lines.push(l),
    onProgress: (p) => phases.add(p.phase),
  });
  const r = full;
  assert.deepEqual([...phases].sort(), ['cache', 'epoch', 'eval', 'step']);
  assert.equal(r.trainRows, 16 * 6);
  assert.ok(r.best !== null);
  const last = r.history.at(-1) as { mAP: number; recall1: number; loss: number };
  assert.ok(
    r.best.metrics.mAP > r.initial.mAP && r.best.metrics.recall1 >= r.initial.recall1,
    `best ${JSON.stringify(r.best)} vs untrained ${JSON.stringify(r.initial)}`,
  );
  assert.ok(last.loss < (r.history[0]?.loss as number), JSON.stringify(r.history));
  assert.match(lines[0] as string, /\(tier last-stage\).*96 images x a new view each epoch/);

  // best_model/inference through createModel = the trainer's features of the restored run.
  const best = path.join(fullOut, 'best_model');
  const gallery = listFiles(ds, 'gallery');
  const trainer = await checkpointFeatures(modelDir, best, gallery, 16, 'last-stage');
  assert.equal(trainer.epoch, r.best.epoch);
  await assertModelGives(path.join(best, 'inference'), gallery, trainer.features);

  // Stage 4 trained: its two blocks' 7 parameters each, changed from the start model's.
  const stage = trainer.params.filter((p) => p.role.startsWith('stage'));
  assert.equal(stage.length, 14);
  const ht = await HeadTier.open(modelDir, { tier: 'last-stage' });
  let start: NativeHeadParam[];
  try {
    await ht.begin(new Float32Array(0), [0, 1], { classes: 2, batchSize: 2, perLabel: 1 });
    start = await ht.params();
  } finally {
    ht.close();
  }
  for (const p of stage) {
    const before = start.find((q) => q.name === p.name);
    assert.ok(before, p.name);
    assert.ok(maxAbsDiff(before.data, p.data) > 0, `${p.name} (${p.role}) did not change`);
  }
  const pw = stage.filter((p) => p.role === 'stagePwWeight').at(-1);
  assert.ok(pw);
  assert.deepEqual(pw.dims, [1024, 1024, 1, 1]);
  const py = pythonOrSkip(t);
  if (py === null) return;
  const script = `
import hashlib, json, pickle, sys
import numpy as np
d = pickle.load(open(sys.argv[1], "rb"), encoding="latin1")
w = d[sys.argv[2]]
print(json.dumps({"shape": list(w.shape), "sha": hashlib.sha256(np.ascontiguousarray(w).tobytes()).hexdigest()}))`;
  const out = spawnSync(
    py,
    ['-W', 'error', '-c', script, path.join(best, 'best_model.pdparams'), pw.name],
    { encoding: 'utf8' },
  );
  assert.equal(out.status, 0, out.stderr);
  const got = JSON.parse(out.stdout) as { shape: number[]; sha: string };
  assert.deepEqual(got.shape, [1024, 1024, 1, 1]);
  assert.equal(
    got.sha,
    sha256(new Uint8Array(pw.data.buffer, pw.data.byteOffset, pw.data.byteLength)),
  );
});

test('kill -9 of a last-stage CLI run, then resume: bit-identical to the uninterrupted run', async () => {
  assert.ok(full, 'needs the first test');
  const out = path.join(root, 'killed');
  // Killed a step or two into the epoch after the checkpoint.
  const { killedAt, stderr } = await runCliAndKill(
    [
      'train',
      ds,
      '--model-dir',
      modelDir,
      '--output',
      out,
      '--tier',
      'last-stage',
      '--epochs',
      '8',
      '--batch-size',
      '16',
      '--lr',
      '0.01',
      '--warmup',
      '1',
      '--seed',
      '3',
      '--save-interval',
      '4',
    ],
    out,
    2,
    1500,
  );
  assert.ok(killedAt >= 2 && killedAt < 8, `killed at epoch ${killedAt}; stderr: ${stderr}`);
  const r = await train(ds, { ...OPTS, output: out, resumePath: path.join(out, 'latest') });
  assert.ok(r.resumedFrom >= killedAt, `resumed from ${r.resumedFrom}`);
  for (const f of [
    'latest/inference/inference.pdiparams',
    'latest/latest.pdparams',
    'latest/latest.pifstate',
    'best_model/inference/inference.pdiparams',
    'epoch_8/epoch_8.pdparams',
  ])
    assert.equal(
      sha256(readFileSync(path.join(out, f))),
      sha256(readFileSync(path.join(fullOut, f))),
      f,
    );
  assert.deepEqual(r.history, full.history);
  // A head-tier resume of a last-stage checkpoint is refused, naming the setting.
  await assert.rejects(
    train(ds, { ...OPTS, tier: 'head', output: out, resumePath: path.join(out, 'latest') }),
    (e: unknown) => e instanceof ConfigError && /tier: "?last-stage"? there/.test(e.message),
  );
});

test('Train.tier=last-stage from -c/-o; the CLIP models refuse the tier with a typed error', async () => {
  const mode = path.join(root, 'mode');
  const b = await runMain(
    modeArgs('train', mode, [
      `Global.dataset_dir=${ds}`,
      `Train.pretrain_weight_path=${modelDir}`,
      'Train.tier=last-stage',
      'Train.epochs_iters=1',
      'Train.batch_size=16',
      'Train.num_classes=16',
    ]),
  );
  assert.equal(b.code, 0, b.err);
  assert.equal(readJson(path.join(mode, 'train_result.json'))['done_flag'], true);
  assert.match(readFileSync(path.join(mode, 'train.log'), 'utf8'), /\(tier last-stage\)/);
  assert.match(readFileSync(path.join(mode, 'config.yaml'), 'utf8'), /tier: last-stage/);

  const clip = path.join(root, 'clip');
  await buildModel('PP-ShiTuV2_rec_CLIP_vit_base', clip, { seed: 1, vitDepth: 1 });
  await assert.rejects(
    train(ds, { ...OPTS, pretrainWeightPath: clip, model: 'PP-ShiTuV2_rec_CLIP_vit_base' }),
    (e: unknown) =>
      e instanceof ConfigError && /no convolution stages to train.*tier 'head'/.test(e.message),
  );
});
