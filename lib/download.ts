/**
 * Official model download into PaddleX's cache layout (../shared/spec/paddlex-behaviour.md §4.6):
 * `<base>/<name>_infer.tar` -> `<cache>/official_models/<name>/`. The tar is downloaded to a
 * temporary directory beside the target (size checked against Content-Length; sha256 reported
 * and checked when known), unpacked by our own tar reader (regular files and directories only:
 * no absolute paths, no `..`, no links), checked to hold a model, then renamed into place in one
 * step. An interrupted or failed download leaves nothing half-valid, and the next call retries
 * cleanly. Base URL: `PIF_MODEL_BASE_URL`; offline mode: `PIF_OFFLINE=1` (a precise error
 * instead of a download).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

import { DownloadError } from './errors.js';
import { httpGet, HttpGetError } from './http-get.js';

export const DEFAULT_MODEL_BASE_URL =
  'https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/paddle3.0.0';

/** sha256 of official tars, when known (none verified yet: the host is unreachable here). */
export const KNOWN_SHA256: Readonly<Record<string, string>> = {};

export interface DownloadOptions {
  /** Default: $PIF_MODEL_BASE_URL or the PaddleX 3.0 host. */
  baseUrl?: string;
  /** No network: fail with a precise error (default: $PIF_OFFLINE === '1'). */
  offline?: boolean;
  /** Abort when no data arrives for this long (default 60 s). */
  timeoutMs?: number;
  /** Progress callback (bytes so far, total or null); default: a bar on stderr when it is a TTY. */
  onProgress?: (done: number, total: number | null) => void;
}

export interface DownloadResult {
  dir: string;
  url: string;
  bytes: number;
  sha256: string;
}

function fail(msg: string, url: string, cause?: unknown): never {
  throw new DownloadError(msg, { file: url, ...(cause === undefined ? {} : { cause }) });
}

function ttyProgress(name: string): (done: number, total: number | null) => void {
  let last = 0;
  return (done, total) => {
    if (!process.stderr.isTTY) return;
    const now = Date.now();
    if (now - last < 100 && done !== total) return;
    last = now;
    const mb = (n: number) => (n / 2 ** 20).toFixed(1);
    const pct = total ? Math.floor((100 * done) / total) : null;
    const bar = pct === null ? '' : `[${'#'.repeat(pct / 5).padEnd(20, '.')}] ${pct}% `;
    process.stderr.write(`\r${name}: ${bar}${mb(done)}${total ? `/${mb(total)}` : ''} MB`);
    if (done === total) process.stderr.write('\n');
  };
}

/** The download's wording of a failed GET: each message names the URL. */
function downloadMessage(err: HttpGetError, url: string): string {
  const at = err.file ?? url;
  switch (err.reason) {
    case 'url':
    case 'protocol':
      return `unsupported URL ${url} (http or https only)`;
    case 'redirects':
      return `too many redirects: ${at}`;
    case 'status':
      return `HTTP ${err.status} for ${at}`;
    case 'truncated':
      return `download of ${at} is truncated: ${err.bytes} of ${err.declared} bytes`;
    default:
      return `download of ${at} failed: ${err.message}`;
  }
}

/** GETs `url` into `file`; follows up to 5 redirects. Throws DownloadError. */
export async function fetchTo(
  url: string,
  file: string,
  timeoutMs: number,
  onProgress: (done: number, total: number | null) => void,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  try {
    const got = await httpGet(url, {
      file,
      idleTimeoutMs: timeoutMs,
      maxRedirects: 5,
      onChunk: (chunk, done, total) => {
        hash.update(chunk);
        onProgress(done, total);
      },
    });
    return { bytes: got.bytes, sha256: hash.digest('hex') };
  } catch (err) {
    if (!(err instanceof HttpGetError)) throw err;
    const plain = ['url', 'protocol', 'redirects', 'status', 'truncated'].includes(err.reason);
    const cause = plain ? undefined : (err.cause ?? err);
    fail(downloadMessage(err, url), err.file ?? url, cause);
  }
}

function octal(buf: Buffer, off: number, len: number): number {
  const s = buf
    .subarray(off, off + len)
    .toString('latin1')
    .replace(/\0.*$/s, '')
    .trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`bad octal field '${s}'`);
  return parseInt(s, 8);
}

