/**
 * Typed errors. Every failure has a stable `code` that programs can branch on;
 * model-file errors also name the file and the place in it.
 */

import { inspect } from 'node:util';

/** Stable error codes. Codes raised by the native layer mirror native/format/error.h. */
export type PifErrorCode =
  | 'PIF_MODEL_FORMAT'
  | 'PIF_MODEL_PARAMS'
  | 'PIF_MODEL_NOT_FOUND'
  | 'PIF_MODEL_LIMIT'
  | 'PIF_MODEL_UNSUPPORTED'
  | 'PIF_MODEL_CONFIG'
  | 'PIF_IO'
  | 'PIF_INVALID_ARG'
  | 'PIF_UNSUPPORTED'
  | 'PIF_CLOSED'
  | 'PIF_NATIVE_LOAD'
  | 'PIF_INPUT'
  | 'PIF_INPUT_NOT_FOUND'
  | 'PIF_INPUT_DECODE'
  | 'PIF_DOWNLOAD'
  | 'PIF_RUN'
  | 'PIF_DATASET_CHECK'
  | 'PIF_DATASET_CONVERT'
  | 'PIF_DATASET_SPLIT'
  | 'PIF_CONFIG'
  | 'PIF_INDEX'
  | 'PIF_CANCELLED'
  | 'PIF_QUANTIZE'
  | 'PIF_INTERNAL';

export interface PifErrorDetails {
  /** The file the error is about, when there is one. */
  file?: string | undefined;
  /** Byte offset in `file`, or undefined when the error has no byte position. */
  offset?: number | undefined;
  /** A free-form locator such as "record 12 (conv2d_3.w_0)" or "op 57 (pd_op.conv2d)". */
  where?: string | undefined;
  cause?: unknown;
}

/** Base class of every error this package throws on purpose. */
export class PifError extends Error {
  readonly code: PifErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly where: string | undefined;

  constructor(code: PifErrorCode, message: string, details: PifErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = details.file;
    this.offset = details.offset;
    this.where = details.where;
  }
}

/** Malformed model bytes, JSON or structure (PIF_MODEL_FORMAT). */
export class ModelFormatError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_MODEL_FORMAT', message, details);
  }
}

/** The parameters file disagrees with the program (PIF_MODEL_PARAMS). */
export class ModelParamsError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_MODEL_PARAMS', message, details);
  }
}

/** A model directory or a file it needs does not exist (PIF_MODEL_NOT_FOUND). */
export class ModelNotFoundError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_MODEL_NOT_FOUND', message, details);
  }
}

/** A configured load limit was exceeded (PIF_MODEL_LIMIT). */
export class ModelLimitError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_MODEL_LIMIT', message, details);
  }
}

/** A valid model that this build cannot handle (PIF_MODEL_UNSUPPORTED). */
export class ModelUnsupportedError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_MODEL_UNSUPPORTED', message, details);
  }
}

/** A malformed or incomplete inference.yml (PIF_MODEL_CONFIG). */
export class ModelConfigError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_MODEL_CONFIG', message, details);
  }
}

/** An operating-system read/write failure (PIF_IO). */
export class PifIoError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_IO', message, details);
  }
}

/** A bad argument or option passed by the caller (PIF_INVALID_ARG). */
export class InvalidArgumentError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_INVALID_ARG', message, details);
  }
}

/** A feature that is not available (yet) in this version (PIF_UNSUPPORTED). */
export class UnsupportedError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_UNSUPPORTED', message, details);
  }
}

/** Use of a predictor or model after close() (PIF_CLOSED). */
export class ClosedError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_CLOSED', message, details);
  }
}

/** The native addon could not be loaded (PIF_NATIVE_LOAD); the message says what to run. */
export class NativeLoadError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_NATIVE_LOAD', message, details);
  }
}

/** Inputs given to run() do not match the model (name, dtype, shape, size) (PIF_INPUT). */
export class InputError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_INPUT', message, details);
  }
}

