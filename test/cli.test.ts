/** The command line: usage, exit codes, errors. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { tmpdir } from 'node:os';

import { usage } from '../lib/cli.js';
import { cli, runMain } from './helpers/cli.js';

describe('cli', () => {
  test('no command: usage, exit 2', async () => {
    const r = await runMain([]);
    assert.equal(r.code, 2);
    assert.equal(r.err, await usage());
    for (const c of [
      'predict',
      'check-dataset',
      'convert',
      'split',
      'evaluate',
      'export',
      'bench',
    ]) {
      assert.match(r.err, new RegExp(`\\n  ${c} `), c);
    }
    assert.match(r.err, /-c, --config <yaml>/);
  });

  test('unknown command: usage, exit 2', async () => {
    const r = await runMain(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command 'frobnicate'/);
    assert.ok(r.err.includes(await usage()));
  });

  test('--help: usage on stdout, exit 0', async () => {
    const r = await runMain(['--help']);
    assert.equal(r.code, 0);
    assert.equal(r.out, await usage());
  });

  test('--version prints the package version', async () => {
    const r = await runMain(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.out, /^\d+\.\d+\.\d+/);
  });

  test('inspect with a bad flag or without a model dir: exit 2', async () => {
    assert.equal((await runMain(['inspect'])).code, 2);
    assert.equal((await runMain(['inspect', 'a', 'b'])).code, 2);
    const r = await runMain(['inspect', 'a', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.err, /bogus/);
  });

  test('inspect of a missing directory: exit 1 with the error code', async () => {
    const dir = path.join(tmpdir(), 'pif-no-such-model');
    const r = await runMain(['inspect', dir, '--json']);
    assert.equal(r.code, 1);
    assert.match(r.err, /error \[PIF_MODEL_NOT_FOUND\]: model directory not found/);
    assert.ok(r.err.includes(dir));
  });

  test('as a process: unknown subcommand exits 2 with usage', async () => {
    const r = await cli(['nope']);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('Usage: paddle-image-feature'));
  });
});
