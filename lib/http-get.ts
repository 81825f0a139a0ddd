/**
 * The one HTTP(S) GET of the package: official model downloads (`lib/download.ts`, also URL
 * inputs of predict through it) and URL images of service requests (`lib/serve/images.ts`).
 * Bounded in every way a caller can name: body size (declared and received), time (the whole
 * exchange, or no data for a while), redirects. The body goes to memory or to a file, with a
 * callback per chunk (progress, hashing). Every failure is an `HttpGetError` (PIF_DOWNLOAD)
 * whose `reason` says what went wrong, so that each caller words it its own way.
 */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import { DownloadError, type PifErrorDetails } from './errors.js';

/** What went wrong in an `httpGet`. */
export type HttpGetFailure =
  | 'url' // not a URL at all
  | 'protocol' // not http: or https:
  | 'redirects' // more redirects than allowed
  | 'status' // an answer other than 200 (`status`)
  | 'too-large' // the body is larger than `maxBytes` (`declared` when the header said so)
  | 'timeout' // the time limit ran out
  | 'closed' // the connection closed before the body ended
  | 'truncated' // fewer bytes than Content-Length (`bytes` of `declared`)
  | 'network'; // any other socket or file error (its message)

/** A failed GET; `message` is short and does not repeat the URL. */
export class HttpGetError extends DownloadError {
  readonly reason: HttpGetFailure;
  /** The HTTP status, for `status`. */
  readonly status: number | undefined;
  /** Content-Length, when the answer declared one. */
  readonly declared: number | null;
  /** Body bytes received. */
  readonly bytes: number;

  constructor(
    reason: HttpGetFailure,
    message: string,
    extra: { status?: number; declared?: number | null; bytes?: number } & PifErrorDetails = {},
  ) {
    const { status, declared, bytes, ...details } = extra;
    super(message, details);
    this.reason = reason;
    this.status = status;
    this.declared = declared ?? null;
    this.bytes = bytes ?? 0;
  }
}

export interface HttpGetOptions {
  /** Most body bytes (default: no limit). */
  maxBytes?: number;
  /** The whole exchange, redirects included, within this many ms. */
  totalTimeoutMs?: number;
  /** Abort when no data arrives for this many ms (per request). */
  idleTimeoutMs?: number;
  /** Most redirects followed (default 5). */
  maxRedirects?: number;
  /** Writes the body to this file instead of keeping it in memory. */
  file?: string;
  /** Called with each body chunk, the bytes so far and the declared total. */
  onChunk?: (chunk: Buffer, done: number, total: number | null) => void;
}

export interface HttpGetResult {
  /** The body; empty when it went to `file`. */
  body: Buffer;
  /** Body bytes received. */
  bytes: number;
  /** The URL that answered (after redirects). */
  url: string;
}

function transport(url: string): { parsed: URL; lib: typeof http | typeof https } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpGetError('url', 'not a valid URL', { file: url });
  }
  const lib = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : null;
  if (lib === null) {
    throw new HttpGetError('protocol', 'only http and https URLs are supported', { file: url });
  }
  return { parsed, lib };
}

/** GETs `url` (following redirects) within the options' bounds; rejects with HttpGetError. */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpGetResult> {
  const deadline =
    options.totalTimeoutMs === undefined ? undefined : Date.now() + options.totalTimeoutMs;
  let current = url;
  for (let redirects = 0; ; redirects++) {
    const next = await getOnce(current, options, deadline);
    if (typeof next !== 'string') return next;
    if (redirects >= (options.maxRedirects ?? 5)) {
      throw new HttpGetError('redirects', 'too many redirects', { file: current });
    }
    current = next;
  }
}

/** One request: the result, or the next URL of a redirect. */
function getOnce(
  url: string,
  options: HttpGetOptions,
  deadline: number | undefined,
): Promise<HttpGetResult | string> {
  const { parsed, lib } = transport(url);
  const signal =
    deadline === undefined ? undefined : AbortSignal.timeout(Math.max(1, deadline - Date.now()));
  return new Promise((resolve, reject) => {
    // Any failure: the time limit when it ran out, else the error as an HttpGetError.
    const failWith = (err: unknown): void => {
      if (signal?.aborted === true) {
        reject(
          new HttpGetError('timeout', `no complete answer within ${options.totalTimeoutMs} ms`, {
            file: url,
          }),
        );
      } else if (err instanceof HttpGetError) reject(err);
      else reject(new HttpGetError('network', (err as Error).message, { file: url, cause: err }));
    };
    const req = lib.get(parsed, signal === undefined ? {} : { signal }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        res.resume();
        resolve(new URL(location, parsed).toString());
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new HttpGetError('status', `HTTP ${status}`, { file: url, status }));
        return;
      }
      receive(res, url, options).then(resolve, failWith);
    });
    if (options.idleTimeoutMs !== undefined) {
      const ms = options.idleTimeoutMs;
      req.setTimeout(ms, () => {
        req.destroy(new HttpGetError('timeout', `no data for ${ms} ms`, { file: url }));
      });
    }
    req.on('error', failWith);
  });
}

/** The body of a 200 answer: within `maxBytes` and its Content-Length, to memory or a file. */
function receive(
  res: http.IncomingMessage,
  url: string,
  options: HttpGetOptions,
): Promise<HttpGetResult> {
  const maxBytes = options.maxBytes ?? Infinity;
  const lenHeader = res.headers['content-length'];
  const declared = lenHeader === undefined ? null : Number(lenHeader);
  return new Promise((resolve, reject) => {
    if (declared !== null && declared > maxBytes) {
      res.destroy();
      reject(
        new HttpGetError(
          'too-large',
          `it is ${declared} bytes, more than the limit of ${maxBytes}`,
          {
            file: url,
            declared,
          },
        ),
      );
      return;
    }
    const out = options.file === undefined ? null : createWriteStream(options.file);
    const chunks: Buffer[] = [];
    let done = 0;
    const bad = (err: Error): void => {
      out?.destroy();
      reject(err);
    };
    res.on('data', (chunk: Buffer) => {
      done += chunk.length;
      if (done > maxBytes) {
        res.destroy();
        bad(
          new HttpGetError('too-large', `it is more than the limit of ${maxBytes} bytes`, {
            file: url,
            declared,
            bytes: done,
          }),
        );
        return;
      }
      if (out === null) chunks.push(chunk);
      options.onChunk?.(chunk, done, declared);
    });
    res.on('error', bad);
    res.on('aborted', () => {
      bad(new HttpGetError('closed', 'connection closed early', { file: url, bytes: done }));
    });
    const finish = (): void => {
      if (declared !== null && done !== declared) {
        reject(
          new HttpGetError('truncated', `truncated: ${done} of ${declared} bytes`, {
            file: url,
            declared,
            bytes: done,
          }),
        );
        return;
      }
      resolve({ body: Buffer.concat(chunks), bytes: done, url });
    };
    if (out === null) {
      res.on('end', finish);
    } else {
      out.on('error', bad);
      out.on('finish', finish);
      res.pipe(out);
    }
  });
}
