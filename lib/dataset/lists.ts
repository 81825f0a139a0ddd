/**
 * ShiTuRecDataset list files (`train.txt`, `gallery.txt`, `query.txt`): finding the dataset root,
 * reading the lists and validating their lines the way PaddleX's `check_dataset` does
 * (../shared/spec/paddlex-behaviour.md §6), with the deliberate differences of §6.1-6.2:
 *
 * - root discovery failures say what was found instead of a bare `AssertionError`;
 * - lines are split like Python's universal-newline text mode (`\n`, `\r\n`, `\r`), which is what
 *   PaddleX's `open(..., "r")` does, so a trailing `\r` never reaches the label; a UTF-8 byte-order
 *   mark is ignored; empty (or whitespace-only) lines are skipped;
 * - every error names the list file and the 1-based line it is about.
 *
 * PaddleX's own message texts are kept verbatim, our locator is appended after them.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { DatasetCheckError, type DatasetErrorDetails } from '../errors.js';

export type ListTag = 'train' | 'gallery' | 'query';

/** The list files, in the order PaddleX checks them. */
export const LIST_TAGS: readonly ListTag[] = ['train', 'gallery', 'query'];

/** The directory whose parent is the dataset root. */
export const IMAGES_DIR_NAME = 'images';

/** One non-empty line of a list file. */
export interface ListLine {
  /** 1-based line number in the file (universal-newline counting). */
  lineNo: number;
  /** The line without its line ending. */
  text: string;
}

export interface DatasetListEntry {
  /** The image path as written in the list (normally `images/...`, relative to the root). */
  path: string;
  /** `path` joined to the root as Python's `os.path.join` does (an absolute `path` wins). */
  absPath: string;
  /** The label text as written (an integer class id in a valid dataset). */
  label: string;
  /** 1-based line number in the list file. */
  lineNo: number;
}

export interface DatasetList {
  /** Absolute path of the list file. */
  file: string;
  /** The entries in file order. */
  entries: DatasetListEntry[];
}

export interface ReadDatasetListOptions {
  /** Check that every listed image exists and is a file (default true). */
  checkExists?: boolean;
  /** Check that every label is an integer as Python's `int()` reads it (default false). */
  checkLabels?: boolean;
}

/** PaddleX's `FailedError` message layout, with mode `Check dataset`. */
export function checkFailedMessage(info: string, solution?: string): string {
  let msg = `Check dataset failed. We encountered the following error:\n  ${info}`;
  if (solution !== undefined) msg += `\nPlease try to resolve the issue as follows:\n  ${solution}`;
  return msg;
}

function fail(info: string, details: DatasetErrorDetails & { solution?: string } = {}): never {
  const { solution, ...rest } = details;
  throw new DatasetCheckError(checkFailedMessage(info, solution), rest);
}

/** Python's `os.path.join(a, b)` on POSIX: an absolute `b` replaces `a`; nothing is normalised. */
export function pyPathJoin(a: string, b: string): string {
  if (b.startsWith('/')) return b;
  if (a === '' || a.endsWith('/')) return a + b;
  return `${a}/${b}`;
}

/** Python's `os.path.basename` on POSIX (everything after the last `/`, possibly empty). */
export function pyBasename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

const LOCATOR_TEXT_MAX = 200;

/**
 * The locator we append to PaddleX's messages: ` (line 7: "images/a b.jpg 3")`, with the list
 * file named first when the message does not already name it. The line is shown JSON-quoted, so
 * tabs and other invisible characters are visible.
 */
export function lineLocator(file: string, line: ListLine, messageNamesFile: boolean): string {
  let text = line.text;
  if (text.length > LOCATOR_TEXT_MAX) text = `${text.slice(0, LOCATOR_TEXT_MAX)}...`;
  const where = messageNamesFile ? `line ${line.lineNo}` : `${file} line ${line.lineNo}`;
  return ` (${where}: ${JSON.stringify(text)})`;
}

// ---------------------------------------------------------------------------------------------
// Root discovery

export interface FindDatasetRootOptions {
  /** Give up after visiting this many directories (default 100 000). */
  maxDirs?: number;
}

const FOUND_SHOWN = 5;

/**
 * The dataset root: the parent of the single directory named `images` found recursively under
 * `datasetDir` (PaddleX: `Path(dataset_dir).glob("**\/images")`). Symbolic links named `images`
 * that point to a directory count, but no symbolic link is descended into, so link loops cannot
 * trap the walk. Unreadable subdirectories are skipped, as Python's glob does.
 */
