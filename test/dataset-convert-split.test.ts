/**
 * LabelMe → ShiTuRecDataset conversion, the seeded split and the shared cut rule
 * (../shared/spec/paddlex-behaviour.md §7.1, §7.2), on real files generated per test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';

import { DatasetConvertError, DatasetSplitError } from '../lib/errors.js';
import { convertLabelMe } from '../lib/dataset/convert.js';
import { cutBounds, cutByPercents, listWriteHooks } from '../lib/dataset/cut.js';
import { PyRandom } from '../lib/dataset/pyrandom.js';
import { splitDataset } from '../lib/dataset/split.js';
import { requireFixtures } from './helpers/fixtures.js';
import { hashTree, makeLabelMe, type LabelMeSpec } from './helpers/labelme.js';

let tmp: string;
let counter = 0;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pif-convert-split-'));
});
after(async () => {
  listWriteHooks.beforeStep = undefined;
  await rm(tmp, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const d = path.join(tmp, `d${counter++}`);
  await mkdir(d, { recursive: true });
  return d;
}

async function dataset(spec: LabelMeSpec): Promise<string> {
  const d = await freshDir();
  await makeLabelMe(d, spec);
  return d;
}

async function read(root: string, name: string): Promise<string> {
  return readFile(path.join(root, name), 'utf8');
}

async function lists(root: string): Promise<[string[], string[], string[]]> {
  const get = async (t: string): Promise<string[]> =>
    (await read(root, `${t}.txt`)).split('\n').filter((l) => l !== '');
  return [await get('train'), await get('gallery'), await get('query')];
}

/** Asserts that `fn` rejects with an error of class `cls` and that `root` did not change. */
async function failsUnchanged(
  root: string,
  fn: () => Promise<unknown>,
  cls: typeof DatasetConvertError | typeof DatasetSplitError,
  message: RegExp | string,
): Promise<InstanceType<typeof cls>> {
  const before = await hashTree(root);
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${String(caught)}`);
  if (typeof message === 'string') assert.ok(caught.message.includes(message), caught.message);
  else assert.match(caught.message, message);
  assert.deepEqual(await hashTree(root), before, 'the dataset changed');
  return caught;
}

/** Ten single-flag annotations a0..a9 over three classes. */
function tenImages(): LabelMeSpec {
  const classes = ['cat', 'dog', 'bird'];
  return {
    labels: classes,
    annotations: Array.from({ length: 10 }, (_, i) => ({
      name: `a${i}.json`,
      flags: classes.map((c, k) => [c, k === i % 3] as const),
    })),
  };
}

// -------------------------------------------------------------------------------------------
// Cut rule
// -------------------------------------------------------------------------------------------

describe('cut rule', () => {
  // Hand-computed with Python's round (half to even): round(0.5)=0, round(1.5)=2, round(2.5)=2.
  const cases: [number, number[], [number, number][]][] = [
    [
      0,
      [50, 30, 20],
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    ],
    [
      1,
      [50, 30, 20],
      [
        [0, 0],
        [0, 0],
        [0, 1],
      ],
    ], // round(0.5)=0, round(0.3)=0
    [
      2,
      [50, 30, 20],
      [
        [0, 1],
        [1, 2],
        [2, 2],
      ],
    ], // round(1)=1, round(0.6)=1
    [
      3,
      [50, 30, 20],
      [
        [0, 2],
        [2, 3],
        [3, 3],
      ],
    ], // round(1.5)=2, round(0.9)=1
    [
      4,
      [50, 30, 20],
      [
        [0, 2],
        [2, 3],
        [3, 4],
      ],
    ], // round(2)=2, round(1.2)=1
    [
      5,
      [50, 30, 20],
      [
        [0, 2],
        [2, 4],
        [4, 5],
      ],
    ], // round(2.5)=2, round(1.5)=2
    [
      7,
      [50, 30, 20],
      [
        [0, 4],
        [4, 6],
        [6, 7],
      ],
    ], // round(3.5)=4, round(2.1)=2
    [
      10,
      [50, 30, 20],
      [
        [0, 5],
        [5, 8],
        [8, 10],
      ],
    ],
    [
      11,
      [50, 30, 20],
      [
        [0, 6],
        [6, 9],
        [9, 11],
      ],
    ], // round(5.5)=6, round(3.3)=3
    [
      3,
      [34, 33, 33],
      [
        [0, 1],
        [1, 2],
        [2, 3],
      ],
    ], // round(1.02)=1, round(0.99)=1
    [
      5,
      [50, 50, 0],
      [
        [0, 2],
        [2, 5],
        [5, 5],
      ],
    ], // gallery is the last non-zero: takes the rest
    [
      5,
      [0, 50, 50],
      [
        [0, 0],
        [0, 2],
        [2, 5],
      ],
    ], // a zero segment is empty
    [
      3,
      [50, 0, 50],
      [
        [0, 2],
        [2, 2],
        [2, 3],
      ],
    ],
    [
      4,
      [100, 0, 0],
      [
        [0, 4],
        [4, 4],
        [4, 4],
      ],
    ],
    [
      4,
      [12.5, 37.5, 50],
      [
        [0, 0],
        [0, 2],
        [2, 4],
      ],
    ], // round(0.5)=0, round(1.5)=2
    [
      10,
      [90, 90, 10],
      [
        [0, 9],
        [9, 10],
        [10, 10],
      ],
    ], // 9+9 > 10: clamped (PaddleX: IndexError)
  ];
  for (const [n, percents, want] of cases) {
    test(`n=${n} percents=${percents.join('/')}`, () => {
      assert.deepEqual(cutBounds(n, percents), want);
    });
  }

  test('cutByPercents keeps order and every item', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    assert.deepEqual(cutByPercents(items, [50, 30, 20]), [['a', 'b'], ['c', 'd'], ['e']]);
  });

  test('bad arguments are RangeErrors', () => {
    assert.throws(() => cutBounds(-1, [50, 30, 20]), RangeError);
    assert.throws(() => cutBounds(1.5, [50, 30, 20]), RangeError);
    assert.throws(() => cutBounds(3, [50, -1, 51]), RangeError);
    assert.throws(() => cutBounds(3, [50, NaN, 50]), RangeError);
    assert.throws(() => cutBounds(3, [0, 0, 0]), RangeError);
  });
});

// -------------------------------------------------------------------------------------------
// Convert
// -------------------------------------------------------------------------------------------

describe('convertLabelMe', () => {
  test('lines, ids, 50/30/20 order, progress', async () => {
    const root = await dataset(tenImages());
    const progress: [number, number][] = [];
    const r = await convertLabelMe(root, { onProgress: (d, t) => progress.push([d, t]) });
    const all = Array.from({ length: 10 }, (_, i) => `images/a${i}.jpg ${i % 3}`);
    assert.deepEqual(await lists(root), [all.slice(0, 5), all.slice(5, 8), all.slice(8)]);
    assert.deepEqual(r.counts, { train: 5, gallery: 3, query: 2 });
    assert.equal(r.lines, 10);
    assert.equal(r.annotations, 10);
    assert.equal(r.root, path.resolve(root));
    assert.deepEqual(r.backups, []);
    assert.equal(progress.length, 10);
    assert.deepEqual(progress.at(-1), [10, 10]);
    assert.equal(await read(root, 'train.txt'), `${all.slice(0, 5).join('\n')}\n`);
  });

  test('annotation files in sorted order; flags in file order, multi-flag duplicated', async () => {
    const root = await dataset({
      labels: 'x\n\r10\r\n  2  \n', // a lone \r ends a line too
      annotations: [
        { name: 'b.json', flags: [['x', true]] },
        // Integer-like names: a JS object would reorder these to 2, 10, x.
        {
          name: 'a.json',
          flags: [
            ['x', true],
            ['10', true],
            ['2', true],
            ['nope', false],
          ],
        },
        { name: '2.json', flags: [['2', true]] },
        { name: '10.json', flags: [['10', true]] },
        { name: 'none.json', flags: [['x', false]] },
      ],
      files: { 'annotations/readme.txt': 'not an annotation', 'annotations/dir.json/z.txt': '{' },
    });
    const r = await convertLabelMe(root);
    // label.txt: x=0, the empty line 1 keeps its number, 10=2, 2=3 (stripped).
    const all = [
      'images/10.jpg 2', // "10.json" < "2.json" < "a.json" < "b.json" < "none.json"
      'images/2.jpg 3',
      'images/a.jpg 0',
      'images/a.jpg 2',
      'images/a.jpg 3',
      'images/b.jpg 0',
    ];
    assert.deepEqual((await lists(root)).flat(), all);
    assert.deepEqual(r.counts, { train: 3, gallery: 2, query: 1 });
    assert.equal(r.annotations, 5);
  });

  test('imagePath: basename with / or \\ separators', async () => {
    const root = await dataset({
      labels: ['k'],
      annotations: [
        { name: 'a.json', image: 'w1.jpg', imagePath: '..\\images\\w1.jpg', flags: [['k', true]] },
        { name: 'b.json', image: 'w2.jpg', imagePath: 'w2.jpg', flags: [['k', true]] },
        { name: 'c.json', image: 'w3.jpg', imagePath: ' ../images/w3.jpg\n', flags: [['k', true]] },
      ],
    });
    await convertLabelMe(root);
    assert.deepEqual((await lists(root)).flat(), [
      'images/w1.jpg 0',
      'images/w2.jpg 0',
      'images/w3.jpg 0',
    ]);
  });

  test('JSON escapes in flags and imagePath; NaN accepted as Python does', async () => {
    const root = await dataset({
      labels: ['café', 'a/b', '😀', 'q"t'],
      annotations: [
        {
          name: 'e.json',
          image: 'é.jpg',
          raw:
            '\ufeff{"imagePath": "..\\/images\\/\\u00e9.jpg", "imageData": "AAEC\\n", "x": NaN,\n' +
            ' "shapes": [{"points": [[1.5e2, -0], [3, 4]]}], "flags": {"caf\\u00e9": true,' +
            ' "a\\/b": true, "\\ud83d\\ude00": true, "q\\"t": true, "zz": false}}',
        },
      ],
    });
    await convertLabelMe(root);
    assert.deepEqual((await lists(root)).flat(), [
      'images/é.jpg 0',
      'images/é.jpg 1',
      'images/é.jpg 2',
      'images/é.jpg 3',
    ]);
  });

  test('unknown flag: error names the file and the flag; nothing changes', async () => {
    const root = await dataset({
      ...tenImages(),
      files: { 'train.txt': 'images/a0.jpg 0\n' },
    });
    await writeFile(
      path.join(root, 'annotations', 'a8.json'),
      (await read(root, 'annotations/a8.json')).replace('"bird"', '"fish"'),
    );
    const err = await failsUnchanged(
      root,
      () => convertLabelMe(root),
      DatasetConvertError,
      /a8\.json.*"fish"/,
    );
    assert.equal(err.code, 'PIF_DATASET_CONVERT');
    assert.equal(err.paddlexType, 'ConvertFailedError');
    assert.equal(err.file, path.join(root, 'annotations', 'a8.json'));
  });

  test('invalid JSON names the file, line and column', async () => {
    const root = await dataset({
      ...tenImages(),
      annotations: [...tenImages().annotations, { name: 'z.json', raw: '{\n  "flags": {,\n}' }],
    });
    const err = await failsUnchanged(
      root,
      () => convertLabelMe(root),
      DatasetConvertError,
      /z\.json is not valid JSON.*line 2 column 13/,
    );
    assert.equal(err.line, 2);
    assert.equal(err.file, path.join(root, 'annotations', 'z.json'));
  });

  test('other bad annotations and label files', async (t: TestContext) => {
    const cases: [string, Partial<LabelMeSpec>, RegExp][] = [
      ['missing image', { extraImages: [], omit: [] }, /refers to the image a0\.jpg/],
      [
        'non-boolean flag',
        { annotations: [{ name: 'a.json', raw: '{"imagePath": "x.jpg", "flags": {"cat": 1}}' }] },
        /non-boolean/,
      ],
      [
        'no flags object',
        { annotations: [{ name: 'a.json', raw: '{"imagePath": "x.jpg"}' }] },
        /no "flags" object/,
      ],
      [
        'no imagePath',
        { annotations: [{ name: 'a.json', raw: '{"flags": {}}' }] },
        /no "imagePath"/,
      ],
      [
        'whitespace in image name',
        {
          annotations: [
            {
              name: 'a.json',
              image: 'a b.jpg',
              imagePath: '../images/a b.jpg',
              flags: [['cat', true]],
            },
          ],
        },
        /whitespace/,
      ],
      ['duplicate class', { labels: ['cat', 'dog', 'cat'] }, /listed twice.*lines 1 and 3/],
      ['no annotation files', { annotations: [] }, /no \.json annotation file/],
      [
        'no flag set',
        { annotations: [{ name: 'a.json', flags: [['cat', false]] }] },
        /no annotation .* has a flag set to true/,
      ],
    ];
    for (const [name, patch, message] of cases) {
      await t.test(name, async () => {
        const root = await dataset({ ...tenImages(), ...patch });
        if (name === 'missing image') await rm(path.join(root, 'images', 'a0.jpg'));
        await failsUnchanged(root, () => convertLabelMe(root), DatasetConvertError, message);
      });
    }
  });

  test('missing label.txt / annotations / images: PaddleX message plus English', async () => {
    for (const part of ['label.txt', 'annotations', 'images'] as const) {
      const root = await dataset({ ...tenImages(), omit: [part] });
      const p = path.join(root, part);
      const err = await failsUnchanged(
        root,
        () => convertLabelMe(root),
        DatasetConvertError,
        `数据格式转换失败！请参考上述\`LabelMe格式数据集示例\`检查待转换数据集格式。保证${p}文件存在。`,
      );
      assert.match(err.message, /Conversion failed: .* does not exist/);
      assert.equal(err.file, p);
    }
  });

  test('unsupported source type: PaddleX message verbatim', async () => {
    const root = await dataset(tenImages());
    const err = await failsUnchanged(
      root,
      () => convertLabelMe(root, { srcDatasetType: 'COCO' }),
      DatasetConvertError,
      '数据格式转换失败！不支持COCO格式数据集。当前仅支持 LabelMe 格式。',
    );
    assert.ok(err.message.startsWith('数据格式转换失败！不支持COCO格式数据集。'));
    assert.match(err.message, /COCO datasets are not supported/);
    // PaddleX's substring test would let "Label" through; this does not.
    await failsUnchanged(
      root,
      () => convertLabelMe(root, { srcDatasetType: 'Label' }),
      DatasetConvertError,
      '不支持Label格式',
    );
  });

  test('pre-existing lists are backed up; a re-run is idempotent and keeps the first .bak', async () => {
    const root = await dataset({
      ...tenImages(),
      files: { 'train.txt': 'old train\n', 'query.txt': 'old query\n' },
    });
    const r1 = await convertLabelMe(root);
    assert.deepEqual(r1.backups.sort(), [
      path.join(root, 'query.txt.bak'),
      path.join(root, 'train.txt.bak'),
    ]);
    assert.equal(await read(root, 'train.txt.bak'), 'old train\n');
    assert.equal(await read(root, 'query.txt.bak'), 'old query\n');
    const afterFirst = await hashTree(root);

    const r2 = await convertLabelMe(root);
    assert.deepEqual(r2.backups, []);
    assert.deepEqual(r2.counts, r1.counts);
    assert.deepEqual(await hashTree(root), afterFirst, 'a re-run changed something');

    // New annotation → lists change; the existing .bak files (the user's originals) stay.
    await makeLabelMe(root, {
      labels: ['cat', 'dog', 'bird'],
      annotations: [{ name: 'a99.json', flags: [['dog', true]] }],
    });
    const r3 = await convertLabelMe(root);
    assert.deepEqual(r3.backups, [path.join(root, 'gallery.txt.bak')]);
    assert.equal(await read(root, 'train.txt.bak'), 'old train\n');
    assert.equal(await read(root, 'query.txt.bak'), 'old query\n');
    assert.equal(r3.lines, 11);
    const names = await readdir(root);
    assert.ok(!names.some((n) => n.endsWith('.tmp')), names.join(' '));
  });
});

