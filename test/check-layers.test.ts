/** scripts/check-layers.mjs: native/ includes run downward only (issue 16). */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { put, repo, runCheckScript } from './helpers/script-check.js';

const check = (root?: string) => runCheckScript('check-layers.mjs', root);

describe('check-layers', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'pif-layers-'));
  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  // A few real files, copied into a tree of their own.
  function copyTree(name: string, files: string[]): string {
    const root = path.join(tmp, name);
    for (const f of files) cpSync(path.join(repo, f), path.join(root, f));
    return root;
  }
  const sample = [
    'native/common/error.h',
    'native/graph/dtype.h',
    'native/graph/ir.h',
    'native/graph/loaded_model.h',
    'native/graph/op_def.h',
  ];

  test('the real tree passes with a one-line summary', () => {
    const r = check();
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^check-layers: \d+ files, \d+ includes, all downward/);
  });

  test('a copy of real files passes as it is', () => {
    const root = copyTree('clean', sample);
    const r = check(root);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /check-layers: 5 files/);
  });

  test('a graph header including runtime/ fails, naming file, line and include', () => {
    const root = copyTree('upward', sample);
    cpSync(
      path.join(repo, 'native/runtime/peak_probe.h'),
      path.join(root, 'native/runtime/peak_probe.h'),
    );
    put(root, 'native/graph/op_def.h', '#pragma once\n\n#include "runtime/peak_probe.h"\n');
    const r = check(root);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /native\/graph\/op_def\.h:3: #include "runtime\/peak_probe\.h"/);
    assert.match(r.stderr, /graph \(rank 1\) may not include runtime \(rank 6\)/);
    assert.doesNotMatch(r.stderr, /native\/graph\/ir\.h/);
  });

  test('one backend including the other fails (sibling layers)', () => {
    const root = copyTree('sideways', sample);
    put(root, 'native/kernels/ref/common.h', '#pragma once\n');
    put(root, 'native/kernels/dnnl/pool.cc', '#include "kernels/ref/common.h"\n');
    const r = check(root);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /native\/kernels\/dnnl\/pool\.cc:1: #include "kernels\/ref\/common\.h".*sibling layer/,
    );
  });

  test('a file outside every layer, and an include of no file, fail', () => {
    const root = copyTree('unknown', sample);
    put(root, 'native/misc.h', '#pragma once\n');
    put(root, 'native/graph/extra.h', '#include "graph/missing.h"\n');
    const r = check(root);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /native\/misc\.h: not in any layer/);
    assert.match(
      r.stderr,
      /native\/graph\/extra\.h:1: #include "graph\/missing\.h": resolves to no/,
    );
  });
});
