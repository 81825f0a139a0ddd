/**
 * The HTTP service (node:http): PaddleX's PP-ShiTuV2 serving endpoints (spec §9.5) plus our
 * feature endpoint and a health check.
 *
 *   POST /shitu-index-build   {imageLabelPairs: [{image, label}]}  -> {indexKey, imageCount, ids, errors}
 *   POST /shitu-index-add     {imageLabelPairs, indexKey}          -> {imageCount, ids, errors}
 *   POST /shitu-index-remove  {ids, indexKey}                               -> {imageCount}
 *   POST /shitu-infer         {image, indexKey, recThreshold?, topk?, visualize?, ...}
 *                                                                    -> {detectedObjects, image}
 *   POST /image-feature       {image} | {images: [...]}             -> {features, dim, errors}
 *   GET  /health                                                            -> {status, model, batching, stats}
 *
 * Answers use PaddleX's envelope: `{logId, errorCode: 0, errorMsg: "Success", result}`, errors
 * `{logId, errorCode: <HTTP status>, errorMsg}`: 400 unparsable JSON, 404 unknown route or
 * indexKey, 405 wrong method, 413 body over the limit, 422 invalid body (wrong types, missing
 * fields, bad Base64, an image that cannot be read or has too many pixels), 503 shutting down,
 * 500 anything else. A failing request never affects the others.
 *
 * Requests with several images (/image-feature `images`, index build / add): an image that cannot
 * be used (bad Base64, not an image, too many pixels, a failed URL) does not fail the request: it
 * gets an entry `{index, errorCode: 422, errorMsg}` in the result's `errors` (index: its position
 * in the request), its feature is null / it gets no id, and every other image is processed. Only
 * when no image at all can be used does the request fail (422). Anything that is not the image's
 * fault (shutting down, an internal error) still fails the whole request.
 *
 * Differences from PaddleX: `topk` is honoured (PaddleX drops it); indexes are Flat/IP as
 * PaddleX's, stored as directories (index-store.ts) rather than pickles; there is no detector
 * yet, so every image is one full-image object (bbox [0, 0, W, H], score 0, PaddleX's own
 * fallback when nothing is detected) and detThreshold / hammingRadius are accepted and unused;
 * `indexKey` is required by /shitu-infer (there is no pipeline-config default index).
 * /shitu-infer's `image` is PaddleX's visualisation (boxes, best label and score; Base64 JPEG,
 * visualize.ts) unless the request says `visualize: false` (or the server was started with
 * `visualize: false` and the request does not say `true`); then it is null.
 *
 * Feature extraction goes through the dynamic batcher (batcher.ts): concurrent requests share
 * inference calls.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { InvalidArgumentError, PifError, PifIoError } from '../errors.js';
import type { FeatureModel } from '../image-feature.js';
import { DEFAULT_REC_THRESHOLD, DEFAULT_REC_TOPK, recognizeWithIndex } from '../recognize.js';
import { createIndex } from '../vector-index/index.js';
import { FeatureBatcher, type BatcherStats } from './batcher.js';
import { loadImage, type ImageLimits, type LoadedImage } from './images.js';
import { IndexStore } from './index-store.js';
import { renderShituImage } from './visualize.js';
import {
  invalid,
  parseFeature,
  parseIndexAdd,
  parseIndexBuild,
  parseIndexRemove,
  parseInfer,
  RequestError,
  type ImageLabelPair,
} from './schemas.js';

export interface ServerOptions {
  /** The feature model (PP-ShiTuV2_rec or a CLIP recogniser). */
  model: FeatureModel;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Where indexes persist (each indexKey a directory); undefined keeps them in memory only. */
  indexDir?: string;
  /** Dynamic batching: most images per inference call (default 8; 1 turns batching off). */
  maxBatch?: number;
  /** Dynamic batching: longest wait for a batch to fill, ms (default 5). */
  maxWaitMs?: number;
  /** Inference calls running at once (default 1). */
  maxInFlight?: number;
  /** Largest request body, bytes (default 32 MiB). */
  bodyLimitBytes?: number;
  /** Most pixels of one image (default 40 000 000). */
  maxPixels?: number;
  /** Most images in one request (default 10 000). */
  maxImagesPerRequest?: number;
  /** /shitu-infer: answer the visualisation image when a request does not say (default true, as PaddleX). */
  visualize?: boolean;
  /** Accept http(s) URLs as images (default true). */
  allowUrls?: boolean;
  /** Largest URL download, bytes (default 20 MiB). */
  maxUrlBytes?: number;
  /** URL download time limit, ms (default 10 000). */
  urlTimeoutMs?: number;
  /** How long close() lets running requests finish before cutting connections, ms (default 30 000). */
  shutdownTimeoutMs?: number;
  /** Close the model in close() (default false: the caller owns it). */
  closeModel?: boolean;
  /** Called with one line per request (`POST /shitu-infer 200 12.3 ms`). */
  log?: (line: string) => void;
}

