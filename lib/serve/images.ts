/**
 * Images of service requests: Base64 (optionally a `data:image/...;base64,` URL) or an http(s)
 * URL, as PaddleX's serving accepts (spec §9.5). URL downloads are bounded in size and time. The
 * header is read (not the pixels) to learn the size and refuse images over the pixel limit before
 * anything is decoded; a body that is not an image is refused here too. Every failure is a
 * RequestError 422 naming the field.
 */
import http from 'node:http';
import https from 'node:https';

import sharp, { type Metadata } from 'sharp';

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
export function fetchBounded(
  url: string,
  maxBytes: number,
  timeoutMs: number,
  redirects = 3,
  deadline = Date.now() + timeoutMs,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reject(new Error('not a valid URL'));
      return;
    }
    const lib = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : null;
    if (lib === null) {
      reject(new Error('only http and https URLs are supported'));
      return;
    }
    const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    const req = lib.get(parsed, { signal }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        res.resume();
        if (redirects <= 0) {
          reject(new Error('too many redirects'));
          return;
        }
        const next = new URL(location, parsed).toString();
        fetchBounded(next, maxBytes, timeoutMs, redirects - 1, deadline).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new Error(`HTTP ${status}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > maxBytes) {
        res.destroy();
        reject(new Error(`it is ${declared} bytes, more than the limit of ${maxBytes}`));
        return;
      }
      const fail = (err: Error) => {
        reject(signal.aborted ? new Error(`no complete answer within ${timeoutMs} ms`) : err);
      };
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          reject(new Error(`it is more than the limit of ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        resolve(Buffer.concat(chunks));
      });
      res.on('error', fail);
      res.on('aborted', () => {
        fail(new Error('the connection closed early'));
      });
    });
    req.on('error', (err) => {
      reject(signal.aborted ? new Error(`no complete answer within ${timeoutMs} ms`) : err);
    });
  });
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
