// The HTTP service (lib/serve/): every endpoint's happy path and PaddleX's envelope, 4xx answers
// with clear messages while the server keeps serving, dynamic batching (fewer native calls than
// requests), indexes surviving a restart, and graceful shutdown finishing running requests.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';

import sharp from 'sharp';

import type { FeatureModel } from '../lib/image-feature.js';
import { FeatureBatcher } from '../lib/serve/batcher.js';
import { decodeBase64 } from '../lib/serve/images.js';
import { startServer, type RunningServer, type ServerOptions } from '../lib/serve/server.js';
import { call, fails, makePngs, ok, seededModel, startImageHost, UUID } from './helpers/serve.js';
import { helperScript, spawnTsx } from './helpers/tsx-child.js';

/** A PNG whose header claims w x h (the pixel data is a tiny image's: only the header is read). */
async function pngClaiming(w: number, h: number): Promise<Buffer> {
  const png = Buffer.from(
    await sharp({ create: { width: 2, height: 2, channels: 3, background: '#808080' } })
      .png()
      .toBuffer(),
  );
  png.writeUInt32BE(w, 16);
  png.writeUInt32BE(h, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
  return png;
}

describe('HTTP service', () => {
  let dir = '';
  let model: FeatureModel;
  let server: RunningServer;
  let closeImageHost: () => Promise<void> = () => Promise.resolve();
  let imageBase = '';
  let dispose: () => Promise<void> = () => Promise.resolve();
  let pngs: Buffer[] = [];
  let b64: string[] = [];
  let slowArrived: () => void = () => undefined;
  let slowRelease: () => void = () => undefined;

  const start = (extra: Partial<ServerOptions> = {}) =>
    startServer({
      model,
      port: 0,
      indexDir: path.join(dir, 'indexes'),
      maxBatch: 8,
      maxWaitMs: 50,
      bodyLimitBytes: 1 << 20,
      maxPixels: 4_000_000,
      maxUrlBytes: 200_000,
      urlTimeoutMs: 2000,
      ...extra,
    });

  before(async () => {
    ({ dir, model, dispose } = await seededModel('pif-serve-', 11));
    ({ pngs, b64 } = await makePngs(4, (i) => ({
      width: 64,
      height: 48,
      channels: 3,
      background: '#000000',
      noise: { type: 'gaussian', mean: 50 + 50 * i, sigma: 20 + 15 * i },
    })));
    // A local image host for URL inputs: plain, slow (held until released), large, missing.
    const host = await startImageHost((req, res) => {
      if (req.url === '/a.png') {
        res.end(pngs[0]);
      } else if (req.url === '/slow.png') {
        slowArrived();
        new Promise<void>((r) => (slowRelease = r))
          .then(() => {
            res.end(pngs[1]);
          })
          .catch(() => undefined);
      } else if (req.url === '/big.png') {
        res.end(Buffer.alloc(300_000));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    imageBase = host.base;
    closeImageHost = host.close;
    server = await start();
  });

  after(async () => {
    await server.close();
    await closeImageHost();
    await dispose();
  });

  test('GET /health', async () => {
    const r = await ok(server.url, '/health');
    assert.equal(r['status'], 'ok');
    assert.equal(r['model'], 'PP-ShiTuV2_rec');
    assert.deepEqual(r['batching'], { maxBatch: 8, maxWaitMs: 50, maxInFlight: 1 });
  });

  test('POST /image-feature: one image, several, a URL; equal to the model', async () => {
    const expected = await model.predictAll([pngs[0]!, pngs[1]!]);
    const one = await ok(server.url, '/image-feature', { image: b64[0] });
    const f = one['features'] as number[][];
    assert.equal(one['dim'], 512);
    assert.equal(f.length, 1);
    const close = (a: readonly number[], b: Float32Array) =>
      a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-5);
    assert.ok(close(f[0]!, expected[0]!.feature));
    const two = await ok(server.url, '/image-feature', {
      images: [b64[1], `data:image/png;base64,${b64[0]!}`],
    });
    const g = two['features'] as number[][];
    assert.ok(close(g[0]!, expected[1]!.feature));
    assert.ok(close(g[1]!, expected[0]!.feature));
    const url = await ok(server.url, '/image-feature', { image: `${imageBase}/a.png` });
    assert.ok(close((url['features'] as number[][])[0]!, expected[0]!.feature));
  });

  test('index build / add / remove / infer, PaddleX shapes, topk honoured', async () => {
    const built = await ok(server.url, '/shitu-index-build', {
      imageLabelPairs: b64.slice(0, 3).map((image, i) => ({ image, label: `label-${i}` })),
    });
    const key = built['indexKey'] as string;
    assert.match(key, UUID);
    assert.equal(built['imageCount'], 3);
    assert.ok(existsSync(path.join(dir, 'indexes', key, 'vector.index')));
    assert.ok(existsSync(path.join(dir, 'indexes', key, 'id_map.yaml')));

    const inf = await ok(server.url, '/shitu-infer', { image: b64[1], indexKey: key });
    // PaddleX's visualisation image by default (test/serve-edges.test.ts checks its content).
    assert.equal(typeof inf['image'], 'string');
    const objs = inf['detectedObjects'] as {
      bbox: number[];
      recResults: { label: string; score: number }[];
      score: number;
    }[];
    assert.equal(objs.length, 1);
    assert.deepEqual(objs[0]!.bbox, [0, 0, 64, 48]);
    assert.equal(objs[0]!.score, 0);
    assert.equal(objs[0]!.recResults.length, 3); // default topk 5 > 3 images
    assert.equal(objs[0]!.recResults[0]!.label, 'label-1');
    assert.ok(Math.abs(objs[0]!.recResults[0]!.score - 1) < 1e-4);

    const top1 = await ok(server.url, '/shitu-infer', {
      image: b64[1],
      indexKey: key,
      topk: 1,
      detThreshold: 0.3,
      hammingRadius: null,
      visualize: false,
    });
    const r1 = (top1['detectedObjects'] as { recResults: unknown[] }[])[0]!.recResults;
    assert.equal(r1.length, 1);
    const none = await ok(server.url, '/shitu-infer', {
      image: b64[1],
      indexKey: key,
      recThreshold: 1.01,
    });
    assert.deepEqual((none['detectedObjects'] as { recResults: unknown[] }[])[0]!.recResults, []);

    const added = await ok(server.url, '/shitu-index-add', {
      indexKey: key,
      imageLabelPairs: [{ image: b64[3], label: 'label-3' }],
    });
    assert.equal(added['imageCount'], 4);
    const inf3 = await ok(server.url, '/shitu-infer', { image: b64[3], indexKey: key, topk: 1 });
    assert.equal(
      (inf3['detectedObjects'] as { recResults: { label: string }[] }[])[0]!.recResults[0]!.label,
      'label-3',
    );
    const removed = await ok(server.url, '/shitu-index-remove', { indexKey: key, ids: [3, 1, 99] });
    assert.equal(removed['imageCount'], 2);
    const after1 = await ok(server.url, '/shitu-infer', { image: b64[1], indexKey: key });
    const labels = (
      after1['detectedObjects'] as { recResults: { label: string }[] }[]
    )[0]!.recResults.map((r) => r.label);
    assert.deepEqual([...labels].sort(), ['label-0', 'label-2']);
  });

  test('bad requests get 4xx with a clear message, and the server keeps serving', async () => {
    const u = server.url;
    const built = await ok(u, '/shitu-index-build', {
      imageLabelPairs: [{ image: b64[0], label: 'x' }],
    });
    const key = built['indexKey'] as string;
    await fails(u, '/image-feature', 422, /neither an http\(s\) URL nor valid Base64/, {
      image: 'not base64!',
    });
    // (One bad image among good ones is an error entry, not a failure: serve-edges.test.ts.)
    await fails(u, '/image-feature', 422, /images\[0\] is not a readable image/, {
      images: [Buffer.from('hello, not an image').toString('base64')],
    });
    await fails(
      u,
      '/image-feature',
      422,
      /image is 100000x100000 = 10000000000 pixels, more than this server's limit of 4000000/,
      {
        image: (await pngClaiming(100_000, 100_000)).toString('base64'),
      },
    );
    await fails(u, '/shitu-infer', 422, /image is 3000x2000 = 6000000 pixels/, {
      image: (await pngClaiming(3000, 2000)).toString('base64'),
      indexKey: key,
    });
    // Header fine, pixels truncated: fails in the decoder, still a 422.
    await fails(u, '/image-feature', 422, /image: Image read Error/, {
      image: pngs[2]!.subarray(0, 200).toString('base64'),
    });
    await fails(u, '/image-feature', 413, /at most 1048576/, { image: 'A'.repeat(1_200_000) });
    await fails(u, '/image-feature', 422, /image must be a string, got 5/, { image: 5 });
    await fails(u, '/image-feature', 422, /image \(one image\) or images/, {});
    await fails(u, '/image-feature', 422, /must be a JSON object, got an array/, [1]);
    await fails(u, '/shitu-index-build', 422, /imageLabelPairs must be an array, got "x"/, {
      imageLabelPairs: 'x',
    });
    await fails(
      u,
      '/shitu-index-build',
      422,
      /imageLabelPairs\[0\]\.label must be a string, got nothing/,
      {
        imageLabelPairs: [{ image: b64[0] }],
      },
    );
    await fails(u, '/shitu-index-build', 422, /must not be empty/, { imageLabelPairs: [] });
    await fails(u, '/shitu-index-remove', 422, /ids\[0\] must be an integer/, {
      ids: ['a'],
      indexKey: key,
    });
    await fails(u, '/shitu-index-remove', 422, /indexKey must be a string, got nothing/, {
      ids: [0],
    });
    await fails(u, '/shitu-infer', 422, /topk must be an integer from 1/, {
      image: b64[0],
      indexKey: key,
      topk: 0,
    });
    await fails(u, '/shitu-infer', 422, /recThreshold must be a finite number, got "high"/, {
      image: b64[0],
      indexKey: key,
      recThreshold: 'high',
    });
    await fails(u, '/shitu-infer', 422, /indexKey is required/, { image: b64[0] });
    await fails(u, '/shitu-infer', 422, /not an index key/, {
      image: b64[0],
      indexKey: '../../etc',
    });
    await fails(u, '/shitu-infer', 404, /unknown indexKey 'f00d'/, {
      image: b64[0],
      indexKey: 'f00d',
    });
    await fails(u, '/shitu-index-add', 404, /unknown indexKey/, {
      imageLabelPairs: [{ image: b64[0], label: 'x' }],
      indexKey: 'nope',
    });
    await fails(u, '/shitu-index-remove', 404, /unknown indexKey/, { ids: [0], indexKey: 'nope' });
    await fails(u, '/no-such-route', 404, /no route \/no-such-route/, {});
    await fails(u, '/image-feature', 400, /not valid JSON/, undefined, { raw: '{"image": ' });
    await fails(u, '/image-feature', 405, /takes POST, not GET/, undefined, { method: 'GET' });
    await fails(u, '/health', 405, /takes GET, not POST/, {});
    await fails(u, '/image-feature', 422, /cannot fetch .*HTTP 404/, {
      image: `${imageBase}/missing.png`,
    });
    await fails(u, '/image-feature', 422, /cannot fetch .*more than the limit of 200000/, {
      image: `${imageBase}/big.png`,
    });
    // Still serving.
    const again = await ok(u, '/image-feature', { image: b64[0] });
    assert.equal((again['features'] as unknown[]).length, 1);
    await ok(u, '/shitu-infer', { image: b64[0], indexKey: key });
    assert.ok(server.stats().errors >= 25);
  });

  test('one bad image among concurrent requests fails alone', async () => {
    const bad = pngs[2]!.subarray(0, 200).toString('base64');
    const answers = await Promise.all(
      [b64[0], bad, b64[1], b64[2]].map((image) => call(server.url, '/image-feature', { image })),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 422, 200, 200],
    );
  });

  test('dynamic batching: 8 concurrent requests share native calls', async () => {
    const before = server.stats().batcher;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => ok(server.url, '/image-feature', { image: b64[i % 4] })),
    );
    const stats = server.stats().batcher;
    assert.equal(stats.items - before.items, 8);
    const calls = stats.batches - before.batches;
    assert.ok(calls < 8, `expected fewer native calls than requests, got ${calls}`);
    // Batching off: one call per image, and the same features.
    const off = await start({ maxBatch: 1, indexDir: path.join(dir, 'off') });
    try {
      const answersOff = await Promise.all(
        Array.from({ length: 8 }, (_, i) => ok(off.url, '/image-feature', { image: b64[i % 4] })),
      );
      assert.equal(off.stats().batcher.batches, 8);
      assert.equal(off.stats().batcher.largestBatch, 1);
      answersOff.forEach((a, i) => {
        const x = (a['features'] as number[][])[0]!;
        const y = (answers[i]!['features'] as number[][])[0]!;
        assert.ok(x.every((v, j) => Math.abs(v - y[j]!) < 1e-5));
      });
    } finally {
      await off.close();
    }
  });

  test('batcher: fan-out in order, per-item errors, whole-call failures isolated', async () => {
    let calls = 0;
    const fake = {
      predictAll: (inputs: unknown) => {
        calls++;
        const list = inputs as string[];
        if (list.length > 1 && list.includes('poison')) return Promise.reject(new Error('boom'));
        return Promise.resolve(
          list.map((x) => ({
            error: x === 'bad' || x === 'poison' ? new Error(`cannot read ${x}`) : null,
            feature: Float32Array.of(x.length),
            inputPath: null,
            pageIndex: null,
          })),
        );
      },
    } as unknown as FeatureModel;
    const b = new FeatureBatcher(fake, { maxBatch: 4, maxWaitMs: 20 });
    const out = await Promise.allSettled(['a', 'bb', 'bad', 'dddd'].map((x) => b.submit(x)));
    assert.equal(calls, 1);
    assert.deepEqual(
      out.map((o) => (o.status === 'fulfilled' ? o.value[0] : (o.reason as Error).message)),
      [1, 2, 'cannot read bad', 4],
    );
    const out2 = await Promise.allSettled(['a', 'poison', 'ccc'].map((x) => b.submit(x)));
    assert.deepEqual(
      out2.map((o) => o.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal(b.stats().largestBatch, 4);
    await b.close();
    await assert.rejects(b.submit('a'), /closed/);
    assert.throws(() => new FeatureBatcher(fake, { maxBatch: 0 }), /maxBatch/);
  });

  test('Base64: standard, URL-safe, data: URLs; garbage refused', () => {
    const bytes = Buffer.from([251, 255, 0, 1, 2]);
    assert.deepEqual(decodeBase64(bytes.toString('base64'), 'x'), bytes);
    assert.deepEqual(decodeBase64(bytes.toString('base64url'), 'x'), bytes);
    assert.deepEqual(decodeBase64(`data:image/png;base64,${bytes.toString('base64')}`, 'x'), bytes);
    assert.throws(() => decodeBase64('abc$', 'x'), /valid Base64/);
    assert.throws(() => decodeBase64('A', 'x'), /valid Base64/);
  });

  test('indexes survive a restart on the same index directory', async () => {
    const dirA = path.join(dir, 'restart');
    const a = await start({ indexDir: dirA });
    const built = await ok(a.url, '/shitu-index-build', {
      imageLabelPairs: b64.map((image, i) => ({ image, label: `r${i}` })),
    });
    const key = built['indexKey'] as string;
    await ok(a.url, '/shitu-index-remove', { indexKey: key, ids: [0] });
    await a.close();
    const b = await start({ indexDir: dirA });
    try {
      assert.notEqual(b.port, 0);
      const res = await ok(b.url, '/shitu-infer', { image: b64[2], indexKey: key, topk: 5 });
      const labels = (
        res['detectedObjects'] as { recResults: { label: string }[] }[]
      )[0]!.recResults.map((r) => r.label);
      assert.equal(labels[0], 'r2');
      assert.deepEqual([...labels].sort(), ['r1', 'r2', 'r3']);
      const added = await ok(b.url, '/shitu-index-add', {
        indexKey: key,
        imageLabelPairs: [{ image: b64[0], label: 'r0-again' }],
      });
      assert.equal(added['imageCount'], 4);
    } finally {
      await b.close();
    }
  });

  test('graceful shutdown: a running request still completes with 200', async () => {
    const s = await start({ indexDir: path.join(dir, 'shutdown') });
    const arrived = new Promise<void>((r) => (slowArrived = r));
    const pending = call(s.url, '/image-feature', { image: `${imageBase}/slow.png` });
    await arrived; // the server is now waiting for the slow image
    const closing = s.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.server.listening, false); // no new connections
    slowRelease();
    const answer = await pending;
    assert.equal(answer.status, 200, answer.body.errorMsg);
    assert.equal((answer.body.result!['features'] as unknown[]).length, 1);
    await closing;
    await assert.rejects(fetch(`${s.url}/health`));
  });

  test('serve command: SIGTERM finishes the running request, then exits 0', async () => {
    const child = spawnTsx(helperScript('serve-child.ts'), [
      'serve',
      '--port',
      '0',
      '--model-dir',
      path.join(dir, 'model'),
      '--index-dir',
      path.join(dir, 'cli-indexes'),
      '--quiet',
    ]);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) =>
      child.on('exit', (code) => {
        r(code);
      }),
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /on (http:\/\/[^ ]+) /.exec(stdout);
          if (m) resolve(m[1]!);
        });
        void exited.then(() => {
          reject(new Error(`serve exited early: ${stderr}`));
        });
      });
      assert.match(stdout, /serving PP-ShiTuV2_rec on http:\/\/127\.0\.0\.1:\d+ /);
      await ok(url, '/health');
      const arrived = new Promise<void>((r) => (slowArrived = r));
      const pending = call(url, '/image-feature', { image: `${imageBase}/slow.png` });
      await arrived;
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      slowRelease();
      const answer = await pending;
      assert.equal(answer.status, 200, answer.body.errorMsg);
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /SIGTERM: finishing running requests/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
