// JPEG files decoded by the addon (libjpeg-turbo, native/preprocess/jpeg_decode.h) instead of
// sharp: which files go that way (lib/jpeg-header.ts), that their features equal the sharp path's
// bit for bit (sharp-made variants and OpenCV's sample photos), that a JPEG the addon cannot
// decode falls back to sharp with the same result, and that concurrent predicts (two streams
// on one model) give what sequential ones give.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { createModel, type FeatureModel } from '../lib/image-feature.js';
import { exifOrientation, nativeJpegFrame, SHARP_PIXEL_LIMIT } from '../lib/jpeg-header.js';
import { nativeBinding, traceNativeCalls } from '../lib/native.js';
import { loadPredictor } from '../lib/predictor.js';
import { mulberry32 } from '../lib/rng.js';
import { requireFixtures } from './helpers/fixtures.js';
import { noiseRgb } from './helpers/inputs.js';
import { listPhotos, PHOTOS } from './helpers/opencv.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-jpeg-'));
const modelDir = path.join(dir, 'model');
const file = (name: string) => path.join(dir, name);
let native: FeatureModel;
let viaSharp: FeatureModel;
// Addon calls of `native` (traced from its load on).
const calls: string[] = [];
let untrace: () => void = () => undefined;

/** The sharp-made JPEGs the addon decodes, and those it leaves to sharp. */
const NATIVE = ['q90-420.jpg', 'q95-444.jpg', 'progressive.jpg', 'grey.jpg', 'exif1.jpg'];
const SHARP = ['exif6.jpg', 'cmyk.jpg', 'png-named.jpg'];
/** Header fine, scan data broken: the addon tries, fails, and sharp decides. */
const BROKEN = ['truncated.jpg', 'garbled.jpg'];

before(async () => {
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 5 });
  const [w, h] = [161, 123];
  const src = () =>
    sharp(noiseRgb(w, h, 9), { raw: { width: w, height: h, channels: 3 } }).blur(1.5);
  await src().jpeg({ quality: 90 }).toFile(file('q90-420.jpg'));
  await src().jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toFile(file('q95-444.jpg'));
  await src().jpeg({ quality: 80, progressive: true }).toFile(file('progressive.jpg'));
  await src().toColourspace('b-w').jpeg({ quality: 85 }).toFile(file('grey.jpg'));
  await src().jpeg({ quality: 90 }).withMetadata({ orientation: 1 }).toFile(file('exif1.jpg'));
  await src().jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(file('exif6.jpg'));
  await src().toColourspace('cmyk').jpeg({ quality: 90 }).toFile(file('cmyk.jpg'));
  await src().png().toFile(file('png-named.jpg'));
  const good = readFileSync(file('q90-420.jpg'));
  writeFileSync(file('truncated.jpg'), good.subarray(0, Math.floor(good.length * 0.6)));
  const garbled = Buffer.from(good);
  for (let i = garbled.length - 400; i < garbled.length - 300; i++) garbled[i] = 0xff;
  writeFileSync(file('garbled.jpg'), garbled);
  untrace = traceNativeCalls((name) => calls.push(name));
  native = await createModel('PP-ShiTuV2_rec', { modelDir, batchSize: 4 });
  process.env['PIF_NATIVE_JPEG'] = '0';
  try {
    viaSharp = await createModel('PP-ShiTuV2_rec', { modelDir, batchSize: 4 });
  } finally {
    delete process.env['PIF_NATIVE_JPEG'];
  }
});

after(() => {
  untrace();
  native.close();
  viaSharp.close();
  rmSync(dir, { recursive: true, force: true });
});