// -------------------------------------------------------------------------------------------
// Split
// -------------------------------------------------------------------------------------------

/** A dataset with existing lists (20 + 7 + 5 lines) and the line list in tag order. */
async function listedDataset(): Promise<{ root: string; lines: string[] }> {
  const lines = Array.from({ length: 32 }, (_, i) => `images/p${i}.jpg ${i % 4}`);
  const root = await freshDir();
  await mkdir(path.join(root, 'images'));
  await writeFile(path.join(root, 'train.txt'), `${lines.slice(0, 20).join('\n')}\n`);
  // CRLF, a blank line and no final newline: read as the same lines.
  await writeFile(path.join(root, 'gallery.txt'), `${lines.slice(20, 27).join('\r\n')}\r\n\r\n`);
  await writeFile(path.join(root, 'query.txt'), lines.slice(27).join('\n'));
  return { root, lines };
}

function sorted(a: readonly string[]): string[] {
  return [...a].sort();
}

describe('splitDataset', () => {
  test('percent checks: PaddleX messages, nothing changes', async () => {
    const { root } = await listedDataset();
    const run = (a: number, b: number, c: number) => () =>
      splitDataset(root, { trainPercent: a, galleryPercent: b, queryPercent: c });
    await failsUnchanged(
      root,
      run(50, 30, 30),
      DatasetSplitError,
      'The sum of train_rate(50), gallery_rate(30), query_rate(30) should equal 100!',
    );
    await failsUnchanged(
      root,
      run(0, 50, 50),
      DatasetSplitError,
      'The train_rate(0) and gallery_rate(50) and query_rate(50) should be greater than 0!',
    );
    await failsUnchanged(root, run(-10, 60, 50), DatasetSplitError, /should be greater than 0!$/);
    await failsUnchanged(root, run(NaN, 50, 50), DatasetSplitError, /finite number/);
    await failsUnchanged(
      root,
      () =>
        splitDataset(root, { trainPercent: 60, galleryPercent: 20, queryPercent: 20, seed: 1.5 }),
      DatasetSplitError,
      /seed must be an integer/,
    );
  });

  test('split, counts, all lines kept, .bak of the originals', async () => {
    const { root, lines } = await listedDataset();
    const originals = {
      train: await read(root, 'train.txt'),
      gallery: await read(root, 'gallery.txt'),
      query: await read(root, 'query.txt'),
    };
    const r = await splitDataset(root, { trainPercent: 60, galleryPercent: 25, queryPercent: 15 });
    // n=32: round(19.2)=19, round(8.0)=8, rest 5.
    assert.deepEqual(r.counts, { train: 19, gallery: 8, query: 5 });
    const [tr, ga, qu] = await lists(root);
    assert.equal(tr.length, 19);
    assert.equal(ga.length, 8);
    assert.equal(qu.length, 5);
    assert.deepEqual(sorted([...tr, ...ga, ...qu]), sorted(lines));
    // Shuffled (with overwhelming probability for 32 lines).
    assert.notDeepEqual([...tr, ...ga, ...qu], lines);
    assert.deepEqual(
      sorted(r.backups),
      ['gallery', 'query', 'train'].map((t) => path.join(root, `${t}.txt.bak`)),
    );
    for (const [tag, text] of Object.entries(originals)) {
      assert.equal(await read(root, `${tag}.txt.bak`), text, `${tag}.txt.bak`);
    }
    // The same seed, explicitly, reproduces the default (123).
    const expected = [...lines];
    new PyRandom(123).shuffle(expected);
    assert.deepEqual([...tr, ...ga, ...qu], expected);

    // A second split keeps the first .bak files (PaddleX: rename only if no .bak exists).
    const r2 = await splitDataset(root, {
      trainPercent: 50,
      galleryPercent: 25,
      queryPercent: 25,
      seed: 7,
    });
    assert.deepEqual(r2.backups, []);
    assert.deepEqual(r2.counts, { train: 16, gallery: 8, query: 8 });
    for (const [tag, text] of Object.entries(originals)) {
      assert.equal(await read(root, `${tag}.txt.bak`), text, `${tag}.txt.bak after 2nd split`);
    }
    assert.deepEqual(sorted((await lists(root)).flat()), sorted(lines));
    const names = await readdir(root);
    assert.ok(!names.some((n) => n.endsWith('.tmp')), names.join(' '));
  });

  test('same seed → same split; another seed → another split', async () => {
    const a = await listedDataset();
    const b = await freshDir();
    const c = await freshDir();
    await cp(a.root, b, { recursive: true });
    await cp(a.root, c, { recursive: true });
    const opts = { trainPercent: 70, galleryPercent: 20, queryPercent: 10, seed: 2024 };
    await splitDataset(a.root, opts);
    await splitDataset(b, opts);
    await splitDataset(c, { ...opts, seed: 2025 });
    assert.deepEqual(await lists(a.root), await lists(b));
    assert.notDeepEqual(await lists(a.root), await lists(c));
    assert.deepEqual(sorted((await lists(c)).flat()), sorted(a.lines));
  });

  test('only some list files: those are backed up, all three written', async () => {
    const root = await freshDir();
    await writeFile(path.join(root, 'train.txt'), 'images/a.jpg 0\nimages/b.jpg 1\n');
    await writeFile(path.join(root, 'query.txt.bak'), 'older\n');
    const r = await splitDataset(root, { trainPercent: 50, galleryPercent: 25, queryPercent: 25 });
    assert.deepEqual(r.backups, [path.join(root, 'train.txt.bak')]);
    // n=2: round(1)=1, round(0.5)=0, rest 1.
    assert.deepEqual(r.counts, { train: 1, gallery: 0, query: 1 });
    assert.equal(await read(root, 'gallery.txt'), '');
    assert.equal(await read(root, 'query.txt.bak'), 'older\n');
  });

  test('root: the parent of the only images dir below; errors without lists', async () => {
    const { root, lines } = await listedDataset();
    const outer = await freshDir();
    await cp(root, path.join(outer, 'nested', 'ds'), { recursive: true });
    const r = await splitDataset(outer, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 });
    assert.equal(r.root, path.join(outer, 'nested', 'ds'));
    assert.deepEqual(sorted((await lists(r.root)).flat()), sorted(lines));

    const empty = await freshDir();
    await mkdir(path.join(empty, 'images'));
    const err = await failsUnchanged(
      empty,
      () => splitDataset(empty, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 }),
      DatasetSplitError,
      'None of train.txt, gallery.txt, query.txt exists',
    );
    assert.equal(err.code, 'PIF_DATASET_SPLIT');
    await mkdir(path.join(empty, 'x', 'images'), { recursive: true });
    await rm(path.join(empty, 'images'), { recursive: true });
    await mkdir(path.join(empty, 'y', 'images'), { recursive: true });
    await failsUnchanged(
      empty,
      () => splitDataset(empty, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 }),
      DatasetSplitError,
      /found 2/,
    );
    const blank = await freshDir();
    await writeFile(path.join(blank, 'train.txt'), '\n\r\n  \n');
    await failsUnchanged(
      blank,
      () => splitDataset(blank, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 }),
      DatasetSplitError,
      /hold no lines/,
    );
  });

  test('invalid UTF-8 in a list: error, nothing rewritten', async () => {
    const { root } = await listedDataset();
    await writeFile(path.join(root, 'query.txt'), Buffer.from([0x69, 0xff, 0x20, 0x31, 0x0a]));
    await failsUnchanged(
      root,
      () => splitDataset(root, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 }),
      DatasetSplitError,
      /not valid UTF-8/,
    );
  });
});

