/**
 * Pictures made by the dataset check (../shared/spec/paddlex-behaviour.md §6.3, §6.5):
 *
 * - sample ("demo") images: the image EXIF-transposed, converted to RGB, with its label drawn at
 *   the top-left in white on a filled box, as PaddleX's `draw_label` lays it out (box colour: the
 *   first entry of PaddleX's visualiser colormap, pure red; text colour: `font_colormap(3)`,
 *   white). The font is DejaVu Sans instead of PaddleX's PingFang (not freely available); the
 *   size rule is the same: 5 % of the image width, shrinking to 2 % until the text fits.
 * - `histogram.png`: the grouped bar chart (images and classes per list), drawn as SVG and
 *   rendered to PNG with sharp, 1920×1440 like matplotlib's default 6.4×4.8 in figure at 300 dpi.
 *   Labels are in English.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { InputDecodeError } from '../errors.js';

/** PaddleX `colormap(rgb=True)[0]`: the label box fill. */
export const LABEL_BOX_COLOR: readonly [number, number, number] = [0xff, 0x00, 0x00];
/** PaddleX `font_colormap(3)` (a "light" index): the label text colour. */
export const LABEL_TEXT_COLOR: readonly [number, number, number] = [0xff, 0xff, 0xff];
/** The font family used for all drawn text (fonts-dejavu-core). */
export const FONT_FAMILY = 'DejaVu Sans';
/** DejaVu Sans ascender (hhea) in em units: the distance from PIL's 'la' anchor to the baseline. */
const FONT_ASCENT_EM = 1901 / 2048;

/** An 8-bit RGB image, rows top to bottom, no padding. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

const rgbCss = (c: readonly [number, number, number]): string => `rgb(${c[0]},${c[1]},${c[2]})`;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

/** One line of black SVG text in the charts' font, anchored at (x, y). */
export function chartText(
  x: number,
  y: number,
  s: string,
  size: number,
  anchor: 'start' | 'middle' | 'end',
  extra = '',
): string {
  return (
    `<text x="${x}" y="${y}" font-family="${FONT_FAMILY}" font-size="${size}" ` +
    `text-anchor="${anchor}" fill="#000"${extra}>${escapeXml(s)}</text>`
  );
}

// ---------------------------------------------------------------------------------------------
// Reading and writing sample images

/**
 * Reads an image file as RGB with its EXIF orientation applied (PIL: `ImageOps.exif_transpose`
 * then `convert("RGB")`). Alpha is dropped, grey is replicated. Colour profiles are ignored, as
 * PIL's `convert` ignores them. BMP, which sharp cannot read, is decoded here.
 */
