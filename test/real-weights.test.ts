/**
 * Real weights on real and rendered images (issue 3, acceptance 1 and 2):
 *
 * - mobilenetv3_small_x0_35_meter_legacy on real photographs against ONNX Runtime running
 *   the fixture's own model.onnx (an independent oracle with byte-identical weights);
 * - pplcnet_x0_25_textline_ori_pir on rendered text lines, upright and rotated by 180°;
 * - en_ppocrv3_det_legacy on rendered words: text mid-lines high, far background low.
 *
 * The photographs are the OpenCV sample images of the Debian package opencv-doc; the text is
 * rendered by sharp (librsvg) with the DejaVu fonts of fonts-dejavu-core and
 * fonts-dejavu-extra. Missing ones skip the tests with the reason printed, or fail them with
 * PIF_REQUIRE_FIXTURES=1, like the model fixtures.
 *
 * Text-line colour order: PaddleX runs PP-LCNet_x0_25_textline_ori through its image
 * classification predictor (ClasPredictor), which reads images with ReadImage(format="RGB")
 * before the yml's NormalizeImage; the detector is fed BGR as its SOURCE.md states.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

import { loadPredictor } from '../lib/predictor.js';
import { fixtureDir, needFixtures, requireFixtures } from './helpers/fixtures.js';
import { needNative } from './helpers/native.js';
import { argmaxRows, withOnnxOracle } from './helpers/predictors.js';
import {
  dilate,
  FONT_FAMILIES,
  fontsMissingReason,
  IMAGENET,
  renderCanvas,
  renderTextLine,
  Rng,
  toChw,
  type Background,
  type PlacedWord,
  type RawImage,
  type Rgb,
  type TextStyle,
} from './helpers/render.js';

const CPU_THREADS = 2;

/** OpenCV's sample images as Debian's opencv-doc installs them ($PIF_PHOTOS overrides). */
const PHOTO_DIR = path.resolve(
  process.env['PIF_PHOTOS'] ?? '/usr/share/doc/opencv-doc/examples/data',
);

/**
 * Real photographs among them (the synthetic ones left out): aerial views, fruit, animals,
 * buildings, streets, sport, objects; colour, grey and one RGBA PNG.
 */
const PHOTOS = [
  'aero1.jpg',
  'aero3.jpg',
  'aloeL.jpg',
  'apple.jpg',
  'baboon.jpg',
  'basketball1.png',
  'board.jpg',
  'box_in_scene.png',
  'building.jpg',
  'butterfly.jpg',
  'chicky_512.png',
  'ela_original.jpg',
  'fruits.jpg',
  'graf1.png',
  'home.jpg',
  'left01.jpg',
  'leuvenA.jpg',
  'licenseplate_motion.jpg',
  'messi5.jpg',
  'orange.jpg',
  'rubberwhale1.png',
  'smarties.png',
  'squirrel_cls.jpg',
  'stuff.jpg',
] as const;

