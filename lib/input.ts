/**
 * predict() inputs: what PaddleX accepts (../shared/spec/paddlex-behaviour.md §2), resolved in
 * order into single items, and decoded to RGB HWC uint8 pixels the way PaddleX's cv2.imread
 * does (EXIF orientation applied, 3 channels).
 *
 * - a file path with an image suffix (jpg, jpeg, png, bmp as PaddleX, compared case-insensitively,
 *   plus webp, tif, tiff, gif and avif, which sharp decodes);
 * - a directory: walked recursively (symlinked directories are not followed, so no walk can loop),
 *   image files sorted by full path in code-point order, as Python sorts them;
 * - an encoded image in a Buffer / Uint8Array;
 * - raw pixels `{ data, width, height, channels }`: HWC uint8, **BGR** like PaddleX's NumPy input
 *   (`order: 'rgb'` for RGB); 3 or 4 channels (a 4th channel is dropped, as PaddleX does);
 * - `{ img: <any of these> }`, as the PaddleX documentation describes;
 * - an http(s) URL: downloaded (overwriting) to `<cache>/predict_input/<basename>` as PaddleX
 *   does, and that local path becomes the input path (the suffix is taken from the URL path,
 *   ignoring query and fragment);
 * - an array of any of these (mixed).
 * Errors are typed and name the input: PIF_INPUT_NOT_FOUND (PaddleX's messages: `Not found any
 * files in path: <p>` for a missing path, also one with an image suffix; `Not found any file in
 * <dir>` for a directory without images), PIF_INPUT (unsupported suffixes), PIF_DOWNLOAD (a URL
 * that cannot be fetched), PIF_INPUT_DECODE (`Image read Error: <path>`).
 *
 * What is found about the world, input by input (a missing path, an empty directory, an
 * unsupported file, a failed download), becomes a `failed` item in that input's place, so one bad
 * input in a list never hides the results of the others. Only arguments that are wrong as
 * values (not a path, Buffer or pixels; malformed pixel objects) reject the whole call.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import {
  InputDecodeError,
  InputError,
  InputNotFoundError,
  InvalidArgumentError,
  PifError,
  PifIoError,
  UnsupportedError,
} from './errors.js';
import { fetchTo, paddlexCacheDir } from './download.js';
import type { RawImage } from './preprocess.js';

/** Suffixes PaddleX reads, then those sharp adds. */
export const IMAGE_SUFFIXES = ['jpg', 'png', 'jpeg', 'bmp', 'webp', 'tif', 'tiff', 'gif', 'avif'];

export interface PixelInput {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
  /** Channel order of `data` (default 'bgr', as PaddleX's NumPy arrays). */
  order?: 'bgr' | 'rgb';
}

export type ImageInput = string | Uint8Array | PixelInput | { img: ImageInput };
export type PredictInput = ImageInput | readonly ImageInput[];

/** One resolved input, in input order. */
export type InputItem =
  | { kind: 'file'; path: string }
  | { kind: 'encoded'; data: Uint8Array }
  | { kind: 'pixels'; pixels: PixelInput }
  /** A string input that could not be resolved; `path` is the input as given (path or URL). */
  | { kind: 'failed'; path: string; error: PifError };

/** The input path a result reports for an item: the file, the failed input string, or null. */
export function itemPath(item: InputItem): string | null {
  return item.kind === 'file' || item.kind === 'failed' ? item.path : null;
}

/** PaddleX's message for a path that does not exist. */
export function notFoundError(p: string): InputNotFoundError {
  return new InputNotFoundError(`Not found any files in path: ${p}`, { file: p });
}

function suffixOf(s: string): string {
  const dot = s.lastIndexOf('.');
  return dot < 0 ? '' : s.slice(dot + 1).toLowerCase();
}

/** Code-point order (Python's str order), not UTF-16 unit order. */
function codePointCompare(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = ((x[i] as string).codePointAt(0) ?? 0) - ((y[i] as string).codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

async function walk(dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, out);
    else if (
      (entry.isFile() || entry.isSymbolicLink()) &&
      IMAGE_SUFFIXES.includes(suffixOf(entry.name))
    ) {
      if (entry.isSymbolicLink() && !(await stat(full).catch(() => null))?.isFile()) continue;
      out.push(full);
    }
  }
}

