/**
 * check_dataset for ShiTuRecDataset (spec §6): root discovery, every list rule and message, the
 * PaddleX-identical sample choice, the result JSON (golden), histogram.png and the demo images.
 * All datasets are real files rendered on the fly (test/helpers/dataset.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';

import {
  buildHistogramSvg,
  decodeBmp,
  encodeBmp,
  HISTOGRAM_COLORS,
  LABEL_BOX_COLOR,
  layoutLabel,
  type SplitStats,
} from '../lib/dataset/charts.js';
import { checkDataset, pyShuffled } from '../lib/dataset/check.js';
import {
  findDatasetRoot,
  parseIntLabel,
  parsePyInt,
  readDatasetList,
  readListLines,
} from '../lib/dataset/lists.js';
import { DatasetCheckError } from '../lib/errors.js';
import { pyJsonDumps } from '../lib/pyjson.js';
import {
  listText,
  standardDataset,
  tempDir,
  writeDataset,
  type DatasetSpec,
} from './helpers/dataset.js';
import { requireFixtures } from './helpers/fixtures.js';

const goldenDir = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'golden',
  'check_dataset',
);

const HEAD = 'Check dataset failed. We encountered the following error:\n  ';

interface ExpectedError {
  message?: string;
  includes?: string[];
  paddlexType?: 'DatasetFileNotFoundError' | 'CheckFailedError';
  file?: string;
  line?: number;
}

async function expectCheckError(
  p: Promise<unknown>,
  want: ExpectedError,
): Promise<DatasetCheckError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof DatasetCheckError,
    `expected a DatasetCheckError, got ${String(caught)}`,
  );
  const err = caught;
  assert.equal(err.code, 'PIF_DATASET_CHECK');
  if (want.message !== undefined) assert.equal(err.message, want.message);
  for (const s of want.includes ?? [])
    assert.ok(err.message.includes(s), `${err.message}\n  lacks ${s}`);
  assert.ok(err.message.startsWith(HEAD), err.message);
  if (want.paddlexType !== undefined) assert.equal(err.paddlexType, want.paddlexType);
  if (want.file !== undefined) assert.equal(err.file, want.file);
  if (want.line !== undefined) assert.equal(err.line, want.line);
  return err;
}

/** A small valid dataset: 6 train, 3 gallery, 3 query PNG images. */
function smallSpec(): DatasetSpec & { images: NonNullable<DatasetSpec['images']> } {
  const images = [];
  for (let i = 0; i < 6; i++)
    images.push({ rel: `images/t${i}.png`, width: 32, height: 24, cls: i % 3 });
  for (let i = 0; i < 3; i++)
    images.push({ rel: `images/g${i}.png`, width: 32, height: 24, cls: i });
  for (let i = 0; i < 3; i++)
    images.push({ rel: `images/q${i}.png`, width: 32, height: 24, cls: i });
  return {
    images,
    train: listText(images.slice(0, 6).map((im) => [im.rel, im.cls] as const)),
    gallery: listText(images.slice(6, 9).map((im) => [im.rel, im.cls] as const)),
    query: listText(images.slice(9).map((im) => [im.rel, im.cls] as const)),
  };
}

async function smallDataset(t: TestContext, patch: Partial<DatasetSpec> = {}): Promise<string> {
  const dir = await tempDir(t);
  return writeDataset(path.join(dir, 'ds'), { ...smallSpec(), ...patch });
}

const delimiterMsg = (file: string): string =>
  `The number of delimiter-separated items in each row in ${file}${' '.repeat(37)}` +
  `should be 2 (current delimiter is ' ').`;

