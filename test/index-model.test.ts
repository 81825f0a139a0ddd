/**
 * An index records the model that built it (issue 15, items 4, 3 and 9, index parts): model.json
 * next to vector.index and id_map.yaml; loadIndex / createRecognizer / `index search` / `index
 * add` with another model (other weights, other preprocessing) is PIF_INDEX; the CLI uses the
 * recorded model when no --model/--model-dir is given; search output has a header and --json
 * lines like the rest of the CLI. Builder models with two seeds are two "models" of one name.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Command } from 'commander';

import { buildModel } from '../lib/builder.js';
import { PifError } from '../lib/errors.js';
import { createModel, type FeatureModel } from '../lib/image-feature.js';
import { createRecognizer } from '../lib/recognize.js';
import { cliContext } from '../lib/cli/context.js';
import { registerIndexCommands } from '../lib/cli/index-commands.js';
import { createIndex, loadIndex } from '../lib/vector-index/index.js';
import { renderImage } from './helpers/dataset.js';
import { nativeBinding } from '../lib/native.js';

const MODEL_JSON = 'model.json';

/** As test/helpers/native.ts: a missing addon fails, unless PIF_SKIP_NATIVE=1 skips. */
function nativeSkip(): string | false {
  try {
    nativeBinding();
    return false;
  } catch (err) {
    if (process.env['PIF_SKIP_NATIVE'] === '1') return 'native addon not loadable';
    throw err;
  }
}
const skip = nativeSkip();

