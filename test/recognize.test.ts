// Recognition over a gallery (lib/recognize.ts): PaddleX's thresholding with its L2 direction
// fixed, topk honoured, empty index, deterministic ties, the result's JSON form — on injected
// features — and the whole path image -> model -> index -> labels with a builder model.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel, type FeatureModel } from '../lib/image-feature.js';
import {
  createRecognizer,
  decideBox,
  isRejected,
  rankHits,
  RecognitionResult,
} from '../lib/recognize.js';
import { createIndex } from '../lib/vector-index/index.js';
import type { Metric, VectorIndex } from '../lib/vector-index/types.js';

/** The next float32 above / below x (for boundary thresholds). */
function nextUp(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = x >= 0 ? u[0]! + 1 : u[0]! - 1;
  return f[0]!;
}
function nextDown(x: number): number {
  return -nextUp(-x);
}

const rows = (...vs: number[][]): Float32Array => Float32Array.from(vs.flat());

/** a=[1,0,0,0], b=[0,1,0,0], c=[0.6,0.8,0,0]. */
async function gallery(metric: Metric): Promise<VectorIndex> {
  const index = createIndex({ metric });
  await index.add({
    features: rows([1, 0, 0, 0], [0, 1, 0, 0], [0.6, 0.8, 0, 0]),
    labels: ['a', 'b', 'c'],
  });
  return index;
}

const full = (w = 10, h = 20) => [{ width: w, height: h }];

