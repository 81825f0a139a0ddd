/**
 * A ShiTuRecDataset for training tests with a visible domain shift: each image is a large
 * background of a random nuisance colour (the same spread in every class) around a centred
 * square whose colour is the class's. An untrained (random-weight) backbone's features are
 * dominated by the background, so retrieval starts near chance; a trained tail learns to
 * weight the square, so recall@1 and mAP rise clearly.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';

import sharp from 'sharp';

import { createModel } from '../../lib/image-feature.js';
import { mulberry32 } from '../../lib/rng.js';
import type { NativeHeadParam } from '../../lib/native.js';
import { HeadTier } from '../../lib/train/head-tier.js';
import { repoRoot, requireFixtures } from './fixtures.js';

export interface ShiftDatasetSpec {
  classes: number;
  train: number;
  gallery: number;
  query: number;
  seed: number;
}

const SIZE = 160;

async function writeImage(
  file: string,
  square: readonly number[],
  rnd: () => number,
): Promise<void> {
  const bg = [rnd() * 255, rnd() * 255, rnd() * 255];
  const px = Buffer.alloc(SIZE * SIZE * 3);
  const lo = Math.round(SIZE * 0.2) + Math.round((rnd() - 0.5) * 10);
  const hi = lo + Math.round(SIZE * 0.6);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const inSquare = x >= lo && x < hi && y >= lo && y < hi;
      for (let c = 0; c < 3; c++) {
        const v = (inSquare ? (square[c] as number) : (bg[c] as number)) + (rnd() - 0.5) * 30;
        px[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  await sharp(px, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(file);
}

/** Writes the dataset under `root` (images/, train.txt, gallery.txt, query.txt). */
export async function writeShiftDataset(root: string, spec: ShiftDatasetSpec): Promise<void> {
  const rnd = mulberry32(spec.seed);
  await mkdir(path.join(root, 'images'), { recursive: true });
  const lists: Record<'train' | 'gallery' | 'query', string[]> = {
    train: [],
    gallery: [],
    query: [],
  };
  for (let c = 0; c < spec.classes; c++) {
    const square = [rnd() * 255, rnd() * 255, rnd() * 255];
    for (const tag of ['train', 'gallery', 'query'] as const)
      for (let k = 0; k < spec[tag]; k++) {
        const rel = `images/c${c}_${tag}${k}.jpg`;
        await writeImage(path.join(root, rel), square, rnd);
        lists[tag].push(`${rel} ${c}`);
      }
  }
  for (const tag of ['train', 'gallery', 'query'] as const)
    await writeFile(path.join(root, `${tag}.txt`), `${lists[tag].join('\n')}\n`);
}

/**
 * A python3 with numpy; without one the test is skipped with the reason (and fails when
 * PIF_REQUIRE_FIXTURES=1, as in CI), and null is returned.
 */
export function pythonOrSkip(t: TestContext): string | null {
  for (const c of ['/usr/bin/python3', 'python3'])
    if (spawnSync(c, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0) return c;
  const why = 'no python3 with numpy (install the Debian package python3-numpy)';
  if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${why}`);
  t.skip(why);
  return null;
}

/**
 * What the trainer computes for `files` with the weights of a checkpoint: a tier on the starting
 * model (the head tier, or the last-stage tier with `tier`), restored from
 * `<checkpoint>/<prefix>.pifstate`, its features (unit rows) and its trained neck weight; also
 * the epoch the state was saved at.
 */
export async function checkpointFeatures(
  startModel: string,
  checkpoint: string,
  files: readonly string[],
  classes: number,
  tier: 'head' | 'last-stage' = 'head',
): Promise<{
  features: Float32Array;
  neckWeight: Float32Array;
  epoch: number;
  params: NativeHeadParam[];
}> {
  const ht = await HeadTier.open(startModel, { tier });
  try {
    const items = files.map((p) => ({ kind: 'file' as const, path: p }));
    // The last-stage tier's pooled features depend on the run's stage 4: computed after restore.
    const cached = tier === 'head' ? await ht.pooledFeatures(items) : new Float32Array(0);
    await ht.begin(
      cached,
      files.map((_, i) => i % classes),
      { classes, batchSize: 2, perLabel: ht.info.kind === 'clip' ? 0 : 1 },
    );
    const epoch = await ht.restore(
      readFileSync(path.join(checkpoint, `${path.basename(checkpoint)}.pifstate`)),
    );
    const pooled = tier === 'head' ? cached : await ht.pooledFeatures(items);
    const params = await ht.params();
    const neck = params.find((p) => p.role === 'convWeight');
    return {
      features: await ht.features(pooled),
      neckWeight: neck?.data ?? new Float32Array(0),
      epoch,
      params,
    };
  } finally {
    ht.close();
  }
}

/** max |a - b| over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

/** Asserts that `modelDir` (through createModel, hpi) gives `features` for `files` (max |diff| <= 1e-5). */
export async function assertModelGives(
  modelDir: string,
  files: readonly string[],
  features: Float32Array,
): Promise<void> {
  const m = await createModel({ modelDir, useHpip: true });
  try {
    const rows = await m.predictAll([...files]);
    const diff = maxAbsDiff(
      rows.flatMap((r) => [...r.feature]),
      features,
    );
    assert.ok(diff <= 1e-5, `${modelDir}: max |diff| ${diff}`);
  } finally {
    m.close();
  }
}

/** A JSON file's object. */
export const readJson = (f: string): Record<string, unknown> =>
  JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;

/** sha256 hex of bytes. */
export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The image paths of `<ds>/<tag>.txt`. */
export const listFiles = (ds: string, tag: string): string[] =>
  readFileSync(path.join(ds, `${tag}.txt`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => path.join(ds, l.split(' ')[0] as string));

/**
 * Runs the CLI with `args` and kills it with SIGKILL once `<output>/latest/latest.pifresume.json`
 * records epoch `atEpoch` or later (after `delayMs` more: a step into the next epoch). Resolves
 * the epoch it was killed after (-1 if it finished first) and its stderr.
 */
export async function runCliAndKill(
  args: readonly string[],
  output: string,
  atEpoch: number,
  delayMs = 0,
): Promise<{ killedAt: number; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'lib', 'cli.ts'), ...args],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      resolve();
    }),
  );
  const state = path.join(output, 'latest', 'latest.pifresume.json');
  const deadline = Date.now() + 900_000;
  let killedAt = -1;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const epoch = readJson(state)['epoch'] as number;
      if (epoch >= atEpoch) {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        child.kill('SIGKILL');
        killedAt = epoch;
        break;
      }
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await exited;
  return { killedAt, stderr };
}
