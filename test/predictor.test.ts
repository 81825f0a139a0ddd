/** loadPredictor: options, inputs/outputs, close(), errors. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  ClosedError,
  InvalidArgumentError,
  ModelLimitError,
  ModelNotFoundError,
  PifError,
  UnsupportedError,
} from '../lib/errors.js';
import {
  loadPredictor,
  validatePredictorOptions,
  type PredictorOptions,
} from '../lib/predictor.js';
import { fixtureDir, fixtureModels, needFixtures } from './helpers/fixtures.js';
import { needNative } from './helpers/native.js';
import { loadFixturePredictor } from './helpers/predictors.js';

const thisFile = fileURLToPath(import.meta.url);

function hasCode(code: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof PifError, `expected a PifError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('predictor options', () => {
  test('defaults', () => {
    const quantize = { algo: 'percentile', percentile: 99.99, minCosine: 0.99 };
    assert.deepEqual(validatePredictorOptions(undefined), {
      runMode: 'normal',
      precision: 'fp32',
      cpuThreads: 1,
      hpiConfig: null,
      calibration: null,
      quantize,
      limits: {},
    });
    assert.deepEqual(validatePredictorOptions({ cpuThreads: 2, limits: { maxOps: 10 } }), {
      runMode: 'normal',
      precision: 'fp32',
      cpuThreads: 2,
      hpiConfig: null,
      calibration: null,
      quantize,
      limits: { maxOps: 10 },
    });
  });

  const bad: [string, unknown][] = [
    ['not an object', 'fast'],
    ['array', []],
    ['unknown key', { cpuThread: 2 }],
    ['runMode', { runMode: 'fast' }],
    ['precision', { precision: 'fp16' }],
    ['calibration without int8', { runMode: 'hpi', calibration: [{}] }],
    ['calibration empty', { runMode: 'hpi', precision: 'int8', calibration: [] }],
    ['quantize algo', { runMode: 'hpi', precision: 'int8', quantize: { algo: 'kl' } }],
    ['quantize minCosine', { runMode: 'hpi', precision: 'int8', quantize: { minCosine: 2 } }],
    ['hpiConfig without hpi', { hpiConfig: { backend: 'paddle' } }],
    ['hpiConfig backend', { runMode: 'hpi', hpiConfig: { backend: 'mkldnn' } }],
    ['passes not an array', { passes: 'fuse_bias' }],
    ['unknown pass', { passes: ['fuse_everything'] }],
    ['cpuThreads 0', { cpuThreads: 0 }],
    ['cpuThreads -1', { cpuThreads: -1 }],
    ['cpuThreads 1.5', { cpuThreads: 1.5 }],
    ['cpuThreads string', { cpuThreads: '2' }],
    ['cpuThreads NaN', { cpuThreads: NaN }],
    ['cpuThreads huge', { cpuThreads: 1e9 }],
    ['limits not an object', { limits: 5 }],
    ['limits unknown key', { limits: { maxOpz: 3 } }],
    ['limits zero', { limits: { maxOps: 0 } }],
    ['limits fractional', { limits: { maxTensorBytes: 1.5 } }],
    ['limits string', { limits: { maxDepth: '3' } }],
    ['limits Infinity', { limits: { maxFileBytes: Infinity } }],
  ];
  for (const [what, opts] of bad) {
    test(`rejects ${what} with PIF_INVALID_ARG`, async () => {
      assert.throws(() => validatePredictorOptions(opts), InvalidArgumentError);
      await assert.rejects(
        loadPredictor('/nonexistent-model', opts as PredictorOptions),
        hasCode('PIF_INVALID_ARG'),
      );
    });
  }

  test("runMode 'hpi' is accepted: a missing model is still PIF_MODEL_NOT_FOUND", async () => {
    assert.equal(validatePredictorOptions({ runMode: 'hpi' }).runMode, 'hpi');
    await assert.rejects(
      loadPredictor('/nonexistent-model', { runMode: 'hpi' }),
      hasCode('PIF_MODEL_NOT_FOUND'),
    );
  });

  test("precision 'bf16' without runMode 'hpi' is rejected with PIF_UNSUPPORTED", async () => {
    await assert.rejects(
      loadPredictor('/nonexistent-model', { precision: 'bf16' }),
      (err: unknown) => {
        assert.ok(err instanceof UnsupportedError);
        assert.equal(err.code, 'PIF_UNSUPPORTED');
        assert.match(err.message, /hpi/);
        return true;
      },
    );
  });

  test('modelDir must be a non-empty string', async () => {
    await assert.rejects(loadPredictor(''), hasCode('PIF_INVALID_ARG'));
    await assert.rejects(loadPredictor(42 as unknown as string), hasCode('PIF_INVALID_ARG'));
  });
});

describe('model directory errors', () => {
  test('a missing directory is PIF_MODEL_NOT_FOUND naming it', async () => {
    const dir = path.join(tmpdir(), 'pif-definitely-missing-model');
    await assert.rejects(loadPredictor(dir), (err: unknown) => {
      assert.ok(err instanceof ModelNotFoundError);
      assert.equal(err.code, 'PIF_MODEL_NOT_FOUND');
      assert.ok(err.message.includes(dir));
      return true;
    });
  });

  test('a directory without a program is PIF_MODEL_NOT_FOUND', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pif-empty-'));
    try {
      await assert.rejects(loadPredictor(dir), hasCode('PIF_MODEL_NOT_FOUND'));
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('loaded predictors', () => {
  test('inputs and outputs of every fixture with parameters', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    for (const f of fixtureModels(root).filter((m) => m.hasParams)) {
      const p = await loadPredictor(f.dir, { cpuThreads: 2 });
      try {
        assert.deepEqual(
          p.inputs.map((x) => ({ name: x.name, dtype: x.dtype, shape: [...x.shape] })),
          f.inputs,
          `${f.name} inputs`,
        );
        assert.deepEqual(
          p.outputs.map((x) => ({ name: x.name, dtype: x.dtype, shape: [...x.shape] })),
          f.outputs,
          `${f.name} outputs`,
        );
        assert.equal(p.info.format, f.format);
        assert.equal(p.info.parameters.count, f.persistable);
        assert.equal(p.info.parameters.loaded, true);
        assert.equal(p.options.cpuThreads, 2);
        assert.equal(p.modelDir, path.resolve(f.dir));
        assert.ok(Object.isFrozen(p.inputs));
        assert.equal(typeof p.run, 'function');
      } finally {
        p.close();
      }
    }
  });

  test('a closed predictor throws PIF_CLOSED; close() twice is fine', async (t) => {
    const p = await loadFixturePredictor(t, 'pplcnet_x0_25_textline_ori_pir');
    if (p === null) return;
    assert.equal(p.closed, false);
    p.close();
    assert.equal(p.closed, true);
    assert.throws(() => p.info, ClosedError);
    assert.throws(
      () => p.info,
      (err: unknown) => (err as PifError).code === 'PIF_CLOSED',
    );
    p.close();
  });

  test('a closed native model throws', async (t) => {
    const root = needFixtures(t);
    const binding = root === null ? null : needNative(t);
    if (root === null || binding === null) return;
    const m = await binding.loadModel(fixtureDir(root, 'mnist_mlp_legacy_separate'), {
      requireParams: true,
    });
    assert.equal(m.info().format, 'pdmodel');
    m.close();
    assert.throws(() => m.info());
  });

  test('a graph-only model cannot be loaded as a predictor (parameters missing)', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    await assert.rejects(
      loadPredictor(fixtureDir(root, 'svtrnet_rus_rec_legacy_graphonly')),
      (err: unknown) => {
        assert.ok(err instanceof PifError);
        assert.ok(['PIF_MODEL_NOT_FOUND', 'PIF_MODEL_PARAMS'].includes(err.code), err.code);
        return true;
      },
    );
  });

  test('limits are enforced with PIF_MODEL_LIMIT, a file name and the caller stack', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    const dir = fixtureDir(root, 'pplcnet_x0_25_textline_ori_pir');
    await assert.rejects(loadPredictor(dir, { limits: { maxOps: 10 } }), (err: unknown) => {
      assert.ok(err instanceof ModelLimitError, String(err));
      assert.equal(err.code, 'PIF_MODEL_LIMIT');
      assert.ok(err.file !== undefined && err.file.startsWith(dir), `file: ${String(err.file)}`);
      assert.ok(err.stack?.includes(thisFile), `caller stack kept:\n${String(err.stack)}`);
      return true;
    });
    await assert.rejects(
      loadPredictor(dir, { limits: { maxTensorBytes: 16 } }),
      hasCode('PIF_MODEL_LIMIT'),
    );
  });
});
