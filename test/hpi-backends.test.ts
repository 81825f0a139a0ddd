/**
 * PaddleX's multi-backend high-performance mode (issue 18, part 0): hpi_config's choice of a
 * backend (lib/hpi-config.ts, PaddleX's cpu_x64 priority lists), and every backend we have
 * (paddle = normal mode, paddle_mkldnn = our oneDNN engine, onnxruntime = onnxruntime-node on
 * our in-memory ONNX export) from the API, the module yaml / -o and the CLI, with features
 * equal across backends (cosine >= 0.99999 per image, on real photos). onnxruntime-node is a
 * dev dependency here; a child process that cannot resolve it (test/helpers/hide-onnxruntime.mjs)
 * stands for a machine without it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { buildModel } from '../lib/builder.js';
import { InvalidArgumentError, UnsupportedError } from '../lib/errors.js';
import {
  chooseBackend,
  validateHpiConfig,
  type BackendChoice,
  type HpiConfig,
} from '../lib/hpi-config.js';
import { createModel, type CreateModelOptions } from '../lib/image-feature.js';
import { loadPredictor } from '../lib/predictor.js';
import { modeArgs, runMain } from './helpers/cli.js';
import { repoRoot } from './helpers/fixtures.js';
import { seededFloats } from '../lib/rng.js';
import { listPhotos } from './helpers/opencv.js';

const COS_MIN = 0.99999;
const dir = mkdtempSync(path.join(tmpdir(), 'pif-hpi-backends-'));
const recDir = path.join(dir, 'rec');
const clipDir = path.join(dir, 'clip');
const photos = listPhotos().slice(0, 6);

before(async () => {
  await buildModel('PP-ShiTuV2_rec', recDir, { seed: 11 });
  await buildModel('PP-ShiTuV2_rec_CLIP_vit_base', clipDir, { seed: 12, vitDepth: 1 });
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}

async function features(modelDir: string, options: CreateModelOptions) {
  const model = await createModel({ modelDir, ...options });
  try {
    const res = await model.predictAll(photos);
    for (const r of res) assert.equal(r.error, null, String(r.error));
    return { engine: model.engine, rows: res.map((r) => r.feature) };
  } finally {
    model.close();
  }
}

function assertSame(rows: Float32Array[], ref: Float32Array[], what: string): number {
  assert.equal(rows.length, ref.length);
  let worst = 1;
  rows.forEach((r, i) => {
    worst = Math.min(worst, cosine(r, ref[i] as Float32Array));
  });
  assert.ok(worst >= COS_MIN, `${what}: worst cosine ${worst} vs normal mode`);
  return worst;
}

/** chooseBackend with onnxruntime available or not. */
function choose(
  modelName: string | null,
  raw: HpiConfig,
  opts: { ort?: boolean; precision?: 'fp32' | 'bf16'; threads?: number } = {},
): Promise<BackendChoice> {
  return chooseBackend({
    modelName,
    config: validateHpiConfig(raw),
    precision: opts.precision ?? 'fp32',
    cpuThreads: opts.threads ?? 1,
    ortUnavailable: () =>
      Promise.resolve(opts.ort === false ? 'onnxruntime-node is not installed' : null),
  });
}

