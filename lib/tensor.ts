/**
 * Tensors as run() takes and returns them: `{ data, shape, dtype }` with `data` a TypedArray
 * whose element type matches `dtype`.
 */
import { InvalidArgumentError } from './errors.js';
import { describeValue, isPlainObject } from './limits.js';

export type TensorDType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'bool';

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | BigInt64Array;

export interface Tensor<D extends TensorData = TensorData> {
  readonly data: D;
  readonly shape: readonly number[];
  readonly dtype: TensorDType;
}

/** What run() accepts per input: dtype may be left out when the array type implies it. */
export interface TensorInput {
  data: TensorData;
  shape: readonly number[];
  dtype?: TensorDType;
}

interface DTypeInfo {
  bytes: number;
  ctor: new (buffer: ArrayBuffer) => TensorData;
}

const DTYPES: Readonly<Record<TensorDType, DTypeInfo>> = {
  float32: { bytes: 4, ctor: Float32Array },
  float64: { bytes: 8, ctor: Float64Array },
  float16: { bytes: 2, ctor: Uint16Array },
  bfloat16: { bytes: 2, ctor: Uint16Array },
  int8: { bytes: 1, ctor: Int8Array },
  uint8: { bytes: 1, ctor: Uint8Array },
  int16: { bytes: 2, ctor: Int16Array },
  int32: { bytes: 4, ctor: Int32Array },
  int64: { bytes: 8, ctor: BigInt64Array },
  bool: { bytes: 1, ctor: Uint8Array },
};

/** The dtype a TypedArray implies (Uint8Array → uint8, Uint16Array → none: say float16/bfloat16). */
function impliedDType(data: TensorData): TensorDType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return undefined;
}

/** Validates one run() input; returns it with its dtype settled. */
export function checkTensorInput(name: string, value: unknown): Required<TensorInput> {
  const what = `input '${name}'`;
  if (!isPlainObject(value) && !(typeof value === 'object' && value !== null)) {
    throw new InvalidArgumentError(
      `${what} must be { data, shape, dtype? }, got ${describeValue(value)}`,
    );
  }
  const v = value as Record<string, unknown>;
  const data = v['data'];
  if (!ArrayBuffer.isView(data) || data instanceof DataView) {
    throw new InvalidArgumentError(
      `${what}: data must be a TypedArray, got ${describeValue(data)}`,
    );
  }
  const shape = v['shape'];
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)
  ) {
    throw new InvalidArgumentError(
      `${what}: shape must be an array of non-negative integers, got ${describeValue(shape)}`,
    );
  }
  const given = v['dtype'];
  const implied = impliedDType(data as TensorData);
  let dtype: TensorDType;
  if (given === undefined) {
    if (implied === undefined) {
      throw new InvalidArgumentError(
        `${what}: give dtype ('float16' or 'bfloat16') for a Uint16Array`,
      );
    }
    dtype = implied;
  } else {
    if (typeof given !== 'string' || !(given in DTYPES)) {
      throw new InvalidArgumentError(`${what}: unknown dtype ${describeValue(given)}`);
    }
    dtype = given as TensorDType;
    if (!(data instanceof DTYPES[dtype].ctor)) {
      throw new InvalidArgumentError(
        `${what}: dtype '${dtype}' needs a ${DTYPES[dtype].ctor.name}, got ${data.constructor.name}`,
      );
    }
  }
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const elements = (data as TensorData).length;
  if (numel !== elements) {
    throw new InvalidArgumentError(
      `${what}: shape [${(shape as number[]).join(', ')}] has ${numel} elements but data has ${elements}`,
    );
  }
  return { data: data as TensorData, shape: shape as number[], dtype };
}

/** Wraps a native output (JS-owned ArrayBuffer) in the TypedArray of its dtype. */
export function toTensor(dtype: string, shape: number[], buffer: ArrayBuffer): Tensor {
  const info = DTYPES[dtype as TensorDType] as DTypeInfo | undefined;
  if (info === undefined) {
    throw new InvalidArgumentError(`output has unsupported dtype '${dtype}'`);
  }
  return Object.freeze({
    data: new info.ctor(buffer),
    shape: Object.freeze([...shape]),
    dtype: dtype as TensorDType,
  });
}

/** run() inputs: by input name, or a single tensor for a one-input model. */
export type RunInputs = Readonly<Record<string, TensorInput>> | TensorInput;

/**
 * run()'s inputs as the addon takes them, checked here (types, shapes; the addon checks names
 * and dims against the model). `inputNames`: the model's inputs, for a single tensor.
 */
export function nativeInputs(
  inputs: RunInputs,
  inputNames: readonly string[],
  what = 'run()',
): { name: string; dtype: string; shape: number[]; data: ArrayBufferView }[] {
  const list: { name: string; dtype: string; shape: number[]; data: ArrayBufferView }[] = [];
  const single =
    typeof inputs === 'object' &&
    inputs !== null &&
    ArrayBuffer.isView((inputs as TensorInput).data);
  if (single) {
    if (inputNames.length !== 1) {
      throw new InvalidArgumentError(
        `${what}: the model has ${inputNames.length} inputs (${inputNames.join(', ')}); pass { name: tensor, ... }`,
      );
    }
    const name = inputNames[0] as string;
    const t = checkTensorInput(name, inputs);
    list.push({ name, dtype: t.dtype, shape: [...t.shape], data: t.data });
    return list;
  }
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw new InvalidArgumentError(
      `${what}: inputs must be { name: { data, shape, dtype? } } or a single tensor`,
    );
  }
  for (const [name, value] of Object.entries(inputs as Record<string, unknown>)) {
    const t = checkTensorInput(name, value);
    list.push({ name, dtype: t.dtype, shape: [...t.shape], data: t.data });
  }
  return list;
}

/** L2-normalises each row in place; an all-zero row stays zero (PaddleX would give NaN). */
export function normalizeRows(data: Float32Array, dim: number): void {
  for (let r = 0; r < data.length / dim; r++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += (data[r * dim + i] as number) ** 2;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < dim; i++) data[r * dim + i] = (data[r * dim + i] as number) * inv;
  }
}
