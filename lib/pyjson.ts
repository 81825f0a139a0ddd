/**
 * JSON text exactly as Python's `json.dumps(value, indent=..., ensure_ascii=...)` writes it, so
 * that result files are byte-identical to PaddleX's (../shared/spec/paddlex-behaviour.md §3.5).
 *
 * Numbers: a JS number is a double, and Python's `float.__repr__` prints the shortest string
 * that round-trips that double (the same digits ECMAScript's `toExponential()` picks), laid out
 * Python's way: fixed notation when the decimal exponent is in [-4, 16), else `1.5e-05` /
 * `1e+16`; integral values keep `.0`, negative zero keeps its sign, and non-finite values are
 * `NaN` / `Infinity` / `-Infinity` (Python's default `allow_nan=True`). Values that must print
 * as Python ints are passed as `PyInt`.
 */

/** A value printed as a Python int (no `.0`). */
export class PyInt {
  constructor(readonly value: number | bigint) {}
}

export type PyJsonValue =
  | null
  | boolean
  | number
  | PyInt
  | string
  | readonly PyJsonValue[]
  | ArrayLike<number>
  | { readonly [key: string]: PyJsonValue };

export interface PyJsonOptions {
  /** Spaces per level, or null for Python's compact-with-spaces form (`, ` and `: `). */
  indent?: number | null;
  /** Escape every non-ASCII character as \uXXXX (Python's default is true). */
  ensureAscii?: boolean;
}

/** Python's repr of a float (the double value of `x`). */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // Shortest round-trip digits: "d.ddde+N".
  const [mant = '', expText = '0'] = Math.abs(x).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  const decpt = exp + 1; // value = 0.<digits> * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
    if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp);
  return `${sign}${head}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

function hex4(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Python's json string encoding (`ensure_ascii` true: everything outside ' '..'~' escaped). */
export function pyJsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    const code = s.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (code < 0x20) out += hex4(code);
    else if (ensureAscii && code > 0x7e)
      out += hex4(code); // UTF-16 units: surrogate pairs as Python writes them
    else out += ch;
  }
  return `${out}"`;
}

function isArrayLikeNumbers(v: unknown): v is ArrayLike<number> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** `json.dumps(value, indent=indent, ensure_ascii=ensureAscii)`. */
export function pyJsonDumps(value: PyJsonValue, options: PyJsonOptions = {}): string {
  const indent = options.indent ?? null;
  const ensureAscii = options.ensureAscii ?? true;
  const itemSep = indent === null ? ', ' : ',';
  const write = (v: PyJsonValue, level: number): string => {
    if (v === null) return 'null';
    if (v === true) return 'true';
    if (v === false) return 'false';
    if (typeof v === 'number') return pyFloatRepr(v);
    if (v instanceof PyInt) return String(v.value);
    if (typeof v === 'string') return pyJsonString(v, ensureAscii);
    const open = (items: string[], o: string, c: string): string => {
      if (items.length === 0) return `${o}${c}`;
      if (indent === null) return `${o}${items.join(itemSep)}${c}`;
      const pad = '\n' + ' '.repeat(indent * (level + 1));
      return `${o}${pad}${items.join(itemSep + pad)}\n${' '.repeat(indent * level)}${c}`;
    };
    if (Array.isArray(v) || isArrayLikeNumbers(v)) {
      const items: string[] = [];
      const list = v as ArrayLike<PyJsonValue>;
      for (let i = 0; i < list.length; i++) items.push(write(list[i] as PyJsonValue, level + 1));
      return open(items, '[', ']');
    }
    const items = Object.entries(v as Record<string, PyJsonValue>).map(
      ([k, x]) => `${pyJsonString(k, ensureAscii)}: ${write(x, level + 1)}`,
    );
    return open(items, '{', '}');
  };
  return write(value, 0);
}
