/**
 * The result of feature extraction for one input, with PaddleX's views (IdentityResult, see
 * ../shared/spec/paddlex-behaviour.md §3): `json` ({ res: { input_path, page_index, feature } }),
 * `print()` and `saveToJson()`. JSON text is byte-identical to PaddleX's for the same features:
 * float32 values are widened to double and printed as Python's json module prints them
 * (lib/pyjson.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { InvalidArgumentError, PifIoError } from './errors.js';
import { PyInt, pyJsonDumps, type PyJsonValue } from './pyjson.js';

export interface ResultJsonOptions {
  /** Spaces per level (default 4, as PaddleX); null for one line. */
  indent?: number | null;
  /** Escape non-ASCII characters (default false, as PaddleX). */
  ensureAscii?: boolean;
}

export interface PrintOptions extends ResultJsonOptions {
  /** true: JSON text; false (default, as PaddleX's code): a Python-style repr. */
  jsonFormat?: boolean;
}

/** The public view of a result, keyed as PaddleX keys it. */
export interface FeatureResultJson {
  res: { input_path: string | null; page_index: number | null; feature: number[] };
}

function checkJsonOptions(
  o: unknown,
  what: string,
): { indent: number | null; ensureAscii: boolean } {
  if (o === undefined) return { indent: 4, ensureAscii: false };
  if (typeof o !== 'object' || o === null) {
    throw new InvalidArgumentError(`${what}: options must be an object`);
  }
  const opts = o as Record<string, unknown>;
  const indent = opts['indent'] === undefined ? 4 : opts['indent'];
  if (indent !== null && (typeof indent !== 'number' || !Number.isInteger(indent) || indent < 0)) {
    throw new InvalidArgumentError(`${what}: indent must be a non-negative integer or null`);
  }
  const ensureAscii = opts['ensureAscii'] ?? false;
  if (typeof ensureAscii !== 'boolean') {
    throw new InvalidArgumentError(`${what}: ensureAscii must be a boolean`);
  }
  return { indent, ensureAscii };
}

/**
 * `mkdir -p` without fs.mkdir's `recursive` flag, which loops forever on some file systems
 * (e.g. a missing directory under /proc, seen with Node 20).
 */
async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw err;
    }
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await ensureDir(parent);
  }
  try {
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Python's repr of a float32 value as NumPy prints array items (shortest float32 digits). */
function float32Repr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  for (let p = 1; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) {
      const n = Number(s);
      const fixed = Math.abs(n) >= 1e-4 && Math.abs(n) < 1e16 ? n.toString() : n.toExponential();
      return fixed.includes('.') || fixed.includes('e') ? fixed : `${fixed}.`;
    }
  }
  return String(x);
}

export class FeatureResult {
  /** The local file the feature came from (null for pixel / buffer inputs). */
  readonly inputPath: string | null;
  /** Page of a multi-page input (PDF), else null. */
  readonly pageIndex: number | null;
  /** The L2-normalised feature vector (empty when `error` is set). */
  readonly feature: Float32Array;
  /**
   * Set when this input could not be read or processed (predict() yields such results in
   * place, so one bad input never hides the others); null otherwise.
   */
  readonly error: Error | null;

  constructor(
    inputPath: string | null,
    pageIndex: number | null,
    feature: Float32Array,
    error: Error | null = null,
  ) {
    if (inputPath !== null && typeof inputPath !== 'string') {
      throw new InvalidArgumentError('FeatureResult: inputPath must be a string or null');
    }
    if (pageIndex !== null && (!Number.isInteger(pageIndex) || pageIndex < 0)) {
      throw new InvalidArgumentError(
        'FeatureResult: pageIndex must be a non-negative integer or null',
      );
    }
    if (!(feature instanceof Float32Array)) {
      throw new InvalidArgumentError('FeatureResult: feature must be a Float32Array');
    }
    this.inputPath = inputPath;
    this.pageIndex = pageIndex;
    this.feature = feature;
    this.error = error;
  }

