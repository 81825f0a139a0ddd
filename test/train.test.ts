// Training (issue 17, tier head) end to end on real files: a builder PP-ShiTuV2_rec (random
// weights) fine-tuned on a generated ShiTuRecDataset with a domain shift
// (test/helpers/train-data.ts). Checks that recall@1 and mAP rise over the untrained model; the
// PaddleX outputs (config.yaml, train.log line shapes, train_results.json, train_curves.png,
// best_model/latest/epoch_N with .pdparams that Python + numpy load); that best_model/inference
// gives, through createModel, the features the trainer computes; that kill -9 mid-run leaves
// loadable checkpoints and a resume ends bit-identical to an uninterrupted run; the three entry
// points; and typed errors for bad datasets and options.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import {
  ConfigError,
  DatasetCheckError,
  InputDecodeError,
  InvalidArgumentError,
} from '../lib/errors.js';
import { createModel } from '../lib/image-feature.js';
import { train, type TrainOptions } from '../lib/train/train.js';
import { modeArgs, runMain } from './helpers/cli.js';
import {
  assertModelGives,
  checkpointFeatures,
  listFiles as listDatasetFiles,
  pythonOrSkip,
  readJson,
  runCliAndKill,
  sha256,
  writeShiftDataset,
} from './helpers/train-data.js';

const root = mkdtempSync(path.join(tmpdir(), 'pif-train-'));
const modelDir = path.join(root, 'model');
const ds = path.join(root, 'ds');
after(() => {
  rmSync(root, { recursive: true, force: true });
});

// lr ~ 1e-4 x batch: PaddleClas's scale (0.04 at 256); larger steps oscillate on 32-row batches.
const OPTS = {
  pretrainWeightPath: modelDir,
  epochs: 12,
  batchSize: 32,
  views: 4,
  learningRate: 0.004,
  warmupEpochs: 1,
  seed: 1,
  saveInterval: 4,
} satisfies TrainOptions;

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 1 });
  await writeShiftDataset(ds, { classes: 16, train: 6, gallery: 2, query: 2, seed: 2 });
});

const listFiles = (tag: string) => listDatasetFiles(ds, tag);
const sha = sha256;

let full: Awaited<ReturnType<typeof train>> | null = null;
const fullOut = path.join(root, 'full');

test('training raises recall@1 and mAP and writes PaddleX outputs', async () => {
  const lines: string[] = [];
  const phases = new Set<string>();
  full = await train(ds, {
    ...OPTS,
    output: fullOut,
    onLog: (l) => lines.push(l),
    onProgress: (p) => phases.add(p.phase),
  });
  const r = full;
  assert.deepEqual([...phases].sort(), ['cache', 'epoch', 'eval']);
  assert.ok(r.best !== null);
  assert.ok(
    r.best.metrics.recall1 > r.initial.recall1 && r.best.metrics.mAP > r.initial.mAP,
    `best ${JSON.stringify(r.best)} vs untrained ${JSON.stringify(r.initial)}`,
  );
  const losses = r.history.map((h) => h.loss);
  assert.ok((losses.at(-1) as number) < (losses[0] as number), `loss ${losses.join(' ')}`);
  assert.equal(r.history.length, 12);
  assert.equal(r.trainRows, 16 * 6 * 4);

  // train.log: PaddleClas's line shapes, one [Avg] and one [Eval] per epoch.
  const log = readFileSync(path.join(fullOut, 'train.log'), 'utf8').trim().split('\n');
  assert.deepEqual(log, lines);
  const num = String.raw`\d+\.\d{5}`;
  const iter = new RegExp(
    String.raw`^\[Train\]\[Epoch (\d+)/12\]\[Iter: 11/12\]lr\(LinearWarmup\): \d\.\d{8}, CELoss: ${num}, TripletAngularMarginLoss: ${num}, loss: ${num}, batch_cost: ${num}s, reader_cost: 0\.00000, ips: ${num} samples/s, eta: \d+:\d\d:\d\d$`,
  );
  assert.equal(log.filter((l) => iter.test(l)).length, 12);
  assert.equal(log.filter((l) => /^\[Train\]\[Epoch \d+\/12\]\[Avg\]CELoss: /.test(l)).length, 12);
  const evals = log.filter((l) =>
    new RegExp(
      String.raw`^\[Eval\]\[Epoch \d+\]\[Avg\]recall1: ${num}, recall5: ${num}, mAP: ${num}$`,
    ).test(l),
  );
  assert.equal(evals.length, 12);
  assert.match(
    evals[r.best.epoch - 1] as string,
    new RegExp(`recall1: ${r.best.metrics.recall1.toFixed(5)}`),
  );

  // train_results.json (json.dump form), config.yaml, curves.
  const results = readJson(path.join(fullOut, 'train_results.json'));
  assert.equal(results['done_flag'], true);
  assert.equal(results['model_name'], 'PP-ShiTuV2_rec');
  const models = results['models'] as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(models), ['last_1', 'last_2', 'last_3', 'last_4', 'last_5', 'best']);
  assert.deepEqual(models['last_4'], {});
  assert.equal(models['last_1']?.['pdparams'], 'epoch_12/epoch_12.pdparams');
  assert.equal(models['last_3']?.['pdparams'], 'epoch_4/epoch_4.pdparams');
  assert.equal(models['best']?.['score'], r.best.metrics.recall1);
  for (const m of Object.values(models).filter((x) => Object.keys(x).length > 0))
    for (const k of ['pdparams', 'pdstates', 'inference_config', 'pdmodel', 'pdiparams'])
      assert.ok(existsSync(path.join(fullOut, m[k] as string)), `${k} ${String(m[k])}`);
  assert.match(readFileSync(path.join(fullOut, 'config.yaml'), 'utf8'), /epochs_iters: 12/);
  const png = await sharp(path.join(fullOut, 'train_curves.png')).metadata();
  assert.equal(png.format, 'png');
  assert.deepEqual(
    readdirSync(fullOut).filter((f) => f.startsWith('.')),
    [],
    'no temporary checkpoint directory left',
  );
  assert.deepEqual(
    readdirSync(fullOut)
      .filter((f) => f.startsWith('epoch_'))
      .sort(),
    ['epoch_12', 'epoch_4', 'epoch_8'],
  );
});

