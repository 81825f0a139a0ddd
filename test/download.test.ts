// Official model download (lib/download.ts) against a local HTTP server serving a tar built here
// from a builder model: success (then reuse of the cache without a request), 404, a truncated
// body, a corrupt tar, path traversal and symlink entries, a server that never answers (timeout),
// redirects and offline mode. After every failure the cache holds nothing half-valid and a retry
// works.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { downloadOfficialModel } from '../lib/download.js';
import { createModel } from '../lib/image-feature.js';
import { makeTar, type TarEntry } from './helpers/tar.js';

const NAME = 'PP-ShiTuV2_rec';
const dir = mkdtempSync(path.join(tmpdir(), 'pif-dl-'));
let goodTar: Buffer;
let server: http.Server;
let base: string;
const hits: string[] = [];
const routes = new Map<string, (res: http.ServerResponse) => void>();

before(async () => {
  const modelDir = path.join(dir, 'built');
  await buildModel(NAME, modelDir, { seed: 9 });
  const entries: TarEntry[] = [{ name: `${NAME}_infer/`, type: '5' }];
  for (const f of readdirSync(modelDir).sort()) {
    entries.push({ name: `${NAME}_infer/${f}`, data: readFileSync(path.join(modelDir, f)) });
  }
  goodTar = makeTar(entries);
  const px = Buffer.alloc(64 * 48 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) & 255;
  await sharp(px, { raw: { width: 64, height: 48, channels: 3 } })
    .png()
    .toFile(path.join(dir, 'photo.png'));
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    hits.push(url);
    const route = routes.get((url.split('?')[0] ?? '').replace(/^\/[^/]+/, ''));
    if (route) route(res);
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Serves `body` at /<prefix>/<NAME>_infer.tar. */
function serve(prefix: string, handler: (res: http.ServerResponse) => void): string {
  routes.set(`/${NAME}_infer.tar`, handler);
  return `${base}/${prefix}`;
}

function cacheListing(cache: string): string[] {
  try {
    return readdirSync(path.join(cache, 'official_models'));
  } catch {
    return [];
  }
}

const isDownloadError = (re: RegExp) => (e: Error & { code?: string }) => {
  assert.equal(e.code, 'PIF_DOWNLOAD', e.message);
  assert.match(e.message, re);
  return true;
};

describe('official model download', () => {
  test('downloads, unpacks, loads; the second call uses the cache without a request', async () => {
    const cache = path.join(dir, 'cache-ok');
    const url = serve('ok', (res) => {
      res.setHeader('content-length', goodTar.length);
      res.end(goodTar);
    });
    const progress: number[] = [];
    const model = await createModel(NAME, {
      cacheDir: cache,
      download: { baseUrl: url, onProgress: (d) => progress.push(d) },
    });
    assert.equal(model.modelDir, path.join(cache, 'official_models', NAME));
    assert.equal(progress.at(-1), goodTar.length);
    assert.deepEqual(cacheListing(cache), [NAME]);
    assert.deepEqual(
      readdirSync(model.modelDir).sort(),
      readdirSync(path.join(dir, 'built')).sort(),
    );
    const [r] = await model.predictAll({
      data: new Uint8Array(30 * 20 * 3).fill(7),
      width: 30,
      height: 20,
      channels: 3,
    });
    assert.equal(r?.feature.length, 512);
    model.close();
    const before = hits.length;
    (await createModel(NAME, { cacheDir: cache, download: { baseUrl: url } })).close();
    assert.equal(hits.length, before, 'a cached model must not be downloaded again');
  });

  test('failures leave nothing behind and name the URL; a retry then works', async () => {
    const cache = path.join(dir, 'cache-bad');
    const cases: [string, (res: http.ServerResponse) => void, RegExp][] = [
      [
        '404',
        (res) => {
          res.statusCode = 404;
          res.end();
        },
        /^PP-ShiTuV2_rec is not in the cache \(\S+official_models\/PP-ShiTuV2_rec\) and downloading it failed: HTTP 404 for http:\/\/127\.0\.0\.1:\d+\/404\/PP-ShiTuV2_rec_infer\.tar; pass your own model directory \(modelDir; on the command line --model-dir\), copy the model to \S+, or set PIF_MODEL_BASE_URL to a reachable mirror \(PIF_OFFLINE=1 fails at once instead of trying the network\)$/,
      ],
      [
        'truncated',
        (res) => {
          res.setHeader('content-length', goodTar.length);
          res.write(goodTar.subarray(0, 5000));
          setTimeout(() => res.destroy(), 20);
        },
        /truncated|closed early|aborted|socket hang up/,
      ],
      [
        'corrupt',
        (res) => {
          res.end(Buffer.alloc(4096, 0x41));
        },
        /not a valid model archive: bad (header checksum|octal field)/,
      ],
      [
        'traversal',
        (res) => {
          res.end(makeTar([{ name: '../evil.txt', data: Buffer.from('x') }]));
        },
        /unsafe path '\.\.\/evil\.txt'/,
      ],
      [
        'absolute',
        (res) => {
          res.end(makeTar([{ name: '/etc/evil', data: Buffer.from('x') }]));
        },
        /unsafe path '\/etc\/evil'/,
      ],
      [
        'symlink',
        (res) => {
          res.end(makeTar([{ name: 'x/inference.json', type: '2', linkname: '/etc/passwd' }]));
        },
        /is a symlink/,
      ],
      [
        'no-model',
        (res) => {
          res.end(makeTar([{ name: 'readme.txt', data: Buffer.from('hi') }]));
        },
        /holds no inference model/,
      ],
      [
        'cut-tar',
        (res) => {
          res.end(goodTar.subarray(0, 2048));
        },
        /truncated|not a valid model archive/,
      ],
    ];
    for (const [prefix, handler, re] of cases) {
      const url = serve(prefix, handler);
      await assert.rejects(
        downloadOfficialModel(NAME, cache, { baseUrl: url, onProgress: () => {} }),
        isDownloadError(re),
      );
      assert.deepEqual(cacheListing(cache), [], `${prefix}: the cache must stay empty`);
    }
    // A server that accepts the connection and never answers: the timeout ends it.
    const url = serve('slow', () => {});
    const t0 = Date.now();
    await assert.rejects(
      downloadOfficialModel(NAME, cache, { baseUrl: url, timeoutMs: 300, onProgress: () => {} }),
      isDownloadError(/no data for 300 ms/),
    );
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(cacheListing(cache), []);
    // Redirects are followed; the retry succeeds.
    const moved = `${base}/r`;
    routes.set(`/${NAME}_infer.tar`, (res) => {
      res.statusCode = 302;
      res.setHeader('location', '/x/final');
      res.end();
    });
    routes.set('/final', (res) => {
      res.end(goodTar);
    });
    const got = await downloadOfficialModel(NAME, cache, { baseUrl: moved, onProgress: () => {} });
    assert.equal(got?.bytes, goodTar.length);
    assert.deepEqual(cacheListing(cache), [NAME]);
    // Offline mode: a precise error, no request.
    const before = hits.length;
    await assert.rejects(
      downloadOfficialModel('PP-ShiTuV2_rec_CLIP_vit_base', cache, {
        baseUrl: moved,
        offline: true,
      }),
      isDownloadError(
        /^offline mode \(PIF_OFFLINE=1\): PP-ShiTuV2_rec_CLIP_vit_base is not in the cache \(\S+\) and would be downloaded from \S+; pass your own model directory \(modelDir; on the command line --model-dir\)/,
      ),
    );
    assert.equal(hits.length, before);
  });

  test("URL inputs go to <cache>/predict_input/<basename> and give the local file's feature", async () => {
    const cache = path.join(dir, 'cache-url');
    const img = readFileSync(path.join(dir, 'photo.png'));
    routes.set('/photo.png', (res) => {
      res.setHeader('content-length', img.length);
      res.end(img);
    });
    const model = await createModel(NAME, { modelDir: path.join(dir, 'built'), cacheDir: cache });
    const url = `${base}/img/photo.png?token=1#frag`;
    // Every input kind in one list, batchSize 3: results in input order.
    const local = path.join(dir, 'photo.png');
    const decoded = await sharp(local).raw().toBuffer({ resolveWithObject: true });
    const rgb = {
      data: new Uint8Array(decoded.data),
      width: decoded.info.width,
      height: decoded.info.height,
      channels: 3,
      order: 'rgb' as const,
    };
    // A missing directory and a failed URL inside a list are error results in their places;
    // the other inputs still come out.
    const missingDir = path.dirname(local) + '/urlkind';
    const missingUrl = `${base}/img/missing.jpg`;
    const mixed = await model.predictAll(
      [url, missingDir, local, missingUrl, readFileSync(local)],
      { batchSize: 2 },
    );
    assert.deepEqual(
      mixed.map((r) => [
        r.inputPath,
        r.error === null ? null : (r.error as { code?: string }).code,
      ]),
      [
        [path.join(cache, 'predict_input', 'photo.png'), null],
        [missingDir, 'PIF_INPUT_NOT_FOUND'],
        [local, null],
        [missingUrl, 'PIF_DOWNLOAD'],
        [null, null],
      ],
    );
    assert.equal(mixed[1]?.error?.message, `Not found any files in path: ${missingDir}`);
    assert.match(mixed[3]?.error?.message ?? '', /^HTTP 404/);
    assert.equal(mixed[1]?.feature.length, 0);
    assert.deepEqual(mixed[4]?.feature, mixed[2]?.feature);
    const results = await model.predictAll([url, local, readFileSync(local), rgb, { img: url }], {
      batchSize: 3,
    });
    const cached = path.join(cache, 'predict_input', 'photo.png');
    assert.deepEqual(
      results.map((r) => r.inputPath),
      [cached, local, null, null, cached],
    );
    const [fromUrl, fromFile] = results;
    assert.equal(fromUrl?.inputPath, cached);
    assert.deepEqual(fromUrl?.feature, fromFile?.feature);
    for (const r of results) assert.deepEqual(r.feature, fromFile?.feature);
    assert.deepEqual(readFileSync(fromUrl?.inputPath ?? ''), img);
    const [alone] = await model.predictAll(missingUrl);
    assert.equal(alone?.error?.name, 'DownloadError');
    assert.deepEqual(readdirSync(path.join(cache, 'predict_input')), ['photo.png']);
    model.close();
  });
});
