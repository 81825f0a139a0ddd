/**
 * PaddleX module configs (`-c configs/modules/image_feature/<model>.yaml`) and `-o key=value`
 * overrides (../shared/spec/paddlex-behaviour.md §5.1, §5.2).
 *
 * PaddleX runs every YAML string and every override value through Python's `eval` /
 * `ast.literal_eval`. We parse the same literal syntax (None, booleans, ints, floats, quoted
 * strings, lists, tuples, dicts) with a small parser of our own and never evaluate code; what is
 * not a literal stays a string. Deliberate differences from PaddleX: only the exact string `None`
 * becomes null (PaddleX maps any substring of "None", even `o` or the empty string), and the
 * option is split at its first `=`, so values such as URLs with query strings keep their `=`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse as parseYaml } from 'yaml';

import { ConfigError } from './errors.js';

export type ConfigValue = null | boolean | number | string | ConfigValue[] | ConfigMap;
export interface ConfigMap {
  [key: string]: ConfigValue;
}

/** Thrown inside the literal parser; turned into "not a literal". */
class NotLiteral extends Error {}

const INT_RE = /^(?:0(?:_?0)*|[1-9](?:_?\d)*)$/;
const HEX_RE = /^0[xX](?:_?[0-9a-fA-F])+$/;
const OCT_RE = /^0[oO](?:_?[0-7])+$/;
const BIN_RE = /^0[bB](?:_?[01])+$/;
const DIGITS = String.raw`\d(?:_?\d)*`;
const FLOAT_RE = new RegExp(
  String.raw`^(?:(?:${DIGITS})?\.${DIGITS}|${DIGITS}\.?)(?:[eE][+-]?${DIGITS})?$`,
);

/** A Python number literal (no sign), or undefined. */
function pyNumber(tok: string): number | undefined {
  if (INT_RE.test(tok)) return Number(tok.replaceAll('_', ''));
  if (HEX_RE.test(tok) || OCT_RE.test(tok) || BIN_RE.test(tok)) {
    return Number(tok.replaceAll('_', '').toLowerCase());
  }
  if (FLOAT_RE.test(tok) && /[.eE]/.test(tok)) return Number(tok.replaceAll('_', ''));
  return undefined;
}

class LiteralParser {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(): ConfigValue {
    let v = this.value();
    this.ws();
    if (this.s[this.i] === ',') {
      // A bare tuple: `1, 2` (literal_eval accepts it).
      const items = [v];
      while (this.s[this.i] === ',') {
        this.i++;
        this.ws();
        if (this.i === this.s.length) break;
        items.push(this.value());
        this.ws();
      }
      v = items;
    }
    if (this.i !== this.s.length) throw new NotLiteral();
    return v;
  }

  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s.charAt(this.i))) this.i++;
  }

  private value(): ConfigValue {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) throw new NotLiteral();
    if (c === '[') return this.sequence(']');
    if (c === '(') return this.sequence(')');
    if (c === '{') return this.mapping();
    if (c === "'" || c === '"') return this.string();
    if (c === '+' || c === '-') {
      this.i++;
      const v = this.value();
      if (typeof v !== 'number') throw new NotLiteral();
      return c === '-' ? -v : v;
    }
    const m = /^[A-Za-z0-9_.]+/.exec(this.s.slice(this.i));
    if (m === null) throw new NotLiteral();
    let tok = m[0];
    if (/^[0-9.].*[eE]$/.test(tok)) {
      // A signed exponent: 1e-3 (the sign is not part of the word above).
      const exp = /^[+-][0-9_]+/.exec(this.s.slice(this.i + tok.length));
      if (exp !== null) tok += exp[0];
    }
    this.i += tok.length;
    if (tok === 'None') return null;
    if (tok === 'True') return true;
    if (tok === 'False') return false;
    const n = pyNumber(tok);
    if (n === undefined) throw new NotLiteral();
    return n;
  }

  private sequence(close: string): ConfigValue[] {
    this.i++; // opening bracket
    const out: ConfigValue[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === close) {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== close) throw new NotLiteral();
    }
  }

  private mapping(): ConfigMap {
    this.i++;
    const out: ConfigMap = {};
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') {
        this.i++;
        return out;
      }
      const k = this.value();
      if (k === null || typeof k === 'object') throw new NotLiteral(); // unhashable or None key
      this.ws();
      if (this.s[this.i] !== ':') throw new NotLiteral();
      this.i++;
      out[String(k)] = this.value();
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') throw new NotLiteral();
    }
  }

  private string(): string {
    const q = this.s.charAt(this.i);
    this.i++;
    let out = '';
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) throw new NotLiteral();
      if (c === q) break;
      if (c === '\\') {
        const e = this.s[this.i++];
        const simple: Record<string, string> = {
          n: '\n',
          t: '\t',
          r: '\r',
          '\\': '\\',
          "'": "'",
          '"': '"',
          '0': '\0',
        };
        if (e === undefined) throw new NotLiteral();
        out += simple[e] ?? `\\${e}`;
      } else {
        out += c;
      }
    }
    // Python joins adjacent string literals: 'a' 'b' == 'ab'.
    this.ws();
    if (this.s[this.i] === "'" || this.s[this.i] === '"') out += this.string();
    return out;
  }
}

