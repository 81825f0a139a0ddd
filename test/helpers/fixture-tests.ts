/** Tests over lists of fixture models. */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';

import {
  fixtureDir,
  fixtureModels,
  fixturesMissingReason,
  fixturesRoot,
  needFixtures,
  type ModelFacts,
} from './fixtures.js';
import { needNative } from './native.js';

/**
 * One test per fixture case, titled `title(c)`: skipped without the fixtures (or the addon,
 * with PIF_SKIP_NATIVE=1); `run` gets the case's model directory and its position.
 */
export function testEachFixture<C extends { name: string }>(
  cases: readonly C[],
  title: (c: C) => string,
  run: (t: TestContext, dir: string, c: C, i: number) => Promise<unknown>,
): void {
  for (const [i, c] of cases.entries()) {
    test(title(c), async (t) => {
      const root = needFixtures(t);
      if (root === null || needNative(t) === null) return;
      await run(t, fixtureDir(root, c.name), c, i);
    });
  }
}

/**
 * A temporary directory for a file's tests: made before them, removed after them (after
 * `atEnd`, such as printing the file's summary table). Returns a getter of its path.
 */
export function fileTempDir(prefix: string, atEnd: () => void = () => undefined): () => string {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  });
  after(async () => {
    atEnd();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/**
 * A temporary directory for a file's tests, made now (its path is known at load time) and
 * removed after them.
 */
export function fileTempRoot(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * The fixture models, read at load time so each model gets its own test (call inside a
 * describe). An empty list (fixtures absent) still yields one test, `fixtures present`, that
 * skips or fails with the reason.
 */
export function fixtureModelsOrReasonTest(): ModelFacts[] {
  const models = fixturesMissingReason() === null ? fixtureModels(fixturesRoot) : [];
  if (models.length === 0) {
    test('fixtures present', (t) => {
      needFixtures(t);
    });
  }
  return models;
}
