// lib/modeldir.ts resolves program files in native/format/model_dir.cc's order, model.json
// included (issue 16: the native reader accepted it, lib/ did not).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { PROGRAM_FILES, resolveModelDir } from '../lib/modeldir.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-modeldir-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('program files in the native order; model.json is a PIR program', async () => {
  assert.deepEqual(
    PROGRAM_FILES.map((f) => f.name),
    ['inference.json', 'inference.pdmodel', 'model.json', 'model.pdmodel', '__model__'],
  );
  const only = path.join(dir, 'only-model-json');
  mkdirSync(only);
  writeFileSync(path.join(only, 'model.json'), '{}');
  const r = await resolveModelDir(only);
  assert.equal(r.programFile, path.join(only, 'model.json'));
  assert.equal(r.format, 'pir');
  assert.equal(r.configFile, null);
  // inference.pdmodel comes before model.json.
  writeFileSync(path.join(only, 'inference.pdmodel'), '');
  assert.equal((await resolveModelDir(only)).format, 'pdmodel');
  // A missing directory: the caller may word the message (createModel uses PaddleX's).
  await assert.rejects(
    resolveModelDir(path.join(dir, 'gone'), (abs) => `${abs} is gone`),
    {
      code: 'PIF_MODEL_NOT_FOUND',
      message: `${path.join(dir, 'gone')} is gone`,
    },
  );
});
