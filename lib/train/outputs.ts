/**
 * What a training run leaves in `Global.output`, in PaddleX's layout
 * (../shared/spec/paddlex-behaviour.md §5.3, training-packaging.md A3): the log lines PaddleClas
 * prints (so PaddleX's parsers read them), checkpoint directories `best_model/`, `latest/` and
 * `epoch_N/` (each published whole: written under a temporary name, then renamed, so a killed
 * run leaves every completed checkpoint loadable and never a half-written one), and
 * `train_results.json`.
 */
import { appendFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import { formatFixedPy, type RetrievalMetrics } from '../evaluate.js';
import { fsyncDir } from '../fsutil.js';
import type { NativeHeadParam } from '../native.js';
import { pyFloatRepr, pyJsonDumps, type PyJsonValue } from '../pyjson.js';
import { NdArray } from './pickle.js';
import type { ParamEntry } from './pdparams.js';

/**
 * PaddleClas's structured names of the parameters the head tier trains (PP-ShiTuV2_rec). Stage 4's
 * (last-stage tier) keep the program's names: the fused form has no training-form names.
 */
export const TAIL_STRUCTURED_NAMES: Readonly<
  Partial<Record<Exclude<NativeHeadParam['role'], ''>, string>>
> = {
  convWeight: 'backbone.last_conv.weight',
  convBias: 'backbone.last_conv.bias',
  bnScale: 'neck.feat_bn.weight',
  bnBias: 'neck.feat_bn.bias',
  bnMean: 'neck.feat_bn._mean',
  bnVariance: 'neck.feat_bn._variance',
  fc: 'head.fc.weight',
};

/** The same for the CLIP models' tail: the FC neck and the ArcMargin head. */
export const CLIP_TAIL_STRUCTURED_NAMES: Readonly<
  Partial<Record<Exclude<NativeHeadParam['role'], ''>, string>>
> = {
  convWeight: 'neck.fc.weight',
  convBias: 'neck.fc.bias',
  fc: 'head.weight',
};

/**
 * `.pdparams` entries of the run's parameters: the trained tail and head under PaddleClas's
 * structured names (with the program name in the name table), the frozen rest under the
 * program's names (PIR exports do not record structured names).
 */
export function checkpointParams(
  params: readonly NativeHeadParam[],
  kind: 'shitu' | 'clip' = 'shitu',
): ParamEntry[] {
  return params.map((p) => {
    const array = new NdArray('float32', p.dims, p.data);
    if (p.role === '') return { structuredName: p.name, array };
    const names = kind === 'clip' ? CLIP_TAIL_STRUCTURED_NAMES : TAIL_STRUCTURED_NAMES;
    return {
      structuredName: names[p.role] ?? p.name,
      ...(p.name === '' ? {} : { name: p.name }),
      array,
    };
  });
}

/** `h:mm:ss`, as PaddleClas prints its eta. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export interface EpochLog {
  epoch: number;
  epochs: number;
  steps: number;
  lr: number;
  loss: { ce: number; triplet: number; total: number };
  /** Seconds per step (batch_cost). */
  batchCost: number;
  /** Training rows per second. */
  ips: number;
  etaSeconds: number;
  /** Whether the schedule has a warmup (PaddleClas then wraps it in LinearWarmup). */
  warmup: boolean;
}

/**
 * PaddleClas's lines for one epoch: the iteration line (here once per epoch, at its last step,
 * since an epoch runs as one native job) and the epoch's `[Avg]` line.
 */
export function trainLogLines(e: EpochLog, triplet = true): string[] {
  const f = (x: number) => formatFixedPy(x, 5);
  const losses = triplet
    ? `CELoss: ${f(e.loss.ce)}, TripletAngularMarginLoss: ${f(e.loss.triplet)}, loss: ${f(e.loss.total)}`
    : `CELoss: ${f(e.loss.ce)}, loss: ${f(e.loss.total)}`;
  return [
    // PaddleClas's iteration ids are 0-based; the scheduler's class names the lr.
    `[Train][Epoch ${e.epoch}/${e.epochs}][Iter: ${e.steps - 1}/${e.steps}]` +
      `lr(${e.warmup ? 'LinearWarmup' : 'CosineAnnealingDecay'}): ` +
      `${formatFixedPy(e.lr, 8)}, ${losses}, batch_cost: ${f(e.batchCost)}s, reader_cost: 0.00000, ` +
      `ips: ${f(e.ips)} samples/s, eta: ${clock(e.etaSeconds)}`,
    `[Train][Epoch ${e.epoch}/${e.epochs}][Avg]${losses}`,
  ];
}