export async function readImageRgb(file: string, bytes?: Uint8Array): Promise<RgbImage> {
  try {
    const buf = bytes ?? (await readFile(file));
    if (isBmp(buf)) return decodeBmp(buf);
    const { data, info } = await sharp(buf, { failOn: 'error', ignoreIcc: true })
      .autoOrient()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels === 3) {
      return {
        data: new Uint8Array(data.buffer, data.byteOffset, data.length),
        width: info.width,
        height: info.height,
      };
    }
    const rgb = new Uint8Array(info.width * info.height * 3);
    for (let i = 0, j = 0; j < rgb.length; i += info.channels, j += 3) {
      rgb[j] = data[i] as number;
      rgb[j + 1] = data[info.channels >= 3 ? i + 1 : i] as number;
      rgb[j + 2] = data[info.channels >= 3 ? i + 2 : i] as number;
    }
    return { data: rgb, width: info.width, height: info.height };
  } catch (err) {
    throw new InputDecodeError(`cannot read image ${file}: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
}

/**
 * Encodes `img` in the format PIL's `Image.save(name)` picks from the extension (lower-cased):
 * JPEG at PIL's default quality 75, PNG, BMP (24-bit), WebP (quality 80), TIFF, GIF. Any other
 * extension, where PIL would refuse to save, gets PNG data under the same name.
 */
export async function encodeImageForName(name: string, img: RgbImage): Promise<Buffer> {
  const ext = path.extname(name).toLowerCase();
  if (ext === '.bmp' || ext === '.dib') return encodeBmp(img);
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  switch (ext) {
    case '.jpg':
    case '.jpeg':
    case '.jpe':
    case '.jfif':
      return s.jpeg({ quality: 75 }).toBuffer();
    case '.webp':
      return s.webp({ quality: 80 }).toBuffer();
    case '.tif':
    case '.tiff':
      return s.tiff({ compression: 'none' }).toBuffer();
    case '.gif':
      return s.gif().toBuffer();
    default:
      return s.png().toBuffer();
  }
}

function isBmp(b: Uint8Array): boolean {
  return b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d;
}

/**
 * A small BMP decoder: BITMAPINFOHEADER and later headers, 1/4/8-bit palettes, 16/24/32-bit
 * (BI_RGB or BI_BITFIELDS), bottom-up or top-down. RLE compression is refused.
 */
export function decodeBmp(b: Uint8Array): RgbImage {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dataOffset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  if (headerSize < 40) throw new Error(`unsupported BMP header (size ${headerSize})`);
  const width = dv.getInt32(18, true);
  const rawHeight = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  const height = Math.abs(rawHeight);
  const topDown = rawHeight < 0;
  if (width <= 0 || height === 0 || width * height > 1 << 28) {
    throw new Error(`bad BMP size ${width}x${rawHeight}`);
  }
  if (compression !== 0 && compression !== 3 && compression !== 6) {
    throw new Error(`unsupported BMP compression ${compression}`);
  }
  let masks: [number, number, number] | null = null;
  if (compression === 3 || compression === 6) {
    masks = [dv.getUint32(54, true), dv.getUint32(58, true), dv.getUint32(62, true)];
  } else if (bpp === 16) masks = [0x7c00, 0x03e0, 0x001f];
  else if (bpp === 32) masks = [0xff0000, 0x00ff00, 0x0000ff];
  const palette: number[][] = [];
  if (bpp <= 8) {
    const used = dv.getUint32(46, true) || 1 << bpp;
    const at = 14 + headerSize;
    for (let i = 0; i < used && at + 4 * i + 3 < b.length; i++) {
      const o = at + 4 * i;
      palette.push([b[o + 2] as number, b[o + 1] as number, b[o] as number]);
    }
  } else if (bpp !== 16 && bpp !== 24 && bpp !== 32) {
    throw new Error(`unsupported BMP bit depth ${bpp}`);
  }
  const stride = Math.floor((width * bpp + 31) / 32) * 4;
  if (dataOffset + stride * height > b.length) throw new Error('truncated BMP');
  const field = (v: number, mask: number): number => {
    if (mask === 0) return 0;
    let shift = 0;
    while (((mask >>> shift) & 1) === 0) shift++;
    const max = mask >>> shift;
    return Math.round((((v & mask) >>> shift) * 255) / max);
  };
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      let r: number;
      let g: number;
      let bl: number;
      if (bpp <= 8) {
        const bitPos = x * bpp;
        const byte = b[row + (bitPos >> 3)] as number;
        const idx = (byte >> (8 - bpp - (bitPos & 7))) & ((1 << bpp) - 1);
        [r, g, bl] = (palette[idx] ?? [0, 0, 0]) as [number, number, number];
      } else if (bpp === 24) {
        const p = row + x * 3;
        [bl, g, r] = [b[p] as number, b[p + 1] as number, b[p + 2] as number];
      } else {
        const v = bpp === 16 ? dv.getUint16(row + x * 2, true) : dv.getUint32(row + x * 4, true);
        const m = masks as [number, number, number];
        [r, g, bl] = [field(v, m[0]), field(v, m[1]), field(v, m[2])];
      }
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = bl;
    }
  }
  return { data: out, width, height };
}

/** A 24-bit bottom-up BMP (what PIL writes for an RGB image). */
export function encodeBmp(img: RgbImage): Buffer {
  const stride = Math.floor((img.width * 24 + 31) / 32) * 4;
  const size = 54 + stride * img.height;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(img.width, 18);
  b.writeInt32LE(img.height, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(stride * img.height, 34);
  for (let y = 0; y < img.height; y++) {
    const row = 54 + (img.height - 1 - y) * stride;
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 3;
      b[row + x * 3] = img.data[i + 2] as number;
      b[row + x * 3 + 1] = img.data[i + 1] as number;
      b[row + x * 3 + 2] = img.data[i] as number;
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Label drawing

/** Ink box of a text drawn with its origin at (0, 0) and PIL's 'la' anchor (PIL `textbbox`). */
export interface TextBox {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const svgText = (text: string, x: number, y: number, size: number, fill: string): string =>
  `<text x="${x}" y="${y}" font-family="${FONT_FAMILY}" font-size="${size}" fill="${fill}" ` +
  `xml:space="preserve">${escapeXml(text)}</text>`;

const ascentPx = (size: number): number => Math.round(size * FONT_ASCENT_EM);

/** Measures `text` at `size` px as PIL's `draw.textbbox((0, 0), text, font)` does (ink extents). */
export async function measureText(text: string, size: number): Promise<TextBox> {
  if (text === '') return { left: 0, top: 0, right: 0, bottom: 0 };
  const pad = Math.ceil(size);
  const w = Math.ceil(size * (text.length + 2)) + 2 * pad;
  const h = Math.ceil(size * 3);
  const baseline = pad + ascentPx(size);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    `${svgText(text, pad, baseline, size, '#fff')}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg))
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -1;
  let maxY = -1;
  const ch = info.channels;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      if ((data[(y * info.width + x) * ch + ch - 1] as number) === 0) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  if (maxX < 0) return { left: 0, top: 0, right: 0, bottom: 0 };
  const top0 = pad; // the ascender line
  return { left: minX - pad, top: minY - top0, right: maxX + 1 - pad, bottom: maxY + 1 - top0 };
}

