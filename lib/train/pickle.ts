/**
 * A Python pickle writer (protocol 4) for what Paddle's checkpoint files hold
 * (../shared/spec/training-packaging.md A3.2): dicts, lists, tuples, str, int, float, bool,
 * None, and numpy arrays in numpy's own reduction (`numpy.core.multiarray._reconstruct` plus
 * the `(1, shape, dtype, is_fortran, raw bytes)` state), so that `pickle.load(f,
 * encoding='latin1')` in Python with numpy 1.x or 2.x (through its `numpy.core` shim) and
 * `paddle.load` give back the same names, shapes and values. No memo: every object is
 * written once, in place.
 */
import { InvalidArgumentError } from '../errors.js';

/** numpy dtypes we write, with their pickled names and item sizes. */
const NP_DTYPES = {
  float32: { name: 'f4', size: 4 },
  float64: { name: 'f8', size: 8 },
  int64: { name: 'i8', size: 8 },
  int32: { name: 'i4', size: 4 },
  uint8: { name: 'u1', size: 1 },
} as const;

export type NdDtype = keyof typeof NP_DTYPES;

/** A C-order numpy array: `data` holds prod(shape) elements of `dtype`, little-endian. */
export class NdArray {
  constructor(
    readonly dtype: NdDtype,
    readonly shape: readonly number[],
    readonly data: ArrayBufferView,
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new InvalidArgumentError(`NdArray: bad shape [${shape.join(', ')}]`);
    if (data.byteLength !== n * NP_DTYPES[dtype].size)
      throw new InvalidArgumentError(
        `NdArray: ${data.byteLength} bytes for ${dtype}[${shape.join(', ')}] (${n * NP_DTYPES[dtype].size} expected)`,
      );
  }
}

/**
 * A Python float even when the value is integral (a JS number that is a safe integer is an
 * int; -0 and anything else is a float).
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A Python tuple (a JS array is a list). */
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloat
  | PyTuple
  | NdArray
  | readonly PyValue[]
  | { readonly [key: string]: PyValue };

// Opcodes (Python's Lib/pickle.py names).
const OP = {
  PROTO: 0x80,
  STOP: 0x2e, // .
  NONE: 0x4e, // N
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a, // J
  LONG1: 0x8a,
  BINFLOAT: 0x47, // G
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE: 0x58, // X
  SHORT_BINBYTES: 0x43, // C
  BINBYTES: 0x42, // B
  BINBYTES8: 0x8e,
  EMPTY_DICT: 0x7d, // }
  EMPTY_LIST: 0x5d, // ]
  MARK: 0x28, // (
  SETITEMS: 0x75, // u
  APPENDS: 0x65, // e
  TUPLE: 0x74, // t
  EMPTY_TUPLE: 0x29, // )
  STACK_GLOBAL: 0x93,
  REDUCE: 0x52, // R
  BUILD: 0x62, // b
} as const;

class Writer {
  #chunks: Uint8Array[] = [];
  #cur = new Uint8Array(1 << 16);
  #pos = 0;
  #flush(): void {
    if (this.#pos > 0) this.#chunks.push(this.#cur.slice(0, this.#pos));
    this.#pos = 0;
  }
  byte(b: number): void {
    if (this.#pos === this.#cur.length) this.#flush();
    this.#cur[this.#pos++] = b;
  }
  bytes(b: Uint8Array): void {
    if (b.length > 4096) {
      this.#flush();
      this.#chunks.push(b);
      return;
    }
    for (const x of b) this.byte(x);
  }
  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    this.bytes(b);
  }
  done(): Buffer {
    this.#flush();
    return Buffer.concat(this.#chunks);
  }
}

function writeStr(w: Writer, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length < 256) {
    w.byte(OP.SHORT_BINUNICODE);
    w.byte(b.length);
  } else {
    w.byte(OP.BINUNICODE);
    w.u32(b.length);
  }
  w.bytes(b);
}

function writeBytes(w: Writer, b: Uint8Array): void {
  if (b.length < 256) {
    w.byte(OP.SHORT_BINBYTES);
    w.byte(b.length);
  } else if (b.length < 2 ** 32) {
    w.byte(OP.BINBYTES);
    w.u32(b.length);
  } else {
    w.byte(OP.BINBYTES8);
    const n = new Uint8Array(8);
    new DataView(n.buffer).setBigUint64(0, BigInt(b.length), true);
    w.bytes(n);
  }
  w.bytes(b);
}

