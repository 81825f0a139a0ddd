// Edges of the HTTP service (issue 15, item 8): the chunked-body limit message, /shitu-infer's
// visualisation image, per-image errors in multi-image requests, and `serve --help`'s one
// default for --threads.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { startServer, type RunningServer } from '../lib/serve/server.js';
import { createIndex } from '../lib/vector-index/index.js';
import { runMain } from './helpers/cli.js';
import {
  fails,
  makePngs,
  ok,
  seededModel,
  startImageHost,
  type Envelope,
} from './helpers/serve.js';

interface ImageError {
  index: number;
  errorCode: number;
  errorMsg: string;
}

const LIMIT = 100_000;

/** POSTs `body` to /image-feature, chunked (no Content-Length) or with one; status and answer. */
function postRaw(base: string, body: Buffer, chunked: boolean): Promise<[number, Envelope]> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/image-feature`,
      {
        method: 'POST',
        headers: chunked
          ? { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/json' }
          : { 'Content-Length': String(body.length), 'Content-Type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve([
            res.statusCode ?? 0,
            JSON.parse(Buffer.concat(chunks).toString('utf8')) as Envelope,
          ]);
        });
        res.on('error', reject);
      },
    );
    // The server may close the connection before all of the body is written: not our concern.
    req.on('error', () => undefined);
    if (chunked) {
      for (let at = 0; at < body.length; at += 16_384) req.write(body.subarray(at, at + 16_384));
      req.end();
    } else {
      req.end(body);
    }
  });
}

const close = (a: readonly number[], b: Float32Array) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-5);

describe('HTTP service edges', () => {
  let fx: Awaited<ReturnType<typeof seededModel>>;
  let host: Awaited<ReturnType<typeof startImageHost>>;
  let server: RunningServer;
  // Three plain 160x120 images, differing in red.
  let img: { pngs: Buffer[]; b64: string[] };

  before(async () => {
    fx = await seededModel('pif-serve-edges-', 5);
    img = await makePngs(3, (i) => ({
      width: 160,
      height: 120,
      channels: 3,
      background: { r: 40 + 60 * i, g: 90, b: 120 },
    }));
    host = await startImageHost((req, res) => {
      if (req.url === '/a.png') {
        res.end(img.pngs[0]);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    server = await startServer({
      model: fx.model,
      port: 0,
      indexDir: path.join(fx.dir, 'indexes'),
      maxWaitMs: 20,
      bodyLimitBytes: LIMIT,
      urlTimeoutMs: 2000,
    });
  });

  after(async () => {
    await server.close();
    await host.close();
    await fx.dispose();
  });

  test('a chunked body over the limit names the limit and its option, as with Content-Length', async () => {
    const body = Buffer.from(JSON.stringify({ image: 'A'.repeat(3 * LIMIT) }));
    const [status, chunked] = await postRaw(server.url, body, true);
    assert.equal(status, 413);
    assert.equal(chunked.errorCode, 413);
    assert.doesNotMatch(chunked.errorMsg, /that bytes/);
    assert.match(chunked.errorMsg, /the request body is more than 100000 bytes/);
    const [status2, declared] = await postRaw(server.url, body, false);
    assert.equal(status2, 413);
    assert.match(declared.errorMsg, new RegExp(`the request body is ${body.length} bytes`));
    // Both name the limit in bytes and the option that sets it, in the same words.
    const tail = (m: string) => m.slice(m.indexOf('; '));
    assert.match(tail(chunked.errorMsg), /at most 100000 bytes/);
    assert.match(tail(chunked.errorMsg), /--body-limit/);
    assert.equal(tail(chunked.errorMsg), tail(declared.errorMsg));
    // The server still answers.
    await ok(server.url, '/image-feature', { image: img.b64[0] });
  });

  test('/shitu-infer draws the visualisation image (Base64 JPEG) unless visualize is false', async () => {
    const built = await ok(server.url, '/shitu-index-build', {
      imageLabelPairs: [{ image: img.b64[1], label: 'cup' }],
    });
    const indexKey = built['indexKey'] as string;
    const drawn = await ok(server.url, '/shitu-infer', {
      image: img.b64[1],
      indexKey,
      visualize: true,
    });
    const objs = drawn['detectedObjects'] as { recResults: { label: string }[] }[];
    assert.equal(objs[0]!.recResults[0]!.label, 'cup');
    assert.equal(typeof drawn['image'], 'string');
    const jpeg = Buffer.from(drawn['image'] as string, 'base64');
    const meta = await sharp(jpeg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.deepEqual([meta.width, meta.height], [160, 120]);
    const { data, info } = await sharp(jpeg)
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => {
      const o = (y * info.width + x) * info.channels;
      return [data[o]!, data[o + 1]!, data[o + 2]!] as const;
    };
    // The full-image box: red at the bottom edge; the centre keeps the image's colour.
    const [r, g, b] = px(80, 119);
    assert.ok(r > 180 && g < 90 && b < 90, `box edge ${r},${g},${b}`);
    const [cr, cg, cb] = px(80, 60);
    assert.ok(Math.abs(cr - 100) < 12 && Math.abs(cg - 90) < 12 && Math.abs(cb - 120) < 12);
    // The label tag at the top-left: white text on the box colour (red with no green or blue;
    // the image's green is 90, so light pixels there are the text, blurred a little by JPEG).
    let white = 0;
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 80; x++) {
        const [pr, pg, pb] = px(x, y);
        if (pr > 180 && pg > 150 && pb > 150) white++;
      }
    }
    assert.ok(white > 10, `expected label text in the tag, found ${white} white pixels`);

    const plain = await ok(server.url, '/shitu-infer', {
      image: img.b64[1],
      indexKey,
      visualize: false,
    });
    assert.equal(plain['image'], null);

    // A server started with visualize: false answers null unless the request asks.
    const quiet = await startServer({
      model: fx.model,
      port: 0,
      indexDir: path.join(fx.dir, 'indexes'),
      visualize: false,
    });
    try {
      const byDefault = await ok(quiet.url, '/shitu-infer', { image: img.b64[1], indexKey });
      assert.equal(byDefault['image'], null);
      const asked = await ok(quiet.url, '/shitu-infer', {
        image: img.b64[1],
        indexKey,
        visualize: true,
      });
      assert.equal(typeof asked['image'], 'string');
    } finally {
      await quiet.close();
    }
  });

  test('one bad image in a multi-image request is an error entry; the others get features', async () => {
    const notImage = Buffer.from('hello, not an image').toString('base64');
    const expected = await fx.model.predictAll([img.pngs[0]!, img.pngs[2]!]);
    const r = await ok(server.url, '/image-feature', {
      images: [img.b64[0], 'not base64!', notImage, `${host.base}/missing.png`, img.b64[2]],
    });
    const features = r['features'] as (number[] | null)[];
    assert.equal(features.length, 5);
    assert.equal(r['dim'], 512);
    assert.ok(close(features[0]!, expected[0]!.feature));
    assert.ok(close(features[4]!, expected[1]!.feature));
    assert.deepEqual(features.slice(1, 4), [null, null, null]);
    const errors = r['errors'] as ImageError[];
    assert.deepEqual(
      errors.map((e) => [e.index, e.errorCode]),
      [
        [1, 422],
        [2, 422],
        [3, 422],
      ],
    );
    assert.match(errors[0]!.errorMsg, /images\[1\] is neither an http\(s\) URL nor valid Base64/);
    assert.match(errors[1]!.errorMsg, /images\[2\] is not a readable image/);
    assert.match(errors[2]!.errorMsg, /images\[3\]: cannot fetch .*HTTP 404/);

    // All good: an empty error list.
    const good = await ok(server.url, '/image-feature', { images: [img.b64[0], img.b64[1]] });
    assert.deepEqual(good['errors'], []);
    // Nothing usable at all: the request fails, naming the first image's problem.
    await fails(
      server.url,
      '/image-feature',
      422,
      /no image could be used \(2 of 2 failed\).*images\[0\]/,
      { images: ['not base64!', notImage] },
    );
  });

  test('index build / add: a bad image is an error entry, the rest are indexed', async () => {
    const built = await ok(server.url, '/shitu-index-build', {
      imageLabelPairs: [
        { image: img.b64[0], label: 'a' },
        { image: `${host.base}/missing.png`, label: 'gone' },
        { image: img.b64[2], label: 'c' },
      ],
    });
    assert.equal(built['imageCount'], 2);
    assert.deepEqual(built['ids'], [0, null, 1]);
    const errs = built['errors'] as ImageError[];
    assert.equal(errs.length, 1);
    assert.equal(errs[0]!.index, 1);
    assert.equal(errs[0]!.errorCode, 422);
    assert.match(errs[0]!.errorMsg, /imageLabelPairs\[1\]\.image: cannot fetch/);
    const indexKey = built['indexKey'] as string;

    const added = await ok(server.url, '/shitu-index-add', {
      indexKey,
      imageLabelPairs: [
        { image: 'not base64!', label: 'bad' },
        { image: img.b64[1], label: 'b' },
      ],
    });
    assert.equal(added['imageCount'], 3);
    assert.deepEqual(added['ids'], [null, 2]);
    assert.deepEqual(
      (added['errors'] as ImageError[]).map((e) => e.index),
      [0],
    );
    const inf = await ok(server.url, '/shitu-infer', {
      image: img.b64[1],
      indexKey,
      topk: 1,
      visualize: false,
    });
    const objs = inf['detectedObjects'] as { recResults: { label: string }[] }[];
    assert.equal(objs[0]!.recResults[0]!.label, 'b');

    // Nothing usable: 422 and no index.
    await fails(server.url, '/shitu-index-build', 422, /imageLabelPairs\[0\]\.image is neither/, {
      imageLabelPairs: [{ image: 'not base64!', label: 'x' }],
    });
  });

  test('an index of another model is a conflict (409, PIF_INDEX), not an internal error', async () => {
    const other = await seededModel('pif-serve-other-', 6);
    try {
      const index = createIndex({ metric: 'IP', type: 'Flat', model: other.model });
      const [res] = await other.model.predictAll(img.pngs[0]!);
      await index.add({ features: res!.feature, labels: ['a'] });
      await index.save(path.join(fx.dir, 'indexes', 'other-model'));
    } finally {
      await other.dispose();
    }
    await fails(server.url, '/shitu-infer', 409, /^PIF_INDEX: .*differ in weights/, {
      image: img.b64[0],
      indexKey: 'other-model',
      visualize: false,
    });
  });
});

test('serve --help shows one default for --threads', async () => {
  const { code, out } = await runMain(['serve', '--help']);
  assert.equal(code, 0);
  const lines = out.split('\n');
  const at = lines.findIndex((l) => l.trimStart().startsWith('--threads'));
  assert.ok(at >= 0, out);
  let entry = lines[at]!;
  for (let i = at + 1; i < lines.length && !lines[i]!.trimStart().startsWith('-'); i++) {
    entry += ` ${lines[i]!.trim()}`;
  }
  assert.equal(entry.match(/default/g)?.length, 1, entry);
  assert.match(entry, /\(default: the CPU count, at most 8\)/);
});