export interface ServerStats {
  /** Requests answered, in all. */
  requests: number;
  /** Of which answered with an error status. */
  errors: number;
  /** Requests being processed now. */
  active: number;
  /** The dynamic batcher: `batches` counts native inference calls. */
  batcher: BatcherStats;
  /** Indexes loaded in memory. */
  indexesLoaded: number;
  /** The process's memory (process.memoryUsage()), bytes. */
  memory: { rss: number; heapUsed: number; external: number; arrayBuffers: number };
}

export interface RunningServer {
  /** `http://host:port`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly server: http.Server;
  stats(): ServerStats;
  /**
   * Graceful shutdown: stops accepting connections, lets running requests finish (answering
   * new ones on open connections with 503), waits for running batches and index saves.
   */
  close(): Promise<void>;
}

export const DEFAULT_BODY_LIMIT = 32 * 2 ** 20;
export const DEFAULT_MAX_PIXELS = 40_000_000;

/** An image of a multi-image request that could not be used (its `index` in the request). */
export interface ImageError {
  index: number;
  errorCode: number;
  errorMsg: string;
}

/** One image's result: its value, or its error entry. */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: ImageError };

/** How many images of one request are fetched / decoded at once. */
const LOAD_CONCURRENCY = 8;
/** Images per slice when building or adding (bounds the memory of one request). */
const SLICE = 64;