/** A predict() input path, directory or file does not exist or holds no images (PIF_INPUT_NOT_FOUND). */
export class InputNotFoundError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_INPUT_NOT_FOUND', message, details);
  }
}

/** An input image could not be read or decoded (PIF_INPUT_DECODE). */
export class InputDecodeError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_INPUT_DECODE', message, details);
  }
}

/** Downloading or unpacking an official model failed (PIF_DOWNLOAD); nothing is left half-valid. */
export class DownloadError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_DOWNLOAD', message, details);
  }
}

/** An op failed while running (PIF_RUN): the message names the op. */
export class RunError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_RUN', message, details);
  }
}

/**
 * The PaddleX exception class a dataset failure corresponds to; the PaddleX-style CLI
 * reports it as `err_type` so scripts written against PaddleX keep working.
 */
export type PaddlexErrorType =
  'DatasetFileNotFoundError' | 'CheckFailedError' | 'ConvertFailedError' | 'SplitFailedError';

export interface DatasetErrorDetails extends PifErrorDetails {
  /** PaddleX's exception class for the same failure; defaults per error class. */
  paddlexType?: PaddlexErrorType;
  /** 1-based line number in `file`, when the failure is about one line. */
  line?: number;
}

/** Shared shape of the dataset errors: PaddleX's type, and the line of `file` at fault. */
abstract class DatasetError extends PifError {
  readonly paddlexType: PaddlexErrorType;
  readonly line: number | undefined;

  protected constructor(
    code: PifErrorCode,
    defaultType: PaddlexErrorType,
    message: string,
    details: DatasetErrorDetails = {},
  ) {
    super(code, message, {
      ...details,
      where: details.where ?? (details.line === undefined ? undefined : `line ${details.line}`),
    });
    this.paddlexType = details.paddlexType ?? defaultType;
    this.line = details.line;
  }
}

/** A dataset failed validation or a file it lists is missing (PIF_DATASET_CHECK). */
export class DatasetCheckError extends DatasetError {
  constructor(message: string, details?: DatasetErrorDetails) {
    super('PIF_DATASET_CHECK', 'CheckFailedError', message, details);
  }
}

/** A dataset could not be converted; the source dataset is left as it was (PIF_DATASET_CONVERT). */
export class DatasetConvertError extends DatasetError {
  constructor(message: string, details?: DatasetErrorDetails) {
    super('PIF_DATASET_CONVERT', 'ConvertFailedError', message, details);
  }
}

/** A dataset could not be re-split; the lists are left as they were (PIF_DATASET_SPLIT). */
export class DatasetSplitError extends DatasetError {
  constructor(message: string, details?: DatasetErrorDetails) {
    super('PIF_DATASET_SPLIT', 'SplitFailedError', message, details);
  }
}

/** A module config (`-c file.yaml`) or an override (`-o key=value`) is invalid (PIF_CONFIG). */
export class ConfigError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_CONFIG', message, details);
  }
}

/**
 * A vector index file is missing, damaged or does not match (PIF_INDEX): the message names the
 * file and what is wrong with it. Also a gallery label file that cannot be used.
 */
export class IndexError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_INDEX', message, details);
  }
}

/** Work stopped on request (Ctrl-C, an AbortSignal) before it finished (PIF_CANCELLED). */
export class CancelledError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_CANCELLED', message, details);
  }
}

/**
 * int8 quantisation refused (PIF_QUANTIZE): the quantised model's features fall below the
 * accuracy gate (`minCosine`) on the calibration set; the message names the worst layer.
 */
export class QuantizationError extends PifError {
  /** The gate result: worst and mean feature cosine vs fp32, and the worst layer. */
  readonly report: unknown;
  constructor(message: string, details?: PifErrorDetails & { report?: unknown }) {
    super('PIF_QUANTIZE', message, details);
    this.report = details?.report;
  }
}

/** A failure that should not happen: a bug in this package (PIF_INTERNAL). */
export class InternalError extends PifError {
  constructor(message: string, details?: PifErrorDetails) {
    super('PIF_INTERNAL', message, details);
  }
}

type PifErrorClass = new (message: string, details?: PifErrorDetails) => PifError;