let pythonChecked: string | null | undefined;
/** `python3`, or null after skipping the test (failing it with PIF_REQUIRE_FIXTURES=1). */
function needPython(t: TestContext): string | null {
  if (pythonChecked === undefined) {
    const r = spawnSync('python3', ['-c', 'import random, json; print(1)'], { encoding: 'utf8' });
    pythonChecked = r.status === 0 ? 'python3' : null;
  }
  if (pythonChecked !== null) return pythonChecked;
  const reason = 'python3 is not installed (needed to compare with random.seed(123) + shuffle)';
  if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${reason}`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return null;
}

function runPython(py: string, code: string, args: string[] = []): string {
  const r = spawnSync(py, ['-c', code, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

async function decodeRaw(
  file: string,
): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Every file under `dir` with its size, mtime and SHA-256: a snapshot to prove nothing changed. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else {
        const st = await stat(full);
        const hash = createHash('sha256')
          .update(await readFile(full))
          .digest('hex');
        out.set(path.relative(dir, full), `${st.size} ${st.mtimeMs} ${hash}`);
      }
    }
  };
  await walk(dir);
  return out;
}

// -------------------------------------------------------------------------------------------

describe('findDatasetRoot', () => {
  test('a missing directory and a file are DatasetFileNotFoundError "<abs> does not exist."', async (t) => {
    const dir = await tempDir(t);
    const missing = path.join(dir, 'nope');
    await expectCheckError(findDatasetRoot(missing), {
      message: `${HEAD}${missing} does not exist.`,
      paddlexType: 'DatasetFileNotFoundError',
      file: missing,
    });
    const file = path.join(dir, 'file.txt');
    await writeFile(file, 'x');
    await expectCheckError(findDatasetRoot(file), {
      message: `${HEAD}${file} does not exist.`,
      paddlexType: 'DatasetFileNotFoundError',
    });
    // A relative path is reported absolute.
    const rel = path.relative(process.cwd(), missing);
    await expectCheckError(findDatasetRoot(rel), { includes: [`${missing} does not exist.`] });
  });

  test('zero images directories', async (t) => {
    const dir = await tempDir(t);
    await mkdir(path.join(dir, 'pictures'));
    await writeFile(path.join(dir, 'images'), 'a file named images does not count');
    await expectCheckError(findDatasetRoot(dir), {
      includes: [`expected exactly one 'images' directory under ${dir}, found 0`],
    });
  });

  test('two images directories are listed', async (t) => {
    const dir = await tempDir(t);
    await mkdir(path.join(dir, 'a', 'images'), { recursive: true });
    await mkdir(path.join(dir, 'b', 'images'), { recursive: true });
    await expectCheckError(findDatasetRoot(dir), {
      includes: [
        `expected exactly one 'images' directory under ${dir}, found 2: a/images, b/images`,
        'Please try to resolve the issue as follows:',
      ],
    });
    // images/ nested inside images/ also counts twice, as PaddleX's glob("**/images") does.
    const dir2 = await tempDir(t);
    await mkdir(path.join(dir2, 'images', 'x', 'images'), { recursive: true });
    await expectCheckError(findDatasetRoot(dir2), { includes: ['found 2'] });
  });

  test('the root is the parent of the one images directory, at any depth; symlink loops are not followed', async (t) => {
    const dir = await tempDir(t);
    const root = path.join(dir, 'wrap', 'Inshop');
    await mkdir(path.join(root, 'images', 'c1'), { recursive: true });
    await symlink(dir, path.join(root, 'images', 'c1', 'loop'));
    assert.equal(await findDatasetRoot(dir), root);
    assert.equal(await findDatasetRoot(root), root);
    // A symbolic link named images that points to a directory counts.
    const dir2 = await tempDir(t);
    await mkdir(path.join(dir2, 'store'));
    await mkdir(path.join(dir2, 'ds'));
    await symlink(path.join(dir2, 'store'), path.join(dir2, 'ds', 'images'));
    assert.equal(await findDatasetRoot(dir2), path.join(dir2, 'ds'));
  });

  test('a huge tree stops with a clear error instead of walking forever', async (t) => {
    const dir = await tempDir(t);
    for (let i = 0; i < 5; i++) await mkdir(path.join(dir, `d${i}`));
    await expectCheckError(findDatasetRoot(dir, { maxDirs: 3 }), {
      includes: ['holds more than 3 directories'],
    });
  });
});

describe('list file rules', () => {
  for (const tag of ['train', 'gallery', 'query'] as const) {
    test(`missing ${tag}.txt`, async (t) => {
      const root = await smallDataset(t, { [tag]: undefined });
      const file = path.join(root, `${tag}.txt`);
      await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
        message:
          `${HEAD}${file} does not exist.\nPlease try to resolve the issue as follows:\n` +
          `  Ensure that both \`train.txt\`, \`gallery.txt\`, \`query.txt\` exist in ${root}`,
        paddlexType: 'DatasetFileNotFoundError',
        file,
      });
    });
  }

  test('lists are checked in the order train, gallery, query', async (t) => {
    const root = await smallDataset(t, { gallery: undefined, query: 'bad\tline 1\n' });
    await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
      includes: [`${path.join(root, 'gallery.txt')} does not exist.`],
    });
  });

  const badLines: [string, string][] = [
    ['tab', 'images/t0.png\t0'],
    ['double space', 'images/t0.png  0'],
    ['space in the path', 'images/a b.png 0'],
    ['no label', 'images/t0.png'],
  ];
  for (const [what, bad] of badLines) {
    test(`bad delimiter: ${what}`, async (t) => {
      const spec = smallSpec();
      const lines = spec.train!.split('\n');
      lines.splice(3, 0, bad); // line 4
      const root = await smallDataset(t, { train: lines.join('\n') });
      const file = path.join(root, 'train.txt');
      await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
        message: `${HEAD}${delimiterMsg(file)} (line 4: ${JSON.stringify(bad)})`,
        paddlexType: 'CheckFailedError',
        file,
        line: 4,
      });
      // The standalone reader reports the same.
      await expectCheckError(readDatasetList(root, 'train'), {
        includes: [delimiterMsg(file)],
        line: 4,
      });
    });
  }

  test('a missing image is DatasetFileNotFoundError "<path> does not exist." with its list line', async (t) => {
    const spec = smallSpec();
    const root = await smallDataset(t, { query: spec.query! + 'images/nope.png 2\n' });
    const file = path.join(root, 'query.txt');
    await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
      message: `${HEAD}${root}/images/nope.png does not exist. (${file} line 4: "images/nope.png 2")`,
      paddlexType: 'DatasetFileNotFoundError',
      file,
      line: 4,
    });
  });

  test('a listed directory is not an image', async (t) => {
    const spec = smallSpec();
    const root = await smallDataset(t, { gallery: spec.gallery! + 'images 1\n' });
    await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
      includes: [`${root}/images is not a file.`],
      line: 4,
    });
  });

  test('non-integer label: file, line and label named; checked only after every list passed', async (t) => {
    const spec = smallSpec();
    const gallery = spec.gallery!.split('\n');
    gallery[1] = 'images/g1.png one';
    const root = await smallDataset(t, { gallery: gallery.join('\n') });
    const file = path.join(root, 'gallery.txt');
    const err = await expectCheckError(
      checkDataset(root, { output: path.join(root, '..', 'out') }),
      {
        includes: [
          `The label "one" in ${file} is not an integer. (line 2: "images/g1.png one")`,
          'integer class ids',
        ],
        file,
        line: 2,
      },
    );
    assert.match(err.message, /\nPlease try to resolve the issue as follows:\n {2}/);
    // A bad label in train and a missing image in query: the missing image is reported (labels
    // are PaddleX's analysis step, after all three lists were checked).
    const train = spec.train!.replace('images/t2.png 2', 'images/t2.png x');
    const root2 = await smallDataset(t, { train, query: spec.query! + 'images/gone.png 1\n' });
    await expectCheckError(checkDataset(root2, { output: path.join(root2, '..', 'out') }), {
      includes: ['images/gone.png does not exist.'],
    });
  });

  test('CRLF, lone CR, blank lines and a BOM are tolerated; line numbers count every line', async (t) => {
    const spec = smallSpec();
    const train = '\ufeff' + spec.train!.trimEnd().split('\n').join('\r\n') + '\r\n\r\n';
    const gallery = '\n\n' + spec.gallery!.replaceAll('\n', '\r') + '   \n';
    const query = spec.query! + '\n\n';
    const root = await smallDataset(t, { train, gallery, query });
    const out = path.join(root, '..', 'out');
    const res = await checkDataset(root, { output: out });
    assert.equal(Number(res.attributes.train_samples.value), 6);
    assert.equal(Number(res.attributes.gallery_samples.value), 3);
    assert.equal(Number(res.attributes.query_samples.value), 3);
    const list = await readDatasetList(root, 'gallery');
    assert.deepEqual(
      list.entries.map((e) => [e.lineNo, e.path, e.label]),
      [
        [3, 'images/g0.png', '0'],
        [4, 'images/g1.png', '1'],
        [5, 'images/g2.png', '2'],
      ],
    );
    const trainList = await readDatasetList(root, 'train');
    assert.equal(trainList.entries[0]!.path, 'images/t0.png', 'BOM stripped');
    assert.equal(trainList.entries[5]!.label, '2', 'no \\r left in the label');
    // An error after blank lines names the right line.
    const bad = await smallDataset(t, { query: '\n\nimages/q0.png 0\n\nimages/q1.png\t1\n' });
    await expectCheckError(checkDataset(bad, { output: path.join(bad, '..', 'out') }), { line: 5 });
  });

  test('invalid UTF-8 names the line', async (t) => {
    const root = await smallDataset(t);
    const file = path.join(root, 'train.txt');
    await writeFile(
      file,
      Buffer.concat([
        Buffer.from('images/t0.png 0\nimages/t1.png 1\nimages/'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('.png 1\n'),
      ]),
    );
    await expectCheckError(readListLines(file, root), {
      includes: ['is not valid UTF-8 text (line 3)'],
      line: 3,
    });
  });

  test('errors come in shuffled order, as PaddleX meets them', async (t) => {
    const spec = smallSpec();
    // 6 good lines plus one bad-delimiter line and one missing image.
    const lines = spec.train!.trimEnd().split('\n');
    lines.push('images/t0.png\t0', 'images/missing.png 0');
    const root = await smallDataset(t, { train: lines.join('\n') + '\n' });
    const order = pyShuffled(lines.map((text, i) => ({ text, lineNo: i + 1 })));
    const first = order.find((l) => l.text.includes('\t') || l.text.includes('missing'))!;
    await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
      includes: [first.text.includes('\t') ? 'delimiter-separated' : 'missing.png does not exist.'],
      line: first.lineNo,
    });
  });
});

