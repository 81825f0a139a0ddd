/**
 * Images of service requests: Base64 (optionally a `data:image/...;base64,` URL) or an http(s)
 * URL, as PaddleX's serving accepts (spec §9.5). URL downloads are bounded in size and time. The
 * header is read (not the pixels) to learn the size and refuse images over the pixel limit before
 * anything is decoded; a body that is not an image is refused here too. Every failure is a
 * RequestError 422 naming the field.
 */
import sharp, { type Metadata } from 'sharp';

import { httpGet, HttpGetError } from '../http-get.js';
import { invalid, RequestError } from './schemas.js';

export interface ImageLimits {
  /** Most pixels (width × height) of one image. */
  maxPixels: number;
  /** Largest URL download, in bytes. */
  maxUrlBytes: number;
  /** URL download time limit, in ms (the whole download). */
  urlTimeoutMs: number;
  /** Whether http(s) URLs are accepted. */
  allowUrls: boolean;
}

export interface LoadedImage {
  /** The encoded image. */
  data: Uint8Array;
  /** Size after EXIF orientation: what the model sees. */
  width: number;
  height: number;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decodes strict Base64 (standard or URL-safe alphabet, whitespace allowed), or throws 422. */
export function decodeBase64(s: string, what: string): Buffer {
  let text = s;
  const m = /^data:[^,]{0,200};base64,/i.exec(text);
  if (m !== null) text = text.slice(m[0].length);
  text = text.replace(/\s+/g, '');
  if (text === '' || !BASE64.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw invalid(`${what} is neither an http(s) URL nor valid Base64 image data`);
  }
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

/** GETs a URL into memory: at most `maxBytes`, within `timeoutMs` in all, up to 3 redirects. */
export async function fetchBounded(
  url: string,
  maxBytes: number,
  timeoutMs: number,
): Promise<Buffer> {
  try {
    return (await httpGet(url, { maxBytes, totalTimeoutMs: timeoutMs, maxRedirects: 3 })).body;
  } catch (err) {
    // The service's wording (the field and URL are named by the caller).
    if (err instanceof HttpGetError && err.reason === 'closed') {
      throw new Error('the connection closed early', { cause: err });
    }
    throw err;
  }
}

/** Reads an image field: Base64 or URL -> bytes, then its header (size, pixel limit). */
export async function loadImage(
  ref: string,
  what: string,
  limits: ImageLimits,
): Promise<LoadedImage> {
  let data: Uint8Array;
  if (/^https?:\/\//i.test(ref)) {
    if (!limits.allowUrls) throw invalid(`${what}: URL images are turned off on this server`);
    try {
      data = await fetchBounded(ref, limits.maxUrlBytes, limits.urlTimeoutMs);
    } catch (err) {
      throw invalid(`${what}: cannot fetch ${ref.slice(0, 200)}: ${(err as Error).message}`);
    }
  } else {
    data = decodeBase64(ref, what);
  }
  let meta: Metadata;
  try {
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw invalid(`${what} is not a readable image (${(err as Error).message})`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (typeof width !== 'number' || typeof height !== 'number' || width < 1 || height < 1) {
    throw invalid(`${what} is not a readable image (no size in its header)`);
  }
  if (width * height > limits.maxPixels) {
    throw new RequestError(
      422,
      `${what} is ${width}x${height} = ${width * height} pixels, more than this server's limit of ${limits.maxPixels} pixels`,
    );
  }
  return { data, width, height };
}
