/**
 * Where exports land (issue 15): the PaddleX export mode creates `Global.output`, documented
 * `-o` keys are in the shipped module yamls (no "new field" notice), and `export --out` / the
 * library's `exportOnnx` accept a directory (existing, or any path without `.onnx`) and write
 * `inference.onnx` into it.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { buildModel } from '../lib/builder.js';
import { CONFIG_DIR, configGet, loadModuleConfig } from '../lib/config.js';
import { PifIoError } from '../lib/errors.js';
import { exportOnnx } from '../lib/export.js';
import { OFFICIAL_MODELS } from '../lib/image-feature.js';
import { modeArgs, runMain } from './helpers/cli.js';
import { repoRoot } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-export-paths-'));
const modelDir = path.join(dir, 'model');

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Asserts `file` is a non-empty regular file. */
function assertFile(file: string): void {
  assert.ok(existsSync(file), `${file} is missing`);
  const st = statSync(file);
  assert.ok(st.isFile() && st.size > 0, `${file} is not a non-empty file`);
}

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 7 });
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('-c/-o export mode', () => {
  test('Export.format=onnx creates a missing Global.output and writes inference.onnx there', async () => {
    const out = path.join(dir, 'px-onnx', 'new', 'dir');
    const r = await runMain(
      modeArgs('export', out, [`Export.model_dir=${modelDir}`, 'Export.format=onnx']),
    );
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.err, /new (series )?field/);
    const onnx = path.join(out, 'inference.onnx');
    assertFile(onnx);
    assert.match(r.out, new RegExp(`wrote ${onnx.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const res = readJson(path.join(out, 'export_result.json'));
    assert.equal(res['done_flag'], true);
    assert.deepEqual(res['files'], [onnx]);
  });

  test('the default format (paddle) also creates a missing nested Global.output', async () => {
    const out = path.join(dir, 'px-paddle', 'a', 'b');
    const r = await runMain(modeArgs('export', out, [`Export.model_dir=${modelDir}`]));
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    for (const f of ['inference.json', 'inference.pdiparams', 'inference.yml']) {
      assertFile(path.join(out, f));
    }
    assert.equal(readJson(path.join(out, 'export_result.json'))['format'], 'paddle');
  });

  test('every -o key the README documents is in every module yaml', async () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const keys = new Set(
      readme.match(/\b(?:Global|CheckDataset|Train|Evaluate|Export|Predict)(?:\.\w+)+/g) ?? [],
    );
    for (const k of ['Export.format', 'Export.model_dir', 'Evaluate.model_dir']) {
      assert.ok(keys.has(k), `README documents ${k}`);
    }
    // Keys the README names in prose rather than as a whole path.
    keys.add('CheckDataset.split.seed');
    keys.add('Evaluate.batch_size');
    for (const m of OFFICIAL_MODELS) {
      const cfg = await loadModuleConfig(path.join(CONFIG_DIR, `${m}.yaml`));
      for (const k of keys) assert.notEqual(configGet(cfg, k), undefined, `${m}: ${k}`);
      assert.equal(configGet(cfg, 'Export.format'), 'paddle', `${m}: Export.format`);
    }
  });
});

describe('export --out', () => {
  test('--format paddle refuses the ONNX-only options instead of ignoring them', async () => {
    const out = path.join(dir, 'cli-paddle-opset');
    const r = await runMain([
      'export',
      modelDir,
      '--format',
      'paddle',
      '--out',
      out,
      '--opset',
      '13',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /PIF_INVALID_ARG.*--opset apply to --format onnx only/);
    assert.equal(existsSync(out), false, 'nothing is written');
  });

  test('an existing directory receives inference.onnx', async () => {
    const out = path.join(dir, 'cli-existing');
    mkdirSync(out);
    const r = await runMain(['export', modelDir, '--out', out]);
    assert.equal(r.code, 0, r.err);
    assertFile(path.join(out, 'inference.onnx'));
    assert.match(r.out, /wrote .*cli-existing[/\\]inference\.onnx \(\d+ bytes\)/);
  });

  test('a path without .onnx is a directory (created) receiving inference.onnx', async () => {
    const out = path.join(dir, 'cli-new', 'name');
    const r = await runMain(['export', modelDir, '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.ok(statSync(out).isDirectory(), `${out} is not a directory`);
    assertFile(path.join(out, 'inference.onnx'));
  });

  test('a .onnx path is that file, its parent directory created', async () => {
    const out = path.join(dir, 'cli-file', 'sub', 'm.onnx');
    const r = await runMain(['export', modelDir, '--out', out]);
    assert.equal(r.code, 0, r.err);
    assertFile(out);
    assert.match(r.out, /wrote .*m\.onnx \(\d+ bytes\)/);
  });

  test('--format paddle: --out is a directory (created, nested) receiving the three files', async () => {
    const out = path.join(dir, 'cli-paddle', 'exported');
    const r = await runMain(['export', modelDir, '--format', 'paddle', '--out', out]);
    assert.equal(r.code, 0, r.err);
    for (const f of ['inference.json', 'inference.pdiparams', 'inference.yml']) {
      assertFile(path.join(out, f));
      assert.ok(r.out.includes(`wrote ${path.join(out, f)}`), `${f} reported`);
    }
  });
});

describe('exportOnnx()', () => {
  test('an existing directory receives inference.onnx', async () => {
    const out = path.join(dir, 'lib-existing');
    mkdirSync(out);
    const r = await exportOnnx(modelDir, out);
    assert.equal(r.file, path.join(out, 'inference.onnx'));
    assertFile(r.file);
    assert.equal(statSync(r.file).size, r.bytes);
  });

  test('a path without .onnx is created as a directory; a .onnx path gets its parent', async () => {
    const d = path.join(dir, 'lib-new', 'x');
    assert.equal((await exportOnnx(modelDir, d)).file, path.join(d, 'inference.onnx'));
    assertFile(path.join(d, 'inference.onnx'));
    const f = path.join(dir, 'lib-file', 'y', 'model.ONNX');
    assert.equal((await exportOnnx(modelDir, f)).file, f);
    assertFile(f);
  });

  test('an existing file without .onnx is refused (PIF_IO, naming it), left untouched', async () => {
    const plain = path.join(dir, 'plain-file');
    writeFileSync(plain, 'keep');
    await assert.rejects(exportOnnx(modelDir, plain), (err: unknown) => {
      assert.ok(err instanceof PifIoError);
      assert.equal(err.code, 'PIF_IO');
      assert.equal(err.file, plain);
      assert.match(err.message, /plain-file is a file, not a directory/);
      return true;
    });
    assert.equal(readFileSync(plain, 'utf8'), 'keep');
  });

  test('concurrent exports of one path each write their own temporary file', async () => {
    // The native writer once named its temporary file <path>.tmp-<pid>: two writes at once
    // shared it, and the second rename failed (reported as PIF_MODEL_NOT_FOUND).
    const out = path.join(dir, 'concurrent.onnx');
    const results = await Promise.all([1, 2, 3, 4].map(() => exportOnnx(modelDir, out)));
    for (const r of results) assert.equal(r.file, out);
    const bytes = readFileSync(out);
    assert.equal(bytes.length, results[0]?.bytes);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('concurrent.onnx.tmp')),
      [],
      'no temporary file is left behind',
    );
  });
});