test('best_model/inference gives the features the trainer computes; Python loads its .pdparams', async (t) => {
  assert.ok(full?.best, 'needs the first test');
  const best = path.join(fullOut, 'best_model');
  const gallery = listFiles('gallery');
  // The trainer's side: the head tier restored from the best checkpoint's state.
  const trainer = await checkpointFeatures(modelDir, best, gallery, 16);
  assert.equal(trainer.epoch, full.best.epoch);
  await assertModelGives(path.join(best, 'inference'), gallery, trainer.features);
  const convWeight = trainer.neckWeight;
  const py = pythonOrSkip(t);
  if (py === null) return;
  const script = `
import hashlib, json, pickle, sys
import numpy as np
d = pickle.load(open(sys.argv[1], "rb"), encoding="latin1")
st = pickle.load(open(sys.argv[2], "rb"), encoding="latin1")
w = d["backbone.last_conv.weight"]
print(json.dumps({"keys": len(d), "fc": list(d["head.fc.weight"].shape), "w": list(w.shape), "dtype": w.dtype.str,
  "sha": hashlib.sha256(np.ascontiguousarray(w).tobytes()).hexdigest(),
  "bn": [k for k in d if k.startswith("neck.feat_bn.")], "table": d["StructuredToParameterName@@"]["backbone.last_conv.weight"],
  "epoch": st["epoch"], "metric": st["metric"]}))`;
  const out = spawnSync(
    py,
    [
      '-W',
      'error',
      '-c',
      script,
      path.join(best, 'best_model.pdparams'),
      path.join(best, 'best_model.pdstates'),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(out.status, 0, out.stderr);
  const got = JSON.parse(out.stdout) as Record<string, unknown>;
  assert.deepEqual(got['fc'], [512, 16]);
  assert.deepEqual(got['w'], [512, 1024, 1, 1]);
  assert.equal(got['dtype'], '<f4');
  assert.equal(
    got['sha'],
    sha(new Uint8Array(convWeight.buffer, convWeight.byteOffset, convWeight.byteLength)),
  );
  assert.deepEqual([...(got['bn'] as string[])].sort(), [
    'neck.feat_bn._mean',
    'neck.feat_bn._variance',
    'neck.feat_bn.bias',
    'neck.feat_bn.weight',
  ]);
  assert.match(got['table'] as string, /^conv2d_\d+\.w_0$/);
  assert.equal(got['epoch'], full.best.epoch);
  assert.equal(got['metric'], full.best.metrics.recall1);
});

test('kill -9 mid-run leaves loadable checkpoints; resume ends bit-identical to the uninterrupted run', async () => {
  assert.ok(full, 'needs the first test');
  const out = path.join(root, 'killed');
  const { killedAt, stderr } = await runCliAndKill(
    [
      'train',
      ds,
      '--model-dir',
      modelDir,
      '--output',
      out,
      '--epochs',
      '12',
      '--batch-size',
      '32',
      '--views',
      '4',
      '--lr',
      '0.004',
      '--warmup',
      '1',
      '--seed',
      '1',
      '--save-interval',
      '4',
    ],
    out,
    5,
  );
  assert.ok(killedAt >= 5 && killedAt < 12, `killed at epoch ${killedAt}; stderr: ${stderr}`);
  // Every checkpoint directory there loads and runs.
  const dirs = readdirSync(out).filter((f) => /^(latest|best_model|epoch_\d+)$/.test(f));
  // best_model may be mid-publish (only its .old copy there), which resume also finds.
  assert.ok(dirs.includes('epoch_4'), dirs.join(' '));
  assert.ok(
    dirs.includes('best_model') || existsSync(path.join(out, '.best_model.old')),
    dirs.join(' '),
  );
  for (const d of dirs) {
    const m = await createModel({ modelDir: path.join(out, d, 'inference') });
    try {
      assert.equal((await m.predictAll([listFiles('query')[0] as string]))[0]?.feature.length, 512);
    } finally {
      m.close();
    }
  }
  // As a record from before the last-stage tier: no tier in its settings (read as 'head').
  // (A kill between the two renames of a publish leaves it as .latest.old, which resume finds.)
  const latestDir = existsSync(path.join(out, 'latest')) ? 'latest' : '.latest.old';
  const recordFile = path.join(out, latestDir, 'latest.pifresume.json');
  const rec = readJson(recordFile) as { settings: Record<string, unknown> };
  assert.equal(rec.settings['tier'], 'head');
  delete rec.settings['tier'];
  writeFileSync(recordFile, JSON.stringify(rec));
  const r = await train(ds, { ...OPTS, output: out, resumePath: path.join(out, 'latest') });
  assert.ok(r.resumedFrom >= killedAt, `resumed from ${r.resumedFrom}`);
  for (const f of [
    'latest/inference/inference.pdiparams',
    'latest/latest.pdparams',
    'latest/latest.pifstate',
    'best_model/inference/inference.pdiparams',
    'epoch_12/epoch_12.pdparams',
  ])
    assert.equal(sha(readFileSync(path.join(out, f))), sha(readFileSync(path.join(fullOut, f))), f);
  assert.deepEqual(r.best, full.best);
  assert.deepEqual(r.history, full.history);
  assert.equal(readJson(path.join(out, 'train_results.json'))['done_flag'], true);
  // train.log: what the killed run logged after its last checkpoint was cut, so every epoch
  // appears once.
  const epochsLogged = readFileSync(path.join(out, 'train.log'), 'utf8')
    .split('\n')
    .filter((l) => /^\[Train\]\[Epoch \d+\/12\]\[Avg\]/.test(l))
    .map((l) => Number(/Epoch (\d+)/.exec(l)?.[1]));
  assert.deepEqual(epochsLogged, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  // The same checkpoint with other settings is refused, naming what differs.
  await assert.rejects(
    train(ds, {
      ...OPTS,
      epochs: 13,
      output: out,
      resumePath: path.join(out, 'latest', 'latest.pdparams'),
    }),
    (e: unknown) => e instanceof ConfigError && /epochs: 12 there, 13 now/.test(e.message),
  );
  await assert.rejects(
    train(ds, { ...OPTS, output: out, resumePath: path.join(root, 'nowhere') }),
    (e: unknown) => e instanceof ConfigError && /not a checkpoint/.test(e.message),
  );
  // A damaged checkpoint is refused before any work, naming the file.
  const damaged = path.join(root, 'damaged');
  await cp(path.join(out, 'latest'), path.join(damaged, 'latest'), { recursive: true });
  const record = path.join(damaged, 'latest', 'latest.pifresume.json');
  writeFileSync(record, JSON.stringify({ ...readJson(record), history: [] }));
  await assert.rejects(
    train(ds, { ...OPTS, output: damaged, resumePath: path.join(damaged, 'latest') }),
    (e: unknown) => e instanceof ConfigError && e.file === record && /damaged/.test(e.message),
  );
  await cp(path.join(out, 'latest', 'latest.pifresume.json'), record);
  const stateFile = path.join(damaged, 'latest', 'latest.pifstate');
  const whole = readFileSync(stateFile);
  writeFileSync(stateFile, whole.subarray(0, whole.length >> 1));
  await assert.rejects(
    train(ds, { ...OPTS, output: damaged, resumePath: path.join(damaged, 'latest') }),
    (e: unknown) =>
      e instanceof ConfigError && e.file === stateFile && /not a whole/.test(e.message),
  );
  writeFileSync(stateFile, whole.subarray(4));
  await assert.rejects(
    train(ds, { ...OPTS, output: damaged, resumePath: path.join(damaged, 'latest') }),
    (e: unknown) => e instanceof ConfigError && e.file === stateFile && /bad magic/.test(e.message),
  );
});

test('the train subcommand and -o Global.mode=train run the same trainer', async () => {
  const sub = path.join(root, 'sub');
  const a = await runMain([
    'train',
    ds,
    '--model-dir',
    modelDir,
    '--output',
    sub,
    '--epochs',
    '1',
    '--batch-size',
    '32',
    '--views',
    '1',
  ]);
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /^\[Eval\]\[Epoch 1\]\[Avg\]recall1: /m);
  const ra = readJson(path.join(sub, 'train_result.json'));
  assert.equal(ra['done_flag'], true);
  assert.equal(ra['best_epoch'], 1);
  const mode = path.join(root, 'mode');
  const b = await runMain(
    modeArgs('train', mode, [
      `Global.dataset_dir=${ds}`,
      `Train.pretrain_weight_path=${modelDir}`,
      'Train.epochs_iters=1',
      'Train.batch_size=32',
      'Train.views=1',
      'Train.num_classes=16',
    ]),
  );
  assert.equal(b.code, 0, b.err);
  assert.equal(readJson(path.join(mode, 'train_result.json'))['done_flag'], true);
  assert.equal(readJson(path.join(mode, 'train_results.json'))['done_flag'], true);
  // Same trainer, same settings (the subcommand's defaults are the yaml's): the same weights.
  for (const f of ['latest/inference/inference.pdiparams', 'latest/latest.pdparams'])
    assert.equal(sha(readFileSync(path.join(sub, f))), sha(readFileSync(path.join(mode, f))), f);
  // The yaml's default batch (128) needs 32 labels: a typed failure in train_result.json.
  const c = await runMain(
    modeArgs('train', path.join(root, 'mode-bad'), [
      `Global.dataset_dir=${ds}`,
      `Train.pretrain_weight_path=${modelDir}`,
    ]),
  );
  assert.equal(c.code, 1);
  const rc = readJson(path.join(root, 'mode-bad', 'train_result.json'));
  assert.equal(rc['done_flag'], false);
  assert.equal(rc['err_code'], 'PIF_DATASET_CHECK');
  assert.match(
    rc['err_msg'] as string,
    /label num\(16\) \* sample_per_id\(4\) must >= batch_size\(128\).*train\.txt/,
  );
});

test('bad datasets and options fail with typed errors naming the file and line, before training', async () => {
  const out = path.join(root, 'bad-out');
  const opts = { ...OPTS, output: out, epochs: 1 };
  await assert.rejects(
    train(ds, { ...opts, numClasses: 8 }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /num_classes \(8\) is smaller than the 16 labels of .*train\.txt/.test(e.message),
  );
  await assert.rejects(
    train(ds, { ...opts, batchSize: 30 }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /sample_per_id\(4\) must be a divisor of batch_size\(30\)/.test(e.message),
  );
  await assert.rejects(
    train(ds, { ...opts, tier: 'full' as 'head' }),
    (e: unknown) =>
      e instanceof InvalidArgumentError && /tier must be 'head' or 'last-stage'/.test(e.message),
  );
  // A label that is not an integer: check_dataset's message with the file and line.
  const bad = path.join(root, 'bad-ds');
  await cp(ds, bad, { recursive: true });
  const trainTxt = path.join(bad, 'train.txt');
  const lines = readFileSync(trainTxt, 'utf8').trim().split('\n');
  writeFileSync(
    trainTxt,
    [...lines.slice(0, 2), 'images/c0_train0.jpg cat', ...lines.slice(2)].join('\n'),
  );
  await assert.rejects(
    train(bad, opts),
    (e: unknown) =>
      e instanceof DatasetCheckError &&
      e.file === trainTxt &&
      e.line === 3 &&
      /cat/.test(e.message),
  );
  // An image that is not one: named, found while caching, before any epoch.
  writeFileSync(trainTxt, [`images/garbage.jpg 0`, ...lines].join('\n'));
  writeFileSync(path.join(bad, 'images', 'garbage.jpg'), 'not a jpeg at all');
  await assert.rejects(
    train(bad, { ...opts, output: path.join(root, 'bad-out2') }),
    (e: unknown) =>
      e instanceof InputDecodeError &&
      /garbage\.jpg/.test(e.message) &&
      e.file?.endsWith('garbage.jpg') === true,
  );
  assert.ok(!existsSync(path.join(root, 'bad-out2', 'latest')));
  // Cancelled: before the start, and during caching (no checkpoint written).
  await assert.rejects(train(ds, { ...opts, signal: AbortSignal.abort() }), { name: 'AbortError' });
  const ac = new AbortController();
  await assert.rejects(
    train(ds, {
      ...opts,
      output: path.join(root, 'aborted'),
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === 'cache' && p.done >= 8) ac.abort();
      },
    }),
    { name: 'AbortError' },
  );
  assert.ok(!existsSync(path.join(root, 'aborted', 'latest')));
});
