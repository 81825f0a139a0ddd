/**
 * Re-split a ShiTuRecDataset: PaddleX `dataset_src/split_dataset.py`
 * (../shared/spec/paddlex-behaviour.md §7.2), seeded so that it is reproducible.
 *
 * What it does, in order:
 * 1. Checks the percents: each must be a number; `train + gallery + query` must equal 100
 *    (PaddleX's message `The sum of train_rate(a), gallery_rate(b), query_rate(c) should equal
 *    100!`), then all three must be > 0 (`The train_rate(a) and gallery_rate(b) and
 *    query_rate(c) should be greater than 0!`). The seed must be an integer.
 * 2. Finds the root: `datasetDir` itself when it holds any of the list files; otherwise, when
 *    exactly one directory named `images` exists below it, that directory's parent (the root
 *    rule of the dataset check).
 * 3. Reads whichever of `train.txt`, `gallery.txt`, `query.txt` exist and concatenates their lines
 *    in that order. Lines end at `\n`, `\r\n` or `\r` (Python's universal newlines, as in
 *    PaddleX's text-mode `readlines()`). Deviations from PaddleX, which keeps the raw lines (so
 *    a last line without a newline ran into the next one): files must be UTF-8 (an invalid file
 *    is an error, never rewritten with replacement characters); a leading BOM is dropped; blank
 *    (whitespace-only) lines are skipped; every line is written ending in `\n`.
 *    No list file at all, or no line in them, is an error.
 * 4. Shuffles the lines with Python's `random.seed(seed); random.shuffle(lines)` (PaddleX does not
 *    seed, so its split cannot be reproduced), then cuts them globally (not per class) with the
 *    cut rule of ./cut.ts.
 * 5. Writes the three lists. Each existing list file is first backed up to `<tag>.txt.bak`, but
 *    only when no `<tag>.txt.bak` exists yet (exactly PaddleX's rule: a second split keeps the
 *    first backup). All three are replaced together or not at all (see `replaceListFiles`).
 *
 * Nothing on disk changes before step 5, so any validation error leaves the dataset as it was.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { DatasetSplitError } from '../errors.js';
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
import { PyRandom } from './pyrandom.js';

export interface SplitOptions {
  /** Percent of lines for train.txt (> 0). */
  trainPercent: number;
  /** Percent of lines for gallery.txt (> 0). */
  galleryPercent: number;
  /** Percent of lines for query.txt (> 0); the three must sum to 100. */
  queryPercent: number;
  /** Seed of the shuffle (Python `random.seed(seed)`); default 123. */
  seed?: number | bigint;
}

export interface SplitSummary {
  /** Absolute path of the dataset root holding the list files. */
  root: string;
  /** Lines written to each list. */
  counts: ListCounts;
  /** Absolute paths of the `.bak` files created by this run (may be empty). */
  backups: string[];
}

/** The default shuffle seed (the seed the dataset check uses for its sample images). */
export const DEFAULT_SPLIT_SEED = 123;

/** Re-splits the dataset in (or below) `datasetDir`; see the module comment. */
export async function splitDataset(
  datasetDir: string,
  options: SplitOptions,
): Promise<SplitSummary> {
  const { trainPercent: a, galleryPercent: b, queryPercent: c } = options;
  const seed = options.seed ?? DEFAULT_SPLIT_SEED;
  checkPercents(a, b, c);
  if (typeof seed === 'number' ? !Number.isSafeInteger(seed) : typeof seed !== 'bigint') {
    throw new DatasetSplitError(`The split seed must be an integer, got ${String(seed)}`);
  }

  const root = await findSplitRoot(path.resolve(datasetDir));
  const lines: string[] = [];
  let found = 0;
  for (const tag of LIST_TAGS) {
    const file = path.join(root, `${tag}.txt`);
    const text = await readListFile(file);
    if (text === undefined) continue;
    found++;
    lines.push(...listLines(text));
  }
  if (found === 0) {
    throw new DatasetSplitError(
      `None of train.txt, gallery.txt, query.txt exists in ${root}; there is nothing to split.`,
      { file: root, paddlexType: 'DatasetFileNotFoundError' },
    );
  }
  if (lines.length === 0) {
    throw new DatasetSplitError(
      `The list files in ${root} hold no lines; there is nothing to split.`,
      { file: root },
    );
  }

  new PyRandom(seed).shuffle(lines);
  const [train, gallery, query] = cutByPercents(lines, [a, b, c]);
  const parts = { train, gallery, query };
  const plans: ListFilePlan[] = LIST_TAGS.map((tag) => ({
    tag,
    text: listFileText(parts[tag]),
    backup: true,
  }));
  const { backups } = await replaceListFiles(root, plans, listErrorOf(DatasetSplitError));
  return {
    root,
    counts: listCounts(parts),
    backups,
  };
}

/** PaddleX's two assertions, in its order and with its messages. */
function checkPercents(a: unknown, b: unknown, c: unknown): void {
  const names = ['trainPercent', 'galleryPercent', 'queryPercent'];
  [a, b, c].forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new DatasetSplitError(
        `The split percent ${names[i]} must be a finite number, got ${String(v)}`,
      );
    }
  });
  const [x, y, z] = [a, b, c] as [number, number, number];
  if (x + y + z !== 100) {
    throw new DatasetSplitError(
      `The sum of train_rate(${x}), gallery_rate(${y}), query_rate(${z}) should equal 100!`,
    );
  }
  if (!(x > 0 && y > 0 && z > 0)) {
    throw new DatasetSplitError(
      `The train_rate(${x}) and gallery_rate(${y}) and query_rate(${z}) should be greater than 0!`,
    );
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function hasListFile(dir: string): Promise<boolean> {
  for (const tag of LIST_TAGS) {
    try {
      await stat(path.join(dir, `${tag}.txt`));
      return true;
    } catch {
      // try the next
    }
  }
  return false;
}

/** Every directory named `images` under `dir` (symbolic links are not followed). */
async function findImagesDirs(dir: string): Promise<string[]> {
  const found: string[] = [];
  const queue = [dir];
  for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name === 'images') found.push(p);
      queue.push(p);
    }
  }
  return found;
}

/** The directory whose list files are split (see step 2 of the module comment). */
async function findSplitRoot(dir: string): Promise<string> {
  if (!(await isDir(dir))) {
    throw new DatasetSplitError(`The dataset directory ${dir} does not exist.`, {
      file: dir,
      paddlexType: 'DatasetFileNotFoundError',
    });
  }
  if (await hasListFile(dir)) return dir;
  const images = await findImagesDirs(dir);
  const [only] = images;
  if (images.length === 1 && only !== undefined) return path.dirname(only);
  throw new DatasetSplitError(
    `None of train.txt, gallery.txt, query.txt exists in ${dir}, and the dataset root cannot be ` +
      `found below it: expected exactly one \`images\` directory, found ${images.length}.`,
    { file: dir, paddlexType: 'DatasetFileNotFoundError' },
  );
}

/** The text of a list file, or undefined when there is no such file. */
async function readListFile(file: string): Promise<string | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DatasetSplitError(`Cannot read ${file}: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new DatasetSplitError(`${file} is not valid UTF-8 text; it was left unchanged.`, {
      file,
      cause: err,
    });
  }
}

/**
 * The non-blank lines of a list file, split at `\n`, `\r\n` or `\r` (Python's universal
 * newlines, as PaddleX's text-mode `readlines()` and the dataset check read them). The
 * TextDecoder already dropped a leading BOM.
 */
function listLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).filter((line) => line.trim() !== '');
}
