/**
 * Every command-line example of README.md runs as written: the `paddle-image-feature ...` lines
 * of its sh blocks (continuation lines joined, `npx` dropped, trailing comments removed) run in
 * order, through bash, in a fresh directory holding what they name: the PP-ShiTuV2_rec test model
 * as ./my_export and in the PaddleX cache (so the official name resolves offline), a generated
 * dataset, photos, a gallery with its label file and a LabelMe dataset. `serve` runs until
 * /health answers and an image gets its feature, then SIGTERM must end it cleanly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { buildModel } from '../lib/builder.js';
import { renderImage, standardDataset, writeDataset } from './helpers/dataset.js';
import { repoRoot } from './helpers/fixtures.js';
import { makeLabelMe } from './helpers/labelme.js';

/** The CLI examples of the README, in order, each as one line of shell. */
export function readmeCliExamples(markdown: string): string[] {
  const commands: string[] = [];
  const blocks = markdown.matchAll(/^ *```sh\n([\s\S]*?)^ *```/gm);
  for (const [, body] of blocks) {
    const joined = (body ?? '').replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      for (const segment of line.split('&&')) {
        const cmd = segment
          .trim()
          .replace(/^npx /, '')
          .replace(/\s+#.*$/, '');
        if (cmd.startsWith('paddle-image-feature ')) commands.push(cmd);
      }
    }
  }
  return commands;
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

describe('README command-line examples', () => {
  let work = '';
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'pif-readme-'));
    // `paddle-image-feature` on PATH: this checkout's CLI through tsx, as `npx` would run it.
    const bin = path.join(work, '.bin');
    await mkdir(bin);
    const shim = path.join(bin, 'paddle-image-feature');
    const tsx = import.meta.resolve('tsx');
    await writeFile(
      shim,
      `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${path.join(repoRoot, 'lib', 'cli.ts')}" "$@"\n`,
    );
    await chmod(shim, 0o755);
    const cache = path.join(work, '.paddlex');
    env = {
      ...process.env,
      PATH: `${bin}:${process.env['PATH'] ?? ''}`,
      PADDLE_PDX_CACHE_HOME: cache,
      PIF_OFFLINE: '1', // nothing may reach for the network
    };
    // The official name resolves to the cache, where the test model stands in for it.
    await buildModel('PP-ShiTuV2_rec', path.join(cache, 'official_models', 'PP-ShiTuV2_rec'), {
      seed: 1,
    });
    await buildModel('PP-ShiTuV2_rec', path.join(work, 'my_export'), { seed: 1 });
    await writeDataset(path.join(work, 'dataset', 'Inshop_examples'), standardDataset().spec);
    for (const [rel, cls] of [
      ['photos/p1.jpg', 0],
      ['photos/p2.png', 1],
      ['cat.jpg', 2],
      ['query.jpg', 3],
      ['gallery/images/g0.jpg', 0],
      ['gallery/images/g1.jpg', 1],
      ['gallery/images/g2.jpg', 2],
      ['gallery/images/g3.jpg', 3],
    ] as const) {
      await renderImage(path.join(work, rel), { rel, width: 64, height: 48, cls });
    }
    await writeFile(
      path.join(work, 'gallery', 'label.txt'),
      'images/g0.jpg red\nimages/g1.jpg green\nimages/g2.jpg blue\nimages/g3.jpg yellow\n',
    );
    const labels = ['cat', 'dog'];
    await makeLabelMe(path.join(work, 'labelme_dataset'), {
      labels,
      annotations: Array.from({ length: 10 }, (_, i) => ({
        name: `a${i}.json`,
        flags: labels.map((l, k) => [l, k === i % 2] as const),
      })),
    });
    await mkdir(path.join(work, 'indexes'));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  function run(cmd: string, until?: (child: ReturnType<typeof spawn>) => Promise<void>) {
    return new Promise<Ran>((resolve, reject) => {
      const child = spawn('bash', ['-c', cmd], { cwd: work, env });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        resolve({ code, signal, out, err });
      });
      until?.(child).catch((e: unknown) => {
        child.kill('SIGKILL');
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  /** Polls /health, then asks for one image's feature, then sends SIGTERM. */
  async function exerciseServer(child: ReturnType<typeof spawn>, port: number): Promise<void> {
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) return; // it failed; the test reports its output
      const ok = await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`serve: no /health on port ${port} in 120 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const image = readFileSync(path.join(work, 'cat.jpg')).toString('base64');
    const res = await fetch(`${base}/image-feature`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image }),
    });
    const body = (await res.json()) as { errorCode: number; result?: unknown };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.errorCode, 0);
    child.kill('SIGTERM');
  }

  test('every example runs as written, in order, offline', async () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const examples = readmeCliExamples(readme);
    // The parser must find the examples it is meant to (a README edit that hides them fails here).
    assert.ok(examples.length >= 17, `only ${examples.length} examples found`);
    for (const verb of ['build-model', 'inspect', 'run', 'predict', 'check-dataset', 'convert']) {
      assert.ok(
        examples.some((c) => c.startsWith(`paddle-image-feature ${verb} `)),
        `no '${verb}' example`,
      );
    }
    for (const cmd of examples) {
      const port = /^paddle-image-feature serve .*--port (\d+)/.exec(cmd)?.[1];
      const r = await run(
        cmd,
        port === undefined ? undefined : (child) => exerciseServer(child, Number(port)),
      );
      assert.equal(r.code, 0, `${cmd}\nexit ${r.code} ${r.signal}\n${r.err}\n${r.out}`);
    }
    // What the examples say they write is there.
    const out = readdirSync(path.join(work, 'out')).sort();
    for (const f of ['p1_res.json', 'p2_res.json', 'cat_res.json', 'check_dataset_result.json']) {
      assert.ok(out.includes(f), `out/ lacks ${f}: ${out.join(', ')}`);
    }
    for (const f of ['inference.json', 'inference.pdiparams', 'inference.yml']) {
      assert.ok(existsSync(path.join(work, 'exported', f)), `exported/${f}`);
    }
    assert.ok(existsSync(path.join(work, 'my_index', 'id_map.yaml')));
    for (const f of ['train.txt', 'gallery.txt', 'query.txt']) {
      assert.ok(existsSync(path.join(work, 'labelme_dataset', f)), `labelme_dataset/${f}`);
    }
  });
});
