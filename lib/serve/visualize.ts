/**
 * The visualisation image of `/shitu-infer` (PaddleX's `image` result field, spec §9.3 / §9.5):
 * the request image (EXIF orientation applied, as the model saw it) with every detected object's
 * box drawn and, when the object was recognised, its best label and score (`labels[0]` and its
 * score, as PaddleX's `save_to_img` shows them) on a filled tag at the box's top-left. The
 * overlay is one SVG composited by sharp (libvips, off the event loop); text is DejaVu Sans.
 * Answered as Base64 JPEG.
 */
import sharp from 'sharp';

import { escapeXml, FONT_FAMILY, measureText } from '../dataset/charts.js';

/** One object to draw: `bbox` [x1, y1, x2, y2] in image pixels; `label` null when not recognised. */
export interface DrawnObject {
  bbox: readonly number[];
  label: string | null;
  score: number | null;
}

/** Box colours, cycled per object (the first is PaddleX's colormap[0], pure red). */
const PALETTE = ['#ff0000', '#00a0ff', '#ffb000', '#20c020', '#c040ff', '#ff40a0'];

const JPEG_QUALITY = 90;

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

async function objectSvg(
  o: DrawnObject,
  colour: string,
  width: number,
  height: number,
): Promise<string> {
  const [bx1 = 0, by1 = 0, bx2 = width, by2 = height] = o.bbox;
  const line = Math.max(2, Math.round(Math.min(width, height) / 150));
  const x1 = clamp(bx1, 0, width);
  const y1 = clamp(by1, 0, height);
  const x2 = clamp(bx2, x1, width);
  const y2 = clamp(by2, y1, height);
  // The stroke is centred on the path: inset by half a line so the whole box stays visible.
  const half = line / 2;
  let svg =
    `<rect x="${x1 + half}" y="${y1 + half}" width="${Math.max(0, x2 - x1 - line)}" ` +
    `height="${Math.max(0, y2 - y1 - line)}" fill="none" stroke="${colour}" stroke-width="${line}"/>`;
  if (o.label === null) return svg;
  const text = `${o.label} ${(o.score ?? 0).toFixed(2)}`;
  const size = Math.max(10, Math.round(Math.min(width, height) / 25));
  const ink = await measureText(text, size);
  const pad = Math.max(2, Math.round(size / 5));
  const tagW = ink.right - Math.min(0, ink.left) + 2 * pad;
  const tagH = Math.ceil(size * 1.2) + pad;
  // Above the box when there is room, else inside its top-left corner.
  const tagY = y1 - tagH >= 0 ? y1 - tagH : y1;
  svg +=
    `<rect x="${x1}" y="${tagY}" width="${tagW}" height="${tagH}" fill="${colour}"/>` +
    `<text x="${x1 + pad}" y="${tagY + pad / 2 + size}" font-family="${FONT_FAMILY}" ` +
    `font-size="${size}" fill="#ffffff" xml:space="preserve">${escapeXml(text)}</text>`;
  return svg;
}

/**
 * Draws `objects` on the image `data` (`width` × `height` after EXIF orientation); resolves to
 * the Base64 JPEG.
 */
export async function renderShituImage(
  data: Uint8Array,
  width: number,
  height: number,
  objects: readonly DrawnObject[],
): Promise<string> {
  const parts = await Promise.all(
    objects.map((o, i) => objectSvg(o, PALETTE[i % PALETTE.length] as string, width, height)),
  );
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `${parts.join('')}</svg>`;
  const jpeg = await sharp(data, { limitInputPixels: false })
    .autoOrient()
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: JPEG_QUALITY })
    .toBuffer();
  return jpeg.toString('base64');
}
