/**
 * LabelMe → ShiTuRecDataset conversion: PaddleX `dataset_src/convert_dataset.py`
 * (../shared/spec/paddlex-behaviour.md §7.1), made reproducible and safe.
 *
 * Layout read (the root is `datasetDir` itself):
 *   label.txt          class names, one per line; line i (0-based) is class id i
 *   annotations/*.json LabelMe files: `imagePath` ("../images/x.jpg") and `flags` ({name: bool})
 *   images/            the images
 * Written: `train.txt`, `gallery.txt`, `query.txt` with lines `images/<name> <id>`.
 *
 * Rules, as PaddleX unless marked "ours":
 * - Only `srcDatasetType` `LabelMe` (ours: exactly that string; PaddleX's `in ("LabelMe")` is a
 *   substring test). Otherwise PaddleX's Chinese message plus an English sentence.
 * - `label.txt`, `annotations/` and `images/` must exist (PaddleX's message plus English).
 * - label.txt: lines end at `\n`, `\r\n` or `\r` (Python's universal newlines); each line is
 *   stripped of surrounding whitespace; line i gets id i. Empty lines keep their number (so ids
 *   are line numbers, as in PaddleX) but no flag can name them; a final newline does not start a
 *   line. Ours: a class name listed twice is an error (PaddleX silently lets the later line win).
 *   The file must be UTF-8 (a leading BOM is ignored).
 * - Ours: only regular files named `*.json` (any case) in `annotations/` are read, in sorted
 *   order (by code point), not in directory order, so the output is reproducible.
 * - Ours: the image name is the basename of `imagePath` (after stripping whitespace), with `/` or
 *   `\` as separators; PaddleX takes the 3rd `/`-component, which is the same for the documented
 *   `../images/x.jpg`. The name must not be empty, `.`/`..`, or hold whitespace (the list format
 *   could not represent it), and `images/<name>` must exist.
 * - One line per flag whose value is `true`, in the flag order of the JSON file, so an image
 *   with several flags is listed several times. Ours: flag values must be booleans; a `true` flag
 *   missing from label.txt is an error naming the annotation file and the flag (PaddleX:
 *   KeyError); invalid JSON is an error naming the file, line and column. A flag that is `false`
 *   is ignored whatever its name.
 * - Ours: no annotation file, or no flag set to true anywhere, is an error (PaddleX would write
 *   three empty lists).
 * - The lines are cut in order, without shuffling, 50/30/20 into train/gallery/query (./cut.ts).
 * - Ours: a list file whose content would not change is left untouched. Any other existing list
 *   file is first backed up to `<tag>.txt.bak` (the PaddleX docs promise this; its code does not
 *   do it), unless a `.bak` already exists, which is then kept (the split rule), so a re-run
 *   never replaces the first backup. The three files are replaced together or not at all.
 *
 * Nothing on disk changes until everything was read and checked, so any error in the dataset
 * leaves it byte-identical.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { DatasetConvertError } from '../errors.js';
import {
  LIST_TAGS,
  type ListCounts,
  type ListFilePlan,
  cutByPercents,
  listCounts,
  listErrorOf,
  listFileText,
  replaceListFiles,
} from './cut.js';

/** The split PaddleX's conversion uses: train / gallery / query percents. */
export const CONVERT_PERCENTS = [50, 30, 20] as const;

export interface ConvertOptions {
  /** Source format; only `LabelMe` (the default) is supported. */
  srcDatasetType?: string;
  /** Called after each annotation file is read with (files read, files in total). */
  onProgress?: (done: number, total: number) => void;
}

export interface ConvertSummary {
  /** Absolute path of the dataset root. */
  root: string;
  /** Lines in each list written. */
  counts: ListCounts;
  /** Total number of lines (the sum of `counts`). */
  lines: number;
  /** Annotation files read. */
  annotations: number;
  /** Absolute paths of the `.bak` files created by this run (may be empty). */
  backups: string[];
}

