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
 * gallery directory. The index does not record its model: give the same --model/--model-dir to
 * add and search as to build (a feature size mismatch is reported).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';

import { IndexError } from '../errors.js';
import { createModel, type FeatureModel } from '../image-feature.js';
import { createProgress } from '../progress.js';

import { createIndex, loadIndex, readGalleryList } from './index.js';
import type { Metric, IndexType, SearchHit, VectorIndex } from './types.js';
import { intArg, MODEL_OPTION_HELP, modelNameFor } from '../cli-args.js';

export interface IndexCommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Whether stderr is a terminal (progress bars). Default: detect. */
  isTTY?: boolean;
}

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

function describe(index: VectorIndex): string {
  const i = index.info();
  return `${i.indexTypeName} ${i.metric} index, ${i.size} vectors of dim ${i.dim}`;
}

function formatHits(hits: readonly SearchHit[]): string {
  if (hits.length === 0) return '  (no hits: the index is empty)\n';
  return hits
    .map((h, r) => `  ${r + 1}. id ${h.id}  ${h.label}  score ${h.score.toFixed(6)}\n`)
    .join('');
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

/** Adds the `index` command and its subcommands to `program`. */
export function registerIndexCommands(program: Command, io: IndexCommandIo): Command {
  const tty = (): boolean => io.isTTY ?? process.stderr.isTTY;
  const index = program
    .command('index')
    .description('vector index over gallery features: build, add, remove, search, info');

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
      const bar = createProgress('index build', { enabled: tty() });
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

  addModelOptions(
    index
      .command('add')
      .description('add gallery images to a saved index (ids continue from max id + 1)')
      .argument('<index_dir>', 'a saved index')
      .argument('<gallery_dir>', 'the new images (label file paths are relative to it)')
      .argument('<label_file>', 'lines "path label", split on one space'),
  ).action(async (dir: string, galleryDir: string, labelFile: string, o: ModelOpts) => {
    const model = await openModel(o);
    const bar = createProgress('index add', { enabled: tty() });
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

  addModelOptions(
    index
      .command('search')
      .description('the nearest gallery images of each query image')
      .argument('<index_dir>', 'a saved index')
      .argument('<images...>', 'query images (files, directories, URLs)')
      .option('--topk <k>', 'hits per query', intArg(1, 100000), 5)
      .option('--search-threads <n>', 'threads of one search call', intArg(1, 1024), 1)
      .option('--json', 'one JSON object per query on stdout', false),
  ).action(
    async (
      dir: string,
      images: string[],
      o: ModelOpts & { topk: number; searchThreads: number; json: boolean },
    ) => {
      const model = await openModel(o);
      try {
        const idx = await loadIndex(dir, { model, searchThreads: o.searchThreads });
        const results = await model.predictAll(images, { batchSize: o.batchSize });
        for (const r of results) if (r.error !== null) throw r.error;
        const dim = idx.dim;
        const q = new Float32Array(results.length * dim);
        results.forEach((r, i) => {
          q.set(r.feature, i * dim);
        });
        const hits = await idx.search(q, o.topk);
        results.forEach((r, i) => {
          const h = hits[i] ?? [];
          if (o.json) {
            io.stdout(`${JSON.stringify({ input_path: r.inputPath, hits: h })}\n`);
          } else io.stdout(`${r.inputPath ?? `<input ${i}>`}\n${formatHits(h)}`);
        });
      } finally {
        model.close();
      }
    },
  );

  index
    .command('info')
    .description('type, metric, size and settings of a saved index (verifies the files)')
    .argument('<index_dir>', 'a saved index')
    .option('--json', 'as JSON', false)
    .action(async (dir: string, o: { json: boolean }) => {
      const idx = await loadIndex(dir);
      const i = idx.info();
      const out = { dir: path.resolve(dir), ...i };
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
      io.stdout(`${lines.join('\n')}\n`);
    });

  return index;
}
