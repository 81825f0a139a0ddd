/**
 * What every request of the service shares: the body read within its limit, the HTTP status of
 * a failure (PifError codes to statuses), and the per-image outcomes of multi-image requests (an
 * image's own fault becomes its error entry; anything else fails the request).
 */
import type http from 'node:http';

import { PifError } from '../errors.js';
import { IndexConflictError } from '../vector-index/index.js';
import { invalid, RequestError } from './schemas.js';

/** An image of a multi-image request that could not be used (its `index` in the request). */
export interface ImageError {
  index: number;
  errorCode: number;
  errorMsg: string;
}

/** One image's result: its value, or its error entry. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ImageError };

/** How many images of one request are fetched / decoded at once. */
export const LOAD_CONCURRENCY = 8;
/** Images per slice when building or adding (bounds the memory of one request). */
export const SLICE = 64;

export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  // One wording for both paths: a declared Content-Length, or a chunked body counted as it comes.
  const tooLarge = (size: string) =>
    new RequestError(
      413,
      `the request body is ${size} bytes; this server takes at most ${limit} bytes ` +
        '(set with serve --body-limit <MiB>, or startServer({ bodyLimitBytes }))',
    );
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(tooLarge(String(declared)));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(tooLarge(`more than ${limit}`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.readableEnded) reject(new RequestError(400, 'the client closed the connection'));
    });
  });
}

/** Status and message of a failure. */
export function failure(err: unknown): { status: number; message: string } {
  if (err instanceof RequestError) return { status: err.status, message: err.message };
  if (err instanceof PifError) {
    switch (err.code) {
      case 'PIF_INPUT':
      case 'PIF_INPUT_DECODE':
      case 'PIF_INPUT_NOT_FOUND':
      case 'PIF_INVALID_ARG':
        return { status: 422, message: err.message };
      case 'PIF_CLOSED':
        return { status: 503, message: `the server is shutting down (${err.message})` };
      case 'PIF_INDEX':
        // An index that does not belong to the server's model is a conflict; damage is not.
        return {
          status: err instanceof IndexConflictError ? 409 : 500,
          message: `${err.code}: ${err.message}`,
        };
      default:
        return { status: 500, message: `${err.code}: ${err.message}` };
    }
  }
  return {
    status: 500,
    message: `internal error: ${err instanceof Error ? err.message : String(err)}`,
  };
}

/**
 * Runs one image's step. The image's own fault (a 422: bad Base64, unreadable, too many pixels,
 * a failed URL) becomes its error entry; anything else fails the request.
 */
export async function perImage<T>(index: number, step: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await step() };
  } catch (err) {
    const f = failure(err);
    if (f.status !== 422) throw err;
    return { ok: false, error: { index, errorCode: f.status, errorMsg: f.message } };
  }
}

/**
 * The error entries of a multi-image request. When no image at all could be used, the request
 * fails (422): with the image's own message for one image, else naming the count and the first.
 */
export function imageErrors(outcomes: readonly Outcome<unknown>[]): ImageError[] {
  const errors = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
  const first = errors[0];
  if (first !== undefined && errors.length === outcomes.length) {
    throw invalid(
      errors.length === 1
        ? first.errorMsg
        : `no image could be used (${errors.length} of ${outcomes.length} failed); the first: ${first.errorMsg}`,
    );
  }
  return errors;
}

/** The body of a POST as JSON: 413 over the limit, 400 when it does not parse. */
export async function readJsonBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RequestError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
}
