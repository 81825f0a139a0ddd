/**
 * What a new user hits first (issue 15): commands without a model say what to pass, one bad
 * input in a list does not hide the others, `--json` lines of results and errors read alike,
 * createModel({ modelDir }) takes the name from inference.yml, `run --hpi`, FeatureModel.engine.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel } from '../lib/image-feature.js';
import { modeArgs, runMain } from './helpers/cli.js';
import { noiseRgb } from './helpers/inputs.js';

describe('new-user rough edges', () => {
  let dir = '';
  let modelDir = '';
  let img = '';

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pif-new-user-'));
    modelDir = path.join(dir, 'model');
    await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 3 });
    img = path.join(dir, 'a.jpg');
    await sharp(noiseRgb(40, 30, 1), { raw: { width: 40, height: 30, channels: 3 } })
      .jpeg()
      .toFile(img);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `fn` with environment variables set, restoring them afterwards. */
  async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    const saved = { ...process.env };
    Object.assign(process.env, vars);
    try {
      return await fn();
    } finally {
      // Put back exactly what was there (a variable that was unset is unset again).
      for (const k of Object.keys(process.env))
        if (!(k in saved)) Reflect.deleteProperty(process.env, k);
      Object.assign(process.env, saved);
    }
  }

  test('predict without --model-dir: the error says what to pass and where it looked', async () => {
    const cache = path.join(dir, 'empty-cache');
    // A port nothing listens on: the download fails at once, as it does offline.
    const r = await withEnv(
      { PADDLE_PDX_CACHE_HOME: cache, PIF_MODEL_BASE_URL: 'http://127.0.0.1:9/models' },
      () => runMain(['predict', img]),
    );
    assert.equal(r.code, 1, r.err);
    const cached = path.join(cache, 'official_models', 'PP-ShiTuV2_rec');
    assert.ok(r.err.startsWith('paddle-image-feature: error [PIF_DOWNLOAD]: '), r.err);
    assert.ok(r.err.includes(`PP-ShiTuV2_rec is not in the cache (${cached})`), r.err);
    assert.match(r.err, /--model-dir/);
    assert.match(r.err, /PIF_OFFLINE=1/);
    assert.match(r.err, /PIF_MODEL_BASE_URL/);
    const offline = await withEnv({ PADDLE_PDX_CACHE_HOME: cache, PIF_OFFLINE: '1' }, () =>
      runMain(['predict', img]),
    );
    assert.equal(offline.code, 1);
    assert.match(offline.err, /offline mode \(PIF_OFFLINE=1\).*--model-dir/);
  });

  test('predict --json: a bad input in a list is an error line in its place, alike in form', async () => {
    const missingFile = path.join(dir, 'missing.jpg');
    const missingDir = path.join(dir, 'no-such-dir');
    const emptyDir = path.join(dir, 'empty');
    mkdirSync(emptyDir, { recursive: true });
    const r = await runMain([
      'predict',
      missingDir,
      img,
      missingFile,
      emptyDir,
      img,
      '--model-dir',
      modelDir,
      '--json',
    ]);
    assert.equal(r.code, 1, 'a failed input makes the exit code 1');
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.length, 5, r.out);
    const parsed = lines.map(
      (l) =>
        JSON.parse(l) as {
          res: { input_path: string; page_index: null; feature?: number[]; error?: object };
        },
    );
    assert.deepEqual(
      parsed.map((p) => p.res.input_path),
      [missingDir, img, missingFile, emptyDir, img],
    );
    assert.deepEqual(parsed[0]?.res.error, {
      code: 'PIF_INPUT_NOT_FOUND',
      message: `Not found any files in path: ${missingDir}`,
    });
    assert.deepEqual(parsed[2]?.res.error, {
      code: 'PIF_INPUT_NOT_FOUND',
      message: `Not found any files in path: ${missingFile}`,
    });
    assert.deepEqual(parsed[3]?.res.error, {
      code: 'PIF_INPUT_NOT_FOUND',
      message: `Not found any file in ${emptyDir}`,
    });
    assert.equal(parsed[1]?.res.feature?.length, 512);
    assert.deepEqual(parsed[4]?.res.feature, parsed[1]?.res.feature);
    // One writer for both kinds of line: Python json.dumps separators, the same leading keys.
    for (const l of lines) {
      assert.ok(l.startsWith('{"res": {"input_path": "'), l.slice(0, 60));
      assert.match(l, /"page_index": null, "(feature|error)": /);
    }
    // The errors also go to stderr, one per input, in order.
    assert.deepEqual(r.err.trimEnd().split('\n'), [
      `${missingDir}: Not found any files in path: ${missingDir}`,
      `${missingFile}: Not found any files in path: ${missingFile}`,
      `${emptyDir}: Not found any file in ${emptyDir}`,
    ]);
  });

  test('createModel({ modelDir }) reads the model name from inference.yml', async () => {
    const model = await createModel({ modelDir });
    try {
      assert.equal(model.modelName, 'PP-ShiTuV2_rec');
      const [r] = await model.predictAll(img);
      assert.equal(r?.feature.length, 512);
    } finally {
      model.close();
    }
    await assert.rejects(
      createModel({} as { modelDir: string }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'PIF_INVALID_ARG');
        assert.match(e.message, /options\.modelDir must name a model directory/);
        return true;
      },
    );
    const noYml = path.join(dir, 'no-yml');
    mkdirSync(noYml, { recursive: true });
    writeFileSync(path.join(noYml, 'inference.json'), '{}');
    await assert.rejects(createModel({ modelDir: noYml }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'PIF_MODEL_NOT_FOUND');
      assert.equal(e.message, `inference.yml not found in ${noYml}`);
      return true;
    });
  });

  test('FeatureModel.engine and runMode, as Predictor.engine', async () => {
    const normal = await createModel({ modelDir });
    // useHpip alone is PaddleX's auto_config, which puts onnxruntime first for PP-ShiTuV2_rec.
    const hpi = await createModel({
      modelDir,
      useHpip: true,
      hpiConfig: { backend: 'paddle_mkldnn' },
    });
    try {
      assert.equal(normal.runMode, 'normal');
      assert.equal(normal.engine.backend, 'paddle');
      assert.equal(hpi.engine.backend, 'paddle_mkldnn');
      assert.equal(normal.precision, 'fp32');
      assert.equal(normal.engine.dnnlNodes, 0);
      assert.ok(normal.engine.nodes > 0);
      assert.equal(hpi.runMode, 'hpi');
      assert.ok(hpi.engine.dnnlNodes > 0, JSON.stringify(hpi.engine.ops));
      assert.ok(hpi.engine.nodes < normal.engine.nodes, 'fusion leaves fewer nodes');
    } finally {
      normal.close();
      hpi.close();
    }
    assert.throws(() => normal.engine, { code: 'PIF_CLOSED' });
  });

  test('run --hpi and --precision', async () => {
    const plain = await runMain(['run', modelDir, '--json']);
    const fast = await runMain(['run', modelDir, '--hpi', '--json']);
    assert.equal(plain.code, 0, plain.err);
    assert.equal(fast.code, 0, fast.err);
    const a = JSON.parse(plain.out) as { runMode: string; dnnlNodes: number; outputs: object[] };
    const b = JSON.parse(fast.out) as typeof a & { precision: string };
    assert.equal(a.runMode, 'normal');
    assert.equal(a.dnnlNodes, 0);
    assert.equal(b.runMode, 'hpi');
    assert.equal(b.precision, 'fp32');
    assert.ok(b.dnnlNodes > 0);
    const text = await runMain(['run', modelDir, '--hpi']);
    assert.match(text.out, /^hpi \(fp32\), \d+ nodes, [1-9]\d* on oneDNN\n/);
    const bad = await runMain(['run', modelDir, '--precision', 'bf16']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /PIF_INVALID_ARG.*--precision bf16 needs --hpi/);
    assert.equal((await runMain(['run', modelDir, '--precision', 'fp16'])).code, 2);
  });

  test('PaddleX predict mode: a missing input fails with its own code, the others are saved', async () => {
    const out = path.join(dir, 'mode-out');
    const missing = path.join(dir, 'gone.jpg');
    const r = await runMain(
      modeArgs('predict', out, [
        `Predict.model_dir=${modelDir}`,
        `Predict.input=['${img}', '${missing}']`, // a Python literal, as PaddleX parses -o
      ]),
    );
    assert.equal(r.code, 1);
    assert.ok(existsSync(path.join(out, 'a_res.json')), 'the good input is saved');
    const res = JSON.parse(readFileSync(path.join(out, 'predict_result.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(res['done_flag'], false);
    assert.equal(res['err_code'], 'PIF_INPUT_NOT_FOUND');
    assert.equal(
      res['err_msg'],
      `1 input(s) could not be processed, the others were saved; the first: ${missing}: Not found any files in path: ${missing}`,
    );
  });

  test('index search: an unreadable query is an error line in its place, the others are searched', async () => {
    const gallery = path.join(dir, 'gallery');
    mkdirSync(gallery, { recursive: true });
    for (const [i, seed] of [11, 12].entries()) {
      await sharp(noiseRgb(32, 32, seed), { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toFile(path.join(gallery, `g${i}.png`));
    }
    writeFileSync(path.join(gallery, 'label.txt'), 'g0.png first\ng1.png second\n');
    const idx = path.join(dir, 'search-index');
    const built = await runMain([
      'index',
      'build',
      gallery,
      path.join(gallery, 'label.txt'),
      '--out',
      idx,
      '--model-dir',
      modelDir,
    ]);
    assert.equal(built.code, 0, built.err);
    const missing = path.join(dir, 'no-query.jpg');
    const q = path.join(gallery, 'g1.png');
    const r = await runMain(['index', 'search', idx, q, missing, q, '--topk', '1', '--json']);
    assert.equal(r.code, 1);
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.length, 3, r.out);
    const parsed = lines.map(
      (l) => JSON.parse(l) as { res: { input_path: string; hits?: { label: string }[] } },
    );
    assert.deepEqual(
      parsed.map((p) => [p.res.input_path, p.res.hits?.[0]?.label ?? null]),
      [
        [q, 'second'],
        [missing, null],
        [q, 'second'],
      ],
    );
    assert.ok(lines[1]?.includes('"error": {"code": "PIF_INPUT_NOT_FOUND"'), lines[1]);
    assert.match(r.err, /error \[PIF_INPUT_NOT_FOUND\]: 1 of 3 queries could not be read/);
  });
});