describe('recognition with injected features', () => {
  test('IP: top-1 below the threshold rejects, equal keeps, hits past it are kept', async () => {
    const index = await gallery('IP');
    const rec = createRecognizer({ index, recTopk: 3 });
    assert.equal(rec.recThreshold, 0.5);
    const q = rows([1, 0, 0, 0]);
    const [r] = await rec.recognizeFeatures(q, full());
    const box = r!.boxes[0]!;
    assert.deepEqual(box.labels, ['a', 'c', 'b']); // b (score 0) is kept though < 0.5, as PaddleX
    assert.equal(box.recScores[0], 1);
    assert.ok(Math.abs(box.recScores[1]! - 0.6) < 1e-6);
    assert.equal(box.recScores[2], 0);
    assert.equal(box.detScore, 0);
    assert.deepEqual(box.coordinate, [0, 0, 10, 20]);
    // Boundary: a threshold equal to the top-1 score keeps the box; the next float rejects it.
    const eq = await rec.recognizeFeatures(q, full(), { recThreshold: 1 });
    assert.deepEqual(eq[0]!.boxes[0]!.labels, ['a', 'c', 'b']);
    const above = await rec.recognizeFeatures(q, full(), { recThreshold: nextUp(1) });
    assert.deepEqual(above[0]!.boxes[0]!.labels, [null]);
    assert.deepEqual(above[0]!.boxes[0]!.recScores, [null]);
    // A weak match: top-1 0.8 (c) against thresholds on both sides.
    const weak = rows([0, 0.6, 0.8, 0]); // a:0, b:0.6, c:0.48
    const w = await rec.recognizeFeatures(weak, full(), { recThreshold: 0.7 });
    assert.deepEqual(w[0]!.boxes[0]!.labels, [null]);
    const w2 = await rec.recognizeFeatures(weak, full(), { recThreshold: 0.59 });
    assert.deepEqual(w2[0]!.boxes[0]!.labels, ['b', 'c', 'a']);
  });

  test('L2: smaller is better; top-1 distance above the threshold rejects, equal keeps', async () => {
    const index = await gallery('L2');
    const rec = createRecognizer({ index, recTopk: 3, recThreshold: 0.5 });
    // Exact match: distance 0 <= 0.5 -> kept (PaddleX's "score < threshold" would reject it).
    const [r] = await rec.recognizeFeatures(rows([1, 0, 0, 0]), full());
    assert.deepEqual(r!.boxes[0]!.labels, ['a', 'c', 'b']);
    assert.equal(r!.boxes[0]!.recScores[0], 0);
    assert.ok(Math.abs(r!.boxes[0]!.recScores[1]! - 0.8) < 1e-6);
    assert.equal(r!.boxes[0]!.recScores[2], 2);
    // Far from everything: distance 2 > 0.5 -> rejected (PaddleX would keep it).
    const far = rows([0, 0, 1, 0]);
    const [f] = await rec.recognizeFeatures(far, full());
    assert.deepEqual(f!.boxes[0]!.labels, [null]);
    assert.deepEqual(f!.boxes[0]!.recScores, [null]);
    // Boundary: threshold equal to the distance keeps; just below rejects.
    const [eq] = await rec.recognizeFeatures(far, full(), { recThreshold: 2 });
    assert.deepEqual(eq!.boxes[0]!.labels, ['a', 'b', 'c']); // a tie at 2: by id
    const [below] = await rec.recognizeFeatures(far, full(), { recThreshold: nextDown(2) });
    assert.deepEqual(below!.boxes[0]!.labels, [null]);
    // Threshold 0 keeps only exact matches.
    const [zero] = await rec.recognizeFeatures(rows([1, 0, 0, 0]), full(), { recThreshold: 0 });
    assert.equal(zero!.boxes[0]!.labels[0], 'a');
  });

  test('isRejected and decideBox state the rule for both metrics', () => {
    assert.equal(isRejected(0.4, 'IP', 0.5), true);
    assert.equal(isRejected(0.5, 'IP', 0.5), false);
    assert.equal(isRejected(0.6, 'L2', 0.5), true);
    assert.equal(isRejected(0.5, 'L2', 0.5), false);
    assert.deepEqual(decideBox([], 'IP', 0.5, 5), { labels: [null], recScores: [null] });
    assert.deepEqual(decideBox([{ id: -1, label: 'x', score: 9 }], 'IP', 0.5, 5), {
      labels: [null],
      recScores: [null],
    });
  });

  test('topk: recTopk, its alias topk, per call, larger than the gallery', async () => {
    const index = await gallery('IP');
    const q = rows([1, 0, 0, 0]);
    const two = createRecognizer({ index, recTopk: 2 });
    assert.deepEqual((await two.recognizeFeatures(q, full()))[0]!.boxes[0]!.labels, ['a', 'c']);
    const alias = createRecognizer({ index, topk: 1 });
    assert.equal(alias.recTopk, 1);
    assert.deepEqual((await alias.recognizeFeatures(q, full()))[0]!.boxes[0]!.labels, ['a']);
    const call = await alias.recognizeFeatures(q, full(), { topk: 2 });
    assert.deepEqual(call[0]!.boxes[0]!.labels, ['a', 'c']);
    const many = createRecognizer({ index }); // default 5 > 3 vectors
    assert.equal(many.recTopk, 5);
    assert.equal((await many.recognizeFeatures(q, full()))[0]!.boxes[0]!.labels.length, 3);
    assert.throws(() => createRecognizer({ index, recTopk: 2, topk: 3 }), /disagree/);
    assert.throws(() => createRecognizer({ index, recTopk: 0 }), /positive integer/);
    assert.throws(() => createRecognizer({ index, recThreshold: Number.NaN }), /finite/);
    await assert.rejects(two.recognizeFeatures(q, full(), { topk: 1.5 }), /positive integer/);
  });

  test('several queries at once keep their order', async () => {
    const index = await gallery('IP');
    const rec = createRecognizer({ index, recTopk: 1 });
    const out = await rec.recognizeFeatures(rows([0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]), [
      { width: 1, height: 2, inputPath: 'x.jpg' },
      { width: 3, height: 4 },
      { width: 5, height: 6 },
    ]);
    assert.deepEqual(
      out.map((r) => r.boxes[0]!.labels),
      [['b'], ['a'], [null]],
    );
    assert.equal(out[0]!.inputPath, 'x.jpg');
    assert.equal(out[1]!.inputPath, null);
    assert.deepEqual(out[2]!.boxes[0]!.coordinate, [0, 0, 5, 6]);
  });

  test('an empty index recognises nothing and does not throw', async () => {
    const fresh = createIndex(); // no dim yet
    const rec = createRecognizer({ index: fresh });
    const [r] = await rec.recognizeFeatures(rows([1, 0, 0, 0]), full());
    assert.deepEqual(r!.boxes[0]!.labels, [null]);
    assert.deepEqual(r!.boxes[0]!.recScores, [null]);
    const emptied = await gallery('L2');
    await emptied.remove([0, 1, 2]);
    assert.equal(emptied.size, 0);
    const [e] = await createRecognizer({ index: emptied }).recognizeFeatures(
      rows([1, 0, 0, 0]),
      full(),
    );
    assert.deepEqual(e!.boxes[0]!.labels, [null]);
  });

  test('ties are ordered by id, whatever order the hits come in', async () => {
    const index = createIndex({ metric: 'IP' });
    const v = [0, 0, 1, 0];
    await index.add({ features: rows(v, [1, 0, 0, 0], v, v), labels: ['x', 'other', 'y', 'z'] });
    await index.remove([0]);
    await index.add({ features: rows(v), labels: ['w'] }); // id 4
    const rec = createRecognizer({ index, recTopk: 4 });
    for (let i = 0; i < 3; i++) {
      const [r] = await rec.recognizeFeatures(rows(v), full());
      assert.deepEqual(r!.boxes[0]!.labels, ['y', 'z', 'w', 'other']);
    }
    const hits = [
      { id: 7, label: 'q', score: 0.5 },
      { id: 2, label: 'p', score: 0.5 },
      { id: 9, label: 'best', score: 0.9 },
    ];
    assert.deepEqual(
      rankHits(hits, 'IP').map((h) => h.id),
      [9, 2, 7],
    );
    assert.deepEqual(
      rankHits(hits, 'L2').map((h) => h.id),
      [2, 7, 9],
    );
  });

  test("JSON in PaddleX's snake_case form", () => {
    const r = new RecognitionResult(
      'a.jpg',
      [
        {
          labels: ['red bull', 'cola'],
          recScores: [0.75, 0.5],
          detScore: 0,
          coordinate: [0, 0, 640, 480],
        },
      ],
      null,
    );
    assert.deepEqual(r.json, {
      res: {
        input_path: 'a.jpg',
        boxes: [
          {
            labels: ['red bull', 'cola'],
            rec_scores: [0.75, 0.5],
            det_score: 0,
            coordinate: [0, 0, 640, 480],
          },
        ],
      },
    });
    assert.deepEqual(r.toJson(), r.json);
    assert.equal(
      r.toJsonString({ indent: null }),
      '{"res": {"input_path": "a.jpg", "boxes": [{"labels": ["red bull", "cola"], "rec_scores": [0.75, 0.5], "det_score": 0, "coordinate": [0, 0, 640, 480]}]}}',
    );
    const rejected = new RecognitionResult(
      null,
      [{ labels: [null], recScores: [null], detScore: 0, coordinate: [0, 0, 1, 1] }],
      null,
    );
    assert.match(
      rejected.toJsonString({ indent: null }),
      /"labels": \[null\], "rec_scores": \[null\]/,
    );
  });
});