describe('hpi_config: the choice of a backend (PaddleX cpu_x64 lists)', () => {
  test('auto_config walks the model list and skips what cannot run here', async () => {
    const rec = await choose('PP-ShiTuV2_rec', {});
    assert.equal(rec.backend, 'onnxruntime');
    assert.deepEqual(
      rec.skipped.map((s) => s.backend),
      ['openvino'],
    );
    const noOrt = await choose('PP-ShiTuV2_rec', {}, { ort: false });
    assert.equal(noOrt.backend, 'paddle_mkldnn');
    assert.deepEqual(
      noOrt.skipped.map((s) => s.backend),
      ['openvino', 'onnxruntime'],
    );
    assert.match(noOrt.skipped[1]?.reason ?? '', /not installed/);
    for (const clip of ['PP-ShiTuV2_rec_CLIP_vit_base', 'PP-ShiTuV2_rec_CLIP_vit_large']) {
      const c = await choose(clip, {});
      assert.equal(c.backend, 'paddle_mkldnn', clip);
      assert.deepEqual(c.skipped, []);
    }
    const det = await choose('PP-ShiTuV2_det', {});
    assert.equal(det.backend, 'paddle_mkldnn');
    const unknown = await choose('MyNet', {});
    assert.equal(unknown.backend, 'paddle_mkldnn');
    assert.match(unknown.reason, /PaddleX does not list MyNet/);
  });

  test('a named backend must be on the list (auto_config) or is taken as given (auto_config false)', async () => {
    assert.equal((await choose('PP-ShiTuV2_rec', { backend: 'paddle' })).backend, 'paddle_mkldnn');
    assert.equal(
      (
        await choose('PP-ShiTuV2_rec', {
          backend: 'paddle',
          backend_config: { run_mode: 'paddle' },
        })
      ).backend,
      'paddle',
    );
    await assert.rejects(
      choose('PP-ShiTuV2_rec_CLIP_vit_base', { backend: 'onnxruntime' }),
      (e: unknown) =>
        e instanceof UnsupportedError && /not on PaddleX's cpu_x64 list/.test(e.message),
    );
    const forced = await choose('PP-ShiTuV2_rec_CLIP_vit_base', {
      auto_config: false,
      backend: 'onnxruntime',
      backend_config: { cpu_num_threads: 2 },
    });
    assert.equal(forced.backend, 'onnxruntime');
    assert.equal(forced.threads, 2);
    const paddle = await choose(
      'PP-ShiTuV2_rec',
      { autoConfig: false, backend: 'paddle' },
      { threads: 3 },
    );
    assert.equal(paddle.backend, 'paddle_mkldnn'); // PaddlePredictorOption's CPU default: mkldnn
    assert.equal(paddle.threads, 3);
    await assert.rejects(
      choose('PP-ShiTuV2_rec', { backend: 'onnxruntime' }, { ort: false }),
      (e: unknown) => e instanceof UnsupportedError && /not installed/.test(e.message),
    );
    for (const b of ['openvino', 'tensorrt', 'om'] as const) {
      await assert.rejects(choose('PP-ShiTuV2_rec', { backend: b }), UnsupportedError, b);
    }
  });

  test('bf16 runs on paddle_mkldnn only; backend_config is checked per backend', async () => {
    const bf = await choose('PP-ShiTuV2_rec', {}, { precision: 'bf16' });
    assert.equal(bf.backend, 'paddle_mkldnn');
    assert.equal(bf.precision, 'bf16');
    const rm = await choose('PP-ShiTuV2_rec', {
      backend: 'paddle',
      backend_config: { run_mode: 'mkldnn_bf16' },
    });
    assert.equal(rm.precision, 'bf16');
    await assert.rejects(
      choose('PP-ShiTuV2_rec', { backend: 'onnxruntime' }, { precision: 'bf16' }),
      UnsupportedError,
    );
    await assert.rejects(
      choose('PP-ShiTuV2_rec', { backend: 'onnxruntime', backend_config: { run_mode: 'x' } }),
      (e: unknown) => e instanceof InvalidArgumentError && /run_mode/.test(e.message),
    );
    await assert.rejects(
      choose('PP-ShiTuV2_rec', { backend: 'paddle', backend_config: { run_mode: 'trt_fp16' } }),
      UnsupportedError,
    );
    await assert.rejects(
      choose('PP-ShiTuV2_rec', { backend: 'paddle', backend_config: { cpu_threads: 0 } }),
      InvalidArgumentError,
    );
    assert.throws(() => validateHpiConfig({ auto_config: false }), /backend must be set/);
    assert.throws(() => validateHpiConfig({ backend: 'mkldnn' }), /backend must be one of/);
    assert.throws(() => validateHpiConfig({ autoconfig: true }), /unknown option 'autoconfig'/);
    assert.throws(() => validateHpiConfig({ auto_config: true, autoConfig: true }), /not both/);
  });
});

