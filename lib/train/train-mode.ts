/**
 * PaddleX's `Global.mode=train` over `train()` (lib/train/train.ts): PaddleX's `Train.*` keys
 * (`epochs_iters`, `batch_size`, `learning_rate`, `warmup_steps`, `num_classes`,
 * `pretrain_weight_path`, `resume_path`, `log_interval`, `eval_interval`, `save_interval`) plus
 * ours (`Train.tier`, `Train.views`, `Train.cpu_threads`, `Global.seed`); the train.log lines on
 * stdout as PaddleX prints them, a progress bar on terminals, Ctrl-C stopping after the work in
 * hand (completed checkpoints stay).
 */
import { configGet, type ConfigMap } from '../config.js';
import { CancelledError, ConfigError } from '../errors.js';
import { formatFixedPy, roundMetric } from '../evaluate.js';
import { OFFICIAL_MODELS } from '../image-feature.js';
import { createProgress } from '../progress.js';
import { PyInt, type PyJsonValue } from '../pyjson.js';
import { clock } from './outputs.js';
import { train, type TrainOptions, type TrainTier } from './train.js';

export interface TrainModeIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  progress?: boolean;
}

function get(config: ConfigMap, key: string): unknown {
  const v = configGet(config, key);
  return v === null ? undefined : v;
}

function intKey(config: ConfigMap, key: string): number | undefined {
  const v = get(config, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new ConfigError(`${key} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

function strKey(config: ConfigMap, key: string): string | undefined {
  const v = get(config, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '')
    throw new ConfigError(`${key} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

/** `Train.pretrain_weight_path`: PaddleX's default is a training-checkpoint URL. */
function pretrainRef(config: ConfigMap, model: string, io: TrainModeIo): string | undefined {
  const ref = strKey(config, 'Train.pretrain_weight_path');
  if (ref === undefined || (OFFICIAL_MODELS as readonly string[]).includes(ref)) return ref;
  if (/^https?:\/\//.test(ref)) {
    io.stderr(
      `Train.pretrain_weight_path is a training checkpoint URL; training checkpoints are not loadable ` +
        `here, so training starts from the official inference model of ${model}\n`,
    );
    return undefined;
  }
  return ref;
}

/** The TrainOptions of a module config. */
export function trainOptionsFromConfig(config: ConfigMap, io: TrainModeIo): TrainOptions {
  const model = strKey(config, 'Global.model') ?? 'PP-ShiTuV2_rec';
  const device = strKey(config, 'Global.device') ?? 'cpu';
  if (!device.startsWith('cpu'))
    io.stderr(`Global.device ${device}: training runs on the CPU here\n`);
  const lr = get(config, 'Train.learning_rate');
  if (lr !== undefined && typeof lr !== 'number')
    throw new ConfigError(`Train.learning_rate must be a number, got ${JSON.stringify(lr)}`);
  const opts: TrainOptions = { model, output: strKey(config, 'Global.output') ?? 'output' };
  const set = <K extends keyof TrainOptions>(k: K, v: TrainOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  set('pretrainWeightPath', pretrainRef(config, model, io));
  set('tier', strKey(config, 'Train.tier') as TrainTier | undefined);
  set('epochs', intKey(config, 'Train.epochs_iters'));
  set('batchSize', intKey(config, 'Train.batch_size'));
  set('learningRate', lr);
  set('warmupEpochs', intKey(config, 'Train.warmup_steps'));
  set('numClasses', intKey(config, 'Train.num_classes'));
  set('views', intKey(config, 'Train.views'));
  set('cpuThreads', intKey(config, 'Train.cpu_threads'));
  set('seed', intKey(config, 'Global.seed'));
  set('resumePath', strKey(config, 'Train.resume_path'));
  set('logInterval', intKey(config, 'Train.log_interval'));
  set('evalInterval', intKey(config, 'Train.eval_interval'));
  set('saveInterval', intKey(config, 'Train.save_interval'));
  return opts;
}

/** Runs the mode; resolves the result object of train_result.json. */
export async function trainMode(
  config: ConfigMap,
  io: TrainModeIo,
): Promise<{ [key: string]: PyJsonValue }> {
  const dir = strKey(config, 'Global.dataset_dir');
  if (dir === undefined)
    throw new ConfigError('Global.dataset_dir is not set (-o Global.dataset_dir=<dataset>)');
  const opts = trainOptionsFromConfig(config, io);
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    io.stderr(
      '\nstopping after the work in hand (completed checkpoints stay); Ctrl-C again to quit now\n',
    );
    abort.abort(
      new CancelledError(
        'training was interrupted (Ctrl-C); the completed checkpoints stay (resume with -o Train.resume_path=<output>/latest)',
      ),
    );
  };
  process.on('SIGINT', onSigint);
  const bar = createProgress('train', { enabled: io.progress === true });
  try {
    const r = await train(dir, {
      ...opts,
      config,
      signal: abort.signal,
      onLog: (line) => {
        io.stdout(`${line}\n`);
      },
      onProgress: (p) => {
        if (p.phase === 'cache') {
          bar.setTotal(p.total);
          bar.update(p.done, opts.tier === 'last-stage' ? 'checking images' : 'caching features');
        } else if (p.phase === 'step') {
          bar.setTotal(p.steps);
          bar.update(
            p.step,
            `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${formatFixedPy(p.loss, 4)}`,
          );
        } else if (p.phase === 'epoch') {
          bar.setTotal(p.epochs);
          bar.update(
            p.epoch,
            `epoch ${p.epoch}/${p.epochs} loss ${formatFixedPy(p.loss, 4)} ${Math.round(p.imagesPerSec)} img/s eta ${clock(p.etaSeconds)}`,
          );
        }
      },
    });
    bar.stop();
    const metrics = (m: { recall1: number; recall5: number; mAP: number }) => ({
      recall1: roundMetric(m.recall1),
      recall5: roundMetric(m.recall5),
      mAP: roundMetric(m.mAP),
    });
    return {
      best_model: r.bestModelDir,
      best_epoch: r.best === null ? null : new PyInt(r.best.epoch),
      metrics: r.best === null ? null : metrics(r.best.metrics),
      initial_metrics: metrics(r.initial),
      epochs: new PyInt(r.history.at(-1)?.epoch ?? 0),
      train_results: 'train_results.json',
    };
  } finally {
    bar.stop();
    process.removeListener('SIGINT', onSigint);
  }
}
