/**
 * `check_dataset` for ShiTuRecDataset, as PaddleX's general-recognition dataset checker does it
 * (../shared/spec/paddlex-behaviour.md §6): find the root, validate `train.txt`, `gallery.txt`,
 * `query.txt` in that order, draw sample images, parse the labels and draw the histogram.
 *
 * Order of checks, as in PaddleX: for each list in turn, the file must exist; its lines are
 * shuffled with Python's `random.seed(123)` + `random.shuffle`; then, line by line in shuffled
 * order, the line must split on one space into two parts and the listed image must exist, and the
 * first `sampleCount` lines become demo images. Only after all three lists are valid are the
 * labels parsed as integers (PaddleX's analysis step), in file order.
 *
 * Nothing in the dataset is ever written; outputs go under `<output>/check_dataset/`.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { DatasetCheckError, InvalidArgumentError, PifError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { PyInt } from '../pyjson.js';
import { makeDemoImage, renderHistogramPng, type SplitStats } from './charts.js';
import {
  checkFailedMessage,
  findDatasetRoot,
  LIST_TAGS,
  lineLocator,
  listedImageProblem,
  listFilePath,
  parseIntLabel,
  pyBasename,
  pyPathJoin,
  readListLines,
  STAT_CONCURRENCY,
  splitListLine,
  throwListedImageProblem,
  type ListLine,
  type ListTag,
} from './lists.js';
import { PyRandom } from './pyrandom.js';

/** PaddleX's seed for the sample shuffle. */
export const SAMPLE_SEED = 123;
/** PaddleX's `sample_num`. */
export const DEFAULT_SAMPLE_COUNT = 10;