describe('hpi backends: the same features from every backend', () => {
  test('createModel: paddle, paddle_mkldnn, onnxruntime and auto agree on real photos', async (t) => {
    assert.ok(photos.length >= 3, 'real photos (opencv-doc) are needed');
    const before = readdirSync(recDir).sort();
    const ref = await features(recDir, {});
    assert.equal(ref.engine.backend, 'paddle');
    const cases: [HpiConfig | undefined, string][] = [
      [undefined, 'onnxruntime'], // auto: PP-ShiTuV2_rec's list puts onnxruntime first here
      [{ backend: 'paddle_mkldnn' }, 'paddle_mkldnn'],
      [{ backend: 'paddle', backend_config: { run_mode: 'paddle' } }, 'paddle'],
      [{ backend: 'onnxruntime', backend_config: { cpu_num_threads: 2 } }, 'onnxruntime'],
    ];
    for (const [hpiConfig, want] of cases) {
      const r = await features(recDir, {
        useHpip: true,
        ...(hpiConfig === undefined ? {} : { hpiConfig }),
      });
      assert.equal(r.engine.backend, want, JSON.stringify(hpiConfig));
      if (want === 'paddle_mkldnn') assert.ok(r.engine.dnnlNodes > 0);
      if (want === 'onnxruntime') assert.equal(r.engine.dnnlNodes, 0);
      const worst = assertSame(r.rows, ref.rows, `${JSON.stringify(hpiConfig)} -> ${want}`);
      t.diagnostic(`${JSON.stringify(hpiConfig ?? 'auto')} -> ${want}: worst cos ${worst}`);
    }
    // The ONNX model lives in memory only: nothing was added to the model directory.
    assert.deepEqual(readdirSync(recDir).sort(), before);
  });

  test('CLIP: auto keeps our engine; onnxruntime only with auto_config false', async () => {
    const ref = await features(clipDir, {});
    const auto = await features(clipDir, { useHpip: true });
    assert.equal(auto.engine.backend, 'paddle_mkldnn');
    assert.match(auto.engine.reason, /PP-ShiTuV2_rec_CLIP_vit_base/);
    assertSame(auto.rows, ref.rows, 'CLIP auto');
    await assert.rejects(
      createModel({ modelDir: clipDir, useHpip: true, hpiConfig: { backend: 'onnxruntime' } }),
      (e: unknown) => e instanceof UnsupportedError && /auto_config false/.test(e.message),
    );
    const ort = await features(clipDir, {
      useHpip: true,
      hpiConfig: { auto_config: false, backend: 'onnxruntime' },
    });
    assert.equal(ort.engine.backend, 'onnxruntime');
    assertSame(ort.rows, ref.rows, 'CLIP onnxruntime');
  });

  test('loadPredictor: runMode hpi with hpiConfig runs tensors on onnxruntime', async () => {
    const shape = [2, 3, 224, 224];
    const data = seededFloats(2 * 3 * 224 * 224, 5);
    const normal = await loadPredictor(recDir);
    const ort = await loadPredictor(recDir, {
      runMode: 'hpi',
      hpiConfig: { backend: 'onnxruntime' },
    });
    try {
      assert.equal(ort.engine.backend, 'onnxruntime');
      assert.equal(normal.engine.backend, 'paddle');
      const name = normal.inputs[0]?.name ?? 'x';
      const a = Object.values(await normal.run({ [name]: { data, shape } }))[0];
      const b = Object.values(await ort.run({ [name]: { data, shape } }))[0];
      assert.ok(a !== undefined && b !== undefined);
      assert.deepEqual([...b.shape], [...a.shape]);
      const per = a.data.length / 2;
      for (let i = 0; i < 2; i++) {
        const x = (a.data as Float32Array).subarray(i * per, (i + 1) * per);
        const y = (b.data as Float32Array).subarray(i * per, (i + 1) * per);
        assert.ok(cosine(x, y) >= COS_MIN);
      }
    } finally {
      normal.close();
      ort.close();
    }
    await assert.rejects(
      loadPredictor(recDir, { hpiConfig: { backend: 'onnxruntime' } }),
      /applies to runMode 'hpi' only/,
    );
    await assert.rejects(
      createModel({ modelDir: recDir, hpiConfig: { backend: 'paddle' } }),
      /hpiConfig needs useHpip/,
    );
  });
});

