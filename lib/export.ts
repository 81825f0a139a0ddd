/**
 * Export of a Paddle model to ONNX (for other runtimes, and as the oracle that lets ONNX
 * Runtime cross-check our kernels on whole models).
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { captureCaller, InvalidArgumentError, PifIoError } from './errors.js';
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

/** The file name an ONNX export gets inside an output directory. */
export const ONNX_FILE_NAME = 'inference.onnx';

/**
 * The ONNX file `out` designates, with its directory created: an existing directory, or a path
 * not ending in `.onnx` (any case), is a directory that receives `inference.onnx`; otherwise
 * `out` is the file itself.
 */
async function onnxTarget(out: string): Promise<string> {
  const abs = path.resolve(out);
  const st = await stat(abs).catch(() => null);
  const hasSuffix = /\.onnx$/i.test(abs);
  if (st !== null && !st.isDirectory() && !hasSuffix) {
    throw new PifIoError(
      `${abs} is a file, not a directory: give a directory or a path ending in .onnx`,
      { file: abs },
    );
  }
  const file = st?.isDirectory() === true || !hasSuffix ? path.join(abs, ONNX_FILE_NAME) : abs;
  const parent = path.dirname(file);
  try {
    await mkdir(parent, { recursive: true });
  } catch (err) {
    throw new PifIoError(`cannot create directory ${parent}: ${(err as Error).message}`, {
      file: parent,
      cause: err,
    });
  }
  return file;
}

/**
 * Converts a model directory to ONNX; returns the file written and its size.
 *
 * `out` is a directory or a file: an existing directory, or a path without an `.onnx` suffix,
 * receives `<out>/inference.onnx` (the directory is created, with its parents); a path ending in
 * `.onnx` (any case) that is not an existing directory is the file itself (its parent directory
 * is created). The file is replaced atomically if it exists.
 */
export async function exportOnnx(
  modelDir: string,
  out: string,
  options?: ExportOnnxOptions,
): Promise<{ file: string; bytes: number }> {
  const convert = captureCaller(exportOnnx);
  const src = checkPath(modelDir, 'modelDir');
  checkPath(out, 'out');
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
  const file = await onnxTarget(out);
  try {
    return await nativeBinding().exportOnnx(path.resolve(src), file, {
      requireParams: opts.requireParams ?? true,
      limits: opts.limits ?? {},
      ...(opset === undefined ? {} : { opset }),
      ...(seed === undefined ? {} : { randomWeights: seed }),
    });
  } catch (err) {
    throw convert(err);
  }
}
