/**
 * Export of a Paddle model to ONNX (for other runtimes, and as the oracle that lets ONNX
 * Runtime cross-check our kernels on whole models).
 */
import path from 'node:path';

import { captureCaller, InvalidArgumentError } from './errors.js';
import { describeValue } from './limits.js';
import { checkPath, readOptions, type ReadOptions } from './model.js';
import { resolveModelDir } from './modeldir.js';
import { nativeBinding } from './native.js';

export interface ExportOnnxOptions extends ReadOptions {
  /** ONNX opset, 13 to 17 (default 17; GridSample needs 16). */
  opset?: number;
  /** Seed for random weights bound to missing parameters (graph-only models). */
  randomWeights?: number;
}

/** Converts a model directory to an ONNX file; returns its path and size. */
export async function exportOnnx(
  modelDir: string,
  outFile: string,
  options?: ExportOnnxOptions,
): Promise<{ file: string; bytes: number }> {
  const convert = captureCaller(exportOnnx);
  const src = checkPath(modelDir, 'modelDir');
  const out = checkPath(outFile, 'outFile');
  const opts = readOptions(options, true, ['opset', 'randomWeights']);
  const opset = opts['opset'];
  if (opset !== undefined && (typeof opset !== 'number' || ![13, 14, 15, 16, 17].includes(opset))) {
    throw new InvalidArgumentError(`options.opset must be 13 to 17, got ${describeValue(opset)}`);
  }
  const seed = opts['randomWeights'];
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)) {
    throw new InvalidArgumentError(
      `options.randomWeights must be a non-negative integer seed, got ${describeValue(seed)}`,
    );
  }
  await resolveModelDir(src).catch((err: unknown) => Promise.reject(convert(err)));
  try {
    return await nativeBinding().exportOnnx(path.resolve(src), path.resolve(out), {
      requireParams: opts.requireParams ?? true,
      limits: opts.limits ?? {},
      ...(opset === undefined ? {} : { opset }),
      ...(seed === undefined ? {} : { randomWeights: seed }),
    });
  } catch (err) {
    throw convert(err);
  }
}
