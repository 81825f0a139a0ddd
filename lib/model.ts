/** Model files: inspect, dump as canonical IR text, save (write) in Paddle formats. */
import path from 'node:path';

import { captureCaller, InvalidArgumentError } from './errors.js';
import {
  describeValue,
  isPlainObject,
  checkKnownKeys,
  validateLimits,
  type LoadLimits,
} from './limits.js';
import { resolveModelDir } from './modeldir.js';
import type { TensorDType } from './tensor.js';
import { nativeBinding, type NativeLoadOptions, type NativeModelInfo } from './native.js';

/** Tensor element types, spelled as Paddle's Python API spells them: the ones run() takes, plus complex types a program may declare. */
export type DType = TensorDType | 'complex64' | 'complex128' | (string & {});

/** A model input or output. `shape` uses -1 for a dynamic dimension. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** What a model file says about itself. */
export interface ModelInfo {
  /** 'pir' for inference.json (Paddle 3.x), 'pdmodel' for a legacy ProgramDesc. */
  readonly format: 'pir' | 'pdmodel';
  /** PIR base_code.version, or ProgramDesc.version (e.g. 2006002); null when absent. */
  readonly version: number | null;
  readonly programFile: string;
  /** The combined params file, the directory (separate layout), or null. */
  readonly paramsFile: string | null;
  readonly paramsLayout: 'combined' | 'separate' | 'none';
  readonly blocks: number;
  /** Number of ops over all blocks. */
  readonly opCount: number;
  /** Op census over all blocks, with Paddle's own op names (pd_op.* / builtin.* for PIR). */
  readonly ops: Readonly<Record<string, number>>;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** Persistable tensors: how many, their total bytes, and whether their data was read. */
  readonly parameters: Readonly<{ count: number; bytes: number; loaded: boolean }>;
}

export interface ReadOptions {
  /** Fail when the parameters file is missing (default: false for inspect/dump, true for load). */
  requireParams?: boolean;
  limits?: LoadLimits;
}

export interface SaveOptions extends ReadOptions {
  /** 'combined' (one .pdiparams, default) or 'separate' (one file per parameter; legacy only). */
  paramsLayout?: 'combined' | 'separate';
}

/** @internal The scalar fields of a model's info, in the order `inspect --json` prints them. */
export function infoSummary(info: NativeModelInfo | ModelInfo) {
  return {
    format: info.format,
    version: info.version,
    programFile: info.programFile,
    paramsFile: info.paramsFile,
    paramsLayout: info.paramsLayout,
    blocks: info.blocks,
    opCount: info.opCount,
  };
}

export function freezeInfo(info: NativeModelInfo): ModelInfo {
  const tensor = (t: { name: string; dtype: string; shape: number[] }): TensorInfo =>
    Object.freeze({ name: t.name, dtype: t.dtype, shape: Object.freeze([...t.shape]) });
  return Object.freeze({
    ...infoSummary(info),
    ops: Object.freeze({ ...info.ops }),
    inputs: Object.freeze(info.inputs.map(tensor)),
    outputs: Object.freeze(info.outputs.map(tensor)),
    parameters: Object.freeze({ ...info.parameters }),
  });
}

export function checkPath(p: unknown, what: string): string {
  if (typeof p !== 'string' || p === '') {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describeValue(p)}`);
  }
  return p;
}

export function readOptions(
  options: unknown,
  defaultRequireParams: boolean,
  extraKeys: readonly string[] = [],
): NativeLoadOptions & Record<string, unknown> {
  if (options === undefined) return { requireParams: defaultRequireParams, limits: {} };
  if (!isPlainObject(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describeValue(options)}`);
  }
  checkKnownKeys(options, ['requireParams', 'limits', ...extraKeys], 'options');
  const rp = options['requireParams'];
  if (rp !== undefined && typeof rp !== 'boolean') {
    throw new InvalidArgumentError(
      `options.requireParams must be a boolean, got ${describeValue(rp)}`,
    );
  }
  return {
    ...options,
    requireParams: rp ?? defaultRequireParams,
    limits: validateLimits(options['limits']),
  };
}

/** The model as canonical IR text: equal text means the same program. */
export async function dumpModel(modelPath: string, options?: ReadOptions): Promise<string> {
  const convert = captureCaller(dumpModel);
  const p = checkPath(modelPath, 'modelPath');
  const opts = readOptions(options, false);
  await resolveModelDir(p).catch((err: unknown) => Promise.reject(convert(err)));
  try {
    return await nativeBinding().dumpModel(path.resolve(p), opts);
  } catch (err) {
    throw convert(err);
  }
}

/**
 * Reads a model and writes it to `dstDir` in the same format (inference.pdmodel or
 * inference.json, plus inference.pdiparams or one file per parameter). Reading what was
 * written gives the same IR and byte-identical parameters.
 */
export async function saveModel(
  srcPath: string,
  dstDir: string,
  options?: SaveOptions,
): Promise<{ programFile: string; paramsFile: string | null }> {
  const convert = captureCaller(saveModel);
  const src = checkPath(srcPath, 'srcPath');
  const dst = checkPath(dstDir, 'dstDir');
  const opts = readOptions(options, true, ['paramsLayout']);
  const layout = opts['paramsLayout'];
  if (layout !== undefined && layout !== 'combined' && layout !== 'separate') {
    throw new InvalidArgumentError(
      `options.paramsLayout must be 'combined' or 'separate', got ${describeValue(layout)}`,
    );
  }
  await resolveModelDir(src).catch((err: unknown) => Promise.reject(convert(err)));
  try {
    return await nativeBinding().saveModel(path.resolve(src), path.resolve(dst), {
      requireParams: opts.requireParams ?? true,
      limits: opts.limits ?? {},
      ...(layout === undefined ? {} : { paramsLayout: layout }),
    });
  } catch (err) {
    throw convert(err);
  }
}
