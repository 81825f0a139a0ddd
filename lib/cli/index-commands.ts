/**
 * `paddle-image-feature index …`: build, add to, remove from, search and describe a saved vector
 * index (lib/vector-index). Errors are thrown (typed PifErrors); the caller's CLI prints them
 * and sets the exit code. Progress bars go to stderr when it is a terminal.
 *
 *   index build <gallery_dir> <label_file> --out DIR [--metric IP|L2] [--type Flat|HNSW]
 *   index add <index_dir> <gallery_dir> <label_file>
 *   index remove <index_dir> [ids...] [--ids-file FILE]
 *   index search <index_dir> <images...> [--topk 5] [--json]
 *   index info <index_dir> [--json]
 *
 * The label file is PaddleX's: `path label` per line, split on one space, paths relative to the
 * gallery directory. The index records the model that built it (model.json): `add` and `search`
 * use that model when neither --model nor --model-dir is given, and refuse another model
 * (PIF_INDEX). An index without a record (saved by an older version) gets the old default,
 * PP-ShiTuV2_rec, and no check.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';

import { IndexError, ModelNotFoundError } from '../errors.js';
import { createModel, type FeatureModel } from '../image-feature.js';
import { createProgress } from '../progress.js';
import { pyJsonDumps, PyInt } from '../pyjson.js';
import { createIndex, loadIndex, readGalleryList } from '../vector-index/index.js';
import { MODEL_FILE } from '../vector-index/model-record.js';
import { readRecordedModel } from '../vector-index/store.js';
import type { Metric, IndexType, SearchHit, VectorIndex } from '../vector-index/types.js';
import { errorJsonLine, intArg, MODEL_OPTION_HELP, modelNameFor } from './args.js';
import type { CliContext } from './context.js';
import { FailedInputs } from './failures.js';

interface ModelOpts {
  model?: string;
  modelDir?: string;
  batchSize: number;
  threads: number;
}

function addModelOptions(cmd: Command): Command {
  return cmd
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'an exported inference model directory')
    .option('--batch-size <n>', 'images per inference call', intArg(1, 4096), 8)
    .option('--threads <n>', 'CPU threads per inference call', intArg(1, 256), 1);
}

async function openModel(o: ModelOpts): Promise<FeatureModel> {
  return createModel(await modelNameFor(o.model, o.modelDir), {
    ...(o.modelDir === undefined ? {} : { modelDir: o.modelDir }),
    batchSize: o.batchSize,
    cpuThreads: o.threads,
  });
}

/**
 * The model for `add`/`search` on the index in `dir`: --model/--model-dir when given, else the
 * one recorded in the index (its directory must still exist), else PP-ShiTuV2_rec (an index
 * without a record).
 */
async function openIndexModel(dir: string, o: ModelOpts): Promise<FeatureModel> {
  if (o.model !== undefined || o.modelDir !== undefined) return openModel(o);
  const rec = await readRecordedModel(dir);
  if (rec === null) return openModel(o);
  if ((await stat(rec.modelDir).catch(() => null))?.isDirectory() !== true) {
    throw new ModelNotFoundError(
      `${path.resolve(dir)}: the index was built with the model ${rec.modelName} from ` +
        `${rec.modelDir}, which no longer exists (${MODEL_FILE}); pass --model-dir with that ` +
        'model (or build the index again)',
      { file: rec.modelDir },
    );
  }
  return openModel({ ...o, model: rec.modelName, modelDir: rec.modelDir });
}

function describe(index: VectorIndex): string {
  const i = index.info();
  return `${i.indexTypeName} ${i.metric} index, ${i.size} vectors of dim ${i.dim}`;
}

/** One query's hits as a table: a header line (rank, label, score or distance, id), one row each. */
function formatHits(hits: readonly SearchHit[], metric: Metric): string {
  if (hits.length === 0) return '  (no hits: the index is empty)\n';
  const rows = [
    ['rank', 'label', metric === 'IP' ? 'score' : 'distance', 'id'],
    ...hits.map((h, r) => [String(r + 1), h.label, h.score.toFixed(6), String(h.id)]),
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => (row[c] as string).length)));
  return rows
    .map(
      (row) => `  ${row.map((v, c) => (c < 3 ? v.padEnd(widths[c] as number) : v)).join('  ')}\n`,
    )
    .join('');
}

/** One query's JSON line: `{"res": {"input_path", "metric", "hits": [{rank, label, score, id}]}}`. */
function hitsJson(inputPath: string | null, metric: Metric, hits: readonly SearchHit[]): string {
  const res = {
    input_path: inputPath,
    metric,
    hits: hits.map((h, r) => ({
      rank: new PyInt(r + 1),
      label: h.label,
      score: h.score,
      id: new PyInt(h.id),
    })),
  };
  return pyJsonDumps({ res }, { indent: null, ensureAscii: false });
}