export async function findDatasetRoot(
  datasetDir: string,
  options: FindDatasetRootOptions = {},
): Promise<string> {
  const abs = path.resolve(datasetDir);
  const maxDirs = options.maxDirs ?? 100_000;
  const top = await stat(abs).catch(() => undefined);
  if (top === undefined || !top.isDirectory()) {
    fail(`${abs} does not exist.`, { paddlexType: 'DatasetFileNotFoundError', file: abs });
  }
  const found: string[] = [];
  const seen = new Set<string>([`${top.dev}:${top.ino}`]);
  const queue: string[] = [abs];
  let visited = 0;
  while (queue.length > 0) {
    const dir = queue.shift() as string;
    if (++visited > maxDirs) {
      fail(
        `${abs} holds more than ${maxDirs} directories; stopped looking for its '${IMAGES_DIR_NAME}' directory`,
        {
          file: abs,
          solution: `Set the dataset directory to the dataset root itself (the directory that holds \`${IMAGES_DIR_NAME}\`, \`train.txt\`, \`gallery.txt\` and \`query.txt\`)`,
        },
      );
    }
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (dir === abs) {
        fail(`cannot read ${abs}: ${(err as Error).message}`, { file: abs, cause: err });
      }
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        const st = await stat(full).catch(() => undefined);
        if (st === undefined) continue;
        const key = `${st.dev}:${st.ino}`;
        if (e.name === IMAGES_DIR_NAME) found.push(full);
        if (seen.has(key)) continue;
        seen.add(key);
        queue.push(full);
      } else if (e.isSymbolicLink() && e.name === IMAGES_DIR_NAME) {
        const st = await stat(full).catch(() => undefined);
        if (st?.isDirectory()) found.push(full);
      }
    }
  }
  if (found.length !== 1) {
    found.sort();
    const shown = found.slice(0, FOUND_SHOWN).map((f) => path.relative(abs, f));
    const list =
      found.length === 0
        ? ''
        : `: ${shown.join(', ')}${found.length > FOUND_SHOWN ? `, ... (${found.length - FOUND_SHOWN} more)` : ''}`;
    fail(
      `expected exactly one '${IMAGES_DIR_NAME}' directory under ${abs}, found ${found.length}${list}`,
      {
        file: abs,
        solution:
          found.length === 0
            ? `Put the images under <dataset root>/${IMAGES_DIR_NAME}/ and \`train.txt\`, \`gallery.txt\`, \`query.txt\` in <dataset root>`
            : `Keep a single directory named \`${IMAGES_DIR_NAME}\` in the dataset (its parent is the dataset root)`,
      },
    );
  }
  return path.dirname(found[0] as string);
}

// ---------------------------------------------------------------------------------------------
// Reading list files

/** `<root>/<tag>.txt`, as PaddleX spells it in its messages. */
export function listFilePath(root: string, tag: ListTag): string {
  return pyPathJoin(root, `${tag}.txt`);
}

/** Python's universal-newline line ending. */
const NEWLINE = /\r\n|\r|\n/;

/**
 * Reads a list file: UTF-8 (a byte-order mark is ignored), split into lines as Python's text mode
 * does, empty and whitespace-only lines dropped. `root` is only used in the message when the file
 * is missing.
 */