/** Where `draw_label` puts the label on an image of width `imageWidth`. */
export interface LabelLayout {
  fontSize: number;
  /** Text width and height (`right - left`, `bottom - top` of the text box). */
  textWidth: number;
  textHeight: number;
  /** The filled box, inclusive pixel bounds (PIL `rectangle`). */
  box: { left: number; top: number; right: number; bottom: number };
  /** The text origin (PIL 'la' anchor: left edge, ascender line). */
  textX: number;
  textY: number;
  /** Ink box of the text at that size, relative to its origin. */
  ink: TextBox;
}

/**
 * PaddleX's size rule: try sizes from int(5 % of the width) down to int(2 %), take the first whose
 * text width fits the image width, else the smallest. PIL refuses size 0 (images narrower than
 * 20 px crash PaddleX); we use at least 1 px.
 */
export async function layoutLabel(imageWidth: number, label: string): Promise<LabelLayout> {
  const minSize = Math.max(1, Math.trunc(imageWidth * 0.02));
  const maxSize = Math.max(minSize, Math.trunc(imageWidth * 0.05));
  let size = minSize;
  let ink: TextBox | undefined;
  for (let s = maxSize; s >= minSize; s--) {
    const box = await measureText(label, s);
    if (box.right - box.left <= imageWidth) {
      size = s;
      ink = box;
      break;
    }
  }
  ink ??= await measureText(label, size);
  const textWidth = ink.right - ink.left;
  const textHeight = ink.bottom - ink.top;
  const left = 3;
  const top = 3;
  return {
    fontSize: size,
    textWidth,
    textHeight,
    box: { left, top, right: left + textWidth + 3, bottom: top + textHeight + 6 },
    textX: left + 3,
    textY: top,
    ink,
  };
}