function isPixelInput(v: object): v is PixelInput {
  return 'data' in v && 'width' in v && 'height' in v;
}

export interface ResolveOptions {
  /** Cache root for URL inputs (default $PADDLE_PDX_CACHE_HOME or ~/.paddlex). */
  cacheDir?: string;
  /** URL download timeout without data, ms (default 60 s). */
  timeoutMs?: number;
}

async function fetchInput(url: string, index: number, options: ResolveOptions): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(`input ${index}: not a valid URL: ${url}`);
  }
  const base = decodeURIComponent(path.posix.basename(parsed.pathname));
  if (!IMAGE_SUFFIXES.includes(suffixOf(base)) || base.includes('/') || base.startsWith('.')) {
    throw new InputError(
      `input ${index}: URL ${url} does not name an image file (suffixes: ${IMAGE_SUFFIXES.join(', ')})`,
    );
  }
  const dir = path.join(paddlexCacheDir(options.cacheDir), 'predict_input');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, base);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.part`;
  try {
    await fetchTo(url, tmp, options.timeoutMs ?? 60_000, () => {});
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return file;
}

/** A failure while resolving input `p` as a typed error (file-system errors become PIF_IO). */
function asInputError(err: unknown, p: string): PifError {
  if (err instanceof PifError) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string') {
    return new PifIoError(`${p}: ${e.message}`, { file: p, cause: err });
  }
  throw err; // a bug, not an input problem
}

/** Resolves one string input (a path, a directory or a URL) into `out`; throws PifErrors. */
async function resolvePath(
  v: string,
  index: number,
  out: InputItem[],
  options: ResolveOptions,
): Promise<void> {
  if (/^https?:\/\//i.test(v)) {
    out.push({ kind: 'file', path: await fetchInput(v, index, options) });
    return;
  }
  if (v.startsWith('http')) {
    throw new UnsupportedError(`input ${index}: only http and https URLs are supported: ${v}`);
  }
  const suffix = suffixOf(v);
  if (IMAGE_SUFFIXES.includes(suffix)) {
    out.push({ kind: 'file', path: v }); // existence is checked when it is read, as PaddleX does
    return;
  }
  if (suffix === 'pdf')
    throw new UnsupportedError(`input ${index}: PDF inputs are not supported yet: ${v}`);
  const st = await lstat(v).catch(() => null);
  if (st === null) throw notFoundError(v);
  if (st.isDirectory()) {
    const files: string[] = [];
    await walk(v, files);
    if (files.length === 0) throw new InputNotFoundError(`Not found any file in ${v}`, { file: v });
    files.sort(codePointCompare);
    for (const f of files) out.push({ kind: 'file', path: f });
    return;
  }
  throw new InputError(
    `input ${index}: ${v} is not an image file this package reads ` +
      `(suffixes: ${IMAGE_SUFFIXES.join(', ')}, case-insensitive)`,
    { file: v },
  );
}

async function resolveOne(
  v: unknown,
  index: number,
  out: InputItem[],
  options: ResolveOptions,
): Promise<void> {
  if (typeof v === 'string') {
    try {
      await resolvePath(v, index, out, options);
    } catch (err) {
      out.push({ kind: 'failed', path: v, error: asInputError(err, v) });
    }
    return;
  }
  if (v instanceof Uint8Array) {
    out.push({ kind: 'encoded', data: v });
    return;
  }
  if (typeof v === 'object' && v !== null) {
    if ('img' in v && Object.keys(v).length === 1) return resolveOne(v.img, index, out, options);
    if (isPixelInput(v)) {
      out.push({ kind: 'pixels', pixels: checkPixels(v, index) });
      return;
    }
  }
  throw new InvalidArgumentError(
    `input ${index}: expected a path, a directory, a Buffer/Uint8Array, ` +
      `{ data, width, height, channels } pixels or { img }, got ${v === null ? 'null' : typeof v}`,
  );
}

function checkPixels(p: PixelInput, index: number): PixelInput {
  const where = `input ${index} (pixels)`;
  if (!(p.data instanceof Uint8Array))
    throw new InputError(`${where}: data must be a Uint8Array (HWC uint8)`);
  for (const k of ['width', 'height'] as const) {
    const n = p[k];
    if (!Number.isInteger(n) || n < 1 || n > 65536) {
      throw new InputError(`${where}: ${k} must be an integer from 1 to 65536`);
    }
  }
  const channels = p.channels ?? 3;
  if (channels !== 3 && channels !== 4) {
    throw new InputError(
      `${where}: channels must be 3 or 4 (HWC, BGR or BGRA), got ${String(channels)}`,
    );
  }
  if (p.data.length !== p.width * p.height * channels) {
    throw new InputError(
      `${where}: data has ${p.data.length} bytes; width * height * channels is ${p.width * p.height * channels}`,
    );
  }
  const order = p.order ?? 'bgr';
  if (order !== 'bgr' && order !== 'rgb')
    throw new InputError(`${where}: order must be 'bgr' or 'rgb'`);
  return { data: p.data, width: p.width, height: p.height, channels, order };
}

/**
 * Resolves predict() inputs into items, in order (directories expanded). A string input that
 * cannot be resolved becomes a `failed` item in its place; wrong argument types reject.
 */
export async function resolveInputs(
  input: PredictInput,
  options: ResolveOptions = {},
): Promise<InputItem[]> {
  const list = Array.isArray(input) ? (input as readonly unknown[]) : [input];
  const out: InputItem[] = [];
  for (const [i, v] of list.entries()) await resolveOne(v, i, out, options);
  return out;
}

/** Decodes an item to RGB HWC uint8 (EXIF orientation applied, 3 channels). */
export async function decodeItem(item: InputItem): Promise<RawImage> {
  if (item.kind === 'failed') throw item.error;
  if (item.kind === 'pixels') {
    const { data, width, height, channels, order } = item.pixels;
    const rgb = new Uint8Array(width * height * 3);
    const bgr = order !== 'rgb';
    for (let i = 0, j = 0; j < rgb.length; i += channels, j += 3) {
      rgb[j] = data[bgr ? i + 2 : i] as number;
      rgb[j + 1] = data[i + 1] as number;
      rgb[j + 2] = data[bgr ? i : i + 2] as number;
    }
    return { data: rgb, width, height, channels: 3 };
  }
  const source = item.kind === 'file' ? item.path : item.data;
  const name = item.kind === 'file' ? item.path : `<encoded image of ${item.data.length} bytes>`;
  try {
    // ignoreIcc: OpenCV ignores embedded colour profiles, so must we (a grey JPEG with a
    // profile otherwise decodes to different values).
    const decode = (srgb: boolean) => {
      let img = sharp(source, { failOn: 'error', ignoreIcc: true }).rotate().removeAlpha();
      if (srgb) img = img.toColourspace('srgb');
      return img.raw().toBuffer({ resolveWithObject: true });
    };
    let { data, info } = await decode(false);
    if (info.channels !== 1 && info.channels !== 3) ({ data, info } = await decode(true));
    const { width, height } = info;
    if (info.channels === 3) {
      return {
        data: new Uint8Array(data.buffer, data.byteOffset, data.length),
        width,
        height,
        channels: 3,
      };
    }
    if (info.channels !== 1) throw new Error(`decoded to ${info.channels} channels`);
    // Grey: replicated to 3 channels, as cv2.imread(IMREAD_COLOR) does.
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++)
      rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i] as number;
    return { data: rgb, width, height, channels: 3 };
  } catch (err) {
    // A file that is not there is "not found", not a decode error (PaddleX says "Image read
    // Error" for both; a script acting on the code needs to tell them apart).
    if (item.kind === 'file' && (await lstat(item.path).catch(() => null)) === null) {
      throw notFoundError(item.path);
    }
    throw new InputDecodeError(`Image read Error: ${name}`, {
      ...(item.kind === 'file' ? { file: item.path } : {}),
      cause: err,
    });
  }
}