describe('hpi_config from the module yaml, -o and the CLI', () => {
  test('-o Predict.use_hpip=True -o Predict.hpi_config.backend=onnxruntime', async () => {
    const photo = photos[0] as string;
    const stem = path.parse(photo).name;
    const outRef = path.join(dir, 'out-ref');
    const outOrt = path.join(dir, 'out-ort');
    const common = [`Predict.model_dir=${recDir}`, `Predict.input=${photo}`];
    const ref = await runMain(modeArgs('predict', outRef, common));
    assert.equal(ref.code, 0, ref.err);
    assert.doesNotMatch(ref.err, /hpi: backend/);
    const r = await runMain(
      modeArgs('predict', outOrt, [
        ...common,
        'Predict.use_hpip=True',
        'Predict.hpi_config.backend=onnxruntime',
        'Predict.hpi_config.backend_config.cpu_num_threads=2',
      ]),
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /hpi: backend onnxruntime/);
    const feat = (d: string) =>
      Float32Array.from(
        (
          JSON.parse(readFileSync(path.join(d, `${stem}_res.json`), 'utf8')) as {
            feature: number[];
          }
        ).feature,
      );
    assert.ok(cosine(feat(outOrt), feat(outRef)) >= COS_MIN);
    const bad = await runMain(
      modeArgs('predict', path.join(dir, 'out-bad'), [
        ...common,
        'Predict.use_hpip=True',
        'Predict.hpi_config.auto_config=False',
      ]),
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /PIF_CONFIG.*with auto_config false, backend must be set/);
  });

  test('evaluate --hpi-backend: the features of the backend named, the same metrics', async () => {
    const ds = path.join(dir, 'dataset');
    mkdirSync(path.join(ds, 'images'), { recursive: true });
    const lines: string[] = [];
    photos.forEach((p, i) => {
      const rel = `images/p${i}${path.extname(p)}`;
      copyFileSync(p, path.join(ds, rel));
      lines.push(`${rel} ${i % 3}`);
    });
    writeFileSync(path.join(ds, 'gallery.txt'), `${lines.join('\n')}\n`);
    writeFileSync(path.join(ds, 'query.txt'), `${lines.join('\n')}\n`);
    const metrics = (out: string) =>
      JSON.parse(readFileSync(path.join(out, 'evaluate_result.json'), 'utf8')) as Record<
        string,
        unknown
      >;
    const common = ['evaluate', ds, '--model-dir', recDir, '--batch-size', '2'];
    const ref = await runMain([...common, '--output', path.join(dir, 'eval-ref')]);
    assert.equal(ref.code, 0, ref.err);
    const ort = await runMain([
      ...common,
      '--hpi-backend',
      'onnxruntime',
      '--output',
      path.join(dir, 'eval-ort'),
    ]);
    assert.equal(ort.code, 0, ort.err);
    assert.match(ort.err, /hpi: backend onnxruntime/);
    const hpi = await runMain([...common, '--hpi', '--output', path.join(dir, 'eval-hpi')]);
    assert.equal(hpi.code, 0, hpi.err);
    assert.match(hpi.err, /hpi: backend onnxruntime \(auto_config/);
    const a = metrics(path.join(dir, 'eval-ref'));
    assert.deepEqual(metrics(path.join(dir, 'eval-ort'))['metrics'], a['metrics']);
    assert.deepEqual(metrics(path.join(dir, 'eval-hpi'))['metrics'], a['metrics']);
  });

  test('CLI --hpi / --hpi-backend, and a machine without onnxruntime-node', async () => {
    const run = promisify(execFile);
    const photo = photos[0] as string;
    const cliTs = path.join(repoRoot, 'lib', 'cli.ts');
    const hide = path.join(repoRoot, 'test', 'helpers', 'hide-onnxruntime.mjs');
    const predict = async (pre: string[], args: string[]) => {
      try {
        const r = await run(
          process.execPath,
          [
            ...pre,
            '--import',
            'tsx',
            cliTs,
            'predict',
            '--model-dir',
            recDir,
            '--json',
            ...args,
            photo,
          ],
          { cwd: repoRoot, maxBuffer: 16 << 20 },
        );
        return { code: 0, out: r.stdout, err: r.stderr };
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; code?: number };
        return { code: e.code ?? -1, out: e.stdout ?? '', err: e.stderr ?? '' };
      }
    };
    const feature = (out: string) =>
      Float32Array.from((JSON.parse(out.trim()) as { res: { feature: number[] } }).res.feature);
    const ref = await predict([], []);
    assert.equal(ref.code, 0, ref.err);
    const ort = await predict([], ['--hpi-backend', 'onnxruntime']);
    assert.equal(ort.code, 0, ort.err);
    assert.match(ort.err, /hpi: backend onnxruntime/);
    assert.ok(cosine(feature(ort.out), feature(ref.out)) >= COS_MIN);
    const bogus = await predict([], ['--hpi-backend', 'bogus']);
    assert.equal(bogus.code, 2);
    // Without onnxruntime-node: auto falls back to our engine with a note; naming it fails.
    const auto = await predict(['--import', hide], ['--hpi']);
    assert.equal(auto.code, 0, auto.err);
    assert.match(auto.err, /hpi: backend paddle_mkldnn/);
    assert.match(auto.err, /onnxruntime skipped: onnxruntime-node is not installed/);
    assert.ok(cosine(feature(auto.out), feature(ref.out)) >= COS_MIN);
    const named = await predict(['--import', hide], ['--hpi-backend', 'onnxruntime']);
    assert.notEqual(named.code, 0);
    assert.match(named.err, /PIF_UNSUPPORTED.*onnxruntime-node is not installed/);
  });
});