export async function readListLines(file: string, root: string): Promise<ListLine[]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      fail(`${file} does not exist.`, {
        paddlexType: 'DatasetFileNotFoundError',
        file,
        solution: `Ensure that both \`train.txt\`, \`gallery.txt\`, \`query.txt\` exist in ${root}`,
      });
    }
    if (code === 'EISDIR') fail(`${file} is not a file.`, { file });
    fail(`cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    const line = firstInvalidUtf8Line(bytes);
    fail(`${file} is not valid UTF-8 text (line ${line})`, { file, line, cause: err });
  }
  const out: ListLine[] = [];
  const raw = text.split(NEWLINE);
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i] as string;
    if (t.trim() === '') continue;
    out.push({ lineNo: i + 1, text: t });
  }
  return out;
}

/** 1-based line (universal newlines) of the first byte that is not valid UTF-8. */
function firstInvalidUtf8Line(bytes: Buffer): number {
  const offset = firstInvalidUtf8Offset(bytes);
  return bytes.subarray(0, offset).toString('latin1').split(NEWLINE).length;
}

function firstInvalidUtf8Offset(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return b.length;
}

export const DELIMITER = ' ';
export const VALID_NUM_PARTS = 2;

/**
 * PaddleX's delimiter message. The run of 37 spaces is really there: the f-string is continued
 * with a backslash inside the literal, so the next source line's indentation becomes part of it.
 */
export function delimiterMessage(file: string): string {
  return (
    `The number of delimiter-separated items in each row in ${file} ${' '.repeat(36)}` +
    `should be ${VALID_NUM_PARTS} (current delimiter is '${DELIMITER}').`
  );
}

/** Splits a line on one space into exactly two parts (path, label), or throws PaddleX's error. */
export function splitListLine(file: string, line: ListLine): { path: string; label: string } {
  const parts = line.text.split(DELIMITER);
  if (parts.length !== VALID_NUM_PARTS) {
    fail(delimiterMessage(file) + lineLocator(file, line, true), { file, line: line.lineNo });
  }
  return { path: parts[0] as string, label: parts[1] as string };
}

/** Errors that Python's `os.path.exists` turns into False. */
const MISSING_CODES = new Set([
  'ENOENT',
  'ENOTDIR',
  'ENAMETOOLONG',
  'ELOOP',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_ARG_TYPE',
]);

/**
 * Checks that a listed image exists (PaddleX: `<path> does not exist.`) and is a file (ours: a
 * directory can never be read as an image).
 */
export async function checkListedImage(
  file: string,
  line: ListLine,
  absPath: string,
): Promise<void> {
  const problem = await listedImageProblem(absPath);
  if (problem !== null) throwListedImageProblem(file, line, absPath, problem);
}

/** Why a listed image is unusable, or null when it is an existing file (never throws). */
export async function listedImageProblem(
  absPath: string,
): Promise<null | 'missing' | 'not-a-file' | { error: Error }> {
  try {
    const st = await stat(absPath);
    return st.isFile() ? null : 'not-a-file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || MISSING_CODES.has(code)) return 'missing';
    return { error: err as Error };
  }
}

/** Throws the error for a `listedImageProblem` result. */
export function throwListedImageProblem(
  file: string,
  line: ListLine,
  absPath: string,
  problem: 'missing' | 'not-a-file' | { error: Error },
): never {
  const loc = lineLocator(file, line, false);
  if (problem === 'missing') {
    fail(`${absPath} does not exist.${loc}`, {
      paddlexType: 'DatasetFileNotFoundError',
      file,
      line: line.lineNo,
    });
  }
  if (problem === 'not-a-file') {
    fail(`${absPath} is not a file.${loc}`, { file, line: line.lineNo });
  }
  fail(`cannot access ${absPath}: ${problem.error.message}${loc}`, {
    file,
    line: line.lineNo,
    cause: problem.error,
  });
}

// ---------------------------------------------------------------------------------------------
// Labels

/** Characters Python's `str.isspace()` accepts, which `int()` strips from both ends. */
const PY_SPACE =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const PY_DECIMAL = /^[+-]?[0-9](?:_?[0-9])*$/;
/** CPython 3.11+ refuses decimal strings of more than 4300 digits (`sys.int_info`). */
const PY_MAX_STR_DIGITS = 4300;

/**
 * Python's `int(text)` (base 10), or undefined where Python raises `ValueError`: surrounding
 * whitespace, a leading sign, leading zeros and single underscores between digits are accepted.
 * Non-ASCII decimal digits (which Python also accepts) are deliberately refused.
 */
export function parsePyInt(text: string): bigint | undefined {
  const s = text.replace(PY_STRIP, '');
  if (!PY_DECIMAL.test(s)) return undefined;
  const digits = s.replace(/[+_-]/g, '');
  if (digits.length > PY_MAX_STR_DIGITS) return undefined;
  const v = BigInt(digits);
  return s.startsWith('-') ? -v : v;
}

export interface LabelLocation {
  file: string;
  line: ListLine;
}

/**
 * A label as the integer class id PaddleX's analysis reads with `int()`. PaddleX lets the
 * `ValueError` escape; we raise a DatasetCheckError naming the file, the line and the label.
 */
export function parseIntLabel(label: string, where?: LabelLocation): bigint {
  const v = parsePyInt(label);
  if (v !== undefined) return v;
  const info =
    where === undefined
      ? `The label ${JSON.stringify(label)} is not an integer.`
      : `The label ${JSON.stringify(label)} in ${where.file} is not an integer.` +
        lineLocator(where.file, where.line, true);
  fail(info, {
    ...(where === undefined ? {} : { file: where.file, line: where.line.lineNo }),
    solution: 'Labels must be integer class ids (as Python int() reads them, e.g. 0, 17, -1)',
  });
}

// ---------------------------------------------------------------------------------------------
// The list as a whole

/** How many image existence checks run at once. */
export const STAT_CONCURRENCY = 64;

/**
 * Reads `<root>/<tag>.txt` and validates it in file order: the two-part rule, then (by default)
 * that each listed image exists, then (if asked) that every label is an integer. The first
 * failing line raises a DatasetCheckError naming the file and line.
 */
export async function readDatasetList(
  root: string,
  tag: ListTag,
  options: ReadDatasetListOptions = {},
): Promise<DatasetList> {
  const absRoot = path.resolve(root);
  const file = listFilePath(absRoot, tag);
  const lines = await readListLines(file, absRoot);
  const entries: DatasetListEntry[] = lines.map((line) => {
    const { path: p, label } = splitListLine(file, line);
    return { path: p, absPath: pyPathJoin(absRoot, p), label, lineNo: line.lineNo };
  });
  if (options.checkExists ?? true) {
    for (let start = 0; start < entries.length; start += STAT_CONCURRENCY) {
      const chunk = entries.slice(start, start + STAT_CONCURRENCY);
      const problems = await Promise.all(chunk.map((e) => listedImageProblem(e.absPath)));
      for (const [i, problem] of problems.entries()) {
        if (problem === null) continue;
        const line = lines[start + i] as ListLine;
        throwListedImageProblem(file, line, (chunk[i] as DatasetListEntry).absPath, problem);
      }
    }
  }
  if (options.checkLabels ?? false) {
    for (const [i, e] of entries.entries()) {
      parseIntLabel(e.label, { file, line: lines[i] as ListLine });
    }
  }
  return { file, entries };
}