function needJpegDecode(t: { skip: (why: string) => void }): boolean {
  if (nativeBinding().jpegDecode === true) return true;
  const why = 'the addon was built without libjpeg (apt-get install -y libjpeg62-turbo-dev)';
  if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${why}`);
  t.skip(why);
  return false;
}

/** Asserts two result lists are the same: errors by code and message, features bit for bit. */
function assertSameResults(
  a: Awaited<ReturnType<FeatureModel['predictAll']>>,
  b: Awaited<ReturnType<FeatureModel['predictAll']>>,
  names: readonly string[],
) {
  assert.equal(a.length, b.length);
  a.forEach((r, i) => {
    const s = b[i];
    const name = names[i];
    assert.equal(r.error?.message, s?.error?.message, `${name}: error`);
    assert.equal(r.inputPath, s?.inputPath);
    assert.deepEqual(r.feature, s?.feature, `${name}: features differ`);
  });
}

test('the frame header decides which JPEGs the addon decodes', () => {
  for (const f of NATIVE) {
    const frame = nativeJpegFrame(readFileSync(file(f)));
    assert.deepEqual(frame, { width: 161, height: 123, components: f === 'grey.jpg' ? 1 : 3 }, f);
  }
  for (const f of SHARP) assert.equal(nativeJpegFrame(readFileSync(file(f))), null, f);
  for (const f of BROKEN) assert.notEqual(nativeJpegFrame(readFileSync(file(f))), null, f);
});

// A JPEG of one segment list: SOI, the segments, SOS (empty scan).
function jpegOf(...segments: [number, number[]][]): Uint8Array {
  const out = [0xff, 0xd8];
  for (const [marker, body] of [...segments, [0xda, [1, 1, 0, 0, 63, 0]] as [number, number[]]]) {
    const len = body.length + 2;
    out.push(0xff, marker, len >> 8, len & 255, ...body);
  }
  return Uint8Array.from(out);
}
const sof = (precision: number, w: number, h: number, comps: number) => [
  precision,
  h >> 8,
  h & 255,
  w >> 8,
  w & 255,
  comps,
  ...new Array<number>(3 * comps).fill(1),
];
// An APP1 Exif block whose IFD0 holds `entries` ([tag, type, count, value]), big-endian.
function exifApp1(entries: [number, number, number, number][]): number[] {
  const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, entries.length >> 8, entries.length & 255];
  for (const [tag, type, count, value] of entries)
    tiff.push(tag >> 8, tag & 255, 0, type, 0, 0, 0, count, value >> 8, value & 255, 0, 0);
  return [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff, 0, 0, 0, 0];
}

test('frame headers: what is accepted and what goes to sharp', () => {
  assert.deepEqual(nativeJpegFrame(jpegOf([0xc0, sof(8, 640, 480, 3)])), {
    width: 640,
    height: 480,
    components: 3,
  });
  assert.deepEqual(nativeJpegFrame(jpegOf([0xc2, sof(8, 7, 5, 1)]))?.components, 1);
  assert.equal(nativeJpegFrame(jpegOf([0xc1, sof(8, 7, 5, 3)]))?.width, 7);
  const rejected: [string, Uint8Array][] = [
    ['lossless frame (SOF3)', jpegOf([0xc3, sof(8, 7, 5, 3)])],
    ['arithmetic frame (SOF9)', jpegOf([0xc9, sof(8, 7, 5, 3)])],
    ['12-bit samples', jpegOf([0xc1, sof(12, 7, 5, 3)])],
    ['4 components (CMYK)', jpegOf([0xc0, sof(8, 7, 5, 4)])],
    ['2 frames', jpegOf([0xc0, sof(8, 7, 5, 3)], [0xc0, sof(8, 7, 5, 3)])],
    ['height 0 (DNL)', jpegOf([0xc0, sof(8, 7, 0, 3)])],
    ['over sharp pixel limit', jpegOf([0xc0, sof(8, 0xffff, 0x4100, 3)])],
    ['no frame before the scan', jpegOf([0xfe, [1, 2, 3]])],
    ['orientation 6', jpegOf([0xe1, exifApp1([[0x112, 3, 1, 6]])], [0xc0, sof(8, 7, 5, 3)])],
    ['orientation as LONG', jpegOf([0xe1, exifApp1([[0x112, 4, 1, 1]])], [0xc0, sof(8, 7, 5, 3)])],
    [
      'two Exif blocks',
      jpegOf([0xe1, exifApp1([])], [0xe1, exifApp1([])], [0xc0, sof(8, 7, 5, 3)]),
    ],
    [
      'Exif without zero bytes',
      jpegOf([0xe1, [0x45, 0x78, 0x69, 0x66, 1, 1]], [0xc0, sof(8, 7, 5, 3)]),
    ],
    ['not a JPEG', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0])],
    ['restart marker before the scan', Uint8Array.from([0xff, 0xd8, 0xff, 0xd0, 0, 4, 0, 0])],
    ['segment past the end', Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0x10, 0x00, 8])],
  ];
  for (const [why, bytes] of rejected) assert.equal(nativeJpegFrame(bytes), null, why);
  assert.equal(7 * 5 < SHARP_PIXEL_LIMIT, true);
  const upright = jpegOf(
    [
      0xe1,
      exifApp1([
        [0x100, 3, 1, 9],
        [0x112, 3, 1, 1],
      ]),
    ],
    [0xc0, sof(8, 7, 5, 3)],
  );
  assert.equal(nativeJpegFrame(upright)?.width, 7, 'orientation 1');
  const none = jpegOf([0xe1, exifApp1([[0x100, 3, 1, 9]])], [0xc0, sof(8, 7, 5, 3)]);
  assert.equal(nativeJpegFrame(none)?.width, 7, 'no orientation tag');
  // Little-endian TIFF, and malformed ones.
  const le = Uint8Array.from([
    0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 1, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0,
  ]);
  assert.equal(exifOrientation(le), 3);
  assert.equal(exifOrientation(le.subarray(0, 12)), undefined, 'IFD past the end');
  assert.equal(exifOrientation(Uint8Array.from([0x49, 0x49, 43, 0, 8, 0, 0, 0])), undefined);
  assert.equal(exifOrientation(Uint8Array.from([0x49, 0x49, 42, 0, 8, 0, 0, 0, 0, 0])), null);
});

test('frame headers: seeded mutations and truncations never throw', () => {
  const base = readFileSync(file('exif1.jpg'));
  const head = Math.min(base.length, 900); // markers up to the scan, and some of it
  const rnd = mulberry32(77);
  let accepted = 0;
  for (let k = 0; k < 4000; k++) {
    const cut = rnd() < 0.25 ? 1 + Math.floor(rnd() * head) : base.length;
    const b = Uint8Array.from(base.subarray(0, cut));
    for (let m = Math.floor(rnd() * 4); m >= 0; m--)
      b[Math.floor(rnd() * Math.min(cut, head))] = Math.floor(rnd() * 256);
    const frame = nativeJpegFrame(b);
    if (frame === null) continue;
    accepted++;
    assert.ok(
      frame.width >= 1 && frame.height >= 1 && frame.width * frame.height <= SHARP_PIXEL_LIMIT,
    );
  }
  assert.ok(accepted > 0, 'some mutated headers still parse');
});

test('addon-decoded JPEGs give the sharp path features bit for bit; one call per batch', async (t) => {
  if (!needJpegDecode(t)) return;
  const names = [...NATIVE, ...SHARP, ...BROKEN];
  const files = names.map(file);
  calls.length = 0;
  await native.predictAll(files.slice(0, 4));
  assert.deepEqual(calls, ['NativeModel.runImages'], 'four native-decoded JPEGs: one call');
  const a = await native.predictAll(files);
  const b = await viaSharp.predictAll(files);
  assertSameResults(a, b, names);
  for (const [i, name] of names.entries())
    assert.equal(a[i]?.error === null, name !== 'truncated.jpg', name);
});

test('OpenCV sample photos: addon and sharp decodes give the same features', async (t) => {
  if (!needJpegDecode(t)) return;
  const photos = listPhotos().filter((f) => /\.jpe?g$/i.test(f));
  if (photos.length < 20) {
    const why = `fewer than 20 JPEG photos in ${PHOTOS} (install opencv-doc or set PIF_PHOTOS)`;
    if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${why}`);
    t.skip(why);
    return;
  }
  const eligible = photos.filter((f) => nativeJpegFrame(readFileSync(f)) !== null);
  assert.ok(eligible.length >= photos.length - 2, `${eligible.length} of ${photos.length} native`);
  assertSameResults(await native.predictAll(photos), await viaSharp.predictAll(photos), photos);
});

