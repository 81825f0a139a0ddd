/**
 * Deterministic test inputs: seeded random floats, normalised-image-like tensors and a
 * rendered document-like image (the same generators and seeds as onnx-oracle.test.ts).
 */
import assert from 'node:assert/strict';

import sharp from 'sharp';

import { seededFloats } from '../../lib/rng.js';

/** Deterministic pseudo-random floats in [lo, hi) (mulberry32). */
export const randomFloats = seededFloats;

/** Seeded noise pixels, w×h interleaved RGB (an LCG), for making test images with sharp. */
export function noiseRgb(w: number, h: number, seed: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < b.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    b[i] = (s >>> 16) & 255;
  }
  return b;
}

/** Number of elements of a shape. */
export const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Normalised-image-like values: ImageNet mean/std maps [0,255] to about [-2.1, 2.6]. */
export function imageLike(shape: readonly number[], seed: number): Float32Array {
  return randomFloats(count(shape), seed, -2.1, 2.6);
}

/**
 * A rendered size×size document-like image (words in several fonts, sizes and colours),
 * normalised as PaddleOCR's det preprocessing does (BGR, /255, ImageNet mean/std). Text
 * detectors need it: on random noise their probability maps are ≈ 0 everywhere. (Random
 * noise drives en_PP-OCRv3_det's probability map to ≈ 0 everywhere, max ≈ 1e-10, which would
 * make a relative comparison meaningless; on text it spans 0…1. This model is the
 * worst-conditioned case against ONNX Runtime: max abs ≈ 3e-5 near p ≈ 0.6, i.e. ≈ 1.3e-4 on the
 * pre-sigmoid logit; ORT alone differs from itself by about as much between
 * graphOptimizationLevel 'all' and 'disabled', so that is float32 rounding, amplified by the DB
 * head, not a kernel bug.)
 */
export async function renderedText(size: number): Promise<Float32Array> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">
  <rect width="${size}" height="${size}" fill="#f4f1ea"/>
  <rect x="180" y="220" width="120" height="70" fill="#c8dcf0"/>
  <text x="16" y="56" font-family="DejaVu Sans" font-size="34" fill="#111">Invoice 2024</text>
  <text x="24" y="120" font-family="DejaVu Serif" font-size="26" fill="#202a60">Total: 1,234.56</text>
  <text x="12" y="180" font-family="DejaVu Sans Mono" font-size="20" fill="#000">paddle image feature</text>
  <text x="20" y="262" font-family="DejaVu Sans" font-weight="bold" font-size="40" fill="#502010">HELLO</text>
  <text x="190" y="265" font-family="DejaVu Serif" font-size="22" fill="#103010">world</text>
</svg>`;
  const rgb = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
  assert.equal(rgb.length, size * size * 3);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    const src = 2 - c; // BGR channel order, as PaddleOCR feeds cv2 images
    for (let i = 0; i < size * size; i++) {
      out[c * size * size + i] = (rgb[i * 3 + src]! / 255 - mean[c]!) / std[c]!;
    }
  }
  return out;
}

/** A runnable (real-weights) fixture of the engine comparisons, with its input. */
export interface FixtureCase {
  name: string;
  shape: number[];
  /** The input generator; default imageLike with seed 100 + the case's position. */
  input?: (shape: number[]) => Float32Array | Promise<Float32Array>;
  note?: string;
}

/** The runnable fixtures, shapes and inputs of onnx-oracle.test.ts and hpi.test.ts. */
export const RUNNABLE_FIXTURE_CASES: readonly FixtureCase[] = [
  {
    name: 'mnist_mlp_legacy_separate',
    shape: [2, 1, 28, 28],
    // The author's preprocessing maps pixels to x/255*2-1.
    input: (s) => randomFloats(count(s), 101, -1, 1),
  },
  { name: 'mobilenetv3_small_x0_35_meter_legacy', shape: [2, 3, 224, 224] },
  { name: 'pplcnet_x0_25_textline_ori_pir', shape: [2, 3, 80, 160] },
  {
    name: 'en_ppocrv3_det_legacy',
    shape: [1, 3, 320, 320],
    input: () => renderedText(320),
    note: 'rendered text input',
  },
  {
    name: 'nafnet_bdpan_legacy',
    shape: [1, 3, 1024, 1024],
    // The author feeds BGR/255, i.e. [0, 1].
    input: (s) => randomFloats(count(s), 105, 0, 1),
    note: 'input in [0,1] as the author feeds it',
  },
];

/** The input of case `i` of RUNNABLE_FIXTURE_CASES. */
export async function fixtureCaseInput(c: FixtureCase, i: number): Promise<Float32Array> {
  return c.input ? await c.input(c.shape) : imageLike(c.shape, 100 + i);
}