// -------------------------------------------------------------------------------------------
// Failure midway leaves the dataset byte-identical
// -------------------------------------------------------------------------------------------

describe('failure injection', () => {
  const steps = [
    'temp:train',
    'keep:gallery',
    'temp:query',
    'backup:train',
    'replace:train',
    'backup:gallery',
    'replace:query',
    'sync',
  ];
  for (const at of steps) {
    test(`split fails at ${at}: dataset unchanged`, async () => {
      const { root } = await listedDataset();
      listWriteHooks.beforeStep = (s) => {
        if (s === at) throw new Error(`injected failure at ${s}`);
      };
      try {
        const err = await failsUnchanged(
          root,
          () => splitDataset(root, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 }),
          DatasetSplitError,
          /injected failure.*nothing was changed/,
        );
        assert.equal(err.paddlexType, 'SplitFailedError');
      } finally {
        listWriteHooks.beforeStep = undefined;
      }
    });
  }

  test('convert fails while replacing: dataset unchanged', async () => {
    const root = await dataset({
      ...tenImages(),
      files: { 'train.txt': 'old\n', 'gallery.txt': 'old g\n' },
    });
    listWriteHooks.beforeStep = (s) => {
      if (s === 'replace:query') throw new Error('injected');
    };
    try {
      await failsUnchanged(root, () => convertLabelMe(root), DatasetConvertError, /injected/);
    } finally {
      listWriteHooks.beforeStep = undefined;
    }
  });

  test('read-only dataset directory: error, unchanged', async (t) => {
    const { root } = await listedDataset();
    await chmod(root, 0o555);
    try {
      const probe = path.join(root, '.probe');
      let writable = false;
      try {
        await writeFile(probe, '');
        writable = true;
        await rm(probe);
      } catch {
        // read-only as intended
      }
      if (writable) {
        const reason = 'permissions are not enforced for this user (root?)';
        console.log(`# read-only test skipped: ${reason}`);
        t.skip(reason);
        return;
      }
      await failsUnchanged(
        root,
        () => splitDataset(root, { trainPercent: 50, galleryPercent: 30, queryPercent: 20 }),
        DatasetSplitError,
        /nothing was changed/,
      );
    } finally {
      await chmod(root, 0o755);
    }
  });
});