/** Converts the LabelMe dataset at `datasetDir` in place; see the module comment. */
export async function convertLabelMe(
  datasetDir: string,
  options: ConvertOptions = {},
): Promise<ConvertSummary> {
  const type = options.srcDatasetType ?? 'LabelMe';
  if (type !== 'LabelMe') {
    throw new DatasetConvertError(
      `数据格式转换失败！不支持${type}格式数据集。当前仅支持 LabelMe 格式。` +
        ` Conversion failed: ${type} datasets are not supported; only LabelMe is supported.`,
    );
  }
  const root = path.resolve(datasetDir);
  const labelPath = path.join(root, 'label.txt');
  const annoDir = path.join(root, 'annotations');
  const imagesDir = path.join(root, 'images');
  for (const [p, wantDir] of [
    [labelPath, false],
    [annoDir, true],
    [imagesDir, true],
  ] as const) {
    const kind = await statKind(p);
    if (kind === (wantDir ? 'dir' : 'file')) continue;
    const english =
      kind === 'missing'
        ? `${p} does not exist`
        : `${p} must be a ${wantDir ? 'directory' : 'file'}`;
    throw new DatasetConvertError(
      `数据格式转换失败！请参考上述\`${type}格式数据集示例\`检查待转换数据集格式。保证${p}文件存在。` +
        ` Conversion failed: ${english}; a LabelMe dataset needs label.txt, annotations/ and images/.`,
      { file: p },
    );
  }

  const labels = parseLabels(labelPath, await readUtf8(labelPath));

  let names: string[];
  try {
    const entries = await readdir(annoDir, { withFileTypes: true });
    names = [];
    for (const e of entries) {
      if (!e.name.toLowerCase().endsWith('.json')) continue;
      if (
        e.isFile() ||
        (e.isSymbolicLink() && (await statKind(path.join(annoDir, e.name))) === 'file')
      ) {
        names.push(e.name);
      }
    }
  } catch (err) {
    throw new DatasetConvertError(`Cannot list ${annoDir}: ${(err as Error).message}`, {
      file: annoDir,
      cause: err,
    });
  }
  names.sort(compareCodePoints);
  if (names.length === 0) {
    throw new DatasetConvertError(`Conversion failed: ${annoDir} holds no .json annotation file.`, {
      file: annoDir,
    });
  }

  const lines: string[] = [];
  const checkedImages = new Set<string>();
  for (const [i, name] of names.entries()) {
    const file = path.join(annoDir, name);
    for (const { image, id } of await readAnnotation(file, labels)) {
      if (!checkedImages.has(image)) {
        const imagePath = path.join(imagesDir, image);
        if ((await statKind(imagePath)) !== 'file') {
          throw new DatasetConvertError(
            `Conversion failed: ${file} refers to the image ${image}, but ${imagePath} does not exist.`,
            { file },
          );
        }
        checkedImages.add(image);
      }
      lines.push(`images/${image} ${id}`);
    }
    options.onProgress?.(i + 1, names.length);
  }
  if (lines.length === 0) {
    throw new DatasetConvertError(
      `Conversion failed: no annotation in ${annoDir} has a flag set to true, so there is nothing to list.`,
      { file: annoDir },
    );
  }

  const [train, gallery, query] = cutByPercents(lines, CONVERT_PERCENTS);
  const parts = { train, gallery, query };
  const plans: ListFilePlan[] = [];
  for (const tag of LIST_TAGS) {
    const text = listFileText(parts[tag]);
    const target = path.join(root, `${tag}.txt`);
    if (await sameContent(target, text)) continue;
    plans.push({ tag, text, backup: true });
  }
  const { backups } = await replaceListFiles(root, plans, listErrorOf(DatasetConvertError));
  return {
    root,
    counts: listCounts(parts),
    lines: lines.length,
    annotations: names.length,
    backups,
  };
}

// ---------------------------------------------------------------------------------------------

type Kind = 'file' | 'dir' | 'other' | 'missing';

async function statKind(p: string): Promise<Kind> {
  try {
    const s = await stat(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

/** Orders strings by Unicode code point (Python's `sorted`), independent of locale. */
function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function sameContent(file: string, text: string): Promise<boolean> {
  try {
    return (await readFile(file)).equals(Buffer.from(text, 'utf8'));
  } catch {
    return false;
  }
}

async function readUtf8(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new DatasetConvertError(
      `Conversion failed: cannot read ${file}: ${(err as Error).message}`,
      {
        file,
        cause: err,
      },
    );
  }
  try {
    // A leading BOM is dropped by the decoder.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new DatasetConvertError(`Conversion failed: ${file} is not valid UTF-8 text.`, {
      file,
      cause: err,
    });
  }
}

