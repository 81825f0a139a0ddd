/** Loading the addon: when it cannot load, the error says why and what to run. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { NativeLoadError } from '../lib/errors.js';
import { explainLoadFailure, loadAddon, packageRoot } from '../lib/native.js';
import { repoRoot } from './helpers/fixtures.js';
import { needNative } from './helpers/native.js';

const tmpRoot = mkdtempSync(path.join(tmpdir(), 'pif-native-'));
after(() => {
  rmSync(tmpRoot, { recursive: true, force: true });
});

describe('native addon loading', () => {
  test('packageRoot is the repository root', () => {
    assert.equal(packageRoot, repoRoot);
  });

  test('no binary: PIF_NATIVE_LOAD listing where it looked and how to build', () => {
    const bogus = path.join(tmpRoot, 'no-such-package');
    assert.throws(
      () => loadAddon(bogus),
      (err: unknown) => {
        assert.ok(err instanceof NativeLoadError, String(err));
        assert.equal(err.code, 'PIF_NATIVE_LOAD');
        assert.match(err.message, /no binary for this platform/);
        assert.ok(err.message.includes(path.join(bogus, 'prebuilds')), err.message);
        assert.match(err.message, /npm run build:from-source/);
        return true;
      },
    );
  });

  test('a corrupt binary: PIF_NATIVE_LOAD telling to rebuild', () => {
    const root = path.join(tmpRoot, 'corrupt');
    mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    writeFileSync(
      path.join(root, 'build', 'Release', 'paddle_image_feature.node'),
      'not an ELF file',
    );
    assert.throws(
      () => loadAddon(root),
      (err: unknown) => {
        assert.ok(err instanceof NativeLoadError, String(err));
        assert.match(err.message, /npm run build/);
        assert.ok(err.cause instanceof Error);
        return true;
      },
    );
  });

  const cases: [string, string, RegExp][] = [
    [
      'missing libdnnl.so.2',
      '/x/build/Release/paddle_image_feature.node: libdnnl.so.2: cannot open shared object file: No such file or directory',
      /libdnnl\.so\.2 is missing.*apt-get install -y libdnnl2/s,
    ],
    [
      'missing libgomp',
      'libgomp.so.1: cannot open shared object file: No such file or directory',
      /apt-get install -y libgomp1/,
    ],
    [
      'missing libOpenCL',
      'libOpenCL.so.1: cannot open shared object file: No such file or directory',
      /apt-get install -y ocl-icd-libopencl1/,
    ],
    [
      'old glibc',
      "/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by /x/node.napi.node)",
      /glibc >= 2\.34.*npm run build/s,
    ],
    [
      'undefined symbol',
      '/x/paddle_image_feature.node: undefined symbol: dnnl_sgemm',
      /undefined symbol.*npm run build/s,
    ],
    ['wrong platform', '/x/a.node: invalid ELF header', /another platform.*npm run build/s],
  ];
  test('explains a prebuilt binary inside an Electron asar archive', () => {
    const file =
      '/opt/App/resources/app.asar/node_modules/paddle-image-feature/prebuilds/linux-x64/node.napi.node';
    const text = explainLoadFailure(
      new Error(`${file}: libdnnl-a4f9d805.so.2: cannot open shared object file`),
      '/x',
      file,
    );
    assert.match(text, /asarUnpack/);
  });

  test('explains a bundled library missing beside the prebuilt binary', () => {
    const file = '/p/node_modules/paddle-image-feature/prebuilds/linux-x64/node.napi.node';
    const text = explainLoadFailure(
      new Error(`${file}: libgomp-f9a9ad78.so.1: cannot open shared object file`),
      '/p',
      file,
    );
    assert.match(text, /libgomp-f9a9ad78\.so\.1, bundled beside it, is missing.*reinstall/s);
  });

  for (const [what, message, re] of cases) {
    test(`explains ${what}`, () => {
      const text = explainLoadFailure(new Error(message), '/x');
      assert.match(text, re);
      assert.ok(text.includes(message.split('\n')[0] ?? ''), 'keeps the original message');
    });
  }

  test('the built addon loads and exports the native interface', (t) => {
    const binding = needNative(t);
    if (binding === null) return;
    for (const fn of ['inspectModel', 'dumpModel', 'saveModel', 'loadModel'] as const) {
      assert.equal(typeof binding[fn], 'function', fn);
    }
  });
});
