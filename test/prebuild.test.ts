/**
 * The prebuilt binary as npm installs it: scripts/package-prebuild.mjs bundles oneDNN, libgomp
 * and the OpenCL loader beside the addon (renamed, RUNPATH $ORIGIN), its ELF guard holds, the
 * guard catches an unpackaged build, and a package root with only prebuilds/ loads the bundled
 * libraries (never the system's) and computes what the local build computes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { buildModel } from '../lib/builder.js';
import { addonCandidates, explainNotFound, PREBUILT_ADDON_NAME } from '../lib/native.js';
import { loadPredictor } from '../lib/predictor.js';
import { repoRoot } from './helpers/fixtures.js';
import { imageLike } from './helpers/inputs.js';
import { needNative } from './helpers/native.js';
import { helperScript, resultOf, runTsx } from './helpers/tsx-child.js';

const script = path.join(repoRoot, 'scripts', 'package-prebuild.mjs');
const built = path.join(repoRoot, 'build', 'Release', 'paddle_image_feature.node');
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const tmp = mkdtempSync(path.join(tmpdir(), 'pif-prebuild-'));
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

interface Manifest {
  arch: string;
  files: {
    file: string;
    bytes: number;
    sha256: string;
    needed: string[];
    runpath: string | null;
    debian?: { package: string; version: string; source: string } | null;
  }[];
}

describe('prebuilt binary', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const pkgRoot = path.join(tmp, 'pkg');
  const outDir = path.join(pkgRoot, 'prebuilds', `linux-${arch}`);

  test('package-prebuild bundles the libraries and its ELF guard passes', (t) => {
    if (needNative(t) === null) return;
    const r = spawnSync(
      process.execPath,
      [script, '--addon', built, '--out', path.dirname(outDir)],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, `package-prebuild failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /ELF guard: OK/);
    const files = readdirSync(outDir);
    assert.ok(files.includes(PREBUILT_ADDON_NAME), files.join(' '));
    for (const base of ['libdnnl', 'libgomp', 'libOpenCL']) {
      assert.ok(
        files.some((f) => new RegExp(`^${base}-[0-9a-f]{8}\\.so\\.\\d+$`).test(f)),
        `${base} is bundled under a hashed name: ${files.join(' ')}`,
      );
    }
    const manifest = JSON.parse(
      readFileSync(path.join(outDir, 'MANIFEST.json'), 'utf8'),
    ) as Manifest;
    assert.equal(manifest.arch, arch);
    const bundled = new Set(manifest.files.map((f) => f.file));
    for (const f of manifest.files) {
      assert.equal(f.runpath, '$ORIGIN', f.file);
      // NEEDED names only bundled files or the C/C++ runtime.
      for (const n of f.needed) {
        assert.ok(
          bundled.has(n) || /^(libc|libm|libstdc\+\+|libgcc_s|ld-linux.*)\.so/.test(n),
          `${f.file} needs ${n}`,
        );
      }
      if (f.file !== PREBUILT_ADDON_NAME) {
        assert.ok(f.debian, `${f.file} records the Debian package it came from`);
      }
    }
    const notice = readFileSync(path.join(outDir, 'licenses', 'NOTICE.txt'), 'utf8');
    assert.match(notice, /source package: onednn 2\.6/);
    assert.match(notice, /source package: gcc-\d+/);
    const licences = readdirSync(path.join(outDir, 'licenses'));
    for (const l of ['Apache-2.0.txt', 'GPL-3.txt', 'libdnnl2.copyright.txt']) {
      assert.ok(licences.includes(l), `${l} in ${licences.join(' ')}`);
    }
  });

  test('the ELF guard rejects an unpackaged build', (t) => {
    if (needNative(t) === null) return;
    const raw = path.join(tmp, 'raw');
    mkdirSync(raw, { recursive: true });
    copyFileSync(built, path.join(raw, PREBUILT_ADDON_NAME));
    const r = spawnSync(process.execPath, [script, '--arch', arch, '--check-only', raw], {
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /needs libdnnl\.so\.2, which is neither bundled nor a system library/);
    assert.match(r.stderr, /RUNPATH is unset, not \$ORIGIN/);
  });

  test('a package with only prebuilds/ loads the bundled libraries and computes the same', async (t) => {
    if (needNative(t) === null) return;
    const model = path.join(tmp, 'model');
    await buildModel('PP-ShiTuV2_rec', model, { format: 'pir', seed: 4 });
    const env = { ...process.env };
    delete env['PIF_NATIVE_PATH'];
    const child = runTsx(helperScript('prebuild-child.ts'), [pkgRoot, model], { env });
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    const got = resultOf(child.stdout) as {
      loaded: string;
      maps: string[];
      outputs: Record<string, number[]>;
    };
    assert.equal(got.loaded, path.join(outDir, PREBUILT_ADDON_NAME));
    for (const base of ['libdnnl', 'libgomp', 'libOpenCL']) {
      const mapped = got.maps.filter((m) => path.basename(m).startsWith(base));
      assert.ok(mapped.length > 0, `${base} mapped: ${got.maps.join(' ')}`);
      for (const m of mapped) assert.equal(path.dirname(m), outDir, `${m} comes from the bundle`);
    }

    const shape = [1, 3, 224, 224];
    const input = imageLike(shape, 3);
    for (const runMode of ['normal', 'hpi'] as const) {
      const p = await loadPredictor(model, { runMode });
      const out = await p.run({ [p.inputs[0]!.name]: { data: input, shape } });
      const want = Object.values(out)[0]!.data as Float32Array;
      p.close();
      const have = got.outputs[runMode]!;
      assert.equal(have.length, want.length);
      let maxAbs = 0;
      for (let i = 0; i < want.length; i++)
        maxAbs = Math.max(maxAbs, Math.abs(have[i]! - want[i]!));
      // The same code on the same CPU: normal mode is bit-identical; hpi may pick a different
      // thread split, so allow float rounding there.
      if (runMode === 'normal') assert.equal(maxAbs, 0, 'normal mode bit-identical');
      else assert.ok(maxAbs < 1e-5, `hpi max abs diff ${maxAbs}`);
    }
  });

  test('no binary: the error lists every place it looked and how to build', () => {
    const empty = path.join(tmp, 'empty');
    const msg = explainNotFound(empty, addonCandidates(empty, {}, 'linux', 's390x'), 'linux-s390x');
    assert.match(msg, /no binary for this platform/);
    assert.ok(msg.includes(path.join(empty, 'build', 'Release', 'paddle_image_feature.node')));
    assert.ok(msg.includes(path.join(empty, 'prebuilds', 'linux-s390x', PREBUILT_ADDON_NAME)));
    assert.match(msg, /prebuilt binaries ship for linux-x64/);
    assert.match(msg, /libdnnl-dev/);
    assert.match(msg, /npm run build:from-source/);
    const explicit = addonCandidates(empty, { PIF_NATIVE_PATH: '/opt/x.node' });
    assert.deepEqual(explicit, [{ path: '/opt/x.node', what: 'PIF_NATIVE_PATH' }]);
  });
});
