/**
 * The PaddleX module interface (`-c <yaml> -o Global.mode=...`) and the friendly predict/export
 * commands, end to end on a builder model: result files, done_flag / err_type on failure, exit
 * codes, and outputs equal to the library's.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel } from '../lib/image-feature.js';
import { inspectModel } from '../lib/inspect.js';
import { modeArgs, runMain } from './helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-cli-modes-'));
const modelDir = path.join(dir, 'model');
const imgDir = path.join(dir, 'imgs');

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 7 });
  mkdirSync(imgDir, { recursive: true });
  for (const [name, color] of [
    ['red.png', '#c03020'],
    ['green.jpg', '#20a040'],
  ] as const) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120"><rect width="160" height="120" fill="${color}"/><circle cx="60" cy="50" r="30" fill="#fff"/></svg>`;
    const img = sharp(Buffer.from(svg));
    writeFileSync(
      path.join(imgDir, name),
      name.endsWith('.png') ? await img.png().toBuffer() : await img.jpeg().toBuffer(),
    );
  }
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('-c/-o modes', () => {
  test('predict: prints each result, saves <stem>_res.json, writes predict_result.json', async () => {
    const out = path.join(dir, 'out-predict');
    const r = await runMain(
      modeArgs('predict', out, [
        `Predict.model_dir=${modelDir}`,
        `Predict.input=${imgDir}`,
        'Predict.batch_size=2',
      ]),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.match(/^\{'res': \{'input_path': /gm)?.length, 2);
    const saved = readJson(path.join(out, 'red_res.json'));
    const model = await createModel('PP-ShiTuV2_rec', { modelDir });
    try {
      const [want] = await model.predictAll(path.join(imgDir, 'red.png'));
      assert.equal(saved['input_path'], path.join(imgDir, 'red.png'));
      const f = saved['feature'] as number[];
      assert.equal(f.length, want!.feature.length);
      f.forEach((v, i) => {
        assert.ok(Math.abs(v - want!.feature[i]!) < 1e-6);
      });
    } finally {
      model.close();
    }
    assert.ok(existsSync(path.join(out, 'green_res.json')));
    const res = readJson(path.join(out, 'predict_result.json'));
    assert.equal(res['done_flag'], true);
    assert.equal(res['num_results'], 2);
  });

  test('predict with run_mode mkldnn (hpi) gives the same features', async () => {
    const out = path.join(dir, 'out-hpi');
    const r = await runMain(
      modeArgs('predict', out, [
        `Predict.model_dir=${modelDir}`,
        `Predict.input=${path.join(imgDir, 'green.jpg')}`,
        'Predict.kernel_option.run_mode=mkldnn',
      ]),
    );
    assert.equal(r.code, 0, r.err);
    const normal = path.join(dir, 'out-normal');
    await runMain(
      modeArgs('predict', normal, [
        `Predict.model_dir=${modelDir}`,
        `Predict.input=${path.join(imgDir, 'green.jpg')}`,
      ]),
    );
    const a = readJson(path.join(out, 'green_res.json'))['feature'] as number[];
    const b = readJson(path.join(normal, 'green_res.json'))['feature'] as number[];
    a.forEach((v, i) => {
      assert.ok(Math.abs(v - b[i]!) < 1e-4);
    });
  });

  test('a failing mode writes done_flag false with err_type/err_msg and exits 1', async () => {
    const out = path.join(dir, 'out-fail');
    const r = await runMain(
      modeArgs('predict', out, [`Predict.model_dir=${path.join(dir, 'nope')}`]),
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /predict failed \[PIF_CONFIG\]: Predict\.model_dir .*nope does not exist/);
    const res = readJson(path.join(out, 'predict_result.json'));
    assert.deepEqual(Object.keys(res), ['done_flag', 'err_type', 'err_msg', 'err_code']);
    assert.equal(res['done_flag'], false);
    assert.equal(res['err_type'], "<class 'ConfigError'>");
    assert.match(res['err_msg'] as string, /Predict\.model_dir=None/);
  });

  test('train without a dataset: a typed failure in train_result.json', async () => {
    const out = path.join(dir, 'out-train');
    const r = await runMain(modeArgs('train', out, ['Global.dataset_dir=None']));
    assert.equal(r.code, 1);
    assert.match(r.err, /train failed \[PIF_CONFIG\]: Global\.dataset_dir is not set/);
    assert.equal(readJson(path.join(out, 'train_result.json'))['done_flag'], false);
  });

  test('unknown keys get PaddleX notices; bad overrides and configs are exit-1 errors', async () => {
    const out = path.join(dir, 'out-notice');
    const r = await runMain(modeArgs('nonsense', out, ['Global.colour=blue']));
    assert.equal(r.code, 1);
    assert.match(r.err, /A new field \(colour\) detected!/);
    assert.match(r.err, /unknown mode/);
    const bad = await runMain(['-c', 'PP-ShiTuV2_rec', '-o', 'Global.mode']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /\[PIF_CONFIG\].*expected key\.path=value/);
    const missing = await runMain(['-c', path.join(dir, 'no.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\[PIF_CONFIG\]: cannot read config .*no\.yaml/);
  });

  test('export: inference files + inference.yml into Global.output, loadable and identical', async () => {
    const out = path.join(dir, 'out-export');
    const r = await runMain(modeArgs('export', out, [`Export.model_dir=${modelDir}`]));
    assert.equal(r.code, 0, r.err);
    for (const f of ['inference.json', 'inference.pdiparams', 'inference.yml']) {
      assert.ok(existsSync(path.join(out, f)), f);
    }
    assert.equal(
      readFileSync(path.join(out, 'inference.yml'), 'utf8'),
      readFileSync(path.join(modelDir, 'inference.yml'), 'utf8'),
    );
    const a = await inspectModel(modelDir);
    const b = await inspectModel(out);
    assert.deepEqual(b.parameters, a.parameters);
    assert.deepEqual(b.ops, a.ops);
    assert.ok(
      readFileSync(path.join(out, 'inference.pdiparams')).equals(
        readFileSync(path.join(modelDir, 'inference.pdiparams')),
      ),
    );
    const res = readJson(path.join(out, 'export_result.json'));
    assert.equal(res['done_flag'], true);
    // A PaddleClas-style checkpoint path resolves to the inference/ export beside it.
    const ckpt = path.join(dir, 'best_model');
    mkdirSync(ckpt, { recursive: true });
    await buildModel('PP-ShiTuV2_rec', path.join(ckpt, 'inference'), { seed: 7 });
    writeFileSync(path.join(ckpt, 'best_model.pdparams'), 'not loadable here');
    const out2 = path.join(dir, 'out-export2');
    const r2 = await runMain(
      modeArgs('export', out2, [`Export.weight_path=${path.join(ckpt, 'best_model.pdparams')}`]),
    );
    assert.equal(r2.code, 0, r2.err);
    assert.ok(existsSync(path.join(out2, 'inference.json')));
  });
});

describe('friendly commands', () => {
  test('predict --json: one JSON line per input, equal to the library', async () => {
    const r = await runMain([
      'predict',
      path.join(imgDir, 'green.jpg'),
      path.join(imgDir, 'red.png'),
      '--model-dir',
      modelDir,
      '--batch-size',
      '2',
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { res: { input_path: string; feature: number[] } });
    assert.deepEqual(
      lines.map((l) => path.basename(l.res.input_path)),
      ['green.jpg', 'red.png'],
    );
    assert.ok(lines.every((l) => l.res.feature.length > 0));
  });

  test('predict: a bad input is reported, the others still come out, exit 1', async () => {
    const broken = path.join(dir, 'broken.jpg');
    writeFileSync(broken, 'not an image');
    const r = await runMain([
      'predict',
      broken,
      path.join(imgDir, 'red.png'),
      '--model-dir',
      modelDir,
      '--json',
    ]);
    assert.equal(r.code, 1);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { res: Record<string, unknown> });
    assert.equal(lines.length, 2);
    assert.deepEqual((lines[0]!.res['error'] as { code: string }).code, 'PIF_INPUT_DECODE');
    assert.ok(Array.isArray(lines[1]!.res['feature']));
    assert.match(r.err, /broken\.jpg/);
  });

  test('predict usage errors exit 2', async () => {
    assert.equal((await runMain(['predict'])).code, 2);
    const r = await runMain(['predict', 'x.jpg', '--batch-size', '0']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--batch-size/);
  });

  test('export --format paddle writes the three files', async () => {
    const out = path.join(dir, 'out-export3');
    const r = await runMain(['export', modelDir, '--format', 'paddle', '--out', out]);
    assert.equal(r.code, 0, r.err);
    for (const f of [
      'inference.json',
      'inference.pdiparams',
      'inference.yml',
      'export_result.json',
    ]) {
      assert.ok(existsSync(path.join(out, f)), f);
    }
  });
});

test('--model-dir alone takes the model name from its inference.yml', async () => {
  const renamed = path.join(dir, 'renamed-model');
  await buildModel('PP-ShiTuV2_rec', renamed, { seed: 7 });
  const yml = path.join(renamed, 'inference.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/model_name: .*/, 'model_name: my_shitu'));
  const img = path.join(imgDir, 'red.png');
  const ok = await runMain(['predict', img, '--model-dir', renamed, '--json']);
  assert.equal(ok.code, 0, ok.err);
  const mismatch = await runMain([
    'predict',
    img,
    '--model-dir',
    renamed,
    '--model',
    'PP-ShiTuV2_rec',
  ]);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.err, /Model name mismatch/);
});
