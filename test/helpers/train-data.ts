/**
 * A ShiTuRecDataset for training tests with a visible domain shift: each image is a large
 * background of a random nuisance colour (the same spread in every class) around a centred
 * square whose colour is the class's. An untrained (random-weight) backbone's features are
 * dominated by the background, so retrieval starts near chance; a trained tail learns to
 * weight the square, so recall@1 and mAP rise clearly.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { mulberry32 } from '../../lib/rng.js';

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