async function rejectsCode(p: Promise<unknown>, code: string, ...patterns: RegExp[]) {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PifError, `expected a PifError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const re of patterns) assert.match(err.message, re);
    return err;
  }
  return assert.fail(`expected ${code}`);
}

function cli(): (args: string[]) => Promise<{ out: string; err: string; code: number }> {
  return async (args) => {
    let out = '';
    let err = '';
    const program = new Command('pif').exitOverride().configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
    });
    registerIndexCommands(
      program,
      cliContext({
        stdout: (s) => (out += s),
        stderr: (s) => (err += s),
        isTTY: false,
      }),
    );
    try {
      await program.parseAsync(args, { from: 'user' });
      return { out, err, code: 0 };
    } catch (e) {
      if (e instanceof PifError) return { out, err: `${err}[${e.code}] ${e.message}`, code: 1 };
      return { out, err: `${err}${(e as Error).message}`, code: 2 };
    }
  };
}

/** `index build <gallery> <labels> --out <out> --model-dir <modelDir>`. */
function buildArgs(gallery: [string, string], out: string, modelDir: string): string[] {
  return ['index', 'build', ...gallery, '--out', out, '--model-dir', modelDir];
}

describe('an index records its model', { skip }, () => {
  let root = '';
  let dirA = '';
  let dirB = '';
  let dirP = '';
  let modelA: FeatureModel;
  let modelB: FeatureModel;
  let modelP: FeatureModel;
  let galleryDir = '';
  let labelFile = '';
  const images: string[] = [];
  const env: Record<string, string | undefined> = {};

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'pif-index-model-'));
    dirA = path.join(root, 'model-a');
    dirB = path.join(root, 'model-b');
    dirP = path.join(root, 'model-p');
    await buildModel('PP-ShiTuV2_rec', dirA, { seed: 3 });
    await buildModel('PP-ShiTuV2_rec', dirB, { seed: 4 });
    // The same weights as A, another preprocessing (mean).
    await mkdir(dirP);
    for (const f of ['inference.json', 'inference.pdiparams']) {
      await copyFile(path.join(dirA, f), path.join(dirP, f));
    }
    const yml = await readFile(path.join(dirA, 'inference.yml'), 'utf8');
    assert.match(yml, /- 0\.485\n/);
    await writeFile(path.join(dirP, 'inference.yml'), yml.replace('- 0.485\n', '- 0.5\n'));
    modelA = await createModel('PP-ShiTuV2_rec', { modelDir: dirA, batchSize: 2 });
    modelB = await createModel('PP-ShiTuV2_rec', { modelDir: dirB, batchSize: 2 });
    modelP = await createModel('PP-ShiTuV2_rec', { modelDir: dirP, batchSize: 2 });
    galleryDir = path.join(root, 'gallery');
    for (let i = 0; i < 4; i++) {
      const rel = `g${i}.png`;
      await renderImage(path.join(galleryDir, rel), { rel, width: 40 + 8 * i, height: 36, cls: i });
      images.push(path.join(galleryDir, rel));
    }
    labelFile = path.join(galleryDir, 'labels.txt');
    await writeFile(labelFile, images.map((f, i) => `${path.basename(f)} item-${i}`).join('\n'));
    // No network and an empty cache: an attempt to fetch the official model fails at once.
    for (const k of ['PADDLE_PDX_CACHE_HOME', 'PIF_OFFLINE']) env[k] = process.env[k];
    process.env['PADDLE_PDX_CACHE_HOME'] = path.join(root, 'empty-cache');
    process.env['PIF_OFFLINE'] = '1';
  });

  after(async () => {
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
    modelA.close();
    modelB.close();
    modelP.close();
    await rm(root, { recursive: true, force: true });
  });

  async function savedWith(model: FeatureModel, name: string): Promise<string> {
    const dir = path.join(root, name);
    const index = createIndex({ model });
    await index.build(galleryDir, labelFile);
    await index.save(dir);
    return dir;
  }

  test('save writes model.json: name, absolute dir, dim, weights and preprocessing', async () => {
    const dir = await savedWith(modelA, 'idx-record');
    const doc = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as {
      saves: Record<string, Record<string, unknown>>;
    };
    const records = Object.values(doc.saves);
    assert.equal(records.length, 1);
    const r = records[0] as Record<string, unknown>;
    assert.equal(r['model_name'], 'PP-ShiTuV2_rec');
    assert.equal(r['model_dir'], dirA);
    assert.equal(r['feature_dim'], 512);
    assert.match(String(r['weights_fingerprint']), /^sha256-sampled-v1:[0-9a-f]{64}$/);
    assert.match(String(r['preprocess_fingerprint']), /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual((r['preprocess'] as Record<string, unknown>)['size'], [224, 224]);
    // PaddleX's id_map.yaml is unchanged: no model key in it.
    assert.doesNotMatch(await readFile(path.join(dir, 'id_map.yaml'), 'utf8'), /model/);
    const loaded = await loadIndex(dir);
    const info = loaded.info() as unknown as Record<string, unknown>;
    assert.equal((info['model'] as Record<string, unknown> | undefined)?.['modelDir'], dirA);
    assert.equal(info['dir'], dir);
  });

  test('loadIndex with another model (weights, preprocessing) is PIF_INDEX; the same loads', async () => {
    const dir = await savedWith(modelA, 'idx-load');
    const same = await loadIndex(dir, { model: modelA });
    assert.equal((await same.search(images[1] as string, 1))[0]?.[0]?.label, 'item-1');
    await rejectsCode(
      loadIndex(dir, { model: modelB }),
      'PIF_INDEX',
      /built with the model PP-ShiTuV2_rec \(.*model-a\) but the model given is PP-ShiTuV2_rec \(.*model-b\)/,
      /differ in weights/,
      new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
      /--model-dir .*model-a/,
    );
    const err = await rejectsCode(loadIndex(dir, { model: modelP }), 'PIF_INDEX', /preprocessing/);
    assert.doesNotMatch(err.message, /weights/);
    assert.equal(err.file, path.join(dir, MODEL_JSON));
  });

  test('index add / index search with another model are refused; the index is unchanged', async () => {
    const dir = await savedWith(modelA, 'idx-cli');
    const run = cli();
    const before = await readFile(path.join(dir, 'vector.index'));
    let r = await run(['index', 'add', dir, galleryDir, labelFile, '--model-dir', dirB]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /\[PIF_INDEX\].*model-a.*model-b.*weights/);
    assert.deepEqual(await readFile(path.join(dir, 'vector.index')), before);
    r = await run(['index', 'search', dir, images[0] as string, '--model-dir', dirB]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /\[PIF_INDEX\].*differ in weights/);
    // The model that built it works.
    r = await run(['index', 'search', dir, images[0] as string, '--model-dir', dirA]);
    assert.equal(r.code, 0, r.err);
  });

  test('createRecognizer with another model is PIF_INDEX (preprocessing at once, weights at predict)', async () => {
    const dir = await savedWith(modelA, 'idx-rec');
    const index = await loadIndex(dir);
    await rejectsCode(
      Promise.resolve().then(() => createRecognizer({ model: modelP, index })),
      'PIF_INDEX',
      /preprocessing/,
    );
    const wrong = createRecognizer({ model: modelB, index });
    await rejectsCode(wrong.predictAll(images[0] as string), 'PIF_INDEX', /model-b.*weights/);
    // The index's own model against another one, no save needed.
    const own = createIndex({ model: modelA });
    await own.build(galleryDir, labelFile);
    await rejectsCode(
      createRecognizer({ model: modelB, index: own }).predictAll(images[0] as string),
      'PIF_INDEX',
      /weights/,
    );
    const right = createRecognizer({ model: modelA, index });
    const [res] = await right.predictAll(images[2] as string);
    assert.equal(res?.boxes[0]?.labels[0], 'item-2');
  });

  test('an index saved without a model record (older version) still loads, unchecked', async () => {
    const dir = await savedWith(modelA, 'idx-legacy');
    await rm(path.join(dir, MODEL_JSON));
    const index = await loadIndex(dir, { model: modelB });
    assert.equal(index.size, 4);
    assert.equal((index.info() as unknown as Record<string, unknown>)['model'], null);
  });

  test('a record survives a save without a model and a crash after model.json was renamed', async () => {
    const dir = await savedWith(modelA, 'idx-crash');
    const oldIndex = await readFile(path.join(dir, 'vector.index'));
    const oldYaml = await readFile(path.join(dir, 'id_map.yaml'));
    // Loaded without a model (as `index remove` does): the record is kept on save.
    const plain = await loadIndex(dir);
    assert.equal(await plain.remove([0]), 1);
    await plain.save(dir);
    await rejectsCode(loadIndex(dir, { model: modelB }), 'PIF_INDEX', /weights/);
    // model.json is renamed first; a crash before the other renames leaves the old files.
    await writeFile(path.join(dir, 'vector.index'), oldIndex);
    await writeFile(path.join(dir, 'id_map.yaml'), oldYaml);
    const old = await loadIndex(dir);
    assert.equal(old.size, 4);
    await rejectsCode(loadIndex(dir, { model: modelB }), 'PIF_INDEX', /weights/);
  });

  test('CLI: search and add use the recorded model by default (offline, no --model)', async () => {
    const run = cli();
    const dir = path.join(root, 'idx-default');
    let r = await run(buildArgs([galleryDir, labelFile], dir, dirA));
    assert.equal(r.code, 0, r.err);
    r = await run(['index', 'search', dir, images[3] as string, '--topk', '1']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /item-3/);
    await mkdir(path.join(root, 'more'), { recursive: true });
    await copyFile(images[1] as string, path.join(root, 'more', 'x.png'));
    await writeFile(path.join(root, 'more', 'l.txt'), 'x.png extra\n');
    r = await run(['index', 'add', dir, path.join(root, 'more'), path.join(root, 'more', 'l.txt')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /added 1 images/);
  });

  test('CLI: a recorded model directory that is gone or changed says to pass --model-dir', async () => {
    const run = cli();
    const moved = path.join(root, 'model-moved');
    await mkdir(moved);
    for (const f of ['inference.json', 'inference.pdiparams', 'inference.yml']) {
      await copyFile(path.join(dirA, f), path.join(moved, f));
    }
    const dir = path.join(root, 'idx-moved');
    let r = await run(buildArgs([galleryDir, labelFile], dir, moved));
    assert.equal(r.code, 0, r.err);
    // Other weights in the recorded directory.
    await buildModel('PP-ShiTuV2_rec', moved, { seed: 5 });
    r = await run(['index', 'search', dir, images[0] as string]);
    assert.equal(r.code, 1, r.err);
    assert.match(
      r.err,
      /\[PIF_INDEX\].*model-moved changed since the index was built.*--model-dir/,
    );
    await rm(moved, { recursive: true });
    r = await run(['index', 'search', dir, images[0] as string]);
    assert.equal(r.code, 1, r.err);
    assert.match(
      r.err,
      /\[PIF_MODEL_NOT_FOUND\].*model-moved, which no longer exists.*--model-dir/,
    );
    // The model passed explicitly (the same weights elsewhere) works.
    r = await run(['index', 'search', dir, images[0] as string, '--model-dir', dirA]);
    assert.equal(r.code, 0, r.err);
  });

  test('CLI: search prints a header line; --json gives one {"res": …} line per query', async () => {
    const run = cli();
    const dir = await savedWith(modelA, 'idx-out');
    const q = [images[0] as string, images[2] as string];
    let r = await run(['index', 'search', dir, ...q, '--topk', '2', '--model-dir', dirA]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n');
    assert.equal(lines[0], q[0]);
    assert.match(lines[1] ?? '', /^ {2}rank +label +score +id$/);
    assert.match(lines[2] ?? '', /^ {2}1 +item-0 +[01]\.\d{6} +0$/);
    r = await run(['index', 'search', dir, ...q, '--topk', '2', '--json', '--model-dir', dirA]);
    assert.equal(r.code, 0, r.err);
    const jsonLines = r.out.trim().split('\n');
    assert.equal(jsonLines.length, 2);
    // Python's json.dumps separators, as predict --json.
    assert.match(
      jsonLines[0] ?? '',
      /^\{"res": \{"input_path": ".*", "metric": "IP", "hits": \[\{"rank": 1, "label": "item-0", "score": [0-9.e-]+, "id": 0\}, /,
    );
    const parsed = JSON.parse(jsonLines[1] ?? '') as {
      res: { input_path: string; hits: { rank: number; label: string; id: number }[] };
    };
    assert.equal(parsed.res.input_path, q[1]);
    assert.deepEqual(parsed.res.hits.map((h) => [h.rank, h.label, h.id]).slice(0, 1), [
      [1, 'item-2', 2],
    ]);
  });

  test('the weights fingerprint is sampled: cheap for a 1.2 GB params file', async () => {
    const { weightsFingerprint, SAMPLE_BYTES } = await import('../lib/model-fingerprint.js');
    const dir = path.join(root, 'big-model');
    await mkdir(dir);
    await copyFile(path.join(dirA, 'inference.json'), path.join(dir, 'inference.json'));
    const params = path.join(dir, 'inference.pdiparams');
    const size = 1.2e9;
    const fh = await open(params, 'w');
    await fh.truncate(size); // sparse: no disk used
    await fh.close();
    // Count event-loop turns while it runs: every read must yield to the loop.
    let ticks = 0;
    let running = true;
    const spin = (): void => {
      ticks++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const started = performance.now();
    const a = await weightsFingerprint(dir);
    const ms = performance.now() - started;
    running = false;
    assert.ok(ms < 3000, `${ms} ms`);
    assert.ok(ticks >= 10, `the event loop turned ${ticks} times while fingerprinting`);
    // A byte inside the last sample changes it; one between samples does not (documented).
    const poke = async (at: number): Promise<string> => {
      const h = await open(params, 'r+');
      await h.write(Buffer.from([1]), 0, 1, at);
      await h.close();
      return weightsFingerprint(dir);
    };
    const b = await poke(size - 1);
    assert.notEqual(a, b);
    assert.equal(await poke(SAMPLE_BYTES + 12345), b);
  });
});