async function mapLimit<T, R>(
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
function failure(err: unknown): { status: number; message: string } {
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
async function perImage<T>(index: number, step: () => Promise<T>): Promise<Outcome<T>> {
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
function imageErrors(outcomes: readonly Outcome<unknown>[]): ImageError[] {
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

function checkOption(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(
      `startServer: ${what} must be an integer from ${min} to ${max}, got ${String(v)}`,
    );
  }
  return v;
}

type Handler = (body: unknown) => Promise<unknown>;

interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
}

/** The checked settings of a server. */
interface Settings {
  model: FeatureModel;
  host: string;
  port: number;
  bodyLimit: number;
  maxImages: number;
  limits: ImageLimits;
  visualizeByDefault: boolean;
  shutdownTimeoutMs: number;
}

function checkSettings(options: ServerOptions): Settings {
  const model = options.model;
  if (typeof model !== 'object' || model === null || typeof model.predictAll !== 'function') {
    throw new InvalidArgumentError(
      'startServer: options.model must be a FeatureModel (createModel)',
    );
  }
  return {
    model,
    host: options.host ?? '127.0.0.1',
    port: checkOption(options.port ?? 8080, 'port', 0, 65535),
    bodyLimit: checkOption(
      options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
      'bodyLimitBytes',
      1,
      2 ** 40,
    ),
    maxImages: checkOption(options.maxImagesPerRequest ?? 10_000, 'maxImagesPerRequest', 1, 1e9),
    limits: {
      maxPixels: checkOption(options.maxPixels ?? DEFAULT_MAX_PIXELS, 'maxPixels', 1, 2 ** 40),
      maxUrlBytes: checkOption(options.maxUrlBytes ?? 20 * 2 ** 20, 'maxUrlBytes', 1, 2 ** 40),
      urlTimeoutMs: checkOption(options.urlTimeoutMs ?? 10_000, 'urlTimeoutMs', 1, 3_600_000),
      allowUrls: options.allowUrls ?? true,
    },
    visualizeByDefault: options.visualize ?? true,
    shutdownTimeoutMs: checkOption(
      options.shutdownTimeoutMs ?? 30_000,
      'shutdownTimeoutMs',
      0,
      3_600_000,
    ),
  };
}

/** What the routes and the request handler share: the settings, batcher, indexes, counters. */
interface Service {
  settings: Settings;
  batcher: FeatureBatcher;
  store: IndexStore;
  counters: { closing: boolean; active: number; requests: number; errors: number };
  stats: () => ServerStats;
}

async function openService(settings: Settings, options: ServerOptions): Promise<Service> {
  const { model } = settings;
  const batcher = new FeatureBatcher(model, {
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    ...(options.maxWaitMs === undefined ? {} : { maxWaitMs: options.maxWaitMs }),
    ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
  });
  const store = new IndexStore({ indexDir: options.indexDir, model });
  await store.init();
  const counters = { closing: false, active: 0, requests: 0, errors: 0 };
  const stats = (): ServerStats => ({
    requests: counters.requests,
    errors: counters.errors,
    active: counters.active,
    batcher: batcher.stats(),
    indexesLoaded: store.loaded,
    memory: (({ rss, heapUsed, external, arrayBuffers }) => ({
      rss,
      heapUsed,
      external,
      arrayBuffers,
    }))(process.memoryUsage()),
  });
  return { settings, batcher, store, counters, stats };
}

/** Features of request images through the batcher. */
interface Features {
  /** Feature of a loaded image; a decode failure is a 422 naming the field. */
  featureOf: (img: LoadedImage, what: string) => Promise<Float32Array>;
  /**
   * Features of several images, per image its feature or its error entry: fetched / decoded
   * LOAD_CONCURRENCY at a time, then all submitted at once so that they share batches.
   * `first` is the request position of refs[0]; `what` names a position's field.
   */
  featuresOf: (
    refs: readonly string[],
    what: (index: number) => string,
    first?: number,
  ) => Promise<Outcome<Float32Array>[]>;
}

function features(svc: Service): Features {
  const { batcher } = svc;
  const { limits } = svc.settings;
  const featureOf = async (img: LoadedImage, what: string): Promise<Float32Array> => {
    try {
      return await batcher.submit(img.data);
    } catch (err) {
      const f = failure(err);
      if (f.status === 422) throw invalid(`${what}: ${f.message}`);
      throw err;
    }
  };
  const featuresOf = async (
    refs: readonly string[],
    what: (index: number) => string,
    first = 0,
  ): Promise<Outcome<Float32Array>[]> => {
    const loaded = await mapLimit(refs, LOAD_CONCURRENCY, (ref, i) =>
      perImage(first + i, () => loadImage(ref, what(first + i), limits)),
    );
    return Promise.all(
      loaded.map((o, i) =>
        o.ok ? perImage(first + i, () => featureOf(o.value, what(first + i))) : Promise.resolve(o),
      ),
    );
  };
  return { featureOf, featuresOf };
}

/**
 * Features (n × dim) and labels of the usable image/label pairs, a slice at a time; `positions`
 * are their places in `pairs`, `errors` the entries of the others.
 */
async function pairFeatures(
  f: Features,
  pairs: readonly ImageLabelPair[],
): Promise<{
  features: Float32Array;
  labels: string[];
  positions: number[];
  errors: ImageError[];
}> {
  const outcomes: Outcome<Float32Array>[] = [];
  for (let start = 0; start < pairs.length; start += SLICE) {
    const slice = pairs.slice(start, start + SLICE).map((p) => p.image);
    outcomes.push(...(await f.featuresOf(slice, (i) => `imageLabelPairs[${i}].image`, start)));
  }
  const errors = imageErrors(outcomes);
  const rows = outcomes.flatMap((o, i) => (o.ok ? [{ i, feature: o.value }] : []));
  const dim = rows[0]?.feature.length ?? 0;
  const features = new Float32Array(rows.length * dim);
  rows.forEach((r, k) => {
    features.set(r.feature, k * dim);
  });
  const positions = rows.map((r) => r.i);
  return {
    features,
    labels: positions.map((i) => (pairs[i] as ImageLabelPair).label),
    positions,
    errors,
  };
}

/** Per pair of the request: the id its image got, or null (see its error entry). */
function idsByPosition(n: number, positions: readonly number[], ids: readonly number[]) {
  const out = new Array<number | null>(n).fill(null);
  positions.forEach((p, k) => {
    out[p] = ids[k] ?? null;
  });
  return out;
}

const unknownKey = (key: string) => new RequestError(404, `unknown indexKey '${key}'`);

/** /shitu-index-build, /shitu-index-add and /shitu-index-remove. */
function indexRoutes(svc: Service, f: Features): Record<string, Route> {
  const { store } = svc;
  const { model, maxImages } = svc.settings;
  return {
    '/shitu-index-build': {
      method: 'POST',
      handler: async (body) => {
        const req = parseIndexBuild(body, maxImages);
        const n = req.imageLabelPairs.length;
        const { features, labels, positions, errors } = await pairFeatures(f, req.imageLabelPairs);
        // PaddleX's server always builds Flat / IP.
        const index = createIndex({ metric: 'IP', type: 'Flat', model });
        const ids = await index.add({ features, labels });
        const indexKey = await store.create(index);
        return {
          indexKey,
          imageCount: index.size,
          ids: idsByPosition(n, positions, ids),
          errors,
        };
      },
    },
    '/shitu-index-add': {
      method: 'POST',
      handler: async (body) => {
        const req = parseIndexAdd(body, maxImages);
        if (!(await store.has(req.indexKey))) throw unknownKey(req.indexKey);
        const n = req.imageLabelPairs.length;
        const { features, labels, positions, errors } = await pairFeatures(f, req.imageLabelPairs);
        return store.update(req.indexKey, async (index) => {
          const ids = await index.add({ features, labels });
          return { imageCount: index.size, ids: idsByPosition(n, positions, ids), errors };
        });
      },
    },
    '/shitu-index-remove': {
      method: 'POST',
      handler: async (body) => {
        const req = parseIndexRemove(body);
        return store.update(req.indexKey, async (index) => {
          await index.remove(req.ids);
          return { imageCount: index.size };
        });
      },
    },
  };
}

/** /shitu-infer: recognition of one image over an index, with PaddleX's visualisation. */
function inferRoute(svc: Service, f: Features): Route {
  const { store } = svc;
  const { limits, visualizeByDefault } = svc.settings;
  return {
    method: 'POST',
    handler: async (body) => {
      const req = parseInfer(body);
      const key = req.indexKey;
      if (key === undefined) {
        throw invalid(
          'indexKey is required: this server has no default index (build one with /shitu-index-build)',
        );
      }
      if (!(await store.has(key))) throw unknownKey(key);
      const img = await loadImage(req.image, 'image', limits);
      const feature = await f.featureOf(img, 'image');
      const [res] = await store.read(key, (index) =>
        recognizeWithIndex(index, feature, [{ width: img.width, height: img.height }], {
          recThreshold: req.recThreshold ?? DEFAULT_REC_THRESHOLD,
          topk: req.topk ?? DEFAULT_REC_TOPK,
        }),
      );
      const boxes = res?.boxes ?? [];
      const detectedObjects = boxes.map((b) => ({
        bbox: b.coordinate,
        recResults:
          b.labels[0] === null || b.labels[0] === undefined
            ? []
            : b.labels.map((label, i) => ({ label, score: b.recScores[i] })),
        score: b.detScore,
      }));
      if (!(req.visualize ?? visualizeByDefault)) return { detectedObjects, image: null };
      const drawn = detectedObjects.map((o) => ({
        bbox: o.bbox,
        label: o.recResults[0]?.label ?? null,
        score: o.recResults[0]?.score ?? null,
      }));
      let image: string;
      try {
        image = await renderShituImage(img.data, img.width, img.height, drawn);
      } catch (err) {
        throw invalid(
          `image: cannot draw the visualisation image (${(err as Error).message}); send visualize: false to skip it`,
        );
      }
      return { detectedObjects, image };
    },
  };
}

/** Every route of the service. */
function routesOf(svc: Service): Record<string, Route> {
  const f = features(svc);
  const { batcher } = svc;
  const { model, maxImages } = svc.settings;
  return {
    ...indexRoutes(svc, f),
    '/shitu-infer': inferRoute(svc, f),
    '/image-feature': {
      method: 'POST',
      handler: async (body) => {
        const req = parseFeature(body, maxImages);
        const outcomes = await f.featuresOf(req.images, (i) =>
          req.single ? 'image' : `images[${i}]`,
        );
        const errors = imageErrors(outcomes);
        const features = outcomes.map((o) => (o.ok ? Array.from(o.value) : null));
        return { features, dim: features.find((x) => x !== null)?.length ?? 0, errors };
      },
    },
    '/health': {
      method: 'GET',
      handler: () =>
        Promise.resolve({
          status: svc.counters.closing ? 'closing' : 'ok',
          model: model.modelName,
          batching: {
            maxBatch: batcher.maxBatch,
            maxWaitMs: batcher.maxWaitMs,
            maxInFlight: batcher.maxInFlight,
          },
          stats: svc.stats(),
        }),
    },
  };
}

type Send = (
  res: http.ServerResponse,
  status: number,
  payload: unknown,
  headers?: Record<string, string>,
) => void;

/** Writes a JSON answer (once; `Connection: close` while shutting down). */
function sender(svc: Service): Send {
  return (res, status, payload, headers = {}) => {
    const text = JSON.stringify(payload);
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(text)),
      ...(svc.counters.closing ? { Connection: 'close' } : {}),
      ...headers,
    });
    res.end(text);
  };
}