const CLASS_BY_CODE: Readonly<Record<string, PifErrorClass>> = {
  PIF_MODEL_FORMAT: ModelFormatError,
  PIF_MODEL_PARAMS: ModelParamsError,
  PIF_MODEL_NOT_FOUND: ModelNotFoundError,
  PIF_MODEL_LIMIT: ModelLimitError,
  PIF_MODEL_UNSUPPORTED: ModelUnsupportedError,
  PIF_MODEL_CONFIG: ModelConfigError,
  PIF_IO: PifIoError,
  PIF_INVALID_ARG: InvalidArgumentError,
  PIF_UNSUPPORTED: UnsupportedError,
  PIF_CLOSED: ClosedError,
  PIF_NATIVE_LOAD: NativeLoadError,
  PIF_INPUT: InputError,
  PIF_INPUT_NOT_FOUND: InputNotFoundError,
  PIF_INPUT_DECODE: InputDecodeError,
  PIF_DOWNLOAD: DownloadError,
  PIF_RUN: RunError,
  PIF_CONFIG: ConfigError,
  PIF_INDEX: IndexError,
  PIF_INTERNAL: InternalError,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/**
 * Turns an error thrown or rejected by the native addon (an Error with string `code`,
 * `file`, numeric `offset` (-1 when none) and `where`) into the matching PifError
 * subclass. `callerStack`, when given, is the stack captured where the public API was
 * called; the returned error carries it instead of the native (asynchronous, useless)
 * one. Errors that are already PifErrors pass through unchanged.
 */
export function fromNativeError(err: unknown, callerStack?: string): Error {
  if (err instanceof PifError) return err;
  if (!isRecord(err)) {
    return withStack(new InternalError(`native call failed: ${String(err)}`), callerStack);
  }
  const code = typeof err['code'] === 'string' ? err['code'] : undefined;
  const cls = code === undefined ? undefined : CLASS_BY_CODE[code];
  if (cls === undefined) {
    // Not one of ours (a TypeError from node-addon-api argument checks, say): keep it,
    // but give it the caller's stack.
    return err instanceof Error
      ? withStack(err, callerStack)
      : new InternalError(`native call failed: ${inspect(err)}`);
  }
  const file = typeof err['file'] === 'string' && err['file'] !== '' ? err['file'] : undefined;
  const rawOffset = err['offset'];
  const offset =
    typeof rawOffset === 'number' && Number.isFinite(rawOffset) && rawOffset >= 0
      ? rawOffset
      : undefined;
  const where = typeof err['where'] === 'string' && err['where'] !== '' ? err['where'] : undefined;
  const base = typeof err['message'] === 'string' ? err['message'] : inspect(err);
  const out = new cls(describe(base, file, offset, where), { file, offset, where, cause: err });
  return withStack(out, callerStack);
}

/** Appends the file / place to a message unless the message already names them. */
function describe(
  message: string,
  file: string | undefined,
  offset: number | undefined,
  where: string | undefined,
): string {
  const parts: string[] = [];
  if (file !== undefined && !message.includes(file)) parts.push(file);
  if (where !== undefined && !message.includes(where)) parts.push(where);
  if (offset !== undefined && !/\boffset\b|\bbyte\b/.test(message)) parts.push(`byte ${offset}`);
  return parts.length === 0 ? message : `${message} (${parts.join(', ')})`;
}

function withStack<E extends Error>(err: E, callerStack: string | undefined): E {
  if (callerStack === undefined) return err;
  const frames = callerStack.split('\n').slice(1).join('\n');
  const head = `${err.name}: ${err.message}`;
  Object.defineProperty(err, 'stack', {
    value: frames === '' ? head : `${head}\n${frames}`,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  return err;
}

/**
 * Captures the caller's stack now (before any await) and returns a function that
 * converts a native error with it. `below` is the public function whose frame and
 * everything above it should be hidden.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export function captureCaller(below: Function): (err: unknown) => Error {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, below);
  const stack = holder.stack;
  return (err: unknown) => fromNativeError(err, stack);
}