  /** `{ res: { input_path, page_index, feature } }` (feature as plain numbers). */
  get json(): FeatureResultJson {
    return {
      res: {
        input_path: this.inputPath,
        page_index: this.pageIndex,
        feature: Array.from(this.feature),
      },
    };
  }

  #inner(): { [key: string]: PyJsonValue } {
    return {
      input_path: this.inputPath,
      page_index: this.pageIndex === null ? null : new PyInt(this.pageIndex),
      feature: this.feature,
    };
  }

  /** JSON text of `{"res": {...}}` as Python's json.dumps writes it. */
  toJsonString(options?: ResultJsonOptions): string {
    const o = checkJsonOptions(options, 'FeatureResult.toJsonString');
    return pyJsonDumps({ res: this.#inner() }, o);
  }

  /**
   * The Python-style repr PaddleX logs: `{'res': {'input_path': ..., 'page_index': None,
   * 'feature': array([ 0.049..., ..., -0.071...], dtype=float32)}}` (NumPy's threshold=1,
   * edgeitems=1 summary).
   */
  toString(): string {
    const f = this.feature;
    const items = f.length <= 1 ? Array.from(f) : [f[0] as number, f[f.length - 1] as number];
    const reprs = items.map(float32Repr);
    const pad = reprs.some((r) => r.startsWith('-'));
    const shown = reprs.map((r) => (pad && !r.startsWith('-') ? ` ${r}` : r));
    const body = f.length <= 1 ? shown.join('') : `${shown[0]}, ..., ${shown[1]}`;
    const str = (s: string | null): string =>
      s === null ? 'None' : `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    return (
      `{'res': {'input_path': ${str(this.inputPath)}, 'page_index': ` +
      `${this.pageIndex === null ? 'None' : String(this.pageIndex)}, ` +
      `'feature': array([${body}], dtype=float32)}}`
    );
  }

  /** Logs the result: JSON text with `jsonFormat: true`, else the Python-style repr. */
  print(options?: PrintOptions): void {
    const jsonFormat = options?.jsonFormat ?? false;
    if (typeof jsonFormat !== 'boolean') {
      throw new InvalidArgumentError('FeatureResult.print: jsonFormat must be a boolean');
    }
    console.log(jsonFormat ? this.toJsonString(options) : this.toString());
  }

  /**
   * Writes the result as PaddleX does: a path ending in `.json` is the file; any other path is a
   * directory that receives `<input stem>_res.json` (`<stem>_<page>_res.json` for pages of a
   * multi-page input, so no page overwrites another; `<unix time>_<random>_res.json` without an
   * input path). The file holds the inner object (no "res" wrapper). Written to a temporary file
   * and renamed, so an interrupted save never leaves a partial file. Returns the file written.
   */
  async saveToJson(savePath: string, options?: ResultJsonOptions): Promise<string> {
    if (typeof savePath !== 'string' || savePath === '') {
      throw new InvalidArgumentError(
        'FeatureResult.saveToJson: savePath must be a non-empty string',
      );
    }
    const o = checkJsonOptions(options, 'FeatureResult.saveToJson');
    if (this.error !== null) {
      throw new InvalidArgumentError(
        `FeatureResult.saveToJson: this input failed (${this.error.message}); there is no feature to save`,
      );
    }
    let file: string;
    if (path.extname(savePath).toLowerCase() === '.json') {
      file = savePath;
    } else {
      let stem: string;
      if (this.inputPath === null) {
        const rnd = 1000 + Math.floor(Math.random() * 9000);
        stem = `${Math.floor(Date.now() / 1000)}_${rnd}`;
      } else {
        stem = path.parse(path.basename(this.inputPath)).name;
        if (this.pageIndex !== null) stem += `_${this.pageIndex}`;
      }
      file = path.join(savePath, `${stem}_res.json`);
    }
    const text = pyJsonDumps(this.#inner(), o);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await ensureDir(path.dirname(file));
      await writeFile(tmp, text, 'utf8');
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new PifIoError(`cannot write ${file}: ${(err as Error).message}`, {
        file,
        cause: err,
      });
    }
    return file;
  }
}
