/**
 * Small ShiTuRecDatasets built on the fly for the dataset tests: real image files rendered with
 * sharp (a coloured background with a shape per class), list files written exactly as given.
 * Everything is deterministic: the same spec always gives the same names and bytes.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

import sharp from 'sharp';

export type ImageFormat = 'png' | 'jpg' | 'webp';

export interface ImageSpec {
  /** Path relative to the dataset root, e.g. `images/c0/a.png`. */
  rel: string;
  width: number;
  height: number;
  /** Class id: picks the colour and the shape. */
  cls: number;
  /** EXIF orientation tag (JPEG only), 1..8. */
  orientation?: number;
}

/** A distinct, saturation-limited colour per class (never pure red, the label box colour). */
export function classColor(cls: number): [number, number, number] {
  const palette: [number, number, number][] = [
    [40, 90, 160],
    [60, 150, 70],
    [200, 170, 40],
    [120, 60, 140],
    [30, 140, 150],
    [170, 100, 60],
    [90, 90, 90],
    [150, 160, 200],
  ];
  return palette[((cls % palette.length) + palette.length) % palette.length]!;
}

/** Renders one image file (format from the extension). */
export async function renderImage(file: string, spec: ImageSpec): Promise<void> {
  const [r, g, b] = classColor(spec.cls);
  const { width: w, height: h } = spec;
  const shape =
    spec.cls % 2 === 0
      ? `<circle cx="${w / 2}" cy="${h / 2}" r="${Math.min(w, h) / 3}" fill="#fff"/>`
      : `<rect x="${w / 4}" y="${h / 4}" width="${w / 2}" height="${h / 2}" fill="#000"/>`;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    `<rect width="${w}" height="${h}" fill="rgb(${r},${g},${b})"/>${shape}` +
    // A marker in the top-right corner shows which way is up.
    `<rect x="${w - Math.ceil(w / 5)}" y="0" width="${Math.ceil(w / 5)}" height="${Math.ceil(h / 5)}" fill="#0f0"/>` +
    `</svg>`;
  let img = sharp(Buffer.from(svg)).flatten({ background: '#000' });
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') {
    img = img.jpeg({ quality: 90 });
    if (spec.orientation !== undefined) img = img.withMetadata({ orientation: spec.orientation });
  } else if (ext === '.webp') img = img.webp({ lossless: true });
  else img = img.png();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, await img.toBuffer());
}

export interface DatasetSpec {
  images: ImageSpec[];
  /** Raw list file contents, written byte for byte; omit one to leave that file out. */
  train?: string | undefined;
  gallery?: string | undefined;
  query?: string | undefined;
}

/** Writes the dataset under `root` (created) and returns `root`. */
export async function writeDataset(root: string, spec: DatasetSpec): Promise<string> {
  await mkdir(path.join(root, 'images'), { recursive: true });
  await Promise.all(spec.images.map((im) => renderImage(path.join(root, im.rel), im)));
  for (const tag of ['train', 'gallery', 'query'] as const) {
    const text = spec[tag];
    if (text !== undefined) await writeFile(path.join(root, `${tag}.txt`), text, 'utf8');
  }
  return root;
}

/** List text from `[path, label]` pairs, LF line endings, trailing newline. */
export function listText(rows: readonly (readonly [string, number | string])[]): string {
  return rows.map(([p, l]) => `${p} ${l}\n`).join('');
}

export interface StandardDataset {
  spec: DatasetSpec;
  train: [string, number][];
  gallery: [string, number][];
  query: [string, number][];
}

/**
 * The fixed dataset used for golden output: 5 classes; 37 train images (so the seeded shuffle
 * has something to do), 12 gallery and 8 query images, all PNG of a few sizes, unique names.
 */
export function standardDataset(): StandardDataset {
  const images: ImageSpec[] = [];
  const rows = (prefix: string, n: number, classes: number): [string, number][] => {
    const out: [string, number][] = [];
    for (let i = 0; i < n; i++) {
      const cls = i % classes;
      const rel = `images/${prefix}_${String(i).padStart(3, '0')}.png`;
      images.push({ rel, width: 48 + 8 * (i % 4), height: 40 + 4 * (i % 3), cls });
      out.push([rel, cls]);
    }
    return out;
  };
  const train = rows('train', 37, 5);
  const gallery = rows('gallery', 12, 4);
  const query = rows('query', 8, 4);
  return {
    spec: {
      images,
      train: listText(train),
      gallery: listText(gallery),
      query: listText(query),
    },
    train,
    gallery,
    query,
  };
}

/** A fresh temporary directory removed after the test. */
export async function tempDir(t: TestContext, prefix = 'pif-dataset-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
