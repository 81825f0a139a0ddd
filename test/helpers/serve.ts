/**
 * Testing the HTTP service (lib/serve/): calls with PaddleX's envelope, a local image host, a
 * seeded test model, generated PNGs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp, { type Create } from 'sharp';

import { buildModel } from '../../lib/builder.js';
import { createModel, type FeatureModel } from '../../lib/image-feature.js';

export interface Envelope {
  logId: string;
  errorCode: number;
  errorMsg: string;
  result?: Record<string, unknown>;
}

export interface Answer {
  status: number;
  body: Envelope;
  headers: Headers;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Calls a route: GET without a body, else POST of `body` as JSON (or `init.raw`). */
export async function call(
  base: string,
  route: string,
  body?: unknown,
  init: { method?: string; raw?: string } = {},
): Promise<Answer> {
  const method = init.method ?? (body === undefined && init.raw === undefined ? 'GET' : 'POST');
  const res = await fetch(base + route, {
    method,
    ...(method === 'GET' ? {} : { body: init.raw ?? JSON.stringify(body) }),
    headers: { 'content-type': 'application/json' },
  });
  const parsed = (await res.json()) as Envelope;
  assert.match(parsed.logId, UUID);
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A successful call's result. */
export async function ok(
  base: string,
  route: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const a = await call(base, route, body);
  assert.equal(a.status, 200, `${route}: ${a.body.errorMsg}`);
  assert.equal(a.body.errorCode, 0);
  assert.equal(a.body.errorMsg, 'Success');
  assert.ok(a.body.result !== undefined);
  return a.body.result;
}

/** A failed call: status and message. */
export async function fails(
  base: string,
  route: string,
  status: number,
  message: RegExp,
  body?: unknown,
  init?: { method?: string; raw?: string },
): Promise<void> {
  const a = await call(base, route, body, init);
  assert.equal(
    a.status,
    status,
    `${route}: expected ${status}, got ${a.status} ${a.body.errorMsg}`,
  );
  assert.equal(a.body.errorCode, status);
  assert.match(a.body.errorMsg, message);
  assert.equal(a.body.result, undefined);
}

/** A local HTTP server for URL images (127.0.0.1, a free port). */
export async function startImageHost(
  handler: http.RequestListener,
): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) =>
        server.close(() => {
          r();
        }),
      ),
  };
}

/** A seeded PP-ShiTuV2_rec test model (buildModel) in a fresh temporary directory. */
export async function seededModel(
  prefix: string,
  seed: number,
): Promise<{ dir: string; model: FeatureModel; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await buildModel('PP-ShiTuV2_rec', path.join(dir, 'model'), { seed });
  const model = await createModel('PP-ShiTuV2_rec', { modelDir: path.join(dir, 'model') });
  return {
    dir,
    model,
    dispose: async () => {
      model.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `count` PNGs made by sharp from `create(i)`, as bytes and as Base64. */
export async function makePngs(
  count: number,
  create: (i: number) => Create,
): Promise<{ pngs: Buffer[]; b64: string[] }> {
  const pngs = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp({ create: create(i) })
        .png()
        .toBuffer(),
    ),
  );
  return { pngs, b64: pngs.map((p) => p.toString('base64')) };
}