/** One checkpoint as train_results.json lists it. */
export interface CheckpointEntry {
  score: number;
  prefix: string;
  /** The program file of its inference/ directory (inference.json or inference.pdmodel). */
  programFile: string;
  hasInfo: boolean;
}

function modelEntry(c: CheckpointEntry): PyJsonValue {
  const p = c.prefix;
  return {
    score: c.score,
    pdparams: `${p}/${p}.pdparams`,
    pdopt: '',
    pdstates: `${p}/${p}.pdstates`,
    inference_config: `${p}/inference/inference.yml`,
    pdmodel: `${p}/inference/${c.programFile}`,
    pdiparams: `${p}/inference/inference.pdiparams`,
    'pdiparams.info': c.hasInfo ? `${p}/inference/inference.pdiparams.info` : '',
  };
}

/**
 * `train_results.json` as PaddleClas's `update_train_results` writes it (`json.dump`, no indent,
 * ASCII): `last_1` is the newest `epoch_N` save, up to `last_5`; `best` the best model. There is
 * no `.pdopt` (our resume state is `<prefix>.pifstate`), so `pdopt` is empty.
 */
export function trainResultsJson(r: {
  modelName: string;
  last: readonly CheckpointEntry[];
  best: CheckpointEntry | null;
  done: boolean;
}): string {
  // PaddleClas starts with last_1..last_5 and best as empty dicts.
  const models: Record<string, PyJsonValue> = {};
  for (let i = 0; i < 5; i++) {
    const c = r.last[i];
    models[`last_${i + 1}`] = c === undefined ? {} : modelEntry(c);
  }
  models['best'] = r.best === null ? {} : modelEntry(r.best);
  return pyJsonDumps({
    model_name: r.modelName,
    label_dict: '',
    train_log: 'train.log',
    visualdl_log: '',
    config: 'config.yaml',
    models,
    done_flag: r.done,
  });
}

/** PaddleClas's line naming the best metric so far (a Python float repr). */
export function bestMetricLine(epoch: number, best: number): string {
  return `[Eval][Epoch ${epoch}][best metric: ${pyFloatRepr(best)}]`;
}

/** The `[Eval]` line of an evaluated epoch. */
export function evalLine(epoch: number, m: RetrievalMetrics): string {
  const f = (x: number) => formatFixedPy(x, 5);
  return `[Eval][Epoch ${epoch}][Avg]recall1: ${f(m.recall1)}, recall5: ${f(m.recall5)}, mAP: ${f(m.mAP)}`;
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null)) !== null;
}

/**
 * Writes `<output>/<prefix>/` whole: `fill` writes into a fresh temporary directory beside it,
 * which then replaces the old one by renames (old → `.<prefix>.old`, new → `<prefix>`, old
 * removed). A kill between the two renames leaves the previous checkpoint as `.<prefix>.old`,
 * which `findCheckpoint` still finds.
 */
export async function publishCheckpoint(
  output: string,
  prefix: string,
  fill: (dir: string) => Promise<void>,
): Promise<string> {
  const final = path.join(output, prefix);
  // A fixed name: what a killed run left there is removed by the next one.
  const tmp = path.join(output, `.${prefix}.tmp`);
  const old = path.join(output, `.${prefix}.old`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await fill(tmp);
  for (const sub of await readdir(tmp, { withFileTypes: true }))
    if (sub.isDirectory()) await fsyncDir(path.join(tmp, sub.name));
  await fsyncDir(tmp);
  if (await exists(final)) {
    await rm(old, { recursive: true, force: true });
    await rename(final, old);
  }
  await rename(tmp, final);
  await fsyncDir(output);
  await rm(old, { recursive: true, force: true });
  return final;
}

/**
 * The checkpoint directory that `ref` names: the directory itself, a file in it
 * (`latest/latest.pdparams`) or its prefix path (`latest/latest`, PaddleClas's form); when the
 * directory is missing but its `.old` copy (a kill mid-publish) exists, that copy.
 */
export async function findCheckpoint(ref: string): Promise<string | null> {
  const abs = path.resolve(ref);
  const candidates = [abs, path.dirname(abs)];
  for (const c of candidates) {
    const st = await stat(c).catch(() => null);
    if (st?.isDirectory() === true && (await exists(path.join(c, `${path.basename(c)}.pifstate`))))
      return c;
  }
  for (const c of candidates) {
    const old = path.join(path.dirname(c), `.${path.basename(c)}.old`);
    if (await exists(path.join(old, `${path.basename(c)}.pifstate`))) return old;
  }
  return null;
}

/** Appends lines to train.log (each line whole). */
export async function appendLog(file: string, lines: readonly string[]): Promise<void> {
  await appendFile(file, lines.map((l) => `${l}\n`).join(''));
}