describe('Python int() labels', () => {
  const accepted: [string, bigint][] = [
    ['0', 0n],
    ['17', 17n],
    ['007', 7n],
    ['-3', -3n],
    ['+4', 4n],
    ['-0', 0n],
    ['1_000', 1000n],
    [' 12 ', 12n],
    ['\t5\u3000', 5n],
    ['123456789012345678901234567890', 123456789012345678901234567890n],
  ];
  const refused = [
    '',
    ' ',
    'abc',
    '1.0',
    '1e3',
    '0x10',
    '_1',
    '1_',
    '1__0',
    '--1',
    '+-1',
    '1 2',
    '٣',
    '１',
  ];

  test('accepted and refused spellings', () => {
    for (const [s, v] of accepted) assert.equal(parsePyInt(s), v, JSON.stringify(s));
    for (const s of refused) assert.equal(parsePyInt(s), undefined, JSON.stringify(s));
    assert.equal(parsePyInt('9'.repeat(4300)) !== undefined, true);
    assert.equal(parsePyInt('9'.repeat(4301)), undefined, "CPython's 4300-digit limit");
    assert.throws(() => parseIntLabel('x'), DatasetCheckError);
  });

  test('agree with python3 int() (non-ASCII digits are refused on purpose)', (t) => {
    const py = needPython(t);
    if (py === null) return;
    const cases = [...accepted.map(([s]) => s), ...refused.filter((s) => !/[٣１]/.test(s))];
    const out = runPython(
      py,
      `import json,sys
res=[]
for s in json.loads(sys.argv[1]):
    try: res.append(str(int(s)))
    except ValueError: res.append(None)
print(json.dumps(res))`,
      [JSON.stringify(cases)],
    );
    const want = JSON.parse(out) as (string | null)[];
    cases.forEach((s, i) => {
      const got = parsePyInt(s);
      assert.equal(got === undefined ? null : got.toString(), want[i], JSON.stringify(s));
    });
  });
});

