/**
 * LabelMe datasets generated on the fly for the convert / split tests: real JPEG images rendered
 * by sharp, LabelMe annotation JSON files (with the flag order written exactly as given, which a
 * JS object could not keep for names like "10" and "2"), and a byte-level fingerprint of a
 * directory tree to prove that a failed operation changed nothing.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

export interface AnnotationSpec {
  /** File name in annotations/, e.g. "a.json". */
  name: string;
  /** The `imagePath` value; default `../images/<image>`. */
  imagePath?: string;
  /** The image file in images/ the annotation is about; default the annotation's stem + ".jpg". */
  image?: string;
  /** Flags in the order they are written. */
  flags?: readonly (readonly [string, boolean])[];
  /** Raw file content instead of generated JSON. */
  raw?: string;
}

export interface LabelMeSpec {
  /** Class names (one per line), or the raw text of label.txt. */
  labels: readonly string[] | string;
  annotations: readonly AnnotationSpec[];
  /** Extra images to render in images/ besides those the annotations name. */
  extraImages?: readonly string[];
  /** Leave these out of the dataset. */
  omit?: readonly ('label.txt' | 'annotations' | 'images')[];
  /** Files to write relative to the root (pre-existing lists, say). */
  files?: Readonly<Record<string, string>>;
}

const jpegCache = new Map<number, Buffer>();

/** A small solid-colour JPEG whose colour depends on `name`. */
export async function renderJpeg(name: string): Promise<Buffer> {
  const h = createHash('sha256').update(name).digest();
  const key = h.readUInt32BE(0) & 0xffffff;
  let buf = jpegCache.get(key);
  if (buf === undefined) {
    buf = await sharp({
      create: {
        width: 16,
        height: 12,
        channels: 3,
        background: { r: h[0]!, g: h[1]!, b: h[2]! },
      },
    })
      .jpeg({ quality: 90 })
      .toBuffer();
    jpegCache.set(key, buf);
  }
  return buf;
}

/** LabelMe annotation JSON text with `flags` in the given order (LabelMe 5 layout). */
export function annotationJson(
  imagePath: string,
  flags: readonly (readonly [string, boolean])[],
): string {
  const flagText = flags.map(([k, v]) => `    ${JSON.stringify(k)}: ${v}`).join(',\n');
  return (
    '{\n' +
    '  "version": "5.2.1",\n' +
    `  "flags": {${flags.length === 0 ? '' : `\n${flagText}\n  `}},\n` +
    '  "shapes": [],\n' +
    `  "imagePath": ${JSON.stringify(imagePath)},\n` +
    '  "imageData": null,\n' +
    '  "imageHeight": 12,\n' +
    '  "imageWidth": 16\n' +
    '}\n'
  );
}

function stem(name: string): string {
  return name.replace(/\.[^.]*$/, '');
}

/** Writes a LabelMe dataset rooted at `root` (created if needed). */
export async function makeLabelMe(root: string, spec: LabelMeSpec): Promise<void> {
  const omit = new Set(spec.omit ?? []);
  await mkdir(root, { recursive: true });
  if (!omit.has('label.txt')) {
    const text =
      typeof spec.labels === 'string' ? spec.labels : spec.labels.map((l) => `${l}\n`).join('');
    await writeFile(path.join(root, 'label.txt'), text);
  }
  const images = new Set(spec.extraImages ?? []);
  if (!omit.has('annotations')) {
    await mkdir(path.join(root, 'annotations'), { recursive: true });
    for (const a of spec.annotations) {
      const image = a.image ?? `${stem(a.name)}.jpg`;
      images.add(image);
      const text = a.raw ?? annotationJson(a.imagePath ?? `../images/${image}`, a.flags ?? []);
      await writeFile(path.join(root, 'annotations', a.name), text);
    }
  }
  if (!omit.has('images')) {
    await mkdir(path.join(root, 'images'), { recursive: true });
    for (const image of images) {
      await writeFile(path.join(root, 'images', image), await renderJpeg(image));
    }
  }
  for (const [rel, text] of Object.entries(spec.files ?? {})) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
}

/**
 * Fingerprint of everything under `dir`: relative path → "dir", "link:<target>" or the sha256
 * of the file's bytes. Hidden files are included, so leftover temp files show up too.
 */
export async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      const full = path.join(dir, r);
      if (e.isDirectory()) {
        out.set(r, 'dir');
        await walk(r);
      } else if (e.isSymbolicLink()) {
        out.set(r, `link:${await readlink(full)}`);
      } else {
        out.set(
          r,
          createHash('sha256')
            .update(await readFile(full))
            .digest('hex'),
        );
      }
    }
  }
  await walk('');
  return out;
}
