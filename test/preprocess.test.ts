// Preprocessing parity with PaddleX's OpenCV pipeline (lib/preprocess.ts, native/preprocess):
// the resized uint8 image must equal cv2.resize(..., INTER_LINEAR) (OpenCV 4.6 from Debian's
// python3-opencv, the oracle) and the normalised CHW tensor must match the OpenCV + NumPy
// pipeline, on every photo of Debian's opencv-doc (JPEG and PNG, many sizes and aspect ratios)
// at several target sizes, plus synthetic edge cases (1 and 4 channels, tiny and extreme shapes).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import sharp from 'sharp';

import { preprocessImage, type RawImage } from '../lib/preprocess.js';
import { needOpencvOracle } from './helpers/opencv.js';

const ORACLE = `
import json, sys
import numpy as np, cv2
req = json.load(open(sys.argv[1]))
mean = np.array(req['mean'], dtype=np.float32)
std = np.array(req['std'], dtype=np.float32)
for job in req['jobs']:
    a = np.fromfile(job['src'], dtype=np.uint8).reshape(job['h'], job['w'], job['c'])
    r = cv2.resize(a, (job['tw'], job['th']), interpolation=cv2.INTER_LINEAR)
    r = r.reshape(job['th'], job['tw'], job['c'])
    r.tofile(job['out'])
    if job['c'] == 3:
        t = (r.astype(np.float32) * np.float32(1 / 255) - mean) / std
        np.ascontiguousarray(t.transpose(2, 0, 1)).astype(np.float32).tofile(job['out'] + '.f32')
`;

const dir = mkdtempSync(path.join(tmpdir(), 'pif-pre-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Job {
  name: string;
  image: RawImage;
  tw: number;
  th: number;
}

function synthetic(w: number, h: number, c: number, seed: number): RawImage {
  const data = new Uint8Array(w * h * c);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s >>> 16) & 255;
  }
  return { data, width: w, height: h, channels: c };
}

test('resize equals cv2.resize INTER_LINEAR and the tensor matches OpenCV + NumPy', async (t) => {
  const oracle = needOpencvOracle(t);
  if (oracle === null) return;
  const { py, photos } = oracle;
  const jobs: Job[] = [];
  for (const f of photos) {
    const { data, info } = await sharp(f, { failOn: 'none' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const image = {
      data: new Uint8Array(data),
      width: info.width,
      height: info.height,
      channels: 3,
    };
    // PaddleX's 224x224, and sizes whose rows end in partial vector blocks.
    for (const [tw, th] of [
      [224, 224],
      [100, 37],
      [513, 301],
    ] as const) {
      jobs.push({ name: `${path.basename(f)} -> ${tw}x${th}`, image, tw, th });
    }
  }
  const edge: [string, RawImage, number, number][] = [
    ['1x1 upscale', synthetic(1, 1, 3, 1), 224, 224],
    ['2x3 upscale', synthetic(2, 3, 3, 2), 224, 224],
    ['50x30 upscale', synthetic(50, 30, 3, 3), 224, 224],
    ['1000x10 extreme aspect', synthetic(1000, 10, 3, 4), 224, 224],
    ['10x1000 extreme aspect', synthetic(10, 1000, 3, 5), 224, 224],
    ['grey 333x217', synthetic(333, 217, 1, 6), 224, 224],
    ['4-channel 300x200', synthetic(300, 200, 4, 7), 224, 224],
    ['same size', synthetic(224, 224, 3, 8), 224, 224],
    ['to 1x1', synthetic(97, 61, 3, 9), 1, 1],
  ];
  for (const [name, image, tw, th] of edge) jobs.push({ name, image, tw, th });

  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const manifest = {
    mean,
    std,
    jobs: jobs.map((j, k) => {
      const src = path.join(dir, `${k}.src`);
      writeFileSync(src, j.image.data);
      return {
        src,
        out: path.join(dir, `${k}.out`),
        w: j.image.width,
        h: j.image.height,
        c: j.image.channels,
        tw: j.tw,
        th: j.th,
      };
    }),
  };
  writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(manifest));
  execFileSync(py, ['-c', ORACLE, path.join(dir, 'jobs.json')], { stdio: 'inherit' });

  let values = 0;
  let exact = 0;
  let maxDiff = 0;
  let maxTensorDiff = 0;
  for (const [k, j] of jobs.entries()) {
    const r = await preprocessImage(j.image, { width: j.tw, height: j.th });
    const want = readFileSync(path.join(dir, `${k}.out`));
    assert.equal(r.resized.data.length, want.length, j.name);
    let e = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs((want[i] as number) - (r.resized.data[i] as number));
      if (d === 0) e++;
      if (d > maxDiff) maxDiff = d;
    }
    values += want.length;
    exact += e;
    if (j.image.channels === 3) {
      const buf = readFileSync(path.join(dir, `${k}.out.f32`));
      const wantT = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      assert.equal(r.tensor.length, wantT.length, j.name);
      for (let i = 0; i < wantT.length; i++) {
        maxTensorDiff = Math.max(
          maxTensorDiff,
          Math.abs((wantT[i] as number) - (r.tensor[i] as number)),
        );
      }
    }
  }
  const share = exact / values;
  t.diagnostic(
    `${jobs.length} resizes (${photos.length} photos x 3 sizes + ${edge.length} edge cases): ` +
      `${values} values, ${(share * 100).toFixed(5)} % exact, max |diff| ${maxDiff}; ` +
      `tensor max |diff| ${maxTensorDiff.toExponential(2)}`,
  );
  assert.ok(share >= 0.9999, `only ${(share * 100).toFixed(4)} % of values equal cv2's`);
  assert.ok(maxDiff <= 1, `a value differs from cv2's by ${maxDiff}`);
  assert.ok(maxTensorDiff <= 1e-6, `tensor differs from OpenCV + NumPy by ${maxTensorDiff}`);
});

test('preprocessImage validates its arguments', async () => {
  const img = synthetic(4, 3, 3, 1);
  await assert.rejects(preprocessImage({ ...img, width: 5 }, { width: 2, height: 2 }), /bytes/);
  await assert.rejects(
    preprocessImage({ ...img, channels: 5 }, { width: 2, height: 2 }),
    /channels/,
  );
  await assert.rejects(preprocessImage(img, { width: 0, height: 2 }), /spec\.width/);
  await assert.rejects(preprocessImage(img, { width: 2, height: 2, std: [1, 0, 1] }), /std/);
  await assert.rejects(preprocessImage(img, { width: 2, height: 2, mean: [0, 0] }), /mean/);
  const ok = await preprocessImage(img, {
    width: 2,
    height: 2,
    scale: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  });
  assert.equal(ok.tensor.length, 12);
  // scale 1, mean 0, std 1: the tensor is the resized image in CHW order.
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < 4; i++) assert.equal(ok.tensor[c * 4 + i], ok.resized.data[i * 3 + c]);
});