describe('readDatasetList', () => {
  test('entries in file order with absolute paths; existence and label checks are optional', async (t) => {
    const spec = smallSpec();
    const root = await smallDataset(t, { query: spec.query! + 'images/later.png 7\n' });
    await expectCheckError(readDatasetList(root, 'query'), {
      line: 4,
      paddlexType: 'DatasetFileNotFoundError',
    });
    const list = await readDatasetList(path.relative(process.cwd(), root), 'query', {
      checkExists: false,
    });
    assert.equal(list.file, path.join(root, 'query.txt'));
    assert.deepEqual(
      list.entries.map((e) => [e.path, e.absPath, e.label, e.lineNo]),
      [
        ['images/q0.png', `${root}/images/q0.png`, '0', 1],
        ['images/q1.png', `${root}/images/q1.png`, '1', 2],
        ['images/q2.png', `${root}/images/q2.png`, '2', 3],
        ['images/later.png', `${root}/images/later.png`, '7', 4],
      ],
    );
    const root2 = await smallDataset(t, { gallery: 'images/g0.png 0\nimages/g1.png 1.5\n' });
    await readDatasetList(root2, 'gallery');
    await expectCheckError(readDatasetList(root2, 'gallery', { checkLabels: true }), {
      includes: ['The label "1.5"'],
      line: 2,
    });
  });
});