/** Reads ids from a text file as PaddleX does: the first token of every non-blank line. */
async function readIdsFile(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw new IndexError(`cannot read the ids file ${file}: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  });
  const out: number[] = [];
  text.split(/\r\n|\r|\n/).forEach((line, i) => {
    const tok = line.trim().split(/\s+/)[0] ?? '';
    if (tok === '') return;
    const n = Number(tok);
    if (!/^\d+$/.test(tok) || !Number.isSafeInteger(n)) {
      throw new IndexError(`${file} line ${i + 1}: ${JSON.stringify(tok)} is not an id`, {
        file,
        where: `line ${i + 1}`,
      });
    }
    out.push(n);
  });
  return out;
}

/** Progress bars of the index commands: when stderr is a terminal (or `io.isTTY`). */
function progressOn(ctx: CliContext): boolean {
  return ctx.io.isTTY ?? process.stderr.isTTY;
}

/** Adds the `index` command and its subcommands to `program`. */
export function registerIndexCommands(program: Command, ctx: CliContext): Command {
  const index = program
    .command('index')
    .description('vector index over gallery features: build, add, remove, search, info');
  addIndexBuild(index, ctx);
  addIndexAdd(index, ctx);
  addIndexRemove(index, ctx);
  addIndexSearch(index, ctx);
  addIndexInfo(index, ctx);
  return index;
}

/** `index build`: an index of a gallery, saved. */
function addIndexBuild(index: Command, ctx: CliContext): void {
  const { io } = ctx;
  addModelOptions(
    index
      .command('build')
      .description('build an index from a gallery directory and its label file, then save it')
      .argument('<gallery_dir>', 'the gallery images (label file paths are relative to it)')
      .argument('<label_file>', 'lines "path label", split on one space')
      .requiredOption('--out <dir>', 'where vector.index and id_map.yaml are written')
      .addOption(new Option('--metric <metric>', 'similarity').choices(['IP', 'L2']).default('IP'))
      .addOption(
        new Option('--type <type>', 'index type').choices(['Flat', 'HNSW']).default('Flat'),
      ),
  ).action(
    async (
      galleryDir: string,
      labelFile: string,
      o: ModelOpts & { out: string; metric: Metric; type: IndexType },
    ) => {
      const started = Date.now();
      const model = await openModel(o);
      const bar = createProgress('index build', { enabled: progressOn(ctx) });
      try {
        const idx = createIndex({ metric: o.metric, type: o.type, model });
        await idx.build(galleryDir, labelFile, {
          batchSize: o.batchSize,
          onProgress: (done, total) => {
            bar.setTotal(total);
            bar.update(done);
          },
        });
        bar.stop();
        await idx.save(o.out);
        io.stdout(
          `built ${describe(idx)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n  ${path.resolve(o.out)}\n`,
        );
      } finally {
        bar.stop();
        model.close();
      }
    },
  );
}

/** `index add`: gallery images added to a saved index. */
function addIndexAdd(index: Command, ctx: CliContext): void {
  const { io } = ctx;
  addModelOptions(
    index
      .command('add')
      .description('add gallery images to a saved index (ids continue from max id + 1)')
      .argument('<index_dir>', 'a saved index')
      .argument('<gallery_dir>', 'the new images (label file paths are relative to it)')
      .argument('<label_file>', 'lines "path label", split on one space'),
  ).action(async (dir: string, galleryDir: string, labelFile: string, o: ModelOpts) => {
    const model = await openIndexModel(dir, o);
    const bar = createProgress('index add', { enabled: progressOn(ctx) });
    try {
      const idx = await loadIndex(dir, { model });
      const entries = await readGalleryList(galleryDir, labelFile);
      const ids = await idx.add(
        entries.map((e) => ({ image: e.image, label: e.label })),
        {
          batchSize: o.batchSize,
          onProgress: (done, total) => {
            bar.setTotal(total);
            bar.update(done);
          },
        },
      );
      bar.stop();
      await idx.save(dir);
      const range =
        ids.length === 0 ? 'nothing' : `ids ${ids[0] ?? ''}..${ids[ids.length - 1] ?? ''}`;
      io.stdout(`added ${ids.length} images (${range}); now ${describe(idx)}\n`);
    } finally {
      bar.stop();
      model.close();
    }
  });
}

/** `index remove`: ids removed from a saved index. */
function addIndexRemove(index: Command, ctx: CliContext): void {
  const { io } = ctx;
  index
    .command('remove')
    .description('remove ids from a saved index (works for every index type)')
    .argument('<index_dir>', 'a saved index')
    .argument('[ids...]', 'ids to remove')
    .option('--ids-file <file>', 'a text file whose first token per line is an id (PaddleX)')
    .action(async (dir: string, idArgs: string[], o: { idsFile?: string }) => {
      const ids = idArgs.map((s) => {
        const n = Number(s);
        if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) {
          throw new CommanderArgError(`${JSON.stringify(s)} is not an id`);
        }
        return n;
      });
      if (o.idsFile !== undefined) ids.push(...(await readIdsFile(o.idsFile)));
      const idx = await loadIndex(dir);
      const removed = await idx.remove(ids);
      if (removed > 0) await idx.save(dir);
      io.stdout(`removed ${removed} of ${ids.length} ids; now ${describe(idx)}\n`);
    });
}

/** `index search`: the nearest gallery images of each query image. */
function addIndexSearch(index: Command, ctx: CliContext): void {
  const { io } = ctx;
  addModelOptions(
    index
      .command('search')
      .description('the nearest gallery images of each query image')
      .argument('<index_dir>', 'a saved index')
      .argument('<images...>', 'query images (files, directories, URLs)')
      .option('--topk <k>', 'hits per query', intArg(1, 100000), 5)
      .option('--search-threads <n>', 'threads of one search call', intArg(1, 1024), 1)
      .option(
        '--json',
        'one JSON line per query: {"res": {"input_path", "metric", "hits": [{rank, label, score, id}]}}',
        false,
      ),
  ).action(
    async (
      dir: string,
      images: string[],
      o: ModelOpts & { topk: number; searchThreads: number; json: boolean },
    ) => {
      const model = await openIndexModel(dir, o);
      try {
        const idx = await loadIndex(dir, { model, searchThreads: o.searchThreads });
        const results = await model.predictAll(images, { batchSize: o.batchSize });
        // A query that cannot be read is reported in its place; the others are still searched.
        const ok = results.filter((r) => r.error === null);
        const dim = idx.dim;
        const q = new Float32Array(ok.length * dim);
        ok.forEach((r, i) => {
          q.set(r.feature, i * dim);
        });
        const hits = ok.length > 0 ? await idx.search(q, o.topk) : [];
        const hitsOf = new Map(ok.map((r, i) => [r, hits[i] ?? []]));
        const failed = new FailedInputs(io);
        results.forEach((r, i) => {
          const h = hitsOf.get(r);
          if (h === undefined) {
            const err = r.error as Error;
            failed.report(r.inputPath, err, `<input ${i}>`);
            if (o.json) io.stdout(`${errorJsonLine(r.inputPath, err)}\n`);
          } else if (o.json) io.stdout(`${hitsJson(r.inputPath, idx.metric, h)}\n`);
          else io.stdout(`${r.inputPath ?? `<input ${i}>`}\n${formatHits(h, idx.metric)}`);
        });
        failed.throwIfAny((n) => `${n} of ${results.length} queries could not be read (see above)`);
      } finally {
        model.close();
      }
    },
  );
}

/** `index info`: what a saved index holds. */
function addIndexInfo(index: Command, ctx: CliContext): void {
  const { io } = ctx;
  index
    .command('info')
    .description('type, metric, size and settings of a saved index (verifies the files)')
    .argument('<index_dir>', 'a saved index')
    .option('--json', 'as JSON', false)
    .action(async (dir: string, o: { json: boolean }) => {
      const idx = await loadIndex(dir);
      const i = idx.info();
      const out = { ...i, dir: path.resolve(dir) };
      if (o.json) {
        io.stdout(`${JSON.stringify(out)}\n`);
        return;
      }
      const lines = [
        `index ${out.dir}`,
        `  type        ${i.indexTypeName} (${i.type})`,
        `  metric      ${i.metric}`,
        `  vectors     ${i.size}`,
        `  dim         ${i.dim}`,
        `  next id     ${i.nextId}`,
      ];
      if (i.hnsw !== null) {
        lines.push(
          `  hnsw        connectivity ${i.hnsw.connectivity}, expansionAdd ${i.hnsw.expansionAdd}, expansionSearch ${i.hnsw.expansionSearch}`,
        );
      }
      lines.push(
        i.model === null
          ? '  model       not recorded (saved by an older version or without a model)'
          : `  model       ${i.model.modelName} (${i.model.modelDir}), weights ${i.model.weights.slice(0, 30)}…`,
      );
      io.stdout(`${lines.join('\n')}\n`);
    });
}