function cstr(buf: Buffer, off: number, len: number): string {
  const b = buf.subarray(off, off + len);
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

/** A safe relative path inside the extraction root, or an error. */
function safeRelative(name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (name.startsWith('/') || parts.some((p) => p === '..') || /^[A-Za-z]:/.test(name)) {
    throw new Error(`unsafe path '${name}' in the archive`);
  }
  return parts.join('/');
}

/** Extracts a ustar/pax/GNU tar: regular files and directories only. */
export async function extractTar(tarFile: string, dest: string): Promise<string[]> {
  const fh = await open(tarFile, 'r');
  const files: string[] = [];
  try {
    const size = (await fh.stat()).size;
    let pos = 0;
    let longName: string | null = null;
    const header = Buffer.alloc(512);
    while (pos + 512 <= size) {
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) break; // end of archive
      const stored = octal(header, 148, 8);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] as number);
      if (sum !== stored) throw new Error(`bad header checksum at byte ${pos}`);
      const type = String.fromCharCode(header[156] as number);
      const len = octal(header, 124, 12);
      const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar')
        ? cstr(header, 345, 155)
        : '';
      let name = longName ?? (prefix ? `${prefix}/${cstr(header, 0, 100)}` : cstr(header, 0, 100));
      longName = null;
      const dataPos = pos + 512;
      if (dataPos + len > size) throw new Error(`entry '${name}' is truncated`);
      pos = dataPos + Math.ceil(len / 512) * 512;
      if (type === 'x' || type === 'L') {
        const body = Buffer.alloc(len);
        await fh.read(body, 0, len, dataPos);
        if (type === 'L') longName = cstr(body, 0, len);
        else {
          const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
          if (m) longName = m[1] as string;
        }
        continue;
      }
      if (type === 'g') continue;
      const rel = safeRelative(name);
      if (rel === '') continue;
      const target = path.join(dest, rel);
      if (type === '5') {
        await mkdir(target, { recursive: true });
        continue;
      }
      if (type !== '0' && type !== '\0' && type !== '7') {
        throw new Error(
          `entry '${name}' is a ${type === '2' ? 'symlink' : type === '1' ? 'hard link' : `type '${type}' entry`}; only files and directories are allowed`,
        );
      }
      name = rel;
      await mkdir(path.dirname(target), { recursive: true });
      const out = await open(target, 'wx');
      try {
        const chunk = Buffer.alloc(1 << 20);
        for (let off = 0; off < len; off += chunk.length) {
          const n = Math.min(chunk.length, len - off);
          await fh.read(chunk, 0, n, dataPos + off);
          await out.write(chunk, 0, n);
        }
      } finally {
        await out.close();
      }
      files.push(name);
    }
    if (files.length === 0) throw new Error('the archive holds no files');
  } finally {
    await fh.close();
  }
  return files;
}

/** The PaddleX cache root: `explicit`, else $PADDLE_PDX_CACHE_HOME, else ~/.paddlex. */
export function paddlexCacheDir(explicit?: string): string {
  return explicit ?? process.env['PADDLE_PDX_CACHE_HOME'] ?? path.join(homedir(), '.paddlex');
}

/**
 * Downloads and installs `<name>` into `<cacheDir>/official_models/<name>` unless it exists.
 * Throws DownloadError (PIF_DOWNLOAD).
 */
export async function downloadOfficialModel(
  name: string,
  cacheDir: string,
  options: DownloadOptions = {},
): Promise<DownloadResult | null> {
  const root = path.join(cacheDir, 'official_models');
  const dir = path.join(root, name);
  if ((await stat(dir).catch(() => null)) !== null) return null; // cached
  const base = (
    options.baseUrl ??
    process.env['PIF_MODEL_BASE_URL'] ??
    DEFAULT_MODEL_BASE_URL
  ).replace(/\/+$/, '');
  const url = `${base}/${name}_infer.tar`;
  // What a user can do instead, said in every error of a model that is not there.
  const instead =
    `pass your own model directory (modelDir; on the command line --model-dir), ` +
    `copy the model to ${dir}, or set PIF_MODEL_BASE_URL to a reachable mirror`;
  if (options.offline ?? process.env['PIF_OFFLINE'] === '1') {
    fail(
      `offline mode (PIF_OFFLINE=1): ${name} is not in the cache (${dir}) and would be downloaded from ${url}; ${instead}`,
      url,
    );
  }
  await mkdir(root, { recursive: true });
  const tmp = path.join(root, `.download-${name}-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp);
  try {
    const tarFile = path.join(tmp, 'model.tar');
    const got = await fetchTo(
      url,
      tarFile,
      options.timeoutMs ?? 60_000,
      options.onProgress ?? ttyProgress(name),
    ).catch((err: unknown) =>
      fail(
        `${name} is not in the cache (${dir}) and downloading it failed: ${(err as Error).message}; ${instead} (PIF_OFFLINE=1 fails at once instead of trying the network)`,
        url,
        err,
      ),
    );
    const want = KNOWN_SHA256[name];
    if (want !== undefined && want !== got.sha256) {
      fail(`sha256 of ${url} is ${got.sha256}, expected ${want}`, url);
    }
    const unpacked = path.join(tmp, 'unpacked');
    await mkdir(unpacked);
    try {
      await extractTar(tarFile, unpacked);
    } catch (err) {
      fail(`${url}: not a valid model archive: ${(err as Error).message}`, url, err);
    }
    // PaddleX tars hold one top directory (<name>_infer/): its content is the model.
    let modelRoot = unpacked;
    const top = await readdir(unpacked, { withFileTypes: true });
    if (top.length === 1 && top[0]?.isDirectory()) modelRoot = path.join(unpacked, top[0].name);
    const entries = await readdir(modelRoot);
    const hasProgram = entries.includes('inference.json') || entries.includes('inference.pdmodel');
    if (!hasProgram || !entries.includes('inference.pdiparams')) {
      fail(`${url}: the archive holds no inference model (found: ${entries.join(', ')})`, url);
    }
    try {
      await rename(modelRoot, dir);
    } catch (err) {
      // Someone else installed it meanwhile: keep theirs.
      if ((await stat(dir).catch(() => null)) === null) throw err;
    }
    return { dir, url, bytes: got.bytes, sha256: got.sha256 };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
