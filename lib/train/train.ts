/**
 * `train(datasetDir, options)`: PaddleX's `Global.mode=train` for the image-feature models, on the
 * CPU (issue 17). One implementation behind the API, the `train` subcommand and
 * `-o Global.mode=train`.
 *
 * Tier `head` (the one built so far): the backbone is frozen. Every training image is decoded
 * once and K seeded training views of it (flip, pad, crop, rotation: native/preprocess/augment.h)
 * run once through the frozen part (hpi by default) to the pooled features; the gallery and query
 * images likewise, without augmentation. Then the tail (last_conv, BNNeck, a new FC head) trains
 * on the cached rows one epoch per native job, PaddleClas's PP-ShiTuV2_rec recipe (PK sampler,
 * CE with label smoothing + TripletAngularMargin, Momentum + L2, cosine with warmup). Every
 * `eval_interval` epochs recall@1/5 and mAP over gallery/query pick the best model. Outputs are
 * PaddleX's (lib/train/outputs.ts), each checkpoint published whole, with the exact run state
 * beside it so that `resumePath` continues to the same weights as an uninterrupted run.
 */
import { mkdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';

import { stringify as yamlStringify } from 'yaml';

import { findDatasetRoot, parseIntLabel, readDatasetList } from '../dataset/lists.js';
import {
  ConfigError,
  DatasetCheckError,
  InputDecodeError,
  InvalidArgumentError,
} from '../errors.js';
import { evaluateFeatures, type RetrievalMetrics } from '../evaluate.js';
import { writeFileAtomic } from '../fsutil.js';
import { OFFICIAL_MODELS, officialModelDir } from '../image-feature.js';
import { decodeItem, type InputItem } from '../input.js';
import { readInferenceConfig, resolveModelDir } from '../modeldir.js';
import { HeadTier } from './head-tier.js';
import { pdparamsBytes, writePdstates } from './pdparams.js';
import {
  appendLog,
  bestMetricLine,
  checkpointParams,
  evalLine,
  findCheckpoint,
  publishCheckpoint,
  trainLogLines,
  trainResultsJson,
  type CheckpointEntry,
} from './outputs.js';
import type { EpochPoint } from './curves.js';

export type TrainTier = 'head' | 'last-stage';

export interface TrainOptions {
  /** The model to fine-tune (PaddleX `Global.model`). Default PP-ShiTuV2_rec. */
  model?: string;
  /**
   * The starting weights: an inference model directory (or a `.pdparams` beside an `inference/`
   * export), or an official model name. Default: the official model of `model`.
   */
  pretrainWeightPath?: string;
  /** Where outputs go (PaddleX `Global.output`). Default `output`. */
  output?: string;
  tier?: TrainTier;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Warmup epochs (PaddleX `Train.warmup_steps` sets PaddleClas's `warmup_epoch`). */
  warmupEpochs?: number;
  /** Columns of the new FC head; at least the number of training labels (default: that). */
  numClasses?: number;
  /** Seeded training views per training image (default 4). */
  views?: number;
  seed?: number;
  cpuThreads?: number;
  /** Pooled features through the fused oneDNN graph (default true). */
  useHpip?: boolean;
  /** Evaluate (and maybe pick a new best model) every this many epochs (default 1). */
  evalInterval?: number;
  /** Write `epoch_N/` every this many epochs (default 1); the 5 newest are kept. */
  saveInterval?: number;
  /** Log an epoch every this many epochs (default 1). */
  logInterval?: number;
  /** A checkpoint of an earlier run with the same options to continue from (`output/latest`). */
  resumePath?: string;
  /** Cancels between steps of work; completed checkpoints stay. */
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  /** Each train.log line as it is written. */
  onLog?: (line: string) => void;
  /** What config.yaml records (the CLI passes its module config); default: these options. */
  config?: Record<string, unknown>;
}

export type TrainProgress =
  | { phase: 'cache'; done: number; total: number }
  | {
      phase: 'epoch';
      epoch: number;
      epochs: number;
      loss: number;
      lr: number;
      imagesPerSec: number;
      etaSeconds: number;
    }
  | { phase: 'eval'; epoch: number; metrics: RetrievalMetrics }
  /**
   * The last-stage tier: a training step done: its batch's loss, and its milliseconds in the
   * frozen part (images to stage 4's input) and in stage 4 + tail (forward, backward, update).
   */
  | {
      phase: 'step';
      epoch: number;
      epochs: number;
      step: number;
      steps: number;
      loss: number;
      frozenMs: number;
      trainMs: number;
    };

export interface TrainResult {
  output: string;
  /** The untrained model's metrics on gallery/query. */
  initial: RetrievalMetrics;
  best: { epoch: number; metrics: RetrievalMetrics } | null;
  bestModelDir: string | null;
  latestDir: string;
  history: EpochPoint[];
  classes: number;
  trainImages: number;
  trainRows: number;
  /** The epoch the run started after (0 unless resumed). */
  resumedFrom: number;
}

/** What a checkpoint's `<prefix>.pifresume.json` records beside its `.pifstate`. */
interface ResumeRecord {
  version: 1;
  settings: Record<string, unknown>;
  epoch: number;
  history: EpochPoint[];
  best: { epoch: number; metrics: RetrievalMetrics } | null;
  initial: RetrievalMetrics;
  last: CheckpointEntry[];
  bestEntry: CheckpointEntry | null;
  /** train.log's length after this epoch's lines (a resume cuts what a killed run added). */
  logBytes: number;
}

const PER_LABEL = 4;
const KEEP_EPOCH_CHECKPOINTS = 5;

/** An integer option in [min, max] (max: the native run's bound, checked here before any work). */
function positiveInt(
  v: unknown,
  name: string,
  def: number,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(
      `train: ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  return v;
}

/** Where the starting weights are: a model directory (downloaded when official). */
async function startModelDir(model: string, ref: string | undefined): Promise<string> {
  if (ref === undefined || (OFFICIAL_MODELS as readonly string[]).includes(ref))
    return officialModelDir(ref ?? model);
  const abs = path.resolve(ref);
  const st = await stat(abs).catch(() => null);
  if (st?.isFile() === true && abs.endsWith('.pdparams'))
    return path.join(path.dirname(abs), 'inference');
  if (st?.isDirectory() === true) {
    const inner = path.join(abs, 'inference');
    if ((await stat(path.join(inner, 'inference.yml')).catch(() => null)) !== null) return inner;
    return abs;
  }
  throw new ConfigError(
    `Train.pretrain_weight_path ${abs} does not exist; give an inference model directory or an official model name (${OFFICIAL_MODELS.join(', ')})`,
    { file: abs },
  );
}

/** The seed of view `v` of training image `i` (distinct per run seed, image and view). */
function viewSeed(seed: number, i: number, v: number, views: number): number {
  return ((seed % 1_000_003) * 1_000_000_007 + i * views + v) % Number.MAX_SAFE_INTEGER;
}

interface Dataset {
  root: string;
  trainFile: string;
  /** `label`: relabelled to 0 .. classes-1 (PaddleClas relabel); `raw`: as written. */
  train: { path: string; line: number; label: number; raw: bigint }[];
  gallery: { path: string; label: bigint }[];
  query: { path: string; label: bigint }[];
  classes: number;
}

/** Reads and checks the lists (check_dataset's rules and messages), relabels train to 0..C-1. */
async function readDataset(dir: string): Promise<Dataset> {
  const root = await findDatasetRoot(dir);
  const lists = await Promise.all(
    (['train', 'gallery', 'query'] as const).map((tag) =>
      readDatasetList(root, tag, { checkLabels: true }),
    ),
  );
  const [train, gallery, query] = lists as [
    (typeof lists)[0],
    (typeof lists)[0],
    (typeof lists)[0],
  ];
  for (const l of lists) {
    if (l.entries.length === 0)
      throw new DatasetCheckError(`${l.file} lists no image`, { file: l.file });
  }
  // recall@5 needs 5 gallery images; found now rather than after caching.
  if (gallery.entries.length < 5)
    throw new DatasetCheckError(
      `${gallery.file} lists ${gallery.entries.length} image(s); evaluation (recall@5) needs at least 5`,
      { file: gallery.file },
    );
  const raw = train.entries.map((e) => parseIntLabel(e.label));
  // PaddleClas relabel: the distinct labels, in order, become 0 .. C-1.
  const distinct = [...new Set(raw)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ids = new Map(distinct.map((l, i) => [l, i]));
  return {
    root,
    trainFile: train.file,
    train: train.entries.map((e, i) => ({
      path: e.absPath,
      line: e.lineNo,
      label: ids.get(raw[i] as bigint) as number,
      raw: raw[i] as bigint,
    })),
    gallery: gallery.entries.map((e) => ({ path: e.absPath, label: parseIntLabel(e.label) })),
    query: query.entries.map((e) => ({ path: e.absPath, label: parseIntLabel(e.label) })),
    classes: distinct.length,
  };
}

/**
 * The CLIP recipe's labels: not relabelled (PaddleClas's ImageNetDataset without relabel), so
 * each must be in [0, classes); the first that is not is named with its line.
 */
function clipLabels(
  d: Dataset,
  classes: number | undefined,
): { labels: number[]; classes: number } {
  let max = -1;
  for (const t of d.train) {
    if (t.raw < 0n || t.raw >= BigInt(classes ?? 1 << 24))
      throw new DatasetCheckError(
        `${d.trainFile} line ${t.line}: label ${t.raw} is not in [0, ${classes ?? 1 << 24}) ` +
          '(the CLIP recipe does not relabel: labels are class ids below Train.num_classes)',
        { file: d.trainFile, line: t.line },
      );
    max = Math.max(max, Number(t.raw));
  }
  return { labels: d.train.map((t) => Number(t.raw)), classes: classes ?? max + 1 };
}

/** PaddleClas's PKSampler asserts, with its numbers, before any work. */
function checkSampler(d: Dataset, batch: number, rows: number, pk: boolean): void {
  if (rows < batch)
    throw new DatasetCheckError(
      `${d.trainFile}: ${rows} training rows (images x views) make less than one batch of ${batch}`,
      { file: d.trainFile },
    );
  if (!pk) return;
  if (batch % PER_LABEL !== 0)
    throw new ConfigError(
      `PKSampler configs error, sample_per_id(${PER_LABEL}) must be a divisor of batch_size(${batch}); ` +
        'set Train.batch_size to a multiple of 4',
    );
  if (d.classes * PER_LABEL < batch)
    throw new DatasetCheckError(
      `PKSampler configs error, label num(${d.classes}) * sample_per_id(${PER_LABEL}) must >= batch_size(${batch}): ` +
        `${d.trainFile} has ${d.classes} labels, a batch of ${batch} needs at least ${batch / PER_LABEL}; ` +
        'lower Train.batch_size or add labels',
      { file: d.trainFile },
    );
}

export async function train(datasetDir: string, options: TrainOptions = {}): Promise<TrainResult> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const tier = options.tier ?? 'head';
  if (tier !== 'head' && tier !== 'last-stage')
    throw new InvalidArgumentError(
      `train: tier must be 'head' or 'last-stage', got '${String(tier)}'`,
    );
  const model = options.model ?? 'PP-ShiTuV2_rec';
  const epochs = positiveInt(options.epochs, 'epochs', 20, 1, 100000);
  positiveInt(options.batchSize, 'batchSize', 128, 2, 65536);
  const views = positiveInt(options.views, 'views', 4);
  const seed = positiveInt(options.seed, 'seed', 0, 0);
  const threads = positiveInt(options.cpuThreads, 'cpuThreads', 1, 1, 1024);
  const warmupEpochs = positiveInt(options.warmupEpochs, 'warmupEpochs', 5, 0, 100000);
  const evalInterval = positiveInt(options.evalInterval, 'evalInterval', 1);
  const saveInterval = positiveInt(options.saveInterval, 'saveInterval', 1);
  const logInterval = positiveInt(options.logInterval, 'logInterval', 1);
  if (
    options.learningRate !== undefined &&
    (typeof options.learningRate !== 'number' ||
      !(options.learningRate > 0) ||
      options.learningRate > 100 ||
      !Number.isFinite(options.learningRate))
  )
    throw new InvalidArgumentError(
      `train: learningRate must be a number in (0, 100], got ${String(options.learningRate)}`,
    );
  const output = path.resolve(options.output ?? 'output');

  const data = await readDataset(datasetDir);
  const start = await startModelDir(model, options.pretrainWeightPath);
  const resolved = await resolveModelDir(start);
  const modelName = (await readInferenceConfig(resolved.configFile, resolved.dir)).Global
    .model_name;
  // The starting model decides the recipe: PP-ShiTuV2_rec's (PK sampler, relabel, CE +
  // triplet) or the CLIP models' (shuffled batches, labels as written, ArcMargin).
  const clip = modelName.includes('CLIP');
  // The recipes' defaults (PaddleX's yaml): batch 128, lr 0.01 for PP-ShiTuV2_rec; 32, 0.001
  // for the CLIP models.
  const batch = positiveInt(options.batchSize, 'batchSize', clip ? 32 : 128, 2, 65536);
  const lr = options.learningRate ?? (clip ? 0.001 : 0.01);
  const numClasses =
    options.numClasses === undefined
      ? undefined
      : positiveInt(options.numClasses, 'numClasses', 1, 1, 1 << 24);
  let classes: number;
  let trainLabels: number[];
  if (clip) {
    ({ labels: trainLabels, classes } = clipLabels(data, numClasses));
  } else {
    classes = numClasses ?? data.classes;
    trainLabels = data.train.map((t) => t.label);
    if (classes < data.classes)
      throw new ConfigError(
        `Train.num_classes (${classes}) is smaller than the ${data.classes} labels of ${data.trainFile}; ` +
          `set -o Train.num_classes=${data.classes} or more`,
        { file: data.trainFile },
      );
  }
  if (clip && tier === 'last-stage')
    throw new ConfigError(
      `train: tier 'last-stage' trains PP-ShiTuV2_rec's stage 4; ${modelName} has no convolution stages to train on the CPU, use tier 'head'`,
    );
  const stage = tier === 'last-stage';
  // The head tier trains on `views` cached views per image; the last-stage tier draws new views
  // of every image in every epoch.
  const rows = stage ? data.train.length : data.train.length * views;
  checkSampler(data, batch, rows, !clip);
  const settings: Record<string, unknown> = {
    model,
    tier,
    start: resolved.dir,
    dataset: data.root,
    epochs,
    batch,
    views,
    seed,
    threads,
    warmupEpochs,
    lr,
    classes,
    useHpip: options.useHpip !== false,
  };

  let resume: Awaited<ReturnType<typeof loadResume>> | null = null;
  if (options.resumePath !== undefined) resume = await loadResume(options.resumePath, settings);

  await mkdir(output, { recursive: true });
  const ht = await HeadTier.open(resolved.dir, {
    useHpip: options.useHpip !== false,
    cpuThreads: threads,
    tier,
  });
  try {
    if ((ht.info.kind === 'clip') !== clip)
      throw new ConfigError(
        `${resolved.dir}: inference.yml names ${modelName} but the graph has a ${ht.info.kind === 'clip' ? 'CLIP' : 'PP-ShiTuV2_rec'} tail`,
        { file: resolved.programFile },
      );
    // Feature caching: train views, then gallery and query.
    const all = data.train.length + data.gallery.length + data.query.length;
    const progress = (done: number) => options.onProgress?.({ phase: 'cache', done, total: all });
    const item = (p: string): InputItem => ({ kind: 'file', path: p });
    const describe =
      (files: readonly { path: string }[], list: string) => (k: number, err: unknown) =>
        new InputDecodeError(
          `cannot read training image ${files[k]?.path ?? ''} (${list}): ${(err as Error).message}`,
          { file: files[k]?.path, cause: err },
        );
    const trainItems = data.train.map((t) => item(t.path));
    let trainX: Float32Array = new Float32Array(0);
    if (stage) {
      // Every training image decodes before any work (views are drawn per epoch).
      for (let i = 0; i < trainItems.length; i += 16) {
        signal?.throwIfAborted();
        await Promise.all(
          trainItems.slice(i, i + 16).map((it, k) =>
            decodeItem(it).catch((err: unknown) => {
              throw describe(data.train, data.trainFile)(i + k, err);
            }),
          ),
        );
        progress(Math.min(trainItems.length, i + 16));
      }
    } else {
      trainX = await ht.pooledFeatures(trainItems, {
        views: (i) => Array.from({ length: views }, (_, v) => viewSeed(seed, i, v, views)),
        onProgress: (d) => progress(d),
        describeError: describe(data.train, data.trainFile),
        ...(signal === undefined ? {} : { signal }),
      });
    }
    // The last-stage tier's gallery and query go through stage 4 as trained at each evaluation.
    const evalRows = async (
      list: readonly { path: string }[],
      file: string,
      offset: number,
    ): Promise<Float32Array> =>
      ht.pooledFeatures(
        list.map((g) => item(g.path)),
        {
          onProgress: (d) => progress(offset + d),
          describeError: describe(list, file),
          ...(signal === undefined ? {} : { signal }),
        },
      );
    const labels = stage ? trainLabels : trainLabels.flatMap((l) => Array<number>(views).fill(l));
    await ht.begin(trainX, labels, {
      classes,
      epochs,
      batchSize: batch,
      perLabel: clip ? 0 : PER_LABEL,
      labelSmoothing: clip ? 0 : 0.1,
      warmupEpochs,
      learningRate: lr,
      seed,
    });
    const galleryX = stage ? null : await evalRows(data.gallery, 'gallery.txt', data.train.length);
    const queryX = stage
      ? null
      : await evalRows(data.query, 'query.txt', data.train.length + data.gallery.length);
    const dim = ht.info.dim;
    const evaluate = async (): Promise<RetrievalMetrics> => {
      const g = galleryX ?? (await evalRows(data.gallery, 'gallery.txt', data.train.length));
      const q =
        queryX ??
        (await evalRows(data.query, 'query.txt', data.train.length + data.gallery.length));
      return evaluateFeatures(
        {
          gallery: { features: await ht.features(g), labels: data.gallery.map((x) => x.label) },
          query: { features: await ht.features(q), labels: data.query.map((x) => x.label) },
          dim,
        },
        { threads },
      );
    };

    const logFile = path.join(output, 'train.log');
    const log = async (lines: string[]) => {
      await appendLog(logFile, lines);
      for (const l of lines) options.onLog?.(l);
    };
    let record: ResumeRecord;
    if (resume !== null) {
      const epoch = await ht.restore(resume.state).catch((err: unknown) => {
        throw new ConfigError(
          `${resume.stateFile} does not fit this run: ${(err as Error).message}`,
          { file: resume.stateFile, cause: err },
        );
      });
      if (epoch !== resume.record.epoch)
        throw new ConfigError(
          `${resume.stateFile} is at epoch ${epoch}, its record says ${resume.record.epoch}`,
          { file: resume.stateFile },
        );
      record = resume.record;
      // Lines a killed run logged after this checkpoint go; the resumed epochs log them again.
      const size = (await stat(logFile).catch(() => null))?.size ?? 0;
      if (size > record.logBytes) await truncate(logFile, record.logBytes);
      await log([`Resumed from ${resume.dir} at epoch ${epoch}`]);
    } else {
      await rm(logFile, { force: true });
      const config = options.config ?? {
        Global: { model: modelName, mode: 'train', dataset_dir: datasetDir, output, seed },
        Train: {
          tier,
          epochs_iters: epochs,
          batch_size: batch,
          learning_rate: lr,
          warmup_steps: warmupEpochs,
          num_classes: classes,
          views,
        },
      };
      await writeFileAtomic(path.join(output, 'config.yaml'), yamlStringify(config));
      const initial = await evaluate();
      record = {
        version: 1,
        settings,
        epoch: 0,
        history: [],
        best: null,
        initial,
        last: [],
        bestEntry: null,
        logBytes: 0,
      };
      await log([
        `Training ${modelName} (tier ${tier}${clip ? ', ArcMargin' : ''}) from ${resolved.dir}: ${data.train.length} images x ${stage ? 'a new view each epoch' : `${views} views`}, ${data.classes} labels, ${classes} classes`,
        `Before training: ${evalLine(0, initial).replace('[Eval][Epoch 0][Avg]', '')}`,
      ]);
    }
    const resumedFrom = record.epoch;
    const steps = Math.floor(rows / batch);
    const t0 = performance.now();
    for (let epoch = record.epoch + 1; epoch <= epochs; epoch++) {
      signal?.throwIfAborted();
      const te = performance.now();
      const e = stage
        ? await ht.trainStageEpoch(trainItems, {
            seedOf: (row, slot) => viewSeed(seed, epoch * rows + slot, row, 1),
            onStep: (step, total, loss, time) =>
              options.onProgress?.({
                phase: 'step',
                epoch,
                epochs,
                step,
                steps: total,
                loss,
                ...time,
              }),
            describeError: describe(data.train, data.trainFile),
            ...(signal === undefined ? {} : { signal }),
          })
        : await ht.trainEpoch();
      const sec = (performance.now() - te) / 1000;
      const perEpoch = (performance.now() - t0) / 1000 / (epoch - resumedFrom);
      const point: EpochPoint = { epoch, loss: e.loss.total, lr: e.lr };
      const ips = (steps * batch) / sec;
      options.onProgress?.({
        phase: 'epoch',
        epoch,
        epochs,
        loss: e.loss.total,
        lr: e.lr,
        imagesPerSec: ips,
        etaSeconds: perEpoch * (epochs - epoch),
      });
      if (epoch % logInterval === 0 || epoch === epochs)
        await log(
          trainLogLines(
            {
              epoch,
              epochs,
              steps,
              lr: e.lr,
              loss: e.loss,
              batchCost: sec / steps,
              ips,
              etaSeconds: perEpoch * (epochs - epoch),
              warmup: warmupEpochs > 0,
            },
            !clip,
          ),
        );
      let isBest = false;
      if (epoch % evalInterval === 0 || epoch === epochs) {
        const m = await evaluate();
        point.recall1 = m.recall1;
        point.mAP = m.mAP;
        options.onProgress?.({ phase: 'eval', epoch, metrics: m });
        isBest = record.best === null || m.recall1 > record.best.metrics.recall1;
        if (isBest) record.best = { epoch, metrics: m };
        await log([
          evalLine(epoch, m),
          bestMetricLine(epoch, (record.best as { metrics: RetrievalMetrics }).metrics.recall1),
        ]);
      }
      record.history.push(point);
      record.epoch = epoch;
      await saveAll(ht, output, record, {
        epoch,
        isBest,
        epochCheckpoint: epoch % saveInterval === 0 || epoch === epochs,
        modelName,
        programFile: path.basename(resolved.programFile),
        log,
        logFile,
      });
    }
    await writeFileAtomic(
      path.join(output, 'train_results.json'),
      trainResultsJson({ modelName, last: record.last, best: record.bestEntry, done: true }),
    );
    return {
      output,
      initial: record.initial,
      best: record.best,
      bestModelDir: record.bestEntry === null ? null : path.join(output, 'best_model', 'inference'),
      latestDir: path.join(output, 'latest'),
      history: record.history,
      classes,
      trainImages: data.train.length,
      trainRows: rows,
      resumedFrom,
    };
  } finally {
    ht.close();
  }
}

/**
 * Where a `.pifstate` breaks its layout, or null. The head tier's (native/train/head_tier.cc
 * save_head_state): the magic PIFHEAD1, 5 int64 counts, 11 float vectors (a uint64 count each),
 * the generator's text. The last-stage tier's (native/train/stage_run.cc save_stage_state):
 * PIFSTG01, the block count B, 3 int64 per block, 5 more, 12 B + 11 vectors, the generator.
 * The native restore checks the shapes against the model; this runs before any work.
 */
function stateLayoutProblem(b: Buffer): { why: string; offset: number } | null {
  const magic = b.length < 8 ? '' : b.subarray(0, 8).toString('latin1');
  if (magic !== 'PIFHEAD1' && magic !== 'PIFSTG01') return { why: 'bad magic', offset: 0 };
  let at = 8;
  let headerInts = 5;
  let vectors = 11;
  if (magic === 'PIFSTG01') {
    if (b.length < 16) return { why: 'it ends inside the header', offset: b.length };
    const blocks = b.readBigInt64LE(8);
    if (blocks < 1n || blocks > 64n) return { why: `${blocks} blocks`, offset: 8 };
    at = 16;
    headerInts = 3 * Number(blocks) + 5;
    vectors = 12 * Number(blocks) + 11;
  }
  at += headerInts * 8;
  if (b.length < at) return { why: 'it ends inside the header', offset: b.length };
  for (let k = 0; k < vectors; k++) {
    if (b.length - at < 8) return { why: `it ends inside vector ${k}'s size`, offset: at };
    const n = b.readBigUInt64LE(at);
    if (n > BigInt(b.length - at - 8) / 4n)
      return { why: `vector ${k} needs ${n} floats, fewer bytes are left`, offset: at };
    at += 8 + Number(n) * 4;
  }
  if (b.length - at < 8) return { why: "it ends inside the generator's size", offset: at };
  if (b.readBigUInt64LE(at) !== BigInt(b.length - at - 8))
    return { why: "the generator's size does not match the bytes left", offset: at };
  return null;
}

/** Reads a checkpoint's resume state; refuses one made with other settings. */
async function loadResume(
  ref: string,
  settings: Record<string, unknown>,
): Promise<{ dir: string; record: ResumeRecord; state: Buffer; stateFile: string }> {
  const dir = await findCheckpoint(ref);
  if (dir === null)
    throw new ConfigError(
      `Train.resume_path ${path.resolve(ref)} is not a checkpoint of this trainer (no <prefix>.pifstate there); give output/latest`,
      { file: path.resolve(ref) },
    );
  const prefix = path.basename(dir).replace(/^\.(.*)\.old$/, '$1');
  const jsonFile = path.join(dir, `${prefix}.pifresume.json`);
  let record: ResumeRecord;
  try {
    record = JSON.parse(await readFile(jsonFile, 'utf8')) as ResumeRecord;
  } catch (err) {
    throw new ConfigError(`cannot read ${jsonFile}: ${(err as Error).message}`, {
      file: jsonFile,
      cause: err,
    });
  }
  const entryOk = (e: unknown, prefix: RegExp): boolean => {
    const c = e as CheckpointEntry | null;
    return (
      typeof c === 'object' &&
      c !== null &&
      typeof c.prefix === 'string' &&
      prefix.test(c.prefix) &&
      typeof c.score === 'number' &&
      /^(inference\.json|[\w.-]+\.pdmodel|__model__)$/.test(c.programFile)
    );
  };
  const ok =
    typeof record === 'object' &&
    record !== null &&
    Number.isSafeInteger(record.logBytes) &&
    record.logBytes >= 0 &&
    (record.last ?? []).every((e) => entryOk(e, /^epoch_\d+$/)) &&
    (record.bestEntry === null || entryOk(record.bestEntry, /^best_model$/)) &&
    (record.best === null ||
      (typeof record.best === 'object' &&
        Number.isSafeInteger(record.best.epoch) &&
        typeof record.best.metrics?.recall1 === 'number')) &&
    typeof record.settings === 'object' &&
    record.settings !== null &&
    Number.isSafeInteger(record.epoch) &&
    record.epoch >= 0 &&
    Array.isArray(record.history) &&
    record.history.length === record.epoch &&
    Array.isArray(record.last) &&
    typeof record.initial === 'object' &&
    record.initial !== null;
  if (!ok)
    throw new ConfigError(`${jsonFile} is not a resume record of this trainer (damaged?)`, {
      file: jsonFile,
    });
  // Records written before the last-stage tier existed hold no tier: theirs was 'head'.
  if (record.settings !== null && !('tier' in record.settings)) record.settings['tier'] = 'head';
  const differ = Object.keys(settings).filter(
    (k) => JSON.stringify(settings[k]) !== JSON.stringify(record.settings?.[k]),
  );
  if (record.version !== 1 || differ.length > 0)
    throw new ConfigError(
      `Train.resume_path ${dir} was trained with other settings (${differ
        .map(
          (k) =>
            `${k}: ${JSON.stringify(record.settings?.[k])} there, ${JSON.stringify(settings[k])} now`,
        )
        .join('; ')}); resume with the same options`,
      { file: jsonFile },
    );
  const stateFile = path.join(dir, `${prefix}.pifstate`);
  const state = await readFile(stateFile);
  const bad = stateLayoutProblem(state);
  if (bad !== null)
    throw new ConfigError(`${stateFile} is not a whole training state: ${bad.why}`, {
      file: stateFile,
      offset: bad.offset,
    });
  return { dir, record, state, stateFile };
}

/**
 * The checkpoints of one epoch: best_model when it is the best, epoch_N every save interval,
 * latest always; each with the same resume record (the state after this epoch). Then
 * train_results.json and the curves.
 */
async function saveAll(
  ht: HeadTier,
  output: string,
  record: ResumeRecord,
  o: {
    epoch: number;
    isBest: boolean;
    epochCheckpoint: boolean;
    modelName: string;
    programFile: string;
    log: (l: string[]) => Promise<void>;
    logFile: string;
  },
): Promise<void> {
  // Encoded once for every checkpoint of the epoch (the frozen part is most of the bytes).
  const pdparams = pdparamsBytes(checkpointParams(await ht.params(), ht.info.kind));
  const state = await ht.state();
  const metric =
    record.history[record.history.length - 1]?.recall1 ?? record.best?.metrics.recall1 ?? 0;
  const entry = (prefix: string): CheckpointEntry => ({
    score: metric,
    prefix,
    programFile: o.programFile,
    hasInfo: false,
  });
  const dropped: CheckpointEntry[] = [];
  if (o.isBest) record.bestEntry = entry('best_model');
  if (o.epochCheckpoint) {
    const e = entry(`epoch_${o.epoch}`);
    record.last = [e, ...record.last.filter((c) => c.prefix !== e.prefix)];
    dropped.push(...record.last.slice(KEEP_EPOCH_CHECKPOINTS));
    record.last = record.last.slice(0, KEEP_EPOCH_CHECKPOINTS);
  }
  if (o.isBest) await o.log([`Already save model in ${path.join(output, 'best_model')}`]);
  record.logBytes = (await stat(o.logFile)).size;
  const resumeJson = JSON.stringify(record);
  const write = async (prefix: string): Promise<void> => {
    await publishCheckpoint(output, prefix, async (dir) => {
      await ht.save(path.join(dir, 'inference'));
      await writeFileAtomic(path.join(dir, `${prefix}.pdparams`), pdparams);
      await writePdstates(path.join(dir, `${prefix}.pdstates`), { metric, epoch: o.epoch });
      await writeFileAtomic(path.join(dir, `${prefix}.pifstate`), state);
      await writeFileAtomic(path.join(dir, `${prefix}.pifresume.json`), resumeJson);
    });
  };
  if (o.isBest) await write('best_model');
  if (o.epochCheckpoint) await write(`epoch_${o.epoch}`);
  await write('latest');
  await writeFileAtomic(
    path.join(output, 'train_results.json'),
    trainResultsJson({
      modelName: o.modelName,
      last: record.last,
      best: record.bestEntry,
      done: false,
    }),
  );
  // Only once nothing lists them any more.
  for (const old of dropped)
    await rm(path.join(output, old.prefix), { recursive: true, force: true });
  const { renderTrainCurvesPng } = await import('./curves.js');
  await writeFileAtomic(
    path.join(output, 'train_curves.png'),
    await renderTrainCurvesPng(record.history),
  );
}
