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
 * fields, bad Base64, an image that cannot be read or has too many pixels), 409 an index that
 * does not belong to the server's model (PIF_INDEX: other weights, preprocessing or feature
 * size), 503 shutting down, 500 anything else. A failing request never affects the others.
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

import { InvalidArgumentError, PifIoError } from '../errors.js';
import type { FeatureModel } from '../image-feature.js';
import { FeatureBatcher, type BatcherStats } from './batcher.js';
import type { ImageLimits } from './images.js';
import { IndexStore } from './index-store.js';
import { failure, readJsonBody } from './request.js';
import { routesOf, type Route } from './routes.js';
import { RequestError } from './schemas.js';

export type { ImageError } from './request.js';

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

function checkOption(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(
      `startServer: ${what} must be an integer from ${min} to ${max}, got ${String(v)}`,
    );
  }
  return v;
}

/** The checked settings of a server. */
export interface Settings {
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
export interface Service {
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