/** Skips (or with PIF_REQUIRE_FIXTURES=1 fails) the test when `reason` is not null. */
function needResource(t: TestContext, reason: string | null): boolean {
  if (reason === null) return true;
  if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${reason}`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return false;
}

function photosMissingReason(): string | null {
  const missing = PHOTOS.filter((f) => !existsSync(path.join(PHOTO_DIR, f)));
  if (missing.length === 0) return null;
  return (
    `${missing.length} of ${PHOTOS.length} photos missing in ${PHOTO_DIR} ` +
    `(install the Debian package opencv-doc, or set PIF_PHOTOS)`
  );
}

/** PaddleClas eval preprocessing up to the crop: resize_short 256, centre crop 224, RGB. */
async function photo224(file: string): Promise<RawImage> {
  // Decode as the 8-bit colour image OpenCV's IMREAD_COLOR gives (alpha dropped, grey → 3 ch).
  const src = sharp(file).removeAlpha().toColourspace('srgb');
  const meta = await sharp(file).metadata();
  const w0 = meta.width;
  const h0 = meta.height;
  const scale = 256 / Math.min(w0, h0);
  const w = Math.round(w0 * scale);
  const h = Math.round(h0 * scale);
  const { data, info } = await src
    .resize(w, h, { fit: 'fill', kernel: 'linear' })
    .extract({
      left: Math.floor((w - 224) / 2),
      top: Math.floor((h - 224) / 2),
      width: 224,
      height: 224,
    })
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3, `${file}: ${info.channels} channels`);
  return { data, width: info.width, height: info.height, channels: info.channels };
}

const VOCABULARY = (
  'the quick brown fox jumps over lazy dog invoice total amount date name address phone ' +
  'number customer order payment receipt balance account station river mountain garden ' +
  'window letter report summary meeting project results table figure chapter section value ' +
  'price quantity delivery service market street city country north south morning evening ' +
  'weather history science music people water energy'
).split(' ');

function luminance(c: Rgb): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

/** Random but readable text lines: 1–4 words (± a number), mixed case, font, size, colours. */
async function renderTextLines(
  n: number,
  seed: number,
): Promise<{ image: RawImage; style: TextStyle }[]> {
  const rng = new Rng(seed);
  const colour = (): Rgb => [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
  const lines = [];
  for (let i = 0; i < n; i++) {
    let text = Array.from({ length: rng.int(1, 4) }, () => rng.pick(VOCABULARY)).join(' ');
    const casing = rng.int(0, 2);
    if (casing === 1) text = text.toUpperCase();
    else if (casing === 2) text = text.replace(/\b\w/g, (m) => m.toUpperCase());
    if (rng.next() < 0.3) text += ` ${rng.int(1, 99999)}`;
    let fg: Rgb;
    let bg0: Rgb;
    do {
      fg = colour();
      bg0 = colour();
    } while (Math.abs(luminance(fg) - luminance(bg0)) < 100);
    const bg: Background =
      rng.next() < 0.3
        ? {
            kind: 'gradient',
            from: bg0,
            to: [Math.min(255, bg0[0] + 40), bg0[1], Math.max(0, bg0[2] - 40)],
            vertical: rng.next() < 0.5,
          }
        : { kind: 'solid', color: bg0 };
    const style: TextStyle = {
      text,
      family: rng.pick(FONT_FAMILIES),
      bold: rng.next() < 0.3,
      italic: rng.next() < 0.2,
      size: rng.int(14, 48),
      fill: fg,
    };
    const padX = rng.int(1, Math.ceil(style.size / 3));
    const padY = rng.int(1, Math.ceil(style.size / 4));
    lines.push({ image: await renderTextLine(style, bg, padX, padY), style });
  }
  return lines;
}

/** inference.yml's ResizeImage [160, 80]: a plain bilinear resize to w 160 × h 80. */
async function textline160x80(img: RawImage, rotate180: boolean): Promise<RawImage> {
  let s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (rotate180) s = s.rotate(180);
  const { data, info } = await s
    .resize(160, 80, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pct(num: number, den: number): string {
  return `${((100 * num) / den).toFixed(2)} % (${num}/${den})`;
}

describe('real weights on real and rendered images', () => {
  test('mobilenetv3 on 24 real photos matches ONNX Runtime on model.onnx (max |Δ| ≤ 1e-4, same argmax)', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    if (!needResource(t, photosMissingReason())) return;
    const dir = fixtureDir(root, 'mobilenetv3_small_x0_35_meter_legacy');
    const n = PHOTOS.length;
    const plane = 3 * 224 * 224;
    const x = new Float32Array(n * plane);
    for (const [i, f] of PHOTOS.entries()) {
      toChw(await photo224(path.join(PHOTO_DIR, f)), { ...IMAGENET, order: 'rgb' }, x, i * plane);
    }
    await withOnnxOracle(dir, CPU_THREADS, async (p, session) => {
      const out = (await p.run({ x: { data: x, shape: [n, 3, 224, 224] } }))[
        'save_infer_model/scale_0.tmp_0'
      ];
      assert.ok(out !== undefined);
      assert.deepEqual(out.shape, [n, 3]);
      const ours = out.data as Float32Array;
      const res = await session.run({
        [session.inputNames[0]!]: new ort.Tensor('float32', x, [n, 3, 224, 224]),
      });
      const ref = res[session.outputNames[0]!]!.data as Float32Array;
      assert.equal(ref.length, ours.length);
      let maxDiff = 0;
      let worst = '';
      for (let i = 0; i < ours.length; i++) {
        const d = Math.abs(ours[i]! - ref[i]!);
        if (d > maxDiff) {
          maxDiff = d;
          worst = PHOTOS[Math.floor(i / 3)]!;
        }
      }
      const a = argmaxRows(ours, 3);
      const b = argmaxRows(ref, 3);
      const same = a.filter((v, i) => v === b[i]).length;
      const classes = [0, 1, 2].map((c) => a.filter((v) => v === c).length);
      t.diagnostic(
        `mobilenetv3, ${n} photos: max |Δ| ${maxDiff.toExponential(3)} (${worst || 'none'}), ` +
          `argmax agrees on ${same}/${n}, predicted class counts ${classes.join('/')}`,
      );
      assert.ok(maxDiff <= 1e-4, `max |Δ| ${maxDiff} on ${worst}`);
      assert.deepEqual(a, b);
    });
  });

  test('textline orientation: ≥ 95 % of 120 rendered lines upright → 0_degree and rotated → 180_degree', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    if (!needResource(t, fontsMissingReason())) return;
    const dir = fixtureDir(root, 'pplcnet_x0_25_textline_ori_pir');
    // PostProcess Topk label_list in inference.yml: class 0 = 0_degree, class 1 = 180_degree.
    const lines = await renderTextLines(120, 20240501);
    const p = await loadPredictor(dir, { cpuThreads: CPU_THREADS });
    try {
      const plane = 3 * 80 * 160;
      const batch = 40;
      for (const [rotated, label] of [
        [false, 0],
        [true, 1],
      ] as const) {
        let correct = 0;
        const wrong: string[] = [];
        for (let start = 0; start < lines.length; start += batch) {
          const chunk = lines.slice(start, start + batch);
          const x = new Float32Array(chunk.length * plane);
          for (const [i, line] of chunk.entries()) {
            // PaddleX's ClasPredictor reads RGB, then NormalizeImage with ImageNet mean/std.
            toChw(
              await textline160x80(line.image, rotated),
              { ...IMAGENET, order: 'rgb' },
              x,
              i * plane,
            );
          }
          const out = (await p.run({ data: x, shape: [chunk.length, 3, 80, 160] }))['fetch_name_0'];
          assert.ok(out !== undefined);
          assert.deepEqual(out.shape, [chunk.length, 2]);
          const probs = out.data as Float32Array;
          for (const [i, cls] of argmaxRows(probs, 2).entries()) {
            if (cls === label) correct++;
            else {
              const s = chunk[i]!.style;
              wrong.push(
                `'${s.text}' (${s.family} ${s.size}px, p180 ${probs[2 * i + 1]!.toFixed(3)})`,
              );
            }
          }
        }
        const side = rotated ? 'rotated 180° → 180_degree' : 'upright → 0_degree';
        t.diagnostic(
          `textline ${side}: ${pct(correct, lines.length)}` +
            (wrong.length > 0 ? `; wrong: ${wrong.join(', ')}` : ''),
        );
        assert.ok(correct >= 0.95 * lines.length, `${side}: ${correct}/${lines.length}`);
      }
    } finally {
      p.close();
    }
  });

  test('text detection: word mid-lines > 0.5 (≥ 90 %), pixels > 10 px from glyphs < 0.5 (≥ 95 %)', async (t) => {
    const root = needFixtures(t);
    if (root === null || needNative(t) === null) return;
    if (!needResource(t, fontsMissingReason())) return;
    const dir = fixtureDir(root, 'en_ppocrv3_det_legacy');
    // A canvas that is not a multiple of 32, padded to one (the pad is 0 after normalisation).
    const W = 630;
    const H = 310;
    const PW = Math.ceil(W / 32) * 32;
    const PH = Math.ceil(H / 32) * 32;
    const rng = new Rng(7);
    const canvases: { name: string; bg: Rgb; fg: () => Rgb }[] = [
      { name: 'black on white', bg: [255, 255, 255], fg: () => [0, 0, 0] },
      {
        name: 'colours on white',
        bg: [255, 255, 255],
        fg: () => [rng.int(0, 150), rng.int(0, 150), rng.int(0, 150)],
      },
      {
        name: 'colours on cream',
        bg: [250, 240, 200],
        fg: () => [rng.int(0, 120), rng.int(0, 60), rng.int(60, 160)],
      },
      {
        name: 'light on dark blue',
        bg: [30, 40, 90],
        fg: () => [rng.int(200, 255), rng.int(200, 255), rng.int(150, 255)],
      },
    ];
    const p = await loadPredictor(dir, { cpuThreads: CPU_THREADS });
    try {
      let midAll = 0;
      let midHigh = 0;
      let farAll = 0;
      let farLow = 0;
      let wordCount = 0;
      let worstWord = 1;
      const lowWords: string[] = [];
      for (const canvas of canvases) {
        // Rows of words with wide gaps, sizes 22–40 px, fonts/weights/styles at random.
        const words: PlacedWord[] = [];
        let top = 10;
        for (;;) {
          const size = rng.int(22, 40);
          const baseline = top + size;
          if (baseline + Math.round(size * 0.3) > H - 10) break;
          let x = rng.int(10, 40);
          for (;;) {
            const text = rng.pick(VOCABULARY.filter((w) => w.length >= 4));
            const estimate = Math.ceil(text.length * size * 0.65);
            if (x + estimate > W - 10) break;
            words.push({
              style: {
                text,
                family: rng.pick(FONT_FAMILIES),
                bold: rng.next() < 0.3,
                italic: rng.next() < 0.2,
                size,
                fill: canvas.fg(),
              },
              x,
              y: baseline,
            });
            x += estimate + rng.int(40, 80);
          }
          top = baseline + Math.round(size * 0.3) + rng.int(25, 40);
        }
        const r = await renderCanvas(W, H, canvas.bg, words);
        const x = new Float32Array(3 * PW * PH);
        // PaddleOCR det normalises the BGR image (SOURCE.md): channel c gets mean[c]/std[c].
        toChw(r.image, { ...IMAGENET, order: 'bgr' }, x, 0, PW, PH);
        const out = (await p.run({ data: x, shape: [1, 3, PH, PW] }))['sigmoid_0.tmp_0'];
        assert.ok(out !== undefined);
        assert.deepEqual(out.shape, [1, 1, PH, PW]);
        const prob = out.data as Float32Array;

        let mAll = 0;
        let mHigh = 0;
        for (const [i, b] of r.boxes.entries()) {
          const y = Math.floor((b.y0 + b.y1) / 2);
          const cut = Math.ceil(0.1 * (b.x1 - b.x0));
          let all = 0;
          let high = 0;
          for (let xx = b.x0 + cut; xx < b.x1 - cut; xx++) {
            all++;
            if (prob[y * PW + xx]! > 0.5) high++;
          }
          // Each word on its own, not only on average.
          worstWord = Math.min(worstWord, high / all);
          if (high < 0.9 * all) lowWords.push(`'${words[i]!.style.text}' ${pct(high, all)}`);
          mAll += all;
          mHigh += high;
        }
        const near = dilate(r.glyphMask, W, H, 10);
        let fAll = 0;
        let fLow = 0;
        for (let y = 0; y < H; y++) {
          for (let xx = 0; xx < W; xx++) {
            if (near[y * W + xx] === 1) continue;
            fAll++;
            if (prob[y * PW + xx]! < 0.5) fLow++;
          }
        }
        t.diagnostic(
          `det ${canvas.name}, ${words.length} words: mid-line > 0.5 ${pct(mHigh, mAll)}; ` +
            `far < 0.5 ${pct(fLow, fAll)}`,
        );
        midAll += mAll;
        midHigh += mHigh;
        farAll += fAll;
        farLow += fLow;
        wordCount += words.length;
      }
      t.diagnostic(
        `det total, ${wordCount} words on ${canvases.length} canvases ${W}×${H} padded to ${PW}×${PH}: ` +
          `mid-line > 0.5 ${pct(midHigh, midAll)} (worst word ${(100 * worstWord).toFixed(2)} %); ` +
          `far < 0.5 ${pct(farLow, farAll)}`,
      );
      assert.ok(midHigh >= 0.9 * midAll, `mid-line ${midHigh}/${midAll}`);
      assert.deepEqual(lowWords, [], 'words whose mid-line is < 90 % above 0.5');
      assert.ok(farLow >= 0.95 * farAll, `far ${farLow}/${farAll}`);
    } finally {
      p.close();
    }
  });
});
