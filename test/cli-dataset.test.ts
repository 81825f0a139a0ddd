/**
 * Dataset modes through the command line: `-c ... -o Global.mode=check_dataset` (with convert
 * and split), and the friendly check-dataset / convert / split commands. The library pieces are
 * tested in dataset-check and dataset-convert-split; here the wiring, result files and exit
 * codes are.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { evaluateFeatures, roundMetric } from '../lib/evaluate.js';
import { createModel } from '../lib/image-feature.js';
import { standardDataset, tempDir, writeDataset } from './helpers/dataset.js';
import { hashTree, makeLabelMe } from './helpers/labelme.js';
import { repoRoot } from './helpers/fixtures.js';
import { modeArgs, runMain } from './helpers/cli.js';

const readJson = (f: string): Record<string, unknown> =>
  JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;

const golden = path.join(repoRoot, 'test', 'golden', 'check_dataset', 'check_dataset_result.json');

describe('check_dataset mode', () => {
  test('-c/-o: passes, writes the golden result JSON, histogram and samples', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    const spec = { ...std.spec, train: std.spec.train!.replaceAll('\n', '\r\n') };
    await writeDataset(path.join(dir, 'Inshop_mini'), spec);
    const out = path.join(dir, 'output');
    const r = await runMain([
      '-c',
      'configs/modules/image_feature/PP-ShiTuV2_rec.yaml',
      '-o',
      'Global.mode=check_dataset',
      '-o',
      `Global.dataset_dir=${dir}`,
      '-o',
      `Global.output=${out}`,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Check dataset passed !$/m);
    const text = readFileSync(path.join(out, 'check_dataset_result.json'), 'utf8');
    assert.equal(text, readFileSync(golden, 'utf8').replace(/\n$/, ''));
    const png = await sharp(path.join(out, 'check_dataset', 'histogram.png')).metadata();
    assert.equal(png.format, 'png');
    assert.equal(readdirSync(path.join(out, 'check_dataset', 'demo_img')).length, 10 + 10 + 8);
  });

  test('a failed check: done_flag false, PaddleX err_type and message, exit 1', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    await writeDataset(path.join(dir, 'ds'), { ...std.spec, query: undefined });
    const out = path.join(dir, 'output');
    const r = await runMain(modeArgs('check_dataset', out, [`Global.dataset_dir=${dir}`]));
    assert.equal(r.code, 1);
    const res = readJson(path.join(out, 'check_dataset_result.json'));
    assert.equal(res['done_flag'], false);
    assert.equal(res['err_type'], "<class 'DatasetFileNotFoundError'>");
    assert.equal(res['err_code'], 'PIF_DATASET_CHECK');
    assert.match(
      res['err_msg'] as string,
      /^Check dataset failed\. We encountered the following error:\n {2}.*query\.txt does not exist\./,
    );
  });

  test('convert (LabelMe) then split then check, all from -o keys', async (t) => {
    const dir = await tempDir(t);
    const labels = ['cat', 'dog', 'bird'];
    const annotations = Array.from({ length: 20 }, (_, i) => ({
      name: `a${String(i).padStart(2, '0')}.json`,
      flags: labels.map((l, k) => [l, k === i % 3] as const),
    }));
    await makeLabelMe(dir, { labels, annotations });
    const out = path.join(dir, 'output');
    const args = (seed: number): string[] =>
      modeArgs('check_dataset', out, [
        `Global.dataset_dir=${dir}`,
        'CheckDataset.convert.enable=True',
        'CheckDataset.convert.src_dataset_type=LabelMe',
        'CheckDataset.split.enable=True',
        'CheckDataset.split.train_percent=60',
        'CheckDataset.split.gallery_percent=20',
        'CheckDataset.split.query_percent=20',
        `CheckDataset.split.seed=${seed}`,
      ]);
    const r = await runMain(args(7));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Converted LabelMe dataset: train 10, gallery 6, query 4/);
    assert.match(r.out, /Split dataset: train 12, gallery 4, query 4/);
    const res = readJson(path.join(out, 'check_dataset_result.json'));
    assert.equal(res['done_flag'], true);
    assert.deepEqual(
      [
        (res['attributes'] as Record<string, unknown>)['train_samples'],
        (res['attributes'] as Record<string, unknown>)['gallery_samples'],
        (res['attributes'] as Record<string, unknown>)['query_samples'],
      ],
      [12, 4, 4],
    );
    // Split kept the converted lists as .bak; all 20 lines survive the shuffle.
    const lines = ['train', 'gallery', 'query'].flatMap((tag) =>
      readFileSync(path.join(dir, `${tag}.txt`), 'utf8')
        .trim()
        .split('\n'),
    );
    assert.equal(lines.length, 20);
    for (const tag of ['train', 'gallery', 'query'])
      assert.ok(existsSync(path.join(dir, `${tag}.txt.bak`)));
    // The same seed gives the same split on a re-run from the same start.
    const first = readFileSync(path.join(dir, 'train.txt'), 'utf8');
    assert.equal((await runMain(args(7))).code, 0);
    assert.equal(readFileSync(path.join(dir, 'train.txt'), 'utf8'), first);
  });

  test('bad split percents fail before anything changes', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    const root = await writeDataset(path.join(dir, 'ds'), std.spec);
    const before = await hashTree(dir);
    const out = path.join(dir, 'output');
    const r = await runMain(
      modeArgs('check_dataset', out, [
        `Global.dataset_dir=${root}`,
        'CheckDataset.split.enable=True',
        'CheckDataset.split.train_percent=60',
        'CheckDataset.split.gallery_percent=30',
        'CheckDataset.split.query_percent=20',
      ]),
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /should equal 100!/);
    const res = readJson(path.join(out, 'check_dataset_result.json'));
    assert.equal(res['err_type'], "<class 'SplitFailedError'>");
    const after = await hashTree(dir);
    after.delete(path.join('output', 'check_dataset_result.json'));
    for (const k of [...after.keys()]) if (k.startsWith('output')) after.delete(k);
    assert.deepEqual(after, before);
  });
});

describe('friendly dataset commands', () => {
  test('check-dataset <dir>: same result file as the -c mode', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    const spec = { ...std.spec, train: std.spec.train!.replaceAll('\n', '\r\n') };
    await writeDataset(path.join(dir, 'Inshop_mini'), spec);
    const out = path.join(dir, 'o');
    const r = await runMain(['check-dataset', dir, '--output', out]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      readFileSync(path.join(out, 'check_dataset_result.json'), 'utf8'),
      readFileSync(golden, 'utf8').replace(/\n$/, ''),
    );
  });

  test('convert and split commands; split percents must sum to 100', async (t) => {
    const dir = await tempDir(t);
    await makeLabelMe(dir, {
      labels: ['a', 'b'],
      annotations: Array.from({ length: 10 }, (_, i) => ({
        name: `x${i}.json`,
        flags: [
          ['a', i % 2 === 0],
          ['b', i % 2 === 1],
        ] as const,
      })),
    });
    const c = await runMain(['convert', dir]);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /train 5, gallery 3, query 2/);
    const s = await runMain([
      'split',
      dir,
      '--train',
      '50',
      '--gallery',
      '25',
      '--query',
      '25',
      '--seed',
      '9',
    ]);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /seed 9\): train 5, gallery 2, query 3/);
    const bad = await runMain(['split', dir, '--train', '50', '--gallery', '25', '--query', '20']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /PIF_DATASET_SPLIT/);
    const usage = await runMain(['split', dir, '--train', 'x', '--gallery', '25', '--query', '25']);
    assert.equal(usage.code, 2);
    await writeFile(path.join(dir, 'note.txt'), 'untouched');
  });
});

describe('evaluate mode', () => {
  test('-c/-o evaluate: metrics equal the library on the same features; 5 decimals; log line', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    const root = await writeDataset(path.join(dir, 'ds'), std.spec);
    const modelDir = path.join(dir, 'model');
    await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 11 });
    const out = path.join(dir, 'output');
    const r = await runMain(
      modeArgs('evaluate', out, [
        `Global.dataset_dir=${dir}`,
        `Evaluate.model_dir=${modelDir}`,
        'Evaluate.batch_size=4',
      ]),
    );
    assert.equal(r.code, 0, r.err);
    const m =
      /^\[Eval\]\[Epoch 0\]\[Avg\]recall1: (\d\.\d{5}), recall5: (\d\.\d{5}), mAP: (\d\.\d{5})$/m.exec(
        r.out,
      );
    assert.ok(m, r.out);
    const res = readJson(path.join(out, 'evaluate_result.json'));
    assert.deepEqual(Object.keys(res), ['done_flag', 'metrics']);
    const metrics = res['metrics'] as Record<string, number>;
    assert.deepEqual(Object.keys(metrics), ['recall1', 'recall5', 'mAP']);
    assert.deepEqual(
      [metrics['recall1'], metrics['recall5'], metrics['mAP']],
      [Number(m[1]), Number(m[2]), Number(m[3])],
    );

    // The same numbers from the library: features via predictAll, metrics via evaluateFeatures.
    const model = await createModel('PP-ShiTuV2_rec', { modelDir });
    try {
      const feats = async (rows: [string, number][]): Promise<Float32Array> => {
        const res = await model.predictAll(rows.map(([p]) => path.join(root, p)));
        const dim = res[0]!.feature.length;
        const out = new Float32Array(dim * rows.length);
        res.forEach((x, i) => {
          out.set(x.feature, i * dim);
        });
        return out;
      };
      const g = await feats(std.gallery);
      const q = await feats(std.query);
      const want = await evaluateFeatures({
        gallery: { features: g, labels: std.gallery.map(([, l]) => l) },
        query: { features: q, labels: std.query.map(([, l]) => l) },
        dim: g.length / std.gallery.length,
      });
      assert.equal(metrics['recall1'], roundMetric(want.recall1));
      assert.equal(metrics['recall5'], roundMetric(want.recall5));
      assert.equal(metrics['mAP'], roundMetric(want.mAP));
    } finally {
      model.close();
    }
  });

  test('evaluate: a missing model is a clear config error; a tiny gallery a clear size error', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    await writeDataset(path.join(dir, 'ds'), {
      ...std.spec,
      gallery: std.spec.gallery!.split('\n').slice(0, 3).join('\n') + '\n',
    });
    const out = path.join(dir, 'output');
    const r = await runMain(modeArgs('evaluate', out, [`Global.dataset_dir=${dir}`]));
    assert.equal(r.code, 1);
    assert.match(r.err, /Evaluate\.weight_path .*best_model\.pdparams is not an inference model/);
    const modelDir = path.join(dir, 'model');
    await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 11 });
    const r2 = await runMain(
      modeArgs('evaluate', out, [`Global.dataset_dir=${dir}`, `Evaluate.model_dir=${modelDir}`]),
    );
    assert.equal(r2.code, 1);
    assert.match(r2.err, /the gallery has 3 items, fewer than k = 5/);
    assert.equal(readJson(path.join(out, 'evaluate_result.json'))['done_flag'], false);
  });
});
