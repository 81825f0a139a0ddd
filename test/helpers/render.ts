/**
 * Deterministic rendering of text images with sharp (SVG through librsvg + fontconfig) for
 * the real-weights behaviour tests, plus the small image utilities they need: a seeded
 * generator, HWC → normalised CHW conversion and a Euclidean dilation of a mask.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { mulberry32 } from '../../lib/rng.js';

/** Seeded generator (mulberry32): the same seed always gives the same sequence. */
export class Rng {
  private readonly uniform: () => number;

  constructor(seed: number) {
    this.uniform = mulberry32(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uniform();
  }

  /** Integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
}

/**
 * Font files behind FONT_FAMILIES (regular, bold, italic/oblique, condensed): Debian packages
 * fonts-dejavu-core (regular and bold) and fonts-dejavu-extra (the rest). Without them
 * fontconfig would substitute other fonts and the rendered images would change.
 */
const FONT_FILES: readonly [string, string][] = [
  ['DejaVuSans.ttf', 'fonts-dejavu-core'],
  ['DejaVuSerif-Bold.ttf', 'fonts-dejavu-core'],
  ['DejaVuSansMono.ttf', 'fonts-dejavu-core'],
  ['DejaVuSansCondensed.ttf', 'fonts-dejavu-extra'],
  ['DejaVuSerifCondensed-Italic.ttf', 'fonts-dejavu-extra'],
  ['DejaVuSans-Oblique.ttf', 'fonts-dejavu-extra'],
];

const FONT_DIR = '/usr/share/fonts/truetype/dejavu';

/** Why text rendering cannot use the intended fonts, or null when it can. */
export function fontsMissingReason(): string | null {
  const missing = FONT_FILES.filter(([f]) => !existsSync(path.join(FONT_DIR, f)));
  if (missing.length === 0) return null;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
  return `fonts missing in ${FONT_DIR}: ${missing.map(([f]) => f).join(', ')} (install the Debian package(s) ${packages})`;
}

export const FONT_FAMILIES = [
  'DejaVu Sans',
  'DejaVu Serif',
  'DejaVu Sans Mono',
  'DejaVu Sans Condensed',
  'DejaVu Serif Condensed',
] as const;

export type Rgb = readonly [number, number, number];

export interface TextStyle {
  text: string;
  family: string;
  bold: boolean;
  italic: boolean;
  /** Font size in px. */
  size: number;
  fill: Rgb;
}

/** Half-open pixel box [x0, x1) × [y0, y1). */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export type Background =
  { kind: 'solid'; color: Rgb } | { kind: 'gradient'; from: Rgb; to: Rgb; vertical: boolean };

/** An 8-bit interleaved image. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

function css(c: Rgb): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** One SVG <text> element with its baseline origin at (x, y). */
function textElement(style: TextStyle, x: number, y: number): string {
  return (
    `<text x="${x}" y="${y}" font-family="${escapeXml(style.family)}" font-size="${style.size}"` +
    ` font-weight="${style.bold ? 'bold' : 'normal'}" font-style="${style.italic ? 'italic' : 'normal'}"` +
    ` fill="${css(style.fill)}" xml:space="preserve">${escapeXml(style.text)}</text>`
  );
}

function backgroundElements(bg: Background, width: number, height: number): string {
  if (bg.kind === 'solid') {
    return `<rect x="0" y="0" width="${width}" height="${height}" fill="${css(bg.color)}"/>`;
  }
  const [x2, y2] = bg.vertical ? ['0', '1'] : ['1', '0'];
  return (
    `<defs><linearGradient id="g" x1="0" y1="0" x2="${x2}" y2="${y2}">` +
    `<stop offset="0" stop-color="${css(bg.from)}"/><stop offset="1" stop-color="${css(bg.to)}"/>` +
    `</linearGradient></defs><rect x="0" y="0" width="${width}" height="${height}" fill="url(#g)"/>`
  );
}

function svg(width: number, height: number, body: string): Buffer {
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`,
  );
}

async function rasterise(doc: Buffer, channels: 3 | 4): Promise<RawImage> {
  let img = sharp(doc, { density: 72 });
  img = channels === 3 ? img.removeAlpha() : img.ensureAlpha();
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Bounding box of the pixels with alpha > 0 in an RGBA image, or null if there are none. */
function alphaBox(img: RawImage): Box | null {
  let x0 = img.width;
  let y0 = img.height;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (img.data[(y * img.width + x) * 4 + 3]! > 0) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x + 1);
        y1 = Math.max(y1, y + 1);
      }
    }
  }
  return x1 > x0 ? { x0, y0, x1, y1 } : null;
}

/**
 * Box of the glyph pixels of `style` drawn with its baseline origin at (x, y) on a
 * transparent canvas of the given size.
 */
export async function glyphBox(
  style: TextStyle,
  x: number,
  y: number,
  width: number,
  height: number,
): Promise<Box> {
  const img = await rasterise(svg(width, height, textElement(style, x, y)), 4);
  const box = alphaBox(img);
  if (box === null) throw new Error(`text '${style.text}' rendered no pixels`);
  return box;
}

/**
 * A text-line image as OCR crops one: the glyphs' bounding box plus `padX`/`padY` px of
 * background on each side. Returns RGB.
 */
export async function renderTextLine(
  style: TextStyle,
  bg: Background,
  padX: number,
  padY: number,
): Promise<RawImage> {
  // Measure on a canvas large enough for any line used here, then place the glyph box.
  const mx = 2 * style.size;
  const my = 2 * style.size;
  const mw = Math.ceil(style.text.length * style.size * 1.2) + 2 * mx;
  const mh = 4 * style.size;
  const box = await glyphBox(style, mx, my, mw, mh);
  const width = box.x1 - box.x0 + 2 * padX;
  const height = box.y1 - box.y0 + 2 * padY;
  const body =
    backgroundElements(bg, width, height) +
    textElement(style, mx - box.x0 + padX, my - box.y0 + padY);
  return rasterise(svg(width, height, body), 3);
}

export interface PlacedWord {
  style: TextStyle;
  /** Baseline origin. */
  x: number;
  y: number;
}

export interface RenderedCanvas {
  /** RGB. */
  image: RawImage;
  /** Glyph pixel box of each word, measured from its own rendering. */
  boxes: Box[];
  /** 1 where the canvas differs from the background colour (any channel). */
  glyphMask: Uint8Array;
}

/** Words on a solid canvas; each word is also rendered alone to measure its box. */
export async function renderCanvas(
  width: number,
  height: number,
  background: Rgb,
  words: readonly PlacedWord[],
): Promise<RenderedCanvas> {
  const boxes: Box[] = [];
  for (const w of words) boxes.push(await glyphBox(w.style, w.x, w.y, width, height));
  const body =
    backgroundElements({ kind: 'solid', color: background }, width, height) +
    words.map((w) => textElement(w.style, w.x, w.y)).join('');
  const image = await rasterise(svg(width, height, body), 3);
  const glyphMask = new Uint8Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const d = image.data;
    if (
      d[3 * i] !== background[0] ||
      d[3 * i + 1] !== background[1] ||
      d[3 * i + 2] !== background[2]
    ) {
      glyphMask[i] = 1;
    }
  }
  return { image, boxes, glyphMask };
}

/** Mask of the pixels within Euclidean distance `radius` of a set pixel of `mask`. */
export function dilate(
  mask: Uint8Array,
  width: number,
  height: number,
  radius: number,
): Uint8Array {
  const out = new Uint8Array(width * height);
  const offsets: [number, number][] = [];
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      if (dx * dx + dy * dy <= radius * radius) offsets.push([dx, dy]);
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] === 0) continue;
      for (const [dx, dy] of offsets) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx >= 0 && xx < width && yy >= 0 && yy < height) out[yy * width + xx] = 1;
      }
    }
  }
  return out;
}

export interface Normalisation {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** Channel order fed to the model: 'rgb' keeps the image's order, 'bgr' swaps R and B. */
  order: 'rgb' | 'bgr';
}

export const IMAGENET: Omit<Normalisation, 'order'> = {
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/**
 * RGB HWC uint8 → (x/255 − mean)/std in float32, CHW, written into `out` at `offset`
 * (a batch slot), in a canvas of outW × outH (≥ the image; the rest is left as is: 0).
 * mean/std are indexed by the fed channel, as PaddleX/PaddleOCR apply them.
 */
export function toChw(
  img: RawImage,
  norm: Normalisation,
  out: Float32Array,
  offset = 0,
  outW = img.width,
  outH = img.height,
): void {
  if (img.channels !== 3) throw new Error(`expected RGB, got ${img.channels} channels`);
  const plane = outW * outH;
  for (let c = 0; c < 3; c++) {
    const src = norm.order === 'rgb' ? c : 2 - c;
    const scale = 1 / 255;
    const mean = norm.mean[c]!;
    const std = norm.std[c]!;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const v = img.data[(y * img.width + x) * 3 + src]!;
        out[offset + c * plane + y * outW + x] = (v * scale - mean) / std;
      }
    }
  }
}