/** Class name → id from the text of label.txt (see the module comment). */
function parseLabels(file: string, text: string): Map<string, number> {
  // Python's text-mode readlines(): universal newlines.
  const rows = text.split(/\r\n|\r|\n/);
  if (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
  const labels = new Map<string, number>();
  rows.forEach((row, id) => {
    const name = row.trim();
    if (name === '') return;
    const first = labels.get(name);
    if (first !== undefined) {
      throw new DatasetConvertError(
        `Conversion failed: the class ${JSON.stringify(name)} is listed twice in ${file} ` +
          `(lines ${first + 1} and ${id + 1}), so its id would be ambiguous.`,
        { file, line: id + 1 },
      );
    }
    labels.set(name, id);
  });
  return labels;
}

/** The (image, class id) pairs of one LabelMe annotation file, in flag order. */
async function readAnnotation(
  file: string,
  labels: ReadonlyMap<string, number>,
): Promise<{ image: string; id: number }[]> {
  const text = await readUtf8(file);
  let doc: Json;
  try {
    doc = parseJson(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    const { line, column } = lineColumn(text, err.offset);
    throw new DatasetConvertError(
      `Conversion failed: ${file} is not valid JSON: ${err.message} at line ${line} column ${column}.`,
      { file, line, offset: err.offset, cause: err },
    );
  }
  const bad = (what: string): DatasetConvertError =>
    new DatasetConvertError(`Conversion failed: ${file} ${what}.`, { file });
  if (!(doc instanceof Map)) throw bad('is not a LabelMe annotation (not a JSON object)');
  const imagePath = doc.get('imagePath');
  if (typeof imagePath !== 'string') throw bad('has no "imagePath" string');
  const flags = doc.get('flags');
  if (!(flags instanceof Map)) throw bad('has no "flags" object');

  const ids: number[] = [];
  for (const [flag, value] of flags) {
    if (typeof value !== 'boolean') {
      throw bad(`has the flag ${JSON.stringify(flag)} with a non-boolean value`);
    }
    if (!value) continue;
    const id = labels.get(flag);
    if (id === undefined) {
      throw bad(`sets the flag ${JSON.stringify(flag)}, which is not a class in label.txt`);
    }
    ids.push(id);
  }
  if (ids.length === 0) return [];
  // The image name matters only for an annotation that produces lines.
  const image = imagePath.trim().split(/[/\\]/).pop() ?? '';
  if (image === '' || image === '.' || image === '..') {
    throw bad(`has an "imagePath" without a file name: ${JSON.stringify(imagePath)}`);
  }
  if (/\s/.test(image)) {
    throw bad(
      `has an "imagePath" whose file name contains whitespace (${JSON.stringify(image)}), ` +
        'which the list format "path label" cannot represent',
    );
  }
  return ids.map((id) => ({ image, id }));
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------------------------
// JSON with object key order kept (JS objects put integer-like keys first, which would reorder
// flags named "0", "1", …). Accepts what Python's json.loads accepts: strict JSON plus NaN,
// Infinity and -Infinity; a repeated key keeps its first position and its last value.
// ---------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | JsonObject;
type JsonObject = Map<string, Json>;

class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// eslint-disable-next-line no-control-regex -- JSON forbids raw control characters in strings
const STRING_STOP = /["\\\u0000-\u001f]/g;
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

function parseJson(text: string): Json {
  const p = new JsonParser(text);
  const value = p.value(0);
  p.ws();
  if (p.pos < text.length) p.fail('unexpected data after the JSON value');
  return value;
}

class JsonParser {
  pos = 0;

  constructor(private readonly s: string) {}

  fail(message: string, at = this.pos): never {
    throw new JsonSyntaxError(message, at);
  }

  ws(): void {
    WS.lastIndex = this.pos;
    WS.exec(this.s);
    this.pos = WS.lastIndex;
  }

  value(depth: number): Json {
    if (depth > 1000) this.fail('nesting too deep');
    this.ws();
    const ch = this.s[this.pos];
    switch (ch) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case undefined:
        return this.fail('unexpected end of data, expecting a value');
      default:
        break;
    }
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
    ] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.s);
    if (m === null) this.fail('expecting a value');
    this.pos = NUMBER.lastIndex;
    return Number(m[0]);
  }

  object(depth: number): JsonObject {
    const out: JsonObject = new Map();
    this.pos++; // {
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail('expecting a property name in double quotes');
      const key = this.string();
      this.ws();
      if (this.s[this.pos] !== ':') this.fail("expecting ':' after a property name");
      this.pos++;
      out.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos];
      this.pos++;
      if (c === '}') return out;
      if (c !== ',') this.fail("expecting ',' or '}'", this.pos - 1);
    }
  }

  array(depth: number): Json[] {
    const out: Json[] = [];
    this.pos++; // [
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos];
      this.pos++;
      if (c === ']') return out;
      if (c !== ',') this.fail("expecting ',' or ']'", this.pos - 1);
    }
  }

  string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      STRING_STOP.lastIndex = this.pos;
      const m = STRING_STOP.exec(this.s);
      if (m === null) this.fail('unterminated string', start);
      out += this.s.slice(this.pos, m.index);
      this.pos = m.index + 1;
      const c = m[0];
      if (c === '"') return out;
      if (c !== '\\') this.fail('invalid control character in a string', m.index);
      const e = this.s[this.pos];
      if (e === 'u') {
        const hex = this.s.slice(this.pos + 1, this.pos + 5);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape', this.pos - 1);
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 5;
        continue;
      }
      const r = e === undefined ? undefined : ESCAPES[e];
      if (r === undefined) this.fail('invalid escape', this.pos - 1);
      out += r;
      this.pos++;
    }
  }
}
