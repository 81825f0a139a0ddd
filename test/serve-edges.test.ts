// Edges of the HTTP service (issue 15, item 8): the chunked-body limit message, /shitu-infer's
// visualisation image, per-image errors in multi-image requests, and `serve --help`'s one
// default for --threads.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startServer, type RunningServer } from '../lib/serve/server.js';
import { runMain } from './helpers/cli.js';
import { makePngs, ok, seededModel, startImageHost, type Envelope } from './helpers/serve.js';

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
