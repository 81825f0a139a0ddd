/**
 * The list files of a ShiTuRecDataset (`train.txt`, `gallery.txt`, `query.txt`): the rule that
 * cuts one list of lines into the three of them, shared by convert and split, and the
 * all-or-nothing replacement of the files on disk.
 *
 * Cut rule (PaddleX `dataset_src/convert_dataset.py` and `split_dataset.py`): the segments are
 * taken in order from the start; a segment with percent 0 is empty (PaddleX skips it); a
 * segment ends at `start + round(n * percent / 100)` with Python's `round` (half to even); the
 * last segment with a non-zero percent takes whatever remains. With percents that are all > 0
 * and sum to 100 the rounded ends can never pass `n`; other inputs could make PaddleX index past
 * the end of its list (IndexError), so here an end is clamped to `n` instead.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, lstat, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

import { fsyncDir, tempPathFor } from '../fsutil.js';
import { pyRound } from './pyrandom.js';

/** The three list files, in PaddleX's order. */
export const LIST_TAGS = ['train', 'gallery', 'query'] as const;

export type ListTag = (typeof LIST_TAGS)[number];

/** Number of lines per list file. */
export interface ListCounts {
  train: number;
  gallery: number;
  query: number;
}

/**
 * `[start, end)` bounds of each segment of `n` items cut by `percents` (see the module comment).
 * Throws a RangeError for a negative or non-integer `n`, a negative or non-finite percent, or
 * percents that are all 0 (every item would be dropped).
 */
export function cutBounds(n: number, percents: readonly number[]): [number, number][] {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`item count must be a non-negative integer, got ${n}`);
  }
  for (const p of percents) {
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0) {
      throw new RangeError(`percents must be finite numbers >= 0, got ${String(p)}`);
    }
  }
  let last = -1;
  percents.forEach((p, i) => {
    if (p > 0) last = i;
  });
  if (last < 0) throw new RangeError('at least one percent must be greater than 0');

  const bounds: [number, number][] = [];
  let start = 0;
  percents.forEach((p, i) => {
    if (p === 0) {
      bounds.push([start, start]);
      return;
    }
    // Same double arithmetic as Python's `image_num * rate / 100`.
    let end = i === last ? n : start + pyRound((n * p) / 100);
    end = Math.min(Math.max(end, start), n);
    bounds.push([start, end]);
    start = end;
  });
  return bounds;
}

/** Cuts `items` into train / gallery / query by `percents` with PaddleX's rule; order is kept. */
export function cutByPercents<T>(
  items: readonly T[],
  percents: readonly [train: number, gallery: number, query: number],
): [train: T[], gallery: T[], query: T[]] {
  const [a, b, c] = cutBounds(items.length, percents) as [
    [number, number],
    [number, number],
    [number, number],
  ];
  return [items.slice(a[0], a[1]), items.slice(b[0], b[1]), items.slice(c[0], c[1])];
}

/** How many lines each list got. */
export function listCounts(
  parts: Readonly<Record<ListTag, readonly string[]>>,
): Record<ListTag, number> {
  return { train: parts.train.length, gallery: parts.gallery.length, query: parts.query.length };
}

/** replaceListFiles' `makeError` for a dataset error class (DatasetConvertError, ...). */
export function listErrorOf(
  E: new (message: string, details: { file?: string | undefined; cause?: unknown }) => Error,
): (message: string, file: string | undefined, cause: unknown) => Error {
  return (message, file, cause) => new E(message, { file, cause });
}

/** The text of a list file holding `lines` (each ended by `\n`; empty file for no lines). */
export function listFileText(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Replacing the list files
// ---------------------------------------------------------------------------------------------

/** One list file to (re)write. */
export interface ListFilePlan {
  tag: ListTag;
  /** The new content. */
  text: string;
  /**
   * Back up an existing `<tag>.txt` to `<tag>.txt.bak` first, but only when no entry of that
   * name exists yet (PaddleX's split rule: a second run keeps the first backup).
   */
  backup: boolean;
}

export interface ReplaceResult {
  /** Absolute paths of the `.bak` files created by this call. */
  backups: string[];
  /** Absolute paths of the list files written. */
  written: string[];
}

/**
 * Test-only fault injection: when set, called before each step of `replaceListFiles` with the
 * step's name (`temp:<tag>`, `keep:<tag>`, `backup:<tag>`, `replace:<tag>`, `sync`); a throw
 * simulates that step failing. @internal
 */
export const listWriteHooks: { beforeStep?: ((step: string) => void) | undefined } = {};

function step(name: string): void {
  listWriteHooks.beforeStep?.(name);
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** A second name for `src` at `dst` (a hard link; a copy where links are not supported). */
async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOENT') throw err;
    await copyFile(src, dst, fsConstants.COPYFILE_EXCL);
  }
}