/** The body of a POST as JSON: 413 over the limit, 400 when it does not parse. */
async function readJsonBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RequestError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Answers one request: routing, body, handler, PaddleX's envelope, the log line. */
function requestHandler(
  svc: Service,
  routes: Record<string, Route>,
  send: Send,
  log: ((line: string) => void) | undefined,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  const { counters } = svc;
  return async (req, res) => {
    const started = performance.now();
    const logId = randomUUID();
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    let status = 200;
    try {
      if (counters.closing) throw new RequestError(503, 'the server is shutting down');
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (route === undefined) {
        throw new RequestError(404, `no route ${path} (routes: ${Object.keys(routes).join(', ')})`);
      }
      if (req.method !== route.method) {
        res.setHeader('Allow', route.method);
        throw new RequestError(405, `${path} takes ${route.method}, not ${req.method ?? '?'}`);
      }
      const body =
        route.method === 'POST' ? await readJsonBody(req, svc.settings.bodyLimit) : undefined;
      const result = await route.handler(body);
      send(res, 200, { logId, errorCode: 0, errorMsg: 'Success', result });
    } catch (err) {
      const f = failure(err);
      status = f.status;
      counters.errors++;
      // A body left unread (413, 404, 405): drop it and close the connection after answering.
      const unread = !req.readableEnded;
      if (unread) req.resume();
      send(
        res,
        f.status,
        { logId, errorCode: f.status, errorMsg: f.message },
        unread ? { Connection: 'close' } : {},
      );
    } finally {
      counters.requests++;
      log?.(
        `${req.method ?? '?'} ${path} ${status} ${(performance.now() - started).toFixed(1)} ms${status === 200 ? '' : ` logId=${logId}`}`,
      );
    }
  };
}