export interface CheckDatasetOptions {
  /** PaddleX `Global.output`; outputs go to `<output>/check_dataset/` (default `output`). */
  output?: string;
  /** Demo images per list (default 10). */
  sampleCount?: number;
  /** Called as lines are validated: `done` of `total` lines (all three lists). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * `check_dataset_result.json` without `done_flag` (§6.4), in PaddleX's key order. Counts are
 * `PyInt` so that `pyJsonDumps` writes them as Python ints.
 */
export interface CheckDatasetResult {
  check_pass: true;
  attributes: {
    train_samples: PyInt;
    train_sample_paths: string[];
    gallery_samples: PyInt;
    gallery_sample_paths: string[];
    query_samples: PyInt;
    query_sample_paths: string[];
  };
  analysis: { histogram: string };
  /** The basename of the dataset root. */
  dataset_path: string;
  show_type: 'image';
  dataset_type: 'ShiTuRecDataset';
}

interface ParsedLine {
  line: ListLine;
  path: string;
  label: string;
}

interface ListState {
  tag: ListTag;
  file: string;
  lines: ListLine[];
}

/** Python's `random.seed(123); random.shuffle(x)` on a copy of `x`. */
export function pyShuffled<T>(x: readonly T[], seed: number = SAMPLE_SEED): T[] {
  return new PyRandom(seed).shuffle([...x]);
}

/**
 * Checks a ShiTuRecDataset and writes the demo images and `histogram.png` under
 * `<output>/check_dataset/`. Returns the result object (§6.4 minus `done_flag`); throws a
 * DatasetCheckError (with PaddleX's message and our locator) at the first problem. Logs nothing.
 */
export async function checkDataset(
  datasetDir: string,
  options: CheckDatasetOptions = {},
): Promise<CheckDatasetResult> {
  const sampleCount = options.sampleCount ?? DEFAULT_SAMPLE_COUNT;
  if (!Number.isInteger(sampleCount) || sampleCount < 0) {
    throw new InvalidArgumentError(
      `sampleCount must be a non-negative integer, got ${sampleCount}`,
    );
  }
  const root = await findDatasetRoot(datasetDir);
  const outDir = path.join(options.output ?? 'output', 'check_dataset');
  const demoDir = path.join(outDir, 'demo_img');
  await mkdir(outDir, { recursive: true });

  // Read every list up front, only to know the total for progress; each read error is raised
  // in its turn so the order of errors stays PaddleX's.
  const reads = await Promise.all(
    LIST_TAGS.map(async (tag) => {
      const file = listFilePath(root, tag);
      try {
        return { tag, file, lines: await readListLines(file, root) };
      } catch (err) {
        return { tag, file, error: err };
      }
    }),
  );
  const total = reads.reduce((n, r) => n + (r.lines?.length ?? 0), 0);
  let done = 0;
  const progress = (n: number): void => {
    done += n;
    options.onProgress?.(done, total);
  };

  const lists: ListState[] = [];
  const samplePaths: Record<ListTag, string[]> = { train: [], gallery: [], query: [] };
  let demoDirMade = false;
  for (const r of reads) {
    if (r.lines === undefined) throw r.error;
    const { tag, file, lines } = r;
    const order = pyShuffled(lines);
    for (let start = 0; start < order.length; start += STAT_CONCURRENCY) {
      const chunk = order.slice(start, start + STAT_CONCURRENCY);
      // Split and stat the chunk together, then report its first problem in shuffled order.
      const parsed = chunk.map((line): ParsedLine | null => {
        const parts = line.text.split(' ');
        return parts.length === 2
          ? { line, path: parts[0] as string, label: parts[1] as string }
          : null;
      });
      const problems = await Promise.all(
        parsed.map(async (p) => (p === null ? null : listedImageProblem(pyPathJoin(root, p.path)))),
      );
      for (let i = 0; i < chunk.length; i++) {
        const line = chunk[i] as ListLine;
        const p = parsed[i];
        if (p === null || p === undefined)
          splitListLine(file, line); // throws
        else {
          const absPath = pyPathJoin(root, p.path);
          const problem = problems[i];
          if (problem !== null && problem !== undefined) {
            throwListedImageProblem(file, line, absPath, problem);
          }
          if (samplePaths[tag].length < sampleCount) {
            if (!demoDirMade) {
              await mkdir(demoDir, { recursive: true });
              demoDirMade = true;
            }
            const name = pyBasename(p.path);
            await writeDemoImage(file, line, absPath, p.label, path.join(demoDir, name));
            samplePaths[tag].push(`check_dataset/demo_img/${name}`);
          }
        }
      }
      progress(chunk.length);
    }
    lists.push({ tag, file, lines });
  }

  // Analysis: every label must be an integer; classes are the distinct values.
  const stats: SplitStats[] = lists.map(({ tag, file, lines }) => {
    const classes = new Set<bigint>();
    for (const line of lines) {
      const { label } = splitListLine(file, line);
      classes.add(parseIntLabel(label, { file, line }));
    }
    return { tag, numImages: lines.length, numClasses: classes.size };
  });
  await writeFileAtomic(path.join(outDir, 'histogram.png'), await renderHistogramPng(stats));

  const count = (tag: ListTag): PyInt =>
    new PyInt(lists.find((l) => l.tag === tag)?.lines.length ?? 0);
  return {
    check_pass: true,
    attributes: {
      train_samples: count('train'),
      train_sample_paths: samplePaths.train,
      gallery_samples: count('gallery'),
      gallery_sample_paths: samplePaths.gallery,
      query_samples: count('query'),
      query_sample_paths: samplePaths.query,
    },
    analysis: { histogram: 'check_dataset/histogram.png' },
    dataset_path: path.basename(root),
    show_type: 'image',
    dataset_type: 'ShiTuRecDataset',
  };
}

async function writeDemoImage(
  file: string,
  line: ListLine,
  imagePath: string,
  label: string,
  outPath: string,
): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await makeDemoImage(imagePath, label, outPath);
  } catch (err) {
    const reason = err instanceof PifError && err.cause instanceof Error ? err.cause : err;
    throw new DatasetCheckError(
      checkFailedMessage(
        `cannot read the image ${imagePath}: ${(reason as Error).message}` +
          lineLocator(file, line, false),
      ),
      { file, line: line.lineNo, cause: err },
    );
  }
  await writeFileAtomic(outPath, bytes);
}