// -------------------------------------------------------------------------------------------
// Against CPython
// -------------------------------------------------------------------------------------------

function python(script: string, input: unknown): unknown {
  const r = spawnSync('python3', ['-c', script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

function pythonMissing(): string | null {
  const r = spawnSync('python3', ['-c', 'import random, json'], { encoding: 'utf8' });
  return r.error !== undefined || r.status !== 0 ? 'python3 is not available' : null;
}

// The PaddleX split, seeded: random.seed(seed); random.shuffle(lines); the cut loop.
const PY_SPLIT = `
import json, random, sys
cases = json.load(sys.stdin)
out = []
for c in cases:
    lines = list(c["lines"])
    if c["seed"] is not None:
        random.seed(c["seed"])
        random.shuffle(lines)
    rates = c["rates"]
    n = len(lines)
    start = 0
    parts = []
    for i, rate in enumerate(rates):
        if rate == 0:
            parts.append([start, start])
            continue
        end = start + round(n * rate / 100)
        if sum(rates[i + 1:]) == 0:
            end = n
        parts.append([start, end])
        start = end
    out.append({"lines": lines, "bounds": parts})
print(json.dumps(out))
`;

describe('equal to CPython', () => {
  test('shuffle, cut rule and a full split match python3', async (t) => {
    const missing = pythonMissing();
    if (missing !== null) {
      if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${missing}`);
      console.log(`# CPython comparison skipped: ${missing}`);
      t.skip(missing);
      return;
    }
    // Cut rule over many sizes and percent triples (no shuffle).
    const triples = [
      [50, 30, 20],
      [34, 33, 33],
      [12.5, 37.5, 50],
      [70, 20, 10],
      [1, 1, 98],
      [33.3, 33.3, 33.4],
    ];
    const cutCases = [];
    for (const rates of triples) {
      for (let n = 0; n <= 120; n++) {
        cutCases.push({ lines: Array.from({ length: n }, (_, i) => String(i)), seed: null, rates });
      }
    }
    const cutOut = python(PY_SPLIT, cutCases) as { bounds: [number, number][] }[];
    cutCases.forEach((c, i) => {
      assert.deepEqual(
        cutBounds(c.lines.length, c.rates),
        cutOut[i]!.bounds,
        `n=${c.lines.length} ${c.rates.join('/')}`,
      );
    });

    // Seeded shuffles of many lengths and seeds.
    const seeds = [0, 1, 123, 2024, -5, 2 ** 40 + 17];
    const shuffleCases = [];
    for (const seed of seeds) {
      for (const n of [0, 1, 2, 3, 10, 33, 256, 1000]) {
        shuffleCases.push({
          lines: Array.from({ length: n }, (_, i) => `l${i}`),
          seed,
          rates: [50, 30, 20],
        });
      }
    }
    const shuffled = python(PY_SPLIT, shuffleCases) as { lines: string[] }[];
    shuffleCases.forEach((c, i) => {
      const mine = new PyRandom(c.seed).shuffle([...c.lines]);
      assert.deepEqual(mine, shuffled[i]!.lines, `seed=${c.seed} n=${c.lines.length}`);
    });

    // A whole splitDataset run against the PaddleX loop with the same seed.
    const { root, lines } = await listedDataset();
    await splitDataset(root, {
      trainPercent: 45,
      galleryPercent: 35,
      queryPercent: 20,
      seed: 99,
    });
    const [want] = python(PY_SPLIT, [{ lines, seed: 99, rates: [45, 35, 20] }]) as {
      lines: string[];
      bounds: [number, number][];
    }[];
    const expected = want!.bounds.map(([s, e]) => want!.lines.slice(s, e));
    assert.deepEqual(await lists(root), expected);
  });
});