/** Listens on host:port; a failure is a PifIoError. */
function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new PifIoError(
          `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}`,
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * The graceful shutdown (once): no new requests, idle connections closed, running requests
 * finish (cut after shutdownTimeoutMs), then the batcher, the index writes and the model.
 */
function closer(svc: Service, server: http.Server, closeModel: boolean): () => Promise<void> {
  let closed: Promise<void> | null = null;
  return () => {
    closed ??= (async () => {
      svc.counters.closing = true;
      const done = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        server.closeAllConnections();
      }, svc.settings.shutdownTimeoutMs);
      try {
        await done;
      } finally {
        clearTimeout(timer);
      }
      await svc.batcher.close();
      await svc.store.idle();
      if (closeModel) svc.settings.model.close();
    })();
    return closed;
  };
}

/** Starts the service; resolves once it listens. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const settings = checkSettings(options);
  const svc = await openService(settings, options);
  const log = options.log;
  const send = sender(svc);
  const handle = requestHandler(svc, routesOf(svc), send, log);
  const { counters } = svc;
  const server = http.createServer((req, res) => {
    counters.active++;
    res.on('close', () => {
      counters.active--;
      if (counters.closing) server.closeIdleConnections();
    });
    handle(req, res).catch((err: unknown) => {
      // Only a bug gets here; answer if still possible and keep serving.
      log?.(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      send(res, 500, { logId: randomUUID(), errorCode: 500, errorMsg: 'internal error' });
    });
  });
  await listen(server, settings.host, settings.port);
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    host: addr.address,
    port: addr.port,
    server,
    stats: svc.stats,
    close: closer(svc, server, options.closeModel === true),
  };
}