describe('recognition end to end with a builder model', () => {
  let dir = '';
  let model: FeatureModel;
  const images: Buffer[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pif-recognize-'));
    await buildModel('PP-ShiTuV2_rec', path.join(dir, 'model'), { seed: 3 });
    model = await createModel('PP-ShiTuV2_rec', { modelDir: path.join(dir, 'model') });
    for (let i = 0; i < 4; i++) {
      images.push(
        await sharp({
          create: {
            width: 40 + 8 * i,
            height: 30 + 5 * i,
            channels: 3,
            background: '#000000',
            noise: { type: 'gaussian', mean: 60 + 40 * i, sigma: 30 + 10 * i },
          },
        })
          .png()
          .toBuffer(),
      );
    }
  });
  after(async () => {
    model.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('image -> model -> index -> labels: each gallery image recognises itself', async () => {
    const index = createIndex({ model });
    await index.build(images.map((image, i) => ({ image, label: `item-${i}` })));
    const rec = createRecognizer({ model, index, recTopk: 2 });
    const file = path.join(dir, 'query.png');
    await writeFile(file, images[2]!);
    const results = await rec.predictAll([images[1]!, file, images[3]!]);
    assert.equal(results.length, 3);
    const [r1, r2, r3] = results;
    assert.equal(r1!.error, null);
    assert.equal(r1!.inputPath, null);
    assert.equal(r2!.inputPath, file);
    assert.equal(r1!.boxes.length, 1);
    assert.equal(r1!.boxes[0]!.labels[0], 'item-1');
    assert.equal(r2!.boxes[0]!.labels[0], 'item-2');
    assert.equal(r3!.boxes[0]!.labels[0], 'item-3');
    assert.equal(r1!.boxes[0]!.labels.length, 2);
    assert.ok(Math.abs(r2!.boxes[0]!.recScores[0]! - 1) < 1e-4); // the same image: cosine 1
    assert.deepEqual(r2!.boxes[0]!.coordinate, [0, 0, 56, 40]);
    assert.equal(r2!.boxes[0]!.detScore, 0);
    assert.equal(r2!.json.res.input_path, file);
  });

  test('an unreadable input gives an error result; the others still come out', async () => {
    const index = createIndex({ model });
    await index.build(images.slice(0, 2).map((image, i) => ({ image, label: `g${i}` })));
    const rec = createRecognizer({ model, index });
    const out: RecognitionResult[] = [];
    for await (const r of rec.predict([images[0]!, Buffer.from('not an image'), images[1]!], {
      batchSize: 2,
    })) {
      out.push(r);
    }
    assert.equal(out.length, 3);
    assert.equal(out[0]!.boxes[0]!.labels[0], 'g0');
    assert.ok(out[1]!.error !== null);
    assert.deepEqual(out[1]!.boxes, []);
    assert.equal(out[2]!.boxes[0]!.labels[0], 'g1');
    await assert.rejects(
      (async () => {
        for await (const r of createRecognizer({ index }).predict(images[0]!))
          assert.fail(JSON.stringify(r.json));
      })(),
      /needs a model/,
    );
    await assert.rejects(
      rec.predictAll(images[0]!, { batchSize: 0 }),
      /batchSize must be an integer/,
    );
  });
});