/** Draws `label` on `img` as PaddleX's `draw_label` does; returns a new image. */
export async function drawLabel(img: RgbImage, label: string): Promise<RgbImage> {
  const lay = await layoutLabel(img.width, label);
  const needW = Math.max(lay.box.right + 1, lay.textX + lay.ink.right + 1);
  const needH = Math.max(lay.box.bottom + 1, lay.textY + lay.ink.bottom + 1);
  const w = Math.min(img.width, needW);
  const h = Math.min(img.height, needH);
  if (w <= lay.box.left || h <= lay.box.top) return img;
  const { box } = lay;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    `<rect x="${box.left}" y="${box.top}" width="${box.right - box.left + 1}" ` +
    `height="${box.bottom - box.top + 1}" fill="${rgbCss(LABEL_BOX_COLOR)}" shape-rendering="crispEdges"/>` +
    svgText(
      label,
      lay.textX,
      lay.textY + ascentPx(lay.fontSize),
      lay.fontSize,
      rgbCss(LABEL_TEXT_COLOR),
    ) +
    `</svg>`;
  const { data, info } = await sharp(img.data, {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }])
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
}

/** The demo image for one sample: read, EXIF-transpose, draw the label, encode for `outName`. */
export async function makeDemoImage(file: string, label: string, outName: string): Promise<Buffer> {
  const img = await readImageRgb(file);
  return encodeImageForName(outName, await drawLabel(img, label));
}

// ---------------------------------------------------------------------------------------------
// Histogram

export interface SplitStats {
  /** The list name shown under the group (`train`, `gallery`, `query`). */
  tag: string;
  numImages: number;
  numClasses: number;
}

export type HistogramSeries = 'images' | 'classes';

/** matplotlib's first two default colours (C0, C1), as PaddleX's chart uses them. */
export const HISTOGRAM_COLORS: Readonly<Record<HistogramSeries, string>> = {
  images: '#1f77b4',
  classes: '#ff7f0e',
};

export const HISTOGRAM_LABELS: Readonly<Record<HistogramSeries, string>> = {
  images: 'Num Images',
  classes: 'Num Classes',
};

export const HISTOGRAM_TITLE = 'Number of images and classes per set';
export const HISTOGRAM_X_LABEL = 'Set';
export const HISTOGRAM_Y_LABEL = 'Count';