async function writeTemp(file: string, text: string): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface Slot {
  plan: ListFilePlan;
  target: string;
  bak: string;
  tmp: string | undefined;
  /** A hidden second link to the old list file, so a failed apply can put it back. */
  keep: string | undefined;
  existed: boolean;
  makeBackup: boolean;
  backedUp: boolean;
  replaced: boolean;
}

/**
 * Replaces list files in `root` all or nothing. First every new file is written to a temp file
 * in `root` and fsynced, and a hidden second link to every existing list file is made; nothing
 * visible has changed yet. Then, per file, the `.bak` is made as a hard link to the old file
 * (copy fallback), so the old list stays in place until the temp file is renamed over it; the
 * directory is fsynced at the end. If any step fails, what was done is undone (the old files are
 * put back from their hidden links, created `.bak` files removed) and `makeError` builds the
 * error thrown. Only when even the undo fails are the hidden links left behind, and the error
 * names them.
 */
export async function replaceListFiles(
  root: string,
  plans: readonly ListFilePlan[],
  makeError: (message: string, file: string | undefined, cause: unknown) => Error,
): Promise<ReplaceResult> {
  const slots: Slot[] = plans.map((plan) => {
    const target = path.join(root, `${plan.tag}.txt`);
    return {
      plan,
      target,
      bak: `${target}.bak`,
      tmp: undefined,
      keep: undefined,
      existed: false,
      makeBackup: false,
      backedUp: false,
      replaced: false,
    };
  });
  let current: string | undefined;
  try {
    // Prepare: nothing a user sees changes here.
    for (const s of slots) {
      current = s.target;
      s.existed = await exists(s.target);
      s.makeBackup = s.plan.backup && s.existed && !(await exists(s.bak));
      step(`temp:${s.plan.tag}`);
      const tmp = tempPathFor(s.target);
      s.tmp = tmp;
      await writeTemp(tmp, s.plan.text);
      if (s.existed) {
        step(`keep:${s.plan.tag}`);
        const keep = tempPathFor(s.target);
        await linkOrCopy(s.target, keep);
        s.keep = keep;
      }
    }
    // Apply.
    for (const s of slots) {
      current = s.target;
      if (s.makeBackup) {
        current = s.bak;
        step(`backup:${s.plan.tag}`);
        await linkOrCopy(s.target, s.bak);
        s.backedUp = true;
        current = s.target;
      }
      step(`replace:${s.plan.tag}`);
      if (s.tmp === undefined) throw new Error(`internal: no temp file for ${s.target}`);
      await rename(s.tmp, s.target);
      s.tmp = undefined;
      s.replaced = true;
    }
    current = root;
    step('sync');
    await fsyncDir(root);
  } catch (err) {
    const leftovers = await rollback(root, slots);
    const what = (err as Error).message;
    const message =
      leftovers.length === 0
        ? `cannot write the list files in ${root}: ${what}; nothing was changed`
        : `cannot write the list files in ${root}: ${what}; restoring the old lists also failed, ` +
          `their content is kept in ${leftovers.join(', ')}`;
    throw makeError(message, current, err);
  }
  // Success: drop the hidden links (best effort; they hold no data that is not elsewhere).
  for (const s of slots) {
    if (s.keep !== undefined) await rm(s.keep, { force: true }).catch(() => undefined);
  }
  await fsyncDir(root);
  return {
    backups: slots.filter((s) => s.backedUp).map((s) => s.bak),
    written: slots.map((s) => s.target),
  };
}

/** Undoes a partial apply; returns the hidden links it could not put back. */
async function rollback(root: string, slots: readonly Slot[]): Promise<string[]> {
  const leftovers: string[] = [];
  for (const s of [...slots].reverse()) {
    try {
      if (s.replaced) {
        if (s.keep !== undefined) {
          await rename(s.keep, s.target);
          s.keep = undefined;
        } else {
          await rm(s.target, { force: true });
        }
        s.replaced = false;
      }
      if (s.backedUp) {
        await rm(s.bak, { force: true });
        s.backedUp = false;
      }
    } catch {
      // Keep going: undo as much as possible.
    }
    if (s.tmp !== undefined) await rm(s.tmp, { force: true }).catch(() => undefined);
    if (s.keep !== undefined) {
      if (s.replaced) leftovers.push(s.keep);
      else await rm(s.keep, { force: true }).catch(() => undefined);
    }
  }
  await fsyncDir(root);
  return leftovers;
}
