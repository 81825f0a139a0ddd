/**
 * Predictor set-up shared by the run tests: a fixture model's predictor, closed after the body,
 * and the same model beside an ONNX Runtime session on its own model.onnx export (the oracle).
 */
import type { TestContext } from 'node:test';
import path from 'node:path';

import * as ort from 'onnxruntime-node';

import { loadPredictor, type Predictor, type PredictorOptions } from '../../lib/predictor.js';
import { fixtureDir, needFixtures } from './fixtures.js';
import { needNative } from './native.js';

/** A predictor on fixture `name`, or null (the test skipped) without fixtures or the addon. */
export async function loadFixturePredictor(
  t: TestContext,
  name: string,
): Promise<Predictor | null> {
  const root = needFixtures(t);
  if (root === null || needNative(t) === null) return null;
  return loadPredictor(fixtureDir(root, name));
}

/** Loads fixture `name` and runs `body` on it; skips (returns) without fixtures or the addon. */
export async function withFixturePredictor(
  t: TestContext,
  name: string,
  body: (p: Predictor) => Promise<void>,
): Promise<void> {
  const p = await loadFixturePredictor(t, name);
  if (p === null) return;
  try {
    await body(p);
  } finally {
    p.close();
  }
}

/**
 * A predictor on `dir` and an ONNX Runtime session on `dir`/model.onnx, both with `threads`
 * threads (the predictor's default where undefined, ONNX Runtime 1); both closed after `body`.
 */
export async function withOnnxOracle(
  dir: string,
  threads: number | undefined,
  body: (p: Predictor, session: ort.InferenceSession) => Promise<void>,
): Promise<void> {
  const options: PredictorOptions = threads === undefined ? {} : { cpuThreads: threads };
  const p = await loadPredictor(dir, options);
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
    intraOpNumThreads: threads ?? 1,
  });
  try {
    await body(p, session);
  } finally {
    p.close();
    await session.release();
  }
}

/** The index of each row's largest value (the first among equals), rows of `cols` values. */
export function argmaxRows(data: Float32Array, cols: number): number[] {
  const rows: number[] = [];
  for (let r = 0; r < data.length / cols; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c]! > data[r * cols + best]!) best = c;
    rows.push(best);
  }
  return rows;
}
