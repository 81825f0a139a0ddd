// predict() input resolution and decoding (lib/input.ts): decoded pixels must equal what
// PaddleX's cv2.imread(IMREAD_COLOR) + BGR->RGB gives (oracle: Debian's python3-opencv) on every
// opencv-doc photo (JPEG and PNG, incl. a grey JPEG with an ICC profile) and on EXIF-rotated copies
// with all eight orientations; plus PaddleX's path / directory rules and pixel-array semantics.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import sharp from 'sharp';

import { decodeItem, itemPath, resolveInputs, type InputItem } from '../lib/input.js';
import { needOpencvOracle } from './helpers/opencv.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pif-input-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const IMREAD = `
import json, sys, cv2
for f, out in json.load(open(sys.argv[1])):
    a = cv2.imread(f, cv2.IMREAD_COLOR)
    a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    open(out, 'wb').write(('%d %d\\n' % (a.shape[1], a.shape[0])).encode() + a.tobytes())
`;

test('decoding equals cv2.imread (EXIF orientation applied, ICC ignored, grey replicated)', async (t) => {
  const oracle = needOpencvOracle(t);
  if (oracle === null) return;
  const { py, photos } = oracle;
  // EXIF-rotated copies: the same pixels with each orientation tag (1-8), including mirrors.
  const base = photos.find((p) => p.endsWith('baboon.jpg')) ?? photos[0];
  for (let o = 1; o <= 8; o++) {
    const f = path.join(dir, `exif-o${o}.jpg`);
    await sharp(base)
      .resize(160, 96)
      .withMetadata({ orientation: o })
      .jpeg({ quality: 90 })
      .toFile(f);
    photos.push(f);
  }
  const jobs = photos.map((f, k) => [f, path.join(dir, `${k}.rgb`)] as const);
  writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(jobs));
  execFileSync(py, ['-c', IMREAD, path.join(dir, 'jobs.json')]);
  let values = 0;
  let exact = 0;
  for (const [f, out] of jobs) {
    const buf = readFileSync(out);
    const nl = buf.indexOf(10);
    const [w, h] = buf.subarray(0, nl).toString().split(' ').map(Number);
    const want = buf.subarray(nl + 1);
    const img = await decodeItem({ kind: 'file', path: f });
    assert.deepEqual([img.width, img.height], [w, h], `${f}: size`);
    let e = 0;
    for (let i = 0; i < want.length; i++) if (want[i] === img.data[i]) e++;
    assert.equal(e, want.length, `${f}: ${want.length - e} values differ from cv2.imread`);
    values += want.length;
    exact += e;
  }
  t.diagnostic(
    `${photos.length} files, ${values} values, ${exact === values ? 'all' : exact} equal to cv2.imread`,
  );
  // Rotated orientations swap width and height as cv2 does (5-8 are transposed).
  const o6 = await decodeItem({ kind: 'file', path: path.join(dir, 'exif-o6.jpg') });
  assert.deepEqual([o6.width, o6.height], [96, 160]);
});

test('paths and directories follow PaddleX (suffixes, recursion, code-point order, messages)', async () => {
  const root = path.join(dir, 'tree');
  mkdirSync(path.join(root, 'sub', 'deeper'), { recursive: true });
  mkdirSync(path.join(root, 'empty'));
  const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#102030' } })
    .png()
    .toBuffer();
  const names = [
    'b.PNG',
    'a.jpg',
    'Z.jpeg',
    'é.png',
    '😀.bmp',
    'sub/c.png',
    'sub/deeper/d.jpg',
    'notes.txt',
  ];
  for (const n of names) writeFileSync(path.join(root, n), n.endsWith('.txt') ? 'x' : png);
  symlinkSync(root, path.join(root, 'sub', 'loop')); // a directory symlink loop: must not hang
  const items = await resolveInputs(root);
  const got = items.map((i) => (i.kind === 'file' ? path.relative(root, i.path) : '?'));
  // Python sorts full paths by code point: 'Z' < 'a' < 'b' < 's' < 'é' (U+E9) < '😀' (U+1F600).
  assert.deepEqual(got, [
    'Z.jpeg',
    'a.jpg',
    'b.PNG',
    'sub/c.png',
    'sub/deeper/d.jpg',
    'é.png',
    '😀.bmp',
  ]);
  // What is wrong with one input becomes a failed item in its place (decodeItem throws its
  // error), so the other inputs of a list still come out.
  const failure = async (input: string): Promise<Error & { code?: string }> => {
    const resolved = await resolveInputs([root + '/a.jpg', input]);
    assert.equal(resolved.length, 2);
    const [first, item] = resolved as [InputItem, InputItem];
    assert.deepEqual(first, { kind: 'file', path: root + '/a.jpg' });
    assert.equal(item.kind, 'failed');
    assert.equal(itemPath(item), input);
    return decodeItem(item).then(
      () => assert.fail(`${input} must fail`),
      (e: unknown) => e as Error & { code?: string },
    );
  };
  const nope = await failure(path.join(dir, 'nope'));
  assert.equal(nope.code, 'PIF_INPUT_NOT_FOUND');
  assert.equal(nope.message, `Not found any files in path: ${path.join(dir, 'nope')}`);
  const empty = await failure(path.join(root, 'empty'));
  assert.equal(empty.code, 'PIF_INPUT_NOT_FOUND');
  assert.match(String(empty), /^InputNotFoundError: Not found any file in /);
  const notes = await failure(path.join(root, 'notes.txt'));
  assert.equal(notes.code, 'PIF_INPUT');
  assert.match(notes.message, /notes\.txt.*suffixes: jpg, png, jpeg, bmp/);
  // A missing file with an image suffix resolves (as PaddleX) and fails when read, with the
  // same "not found" code and wording as a missing directory (PaddleX says "Image read Error").
  const [missingItem] = await resolveInputs(path.join(dir, 'missing.JPG'));
  await assert.rejects(decodeItem(missingItem as InputItem), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'PIF_INPUT_NOT_FOUND');
    assert.equal(e.message, `Not found any files in path: ${path.join(dir, 'missing.JPG')}`);
    return true;
  });
  // An existing file that does not decode stays a decode error.
  await assert.rejects(
    decodeItem({ kind: 'file', path: path.join(root, 'notes.txt') }),
    (e: Error & { code?: string }) => e.code === 'PIF_INPUT_DECODE',
  );
  // A URL must name an image file (checked before any download).
  const url = await failure('https://example.com/notes.txt?x=1');
  assert.match(
    url.message,
    /URL https:\/\/example\.com\/notes\.txt\?x=1 does not name an image file/,
  );
  const notAnInput: unknown = 42;
  await assert.rejects(resolveInputs([notAnInput as string]), /input 0: expected a path/);
});

test('mixed inputs keep their order; pixels are BGR unless order is rgb; {img} unwraps', async () => {
  const png = await sharp({
    create: { width: 2, height: 1, channels: 3, background: { r: 10, g: 20, b: 30 } },
  })
    .png()
    .toBuffer();
  const f = path.join(dir, 'one.png');
  writeFileSync(f, png);
  const bgr = { data: new Uint8Array([30, 20, 10, 31, 21, 11]), width: 2, height: 1, channels: 3 };
  const bgra = {
    data: new Uint8Array([30, 20, 10, 255, 31, 21, 11, 0]),
    width: 2,
    height: 1,
    channels: 4,
  };
  const rgb = { ...bgr, data: new Uint8Array([10, 20, 30, 11, 21, 31]), order: 'rgb' as const };
  const items = await resolveInputs([f, { img: new Uint8Array(png) }, bgr, { img: bgra }, rgb]);
  assert.deepEqual(
    items.map((i) => i.kind),
    ['file', 'encoded', 'pixels', 'pixels', 'pixels'],
  );
  const decoded = await Promise.all(items.map((i) => decodeItem(i)));
  assert.deepEqual(Array.from(decoded[0]?.data ?? []), [10, 20, 30, 10, 20, 30]);
  assert.deepEqual(Array.from(decoded[1]?.data ?? []), [10, 20, 30, 10, 20, 30]);
  for (const k of [2, 3, 4])
    assert.deepEqual(Array.from(decoded[k]?.data ?? []), [10, 20, 30, 11, 21, 31]);
  await assert.rejects(
    resolveInputs({ data: new Uint8Array(4), width: 2, height: 2, channels: 1 }),
    /channels must be 3 or 4/,
  );
  await assert.rejects(
    resolveInputs({ data: new Uint8Array(5), width: 2, height: 1, channels: 3 }),
    /data has 5 bytes/,
  );
  await assert.rejects(
    decodeItem({ kind: 'encoded', data: new Uint8Array([1, 2, 3]) }),
    /Image read Error: <encoded image of 3 bytes>/,
  );
});
