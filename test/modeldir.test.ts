/** Model directory resolution (PaddleX order) and inference.yml parsing. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { ModelConfigError, PifError } from '../lib/errors.js';
import {
  loadInferenceConfig,
  parseInferenceConfig,
  PROGRAM_FILES,
  resolveModelDir,
} from '../lib/modeldir.js';
import { fileTempRoot } from './helpers/fixture-tests.js';
import { fixtureDir, needFixtures } from './helpers/fixtures.js';

const tmpRoot = fileTempRoot('pif-modeldir-');

function makeDir(name: string, files: Record<string, string>): string {
  const dir = path.join(tmpRoot, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(dir, f), text);
  return dir;
}

function code(c: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof PifError, String(err));
    assert.equal(err.code, c, err.message);
    return true;
  };
}

describe('resolveModelDir', () => {
  test('prefers inference.json over inference.pdmodel', async () => {
    const dir = makeDir('both', {
      'inference.json': '{}',
      'inference.pdmodel': 'x',
      'inference.yml': 'a: 1',
    });
    const r = await resolveModelDir(dir);
    assert.equal(r.programFile, path.join(dir, 'inference.json'));
    assert.equal(r.format, 'pir');
    assert.equal(r.configFile, path.join(dir, 'inference.yml'));
  });

  test('falls back to inference.pdmodel, model.pdmodel, __model__', async () => {
    for (const name of ['inference.pdmodel', 'model.pdmodel', '__model__']) {
      const dir = makeDir(`only-${name}`, { [name]: 'x' });
      const r = await resolveModelDir(dir);
      assert.equal(r.programFile, path.join(dir, name));
      assert.equal(r.format, 'pdmodel');
      assert.equal(r.configFile, null);
    }
  });

  test('model.json is a PIR program, in the native order (after inference.pdmodel)', async () => {
    assert.deepEqual(
      PROGRAM_FILES.map((f) => f.name),
      ['inference.json', 'inference.pdmodel', 'model.json', 'model.pdmodel', '__model__'],
    );
    const dir = makeDir('only-model.json', { 'model.json': '{}' });
    const r = await resolveModelDir(dir);
    assert.equal(r.programFile, path.join(dir, 'model.json'));
    assert.equal(r.format, 'pir');
    writeFileSync(path.join(dir, 'inference.pdmodel'), 'x');
    assert.equal((await resolveModelDir(dir)).format, 'pdmodel');
  });

  test('a missing directory: the caller may word the message', async () => {
    const gone = path.join(tmpRoot, 'gone');
    await assert.rejects(
      resolveModelDir(gone, (abs) => `${abs} is gone`),
      {
        code: 'PIF_MODEL_NOT_FOUND',
        message: `${gone} is gone`,
      },
    );
  });

  test('accepts a program file path', async () => {
    const dir = makeDir('file', { 'model.pdmodel': 'x' });
    const r = await resolveModelDir(path.join(dir, 'model.pdmodel'));
    assert.equal(r.dir, dir);
    assert.equal(r.format, 'pdmodel');
  });

  test('missing path and empty directory are PIF_MODEL_NOT_FOUND', async () => {
    await assert.rejects(resolveModelDir(path.join(tmpRoot, 'nope')), code('PIF_MODEL_NOT_FOUND'));
    await assert.rejects(resolveModelDir(makeDir('empty', {})), code('PIF_MODEL_NOT_FOUND'));
  });

  test('fixtures resolve as PaddleX does', async (t) => {
    const root = needFixtures(t);
    if (root === null) return;
    const pir = await resolveModelDir(fixtureDir(root, 'pplcnet_x0_25_textline_ori_pir'));
    assert.equal(path.basename(pir.programFile), 'inference.json');
    assert.ok(pir.configFile !== null);
    const mnist = await resolveModelDir(fixtureDir(root, 'mnist_mlp_legacy_separate'));
    assert.equal(path.basename(mnist.programFile), '__model__');
    const nafnet = await resolveModelDir(fixtureDir(root, 'nafnet_bdpan_legacy'));
    assert.equal(path.basename(nafnet.programFile), 'model.pdmodel');
  });
});

describe('inference.yml', () => {
  test('PP-LCNet textline orientation: preprocessing, postprocessing, anchors', async (t) => {
    const root = needFixtures(t);
    if (root === null) return;
    const dir = fixtureDir(root, 'pplcnet_x0_25_textline_ori_pir');
    const cfg = await loadInferenceConfig(dir);
    assert.equal(cfg.file, path.join(dir, 'inference.yml'));
    assert.equal(cfg.Global.model_name, 'PP-LCNet_x0_25_textline_ori');
    const ops = cfg.PreProcess.transform_ops;
    assert.deepEqual(
      ops.map((o) => o.name),
      ['ResizeImage', 'NormalizeImage', 'ToCHWImage'],
    );
    assert.deepEqual(ops[0]?.args, { size: [160, 80] });
    const norm = ops[1]?.args ?? {};
    assert.deepEqual(norm['mean'], [0.485, 0.456, 0.406]);
    assert.deepEqual(norm['std'], [0.229, 0.224, 0.225]);
    assert.equal(norm['scale'], 0.00392156862745098);
    assert.equal(norm['order'], '');
    assert.equal(norm['channel_num'], 3);
    assert.deepEqual(ops[2]?.args, {});
    assert.deepEqual(cfg.PostProcess, {
      Topk: { topk: 1, label_list: ['0_degree', '180_degree'] },
    });
    // `*id001` resolves to the anchored `&id001` value.
    const hpi = cfg.Hpi as {
      backend_configs: {
        paddle_infer: { trt_dynamic_shapes: unknown };
        tensorrt: { dynamic_shapes: unknown };
      };
    };
    assert.deepEqual(hpi.backend_configs.tensorrt.dynamic_shapes, {
      x: [
        [1, 3, 80, 160],
        [1, 3, 80, 160],
        [8, 3, 80, 160],
      ],
    });
    assert.deepEqual(
      hpi.backend_configs.tensorrt.dynamic_shapes,
      hpi.backend_configs.paddle_infer.trt_dynamic_shapes,
    );
  });

  test('PP-OCRv5 server det', async (t) => {
    const root = needFixtures(t);
    if (root === null) return;
    const cfg = await loadInferenceConfig(fixtureDir(root, 'ppocrv5_server_det_pir_v3_graphonly'));
    assert.equal(cfg.Global.model_name, 'PP-OCRv5_server_det');
    assert.deepEqual(
      cfg.PreProcess.transform_ops.map((o) => o.name),
      [
        'DecodeImage',
        'DetLabelEncode',
        'DetResizeForTest',
        'NormalizeImage',
        'ToCHWImage',
        'KeepKeys',
      ],
    );
    const resize = cfg.PreProcess.transform_ops[2]?.args ?? {};
    assert.equal(resize['limit_side_len'], 960);
    assert.equal(resize['limit_type'], 'max');
    const norm = cfg.PreProcess.transform_ops[3]?.args ?? {};
    assert.equal(norm['scale'], '1./255.');
    assert.equal(norm['order'], 'hwc');
    assert.deepEqual(norm['mean'], [0.485, 0.456, 0.406]);
    assert.equal(cfg.PostProcess?.['name'], 'DBPostProcess');
    assert.equal(cfg.PostProcess?.['unclip_ratio'], 1.5);
  });

  test('PP-OCRv5 server rec: a 148 KB yml with the character dictionary', async (t) => {
    const root = needFixtures(t);
    if (root === null) return;
    const cfg = await loadInferenceConfig(fixtureDir(root, 'ppocrv5_server_rec_pir_graphonly'));
    assert.equal(cfg.Global.model_name, 'PP-OCRv5_server_rec');
    const dict = cfg.PostProcess?.['character_dict'];
    assert.ok(Array.isArray(dict) && dict.length > 18000, 'character_dict');
    assert.equal(cfg.PostProcess?.['name'], 'CTCLabelDecode');
  });

  test('a missing inference.yml is PIF_MODEL_NOT_FOUND', async () => {
    await assert.rejects(
      loadInferenceConfig(makeDir('noyml', { 'inference.json': '{}' })),
      code('PIF_MODEL_NOT_FOUND'),
    );
  });

  const VALID =
    'Global:\n  model_name: M\nPreProcess:\n  transform_ops:\n  - ToCHWImage: null\nPostProcess:\n  NormalizeFeatures: null\n';

  test('a minimal feature-model yml', () => {
    const cfg = parseInferenceConfig(VALID, 'x.yml');
    assert.equal(cfg.Global.model_name, 'M');
    assert.deepEqual(cfg.PreProcess.transform_ops, [{ name: 'ToCHWImage', args: {} }]);
    assert.deepEqual(cfg.PostProcess, { NormalizeFeatures: null });
    assert.equal(cfg.Hpi, null);
  });

  const BAD: [string, string, RegExp][] = [
    ['invalid YAML', 'Global: [unclosed\n', /invalid YAML/],
    [
      'duplicate keys',
      'Global:\n  model_name: a\n  model_name: b\nPreProcess:\n  transform_ops: []\n',
      /invalid YAML/,
    ],
    ['not a mapping', '- a\n- b\n', /mapping/],
    ['no Global', 'PreProcess:\n  transform_ops: []\n', /Global/],
    ['no model_name', 'Global: {}\nPreProcess:\n  transform_ops: []\n', /model_name/],
    ['no PreProcess', 'Global:\n  model_name: a\n', /PreProcess/],
    [
      'transform_ops not a list',
      'Global:\n  model_name: a\nPreProcess:\n  transform_ops: 3\n',
      /transform_ops/,
    ],
    [
      'two-key op',
      'Global:\n  model_name: a\nPreProcess:\n  transform_ops:\n  - {A: null, B: null}\n',
      /transform_ops\[0\]/,
    ],
    [
      'op args not a map',
      'Global:\n  model_name: a\nPreProcess:\n  transform_ops:\n  - A: 3\n',
      /transform_ops\[0\]/,
    ],
    [
      'PostProcess not a map',
      VALID.replace('  NormalizeFeatures: null\n', '  - x\n'),
      /PostProcess/,
    ],
    [
      'alias bomb',
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n',
      /alias|Excessive/i,
    ],
  ];
  for (const [what, text, re] of BAD) {
    test(`rejects ${what} with PIF_MODEL_CONFIG naming the file`, () => {
      assert.throws(
        () => parseInferenceConfig(text, '/m/inference.yml'),
        (err: unknown) => {
          assert.ok(err instanceof ModelConfigError, String(err));
          assert.equal(err.code, 'PIF_MODEL_CONFIG');
          assert.equal(err.file, '/m/inference.yml');
          assert.ok(err.message.startsWith('/m/inference.yml: '), err.message);
          assert.match(err.message, re);
          return true;
        },
      );
    });
  }

  test('YAML syntax errors carry line and column', () => {
    assert.throws(
      () => parseInferenceConfig('Global:\n  model_name: a\n  - b\n', 'y.yml'),
      (err: unknown) => {
        assert.ok(err instanceof ModelConfigError);
        assert.match(err.where ?? '', /^line \d+, column \d+$/);
        return true;
      },
    );
  });
});
