/**
 * ARCHITECTURE.md matches the tree: every folder it names (a backticked path ending in `/`)
 * exists in git (or is a build output git ignores), and every folder at the repository root,
 * in native/ and in lib/ is named.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';

test('ARCHITECTURE.md names every folder and only folders that exist', () => {
  const text = readFileSync(path.join(repoRoot, 'ARCHITECTURE.md'), 'utf8');
  const named = new Set(
    [...text.matchAll(/`([A-Za-z0-9_.][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_.-]+)*\/)`/g)].map(
      (m) => m[1] as string,
    ),
  );
  const files = execFileSync('git', ['ls-files'], { cwd: repoRoot, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '');
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join('/')}/`);
  }
  const ignored = readFileSync(path.join(repoRoot, '.gitignore'), 'utf8').split('\n');
  const missing = [...named].filter((d) => !dirs.has(d) && !ignored.includes(d));
  assert.deepEqual(missing, [], 'ARCHITECTURE.md names folders that do not exist');
  const mustName = [...dirs].filter((d) => {
    const depth = d.split('/').length - 1;
    return depth === 1 || (depth === 2 && (d.startsWith('native/') || d.startsWith('lib/')));
  });
  const unnamed = mustName.filter((d) => !named.has(d)).sort();
  assert.deepEqual(unnamed, [], 'folders ARCHITECTURE.md does not name');
  assert.ok(named.size >= 20, `only ${named.size} folders named`);
});