function writeInt(w: Writer, v: bigint): void {
  if (v >= -(2n ** 31n) && v < 2n ** 31n) {
    w.byte(OP.BININT);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, Number(v), true);
    w.bytes(b);
    return;
  }
  // LONG1: little-endian two's complement, as few bytes as hold the sign.
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const sign = (out[out.length - 1] as number) & 0x80;
    if ((x === 0n && sign === 0) || (x === -1n && sign !== 0)) break;
  }
  w.byte(OP.LONG1);
  w.byte(out.length);
  w.bytes(Uint8Array.from(out));
}

function writeGlobal(w: Writer, module: string, name: string): void {
  writeStr(w, module);
  writeStr(w, name);
  w.byte(OP.STACK_GLOBAL);
}

function writeTuple(w: Writer, items: readonly PyValue[]): void {
  if (items.length === 0) {
    w.byte(OP.EMPTY_TUPLE);
    return;
  }
  w.byte(OP.MARK);
  for (const v of items) writeValue(w, v);
  w.byte(OP.TUPLE);
}

// numpy's ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b'), then BUILD with
// (1, shape, dtype('<f4'), False, raw bytes); the dtype is dtype('f4', False, True) built with
// (3, '<', None, None, None, -1, -1, 0).
function writeArray(w: Writer, a: NdArray): void {
  writeGlobal(w, 'numpy.core.multiarray', '_reconstruct');
  w.byte(OP.MARK);
  writeGlobal(w, 'numpy', 'ndarray');
  writeTuple(w, [0]);
  writeBytes(w, Uint8Array.of(0x62));
  w.byte(OP.TUPLE);
  w.byte(OP.REDUCE);
  w.byte(OP.MARK);
  writeInt(w, 1n);
  writeTuple(w, a.shape);
  writeGlobal(w, 'numpy', 'dtype');
  writeTuple(w, [NP_DTYPES[a.dtype].name, false, true]);
  w.byte(OP.REDUCE);
  const order = NP_DTYPES[a.dtype].size === 1 ? '|' : '<';
  writeTuple(w, [3, order, null, null, null, -1, -1, 0]);
  w.byte(OP.BUILD);
  w.byte(OP.NEWFALSE);
  writeBytes(w, new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  w.byte(OP.TUPLE);
  w.byte(OP.BUILD);
}

function writeValue(w: Writer, v: PyValue): void {
  if (v === null) w.byte(OP.NONE);
  else if (v === true) w.byte(OP.NEWTRUE);
  else if (v === false) w.byte(OP.NEWFALSE);
  else if (typeof v === 'bigint') writeInt(w, v);
  else if (typeof v === 'number' || v instanceof PyFloat) {
    const x = typeof v === 'number' ? v : v.value;
    if (typeof v === 'number' && Number.isSafeInteger(x) && !Object.is(x, -0)) {
      writeInt(w, BigInt(x));
      return;
    }
    w.byte(OP.BINFLOAT);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    w.bytes(b);
  } else if (typeof v === 'string') writeStr(w, v);
  else if (v instanceof NdArray) writeArray(w, v);
  else if (v instanceof PyTuple) writeTuple(w, v.items);
  else if (Array.isArray(v)) {
    w.byte(OP.EMPTY_LIST);
    if (v.length === 0) return;
    w.byte(OP.MARK);
    for (const x of v as readonly PyValue[]) writeValue(w, x);
    w.byte(OP.APPENDS);
  } else {
    w.byte(OP.EMPTY_DICT);
    const entries = Object.entries(v as { readonly [key: string]: PyValue });
    if (entries.length === 0) return;
    w.byte(OP.MARK);
    for (const [k, x] of entries) {
      writeStr(w, k);
      writeValue(w, x);
    }
    w.byte(OP.SETITEMS);
  }
}

/** `v` as a protocol-4 pickle (what Python's pickle.dumps(v, protocol=4) loads back as). */
export function encodePickle(v: PyValue): Buffer {
  const w = new Writer();
  w.byte(OP.PROTO);
  w.byte(4);
  writeValue(w, v);
  w.byte(OP.STOP);
  return w.done();
}
