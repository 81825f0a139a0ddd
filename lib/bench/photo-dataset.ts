/**
 * A ShiTuRecDataset made of real photos, for training benchmarks and tests (official weights
 * and datasets are unreachable here): each photo is a class, and seeded sharp augmentations
 * (crop, flip, quarter turns, brightness, saturation, blur) make its train, gallery and query
 * views, written as JPEGs under `images/` with PaddleX's list files.
 */
import { readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { mulberry32 } from '../rng.js';

export const OPENCV_PHOTOS = '/usr/share/doc/opencv-doc/examples/data';

/** The first `count` JPEG photos of `dir`, sorted by name. */
export function listPhotos(dir: string, count: number): string[] {
  return readdirSync(dir)
    .filter((f) => /\.jpe?g$/i.test(f))
    .sort()
    .slice(0, count)
    .map((f) => path.join(dir, f));
}

/** One seeded augmented view of `photo` as a JPEG file. */
export async function writeView(photo: string, out: string, rnd: () => number): Promise<void> {
  const { width, height } = await sharp(photo).rotate().metadata();
  const area = 0.55 + 0.4 * rnd();
  const w = Math.max(16, Math.round(width * Math.sqrt(area)));
  const h = Math.max(16, Math.round(height * Math.sqrt(area)));
  let v = sharp(photo)
    .rotate()
    .extract({
      left: Math.floor(rnd() * (width - w + 1)),
      top: Math.floor(rnd() * (height - h + 1)),
      width: w,
      height: h,
    });
  if (rnd() < 0.5) v = v.flop();
  if (rnd() < 0.3) v = v.rotate(90 * (1 + Math.floor(rnd() * 3)));
  v = v.modulate({ brightness: 0.7 + 0.6 * rnd(), saturation: 0.6 + 0.8 * rnd() });
  if (rnd() < 0.4) v = v.blur(0.5 + 1.5 * rnd());
  await v.jpeg({ quality: 85 }).toFile(out);
}

export interface PhotoDatasetOptions {
  /** Views per photo in train.txt, gallery.txt and query.txt. */
  train: number;
  gallery: number;
  query: number;
  seed: number;
  /** The label of photo k (default k). */
  label?: (k: number) => number;
}

/** Writes the dataset under `root`; returns the number of images per list. */
export async function writePhotoDataset(
  photos: readonly string[],
  root: string,
  o: PhotoDatasetOptions,
): Promise<{ train: number; gallery: number; query: number }> {
  const rnd = mulberry32(o.seed);
  await mkdir(path.join(root, 'images'), { recursive: true });
  const lists = { train: [] as string[], gallery: [] as string[], query: [] as string[] };
  for (const [c, photo] of photos.entries()) {
    const label = o.label?.(c) ?? c;
    for (const tag of ['train', 'gallery', 'query'] as const) {
      for (let k = 0; k < o[tag]; k++) {
        const rel = `images/c${c}-${tag}${k}.jpg`;
        await writeView(photo, path.join(root, rel), rnd);
        lists[tag].push(`${rel} ${label}`);
      }
    }
  }
  for (const tag of ['train', 'gallery', 'query'] as const)
    await writeFile(path.join(root, `${tag}.txt`), `${lists[tag].join('\n')}\n`);
  return { train: lists.train.length, gallery: lists.gallery.length, query: lists.query.length };
}