/** One bar, in pixels of the rendered PNG (integers; the bar covers [x, x+width) × [y, y+height)). */
export interface HistogramBar {
  tag: string;
  series: HistogramSeries;
  value: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface HistogramSvg {
  svg: string;
  width: number;
  height: number;
  /** The plot area; y grows downwards and `bottom` is the zero line. */
  plot: { left: number; top: number; right: number; bottom: number };
  /** The value at the top of the plot area. */
  yMax: number;
  yTicks: number[];
  bars: HistogramBar[];
}

/** 1, 2 or 5 times a power of ten, at least `x` and at least 1. */
function niceStep(x: number): number {
  if (!(x > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

const PT = 300 / 72; // pixels per point at 300 dpi

/** Builds the chart as SVG (1920×1440). Bars have integer pixel geometry and crisp edges. */
export function buildHistogramSvg(stats: readonly SplitStats[]): HistogramSvg {
  const width = 1920;
  const height = 1440;
  const font = Math.round(10 * PT);
  const titleFont = Math.round(12 * PT);
  const plot = { left: 250, top: 250, right: 1860, bottom: 1190 };
  const plotW = plot.right - plot.left;
  const plotH = plot.bottom - plot.top;
  const maxValue = Math.max(0, ...stats.flatMap((s) => [s.numImages, s.numClasses]));
  const step = niceStep((maxValue * 1.15) / 5);
  const yMax = Math.max(step, Math.ceil((maxValue * 1.15) / step) * step);
  const yTicks: number[] = [];
  for (let v = 0; v <= yMax + step / 2; v += step) yTicks.push(v);
  const n = Math.max(1, stats.length);
  const groupW = plotW / n;
  const barW = Math.round(groupW * 0.35);
  const yOf = (v: number): number => Math.round(plot.bottom - (v / yMax) * plotH);
  const bars: HistogramBar[] = [];
  stats.forEach((s, i) => {
    const center = plot.left + groupW * (i + 0.5);
    const series: [HistogramSeries, number, number][] = [
      ['images', s.numImages, Math.round(center) - barW],
      ['classes', s.numClasses, Math.round(center)],
    ];
    for (const [name, value, x] of series) {
      const y = yOf(value);
      bars.push({ tag: s.tag, series: name, value, x, y, width: barW, height: plot.bottom - y });
    }
  });

  const parts: string[] = [];
  const stroke = Math.round(0.8 * PT);
  const tick = Math.round(3.5 * PT);
  const text = chartText;
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  // Title and legend above the plot.
  const midX = (plot.left + plot.right) / 2;
  parts.push(text(midX, 90, HISTOGRAM_TITLE, titleFont, 'middle'));
  const legendY = 170;
  const swatchW = 70;
  const swatchH = 30;
  let lx = midX - 420;
  for (const series of ['images', 'classes'] as const) {
    parts.push(
      `<rect x="${lx}" y="${legendY - swatchH}" width="${swatchW}" height="${swatchH}" ` +
        `fill="${HISTOGRAM_COLORS[series]}" shape-rendering="crispEdges"/>`,
    );
    parts.push(text(lx + swatchW + 20, legendY, HISTOGRAM_LABELS[series], font, 'start'));
    lx += 440;
  }
  // Axes frame, y ticks and labels.
  parts.push(
    `<rect x="${plot.left}" y="${plot.top}" width="${plotW}" height="${plotH}" fill="none" ` +
      `stroke="#000" stroke-width="${stroke}"/>`,
  );
  for (const v of yTicks) {
    const y = yOf(v);
    parts.push(
      `<line x1="${plot.left - tick}" y1="${y}" x2="${plot.left}" y2="${y}" stroke="#000" stroke-width="${stroke}"/>`,
    );
    parts.push(text(plot.left - tick - 12, y + font * 0.35, String(v), font, 'end'));
  }
  stats.forEach((s, i) => {
    const cx = plot.left + groupW * (i + 0.5);
    parts.push(
      `<line x1="${cx}" y1="${plot.bottom}" x2="${cx}" y2="${plot.bottom + tick}" stroke="#000" stroke-width="${stroke}"/>`,
    );
    parts.push(text(cx, plot.bottom + tick + font + 8, s.tag, font, 'middle'));
  });
  parts.push(text(midX, plot.bottom + tick + 2 * font + 50, HISTOGRAM_X_LABEL, font, 'middle'));
  const yLabelX = 70;
  const yLabelY = (plot.top + plot.bottom) / 2;
  parts.push(
    text(
      yLabelX,
      yLabelY,
      HISTOGRAM_Y_LABEL,
      font,
      'middle',
      ` transform="rotate(-90 ${yLabelX} ${yLabelY})"`,
    ),
  );
  // Bars on top of the frame, each with its value above it.
  for (const b of bars) {
    if (b.height > 0) {
      parts.push(
        `<rect x="${b.x}" y="${b.y}" width="${b.width}" height="${b.height}" ` +
          `fill="${HISTOGRAM_COLORS[b.series]}" shape-rendering="crispEdges"/>`,
      );
    }
    parts.push(text(b.x + b.width / 2, b.y - 12, String(b.value), font, 'middle'));
  }
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
  return { svg, width, height, plot, yMax, yTicks, bars };
}

/** The chart as PNG bytes (300 dpi recorded in the file). */
export async function renderHistogramPng(stats: readonly SplitStats[]): Promise<Buffer> {
  const { svg } = buildHistogramSvg(stats);
  return sharp(Buffer.from(svg)).flatten({ background: '#fff' }).withDensity(300).png().toBuffer();
}