describe('checkDataset on a generated dataset', () => {
  test('result equals the golden check_dataset_result.json byte for byte; samples match Python', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    // The train list with CRLF endings: Python's text mode reads it the same way.
    const spec = { ...std.spec, train: std.spec.train!.replaceAll('\n', '\r\n') };
    const root = await writeDataset(path.join(dir, 'Inshop_mini'), spec);
    const before = await snapshot(root);
    const out = path.join(dir, 'output');
    const progress: [number, number][] = [];
    const res = await checkDataset(dir, {
      output: out,
      onProgress: (d, n) => progress.push([d, n]),
    });
    assert.deepEqual(progress.at(-1), [57, 57]);
    assert.deepEqual(await snapshot(root), before, 'the dataset is not modified');

    const text = pyJsonDumps(
      { done_flag: true, ...res },
      {
        indent: 2,
        ensureAscii: false,
      },
    );
    const goldenFile = path.join(goldenDir, 'check_dataset_result.json');
    if (process.env['PIF_UPDATE_GOLDEN'] === '1') {
      await mkdir(goldenDir, { recursive: true });
      await writeFile(goldenFile, `${text}\n`);
    }
    // The golden file ends with the newline prettier insists on; Python's json.dump writes none.
    const golden = await readFile(goldenFile, 'utf8');
    assert.equal(text, golden.replace(/\n$/, ''));

    for (const tag of ['train', 'gallery', 'query'] as const) {
      const paths = res.attributes[`${tag}_sample_paths`];
      for (const p of paths) assert.ok(existsSync(path.join(out, p)), p);
    }

    const py = needPython(t);
    if (py === null) return;
    for (const tag of ['train', 'gallery', 'query'] as const) {
      const want = JSON.parse(
        runPython(
          py,
          `import json,os,random,sys
with open(sys.argv[1], "r", encoding="utf-8") as f:
    lines = f.readlines()
random.seed(123)
random.shuffle(lines)
print(json.dumps([os.path.basename(l.strip("\\n").split(" ")[0]) for l in lines[:10]]))`,
          [path.join(root, `${tag}.txt`)],
        ),
      ) as string[];
      const got = res.attributes[`${tag}_sample_paths`].map((p) => path.basename(p));
      assert.deepEqual(got, want, tag);
      assert.equal(got.length, Math.min(10, std[tag].length));
    }
  });

  test('histogram.png is a PNG whose bar heights are proportional to the counts', async (t) => {
    const dir = await tempDir(t);
    const std = standardDataset();
    const root = await writeDataset(path.join(dir, 'ds'), std.spec);
    const out = path.join(dir, 'output');
    const res = await checkDataset(root, { output: out, sampleCount: 0 });
    assert.equal(res.analysis.histogram, 'check_dataset/histogram.png');
    assert.deepEqual(res.attributes.train_sample_paths, []);
    const file = path.join(out, 'check_dataset', 'histogram.png');
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png');
    assert.deepEqual([meta.width, meta.height], [1920, 1440]);

    const stats: SplitStats[] = [
      { tag: 'train', numImages: 37, numClasses: 5 },
      { tag: 'gallery', numImages: 12, numClasses: 4 },
      { tag: 'query', numImages: 8, numClasses: 4 },
    ];
    const geo = buildHistogramSvg(stats);
    const img = await decodeRaw(file);
    const plotH = geo.plot.bottom - geo.plot.top;
    const measured = geo.bars.map((bar) => {
      const hex = HISTOGRAM_COLORS[bar.series];
      const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      const x = bar.x + Math.floor(bar.width / 2);
      let h = 0;
      for (let y = geo.plot.top; y < geo.plot.bottom; y++) {
        const o = (y * img.width + x) * img.channels;
        if (img.data[o] === rgb[0] && img.data[o + 1] === rgb[1] && img.data[o + 2] === rgb[2]) h++;
      }
      return h;
    });
    geo.bars.forEach((bar, i) => {
      const ideal = (bar.value / geo.yMax) * plotH;
      assert.ok(
        Math.abs(measured[i]! - ideal) <= 1,
        `${bar.tag}/${bar.series}: ${measured[i]} px vs ${ideal}`,
      );
    });
    // Ratios of heights equal ratios of counts within a couple of pixels.
    const base = measured[0]!;
    geo.bars.forEach((bar, i) => {
      const expected = (base * bar.value) / geo.bars[0]!.value;
      assert.ok(Math.abs(measured[i]! - expected) <= 2, `${bar.tag}/${bar.series}`);
    });
  });

  test('demo images: decoded, same size, EXIF-transposed, label box drawn; BMP and JPEG kept in their format', async (t) => {
    const dir = await tempDir(t);
    const root = path.join(dir, 'ds');
    const spec: DatasetSpec = {
      images: [
        { rel: 'images/wide.png', width: 400, height: 300, cls: 0 },
        { rel: 'images/rot6.jpg', width: 360, height: 240, cls: 1, orientation: 6 },
      ],
      train: 'images/wide.png 1234\nimages/rot6.jpg 5\nimages/pic.bmp 3\n',
      gallery: 'images/wide.png 1234\n',
      query: 'images/rot6.jpg 5\n',
    };
    await writeDataset(root, spec);
    // A 24-bit BMP (sharp cannot write BMP).
    const { data } = await sharp({
      create: { width: 50, height: 30, channels: 3, background: '#3050a0' },
    })
      .raw()
      .toBuffer({ resolveWithObject: true });
    await writeFile(
      path.join(root, 'images', 'pic.bmp'),
      encodeBmp({ data, width: 50, height: 30 }),
    );

    const out = path.join(dir, 'output');
    const res = await checkDataset(root, { output: out });
    const demo = (n: string): string => path.join(out, 'check_dataset', 'demo_img', n);
    assert.deepEqual([...res.attributes.train_sample_paths].sort(), [
      'check_dataset/demo_img/pic.bmp',
      'check_dataset/demo_img/rot6.jpg',
      'check_dataset/demo_img/wide.png',
    ]);

    // PNG: same size, the box in pure red at the top-left, white text inside it.
    const wide = await decodeRaw(demo('wide.png'));
    assert.deepEqual([wide.width, wide.height], [400, 300]);
    const lay = await layoutLabel(400, '1234');
    assert.equal(lay.fontSize, 20);
    const px = (im: typeof wide, x: number, y: number): number[] => [
      ...im.data.subarray((y * im.width + x) * im.channels, (y * im.width + x) * im.channels + 3),
    ];
    assert.deepEqual(px(wide, 4, 4), [...LABEL_BOX_COLOR]);
    assert.deepEqual(px(wide, lay.box.right, lay.box.bottom), [...LABEL_BOX_COLOR]);
    assert.notDeepEqual(px(wide, lay.box.right + 1, lay.box.bottom + 1), [...LABEL_BOX_COLOR]);
    assert.notDeepEqual(px(wide, 2, 2), [...LABEL_BOX_COLOR]);
    let white = 0;
    for (let y = lay.box.top; y <= lay.box.bottom; y++) {
      for (let x = lay.box.left; x <= lay.box.right; x++) {
        const [r, g, b] = px(wide, x, y);
        if (r! > 200 && g! > 200 && b! > 200) white++;
      }
    }
    assert.ok(white > 20, `text pixels in the box: ${white}`);

    // JPEG with EXIF orientation 6: stored 360x240, shown (and written) 240x360, still JPEG; the
    // green marker of the stored top-right corner is now at the bottom-right.
    const rot = await decodeRaw(demo('rot6.jpg'));
    assert.equal((await sharp(demo('rot6.jpg')).metadata()).format, 'jpeg');
    assert.deepEqual([rot.width, rot.height], [240, 360]);
    const [r, g, b] = px(rot, 236, 356);
    assert.ok(g! > 180 && r! < 80 && b! < 80, `bottom-right is green: ${[r, g, b].join(',')}`);
    const [r2, g2, b2] = px(rot, 4, 10);
    assert.ok(
      r2! > 180 && g2! < 60 && b2! < 60,
      `label box at the top-left: ${[r2, g2, b2].join(',')}`,
    );

    // BMP written as BMP.
    const bmp = decodeBmp(await readFile(demo('pic.bmp')));
    assert.deepEqual([bmp.width, bmp.height], [50, 30]);
    assert.deepEqual([...bmp.data.subarray(0, 3)], [0x30, 0x50, 0xa0]);
    assert.deepEqual(
      [...bmp.data.subarray((4 * 50 + 4) * 3, (4 * 50 + 4) * 3 + 3)],
      [...LABEL_BOX_COLOR],
    );
  });

  test('an unreadable sample image is a clear error naming it', async (t) => {
    const root = await smallDataset(t);
    await writeFile(path.join(root, 'images', 't0.png'), 'not a png');
    await expectCheckError(checkDataset(root, { output: path.join(root, '..', 'out') }), {
      includes: [`cannot read the image ${root}/images/t0.png`, `${root}/train.txt line 1`],
      line: 1,
    });
  });

  test('identical basenames overwrite each other, as in PaddleX', async (t) => {
    const dir = await tempDir(t);
    const root = path.join(dir, 'ds');
    await writeDataset(root, {
      images: [
        { rel: 'images/a/x.png', width: 40, height: 30, cls: 0 },
        { rel: 'images/b/x.png', width: 44, height: 30, cls: 1 },
      ],
      train: 'images/a/x.png 0\nimages/b/x.png 1\n',
      gallery: 'images/a/x.png 0\n',
      query: 'images/b/x.png 1\n',
    });
    const out = path.join(dir, 'output');
    const res = await checkDataset(root, { output: out });
    assert.deepEqual(res.attributes.train_sample_paths, [
      'check_dataset/demo_img/x.png',
      'check_dataset/demo_img/x.png',
    ]);
    // The query sample (b/x.png, 44 px wide) was written last.
    assert.equal(
      (await sharp(path.join(out, 'check_dataset', 'demo_img', 'x.png')).metadata()).width,
      44,
    );
  });
});

describe('BMP codec', () => {
  test('round trip, odd widths (row padding)', () => {
    const img = {
      data: new Uint8Array(7 * 3 * 3).map((_, i) => (i * 37) & 255),
      width: 7,
      height: 3,
    };
    const back = decodeBmp(encodeBmp(img));
    assert.deepEqual([back.width, back.height], [7, 3]);
    assert.deepEqual([...back.data], [...img.data]);
  });
});