test('a JPEG the addon cannot decode takes a second call, through sharp', async (t) => {
  if (!needJpegDecode(t)) return;
  const p = await loadPredictor(modelDir);
  const norm = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  const jpegOf = (name: string, width = 161) => ({
    jpeg: readFileSync(file(name)),
    width,
    height: 123,
    targetWidth: 224,
    targetHeight: 224,
  });
  try {
    const out = await p.runImages(
      [jpegOf('truncated.jpg'), jpegOf('q90-420.jpg'), jpegOf('garbled.jpg')],
      norm,
    );
    assert.equal(out.rows, 1);
    assert.equal(out.features.length, 512);
    assert.deepEqual(
      out.failed.map((f) => f.index),
      [0, 2],
    );
    assert.match(out.failed[0]?.message ?? '', /premature end/i);
    assert.match(out.failed[1]?.message ?? '', /JPEG/); // libjpeg's own words
    const wrong = await p.runImages([jpegOf('q90-420.jpg', 160)], norm);
    assert.match(wrong.failed[0]?.message ?? '', /161x123, not 160x123/);
    await assert.rejects(
      p.runImages([{ ...jpegOf('q90-420.jpg'), jpeg: new Uint8Array(0) }], norm),
      {
        code: 'PIF_INVALID_ARG',
        message: /jpeg must be a non-empty Uint8Array/,
      },
    );
    await assert.rejects(p.runImages([], norm, 0), { code: 'PIF_INVALID_ARG', message: /stream/ });
  } finally {
    p.close();
  }
  // sharp decodes the garbled file (libjpeg's warning is not an error to it): a second call.
  calls.length = 0;
  const [good, garbled] = await native.predictAll([file('q90-420.jpg'), file('garbled.jpg')]);
  assert.deepEqual(calls, ['NativeModel.runImages', 'NativeModel.runImages']);
  assert.equal(good?.error, null);
  assert.equal(garbled?.error, null);
  assert.equal(garbled?.feature.length, 512);
  // sharp refuses the truncated one: no second call, sharp's error.
  calls.length = 0;
  const [, truncated] = await native.predictAll([file('q90-420.jpg'), file('truncated.jpg')]);
  assert.deepEqual(calls, ['NativeModel.runImages']);
  assert.equal(truncated?.error?.message, `Image read Error: ${file('truncated.jpg')}`);
});

test('concurrent predicts on one model give what sequential ones give', async () => {
  const files = [...NATIVE, ...NATIVE, ...NATIVE].map(file);
  const seq = await native.predictAll(files);
  const reversed = [...files].reverse();
  const [x, y] = await Promise.all([native.predictAll(files), native.predictAll(reversed)]);
  assertSameResults(x, seq, files);
  assertSameResults(y.reverse(), seq, files);
});