/**
 * Python `ast.literal_eval(text)` for the literal subset configs use; `undefined` when `text`
 * is not a literal (PaddleX then keeps the raw string).
 */
export function parsePyLiteral(text: string): ConfigValue | undefined {
  try {
    return new LiteralParser(text).parse();
  } catch (err) {
    if (err instanceof NotLiteral) return undefined;
    throw err;
  }
}

/** The value of `-o key=value` as PaddleX reads it, with the exact-`None` rule (§5.2). */
export function parseOverrideValue(raw: string): ConfigValue {
  if (raw === 'None') return null;
  if (['TRUE', 'True', 'true', 'T', 't'].includes(raw)) return true;
  if (['FALSE', 'False', 'false', 'F', 'f'].includes(raw)) return false;
  const v = parsePyLiteral(raw);
  return v === undefined ? raw : v;
}

/** YAML load of a module config: every string value goes through the literal parser. */
export function literalizeStrings(v: unknown): ConfigValue {
  if (typeof v === 'string') {
    const lit = parsePyLiteral(v);
    return lit === undefined ? v : lit;
  }
  if (Array.isArray(v)) return v.map(literalizeStrings);
  if (v !== null && typeof v === 'object') {
    const out: ConfigMap = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      out[k] = literalizeStrings(x);
    return out;
  }
  if (v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new ConfigError(`unsupported config value of type ${typeof v}`);
}

/** Reads a module config file (YAML). Errors name the file and the line. */
export async function loadModuleConfig(file: string): Promise<ConfigMap> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const e = err as Error & { linePos?: { line: number; col: number }[] };
    const pos = e.linePos?.[0];
    throw new ConfigError(`invalid YAML in ${file}: ${e.message}`, {
      file,
      ...(pos === undefined ? {} : { where: `line ${pos.line}, column ${pos.col}` }),
      cause: err,
    });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`config ${file} must be a YAML mapping at the top level`, { file });
  }
  return literalizeStrings(doc) as ConfigMap;
}

export interface OverrideOptions {
  /** Receives PaddleX's notices (`A new field (k) detected!`). */
  warn?: (message: string) => void;
}

/**
 * Applies one `-o key.path=value` to `config` in place, with PaddleX's rules: dotted keys,
 * numeric segments index lists (in range), new keys are created with a notice.
 */
export function applyOverride(
  config: ConfigMap,
  option: string,
  options: OverrideOptions = {},
): void {
  const warn = options.warn ?? ((): void => undefined);
  const eq = option.indexOf('=');
  if (eq <= 0) {
    throw new ConfigError(
      `invalid override '${option}': expected key.path=value (there can be only a = in the option)`,
    );
  }
  const keyPath = option.slice(0, eq);
  const value = parseOverrideValue(option.slice(eq + 1));
  const keys = keyPath.split('.');
  if (keys.some((k) => k === '')) {
    throw new ConfigError(`invalid override '${option}': empty key segment in '${keyPath}'`);
  }
  let node: ConfigValue = config;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const last = i === keys.length - 1;
    const where = keys.slice(0, i + 1).join('.');
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(k)) {
        throw new ConfigError(
          `invalid override '${option}': ${where} indexes a list, use a number`,
        );
      }
      const idx = Number(k);
      if (idx >= node.length) {
        throw new ConfigError(
          `invalid override '${option}': index(${idx}) out of range(${node.length}) at ${where}`,
        );
      }
      if (last) node[idx] = value;
      else node = node[idx] as ConfigValue;
    } else if (node !== null && typeof node === 'object') {
      const map: ConfigMap = node;
      if (last) {
        if (!Object.hasOwn(map, k)) warn(`A new field (${k}) detected!`);
        map[k] = value;
      } else {
        if (!Object.hasOwn(map, k) || map[k] === null) {
          if (!Object.hasOwn(map, k)) warn(`A new series field (${k}) detected!`);
          map[k] = {};
        } else if (typeof map[k] !== 'object') {
          throw new ConfigError(
            `invalid override '${option}': ${where} is ${JSON.stringify(map[k])}, not a mapping or list`,
          );
        }
        node = map[k];
      }
    } else {
      throw new ConfigError(
        `invalid override '${option}': ${keys.slice(0, i).join('.')} is not a mapping or list`,
      );
    }
  }
}

/** The value at a dotted path, or undefined. */
export function configGet(config: ConfigValue, keyPath: string): ConfigValue | undefined {
  let node: ConfigValue | undefined = config;
  for (const k of keyPath.split('.')) {
    if (Array.isArray(node)) node = /^\d+$/.test(k) ? node[Number(k)] : undefined;
    else if (node !== null && typeof node === 'object')
      node = Object.hasOwn(node, k) ? node[k] : undefined;
    else return undefined;
  }
  return node;
}

/** Directory of the module configs shipped with the package. */
export const CONFIG_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'configs',
  'modules',
  'image_feature',
);
