/**
 * PaddleX's module engine (`main.py -c <yaml> -o Global.mode=...`, spec §5.3): one function per
 * mode, each returning the result object that goes into `<Global.output>/<mode>_result.json`
 * (`{"done_flag": true, ...}`); a failure writes `{"done_flag": false, "err_type", "err_msg"}`
 * and the command exits non-zero. Unlike PaddleX, every mode writes its result file (predict and
 * export too), so scripts can always read the outcome.
 */
import { copyFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { FailedInputs } from './cli/failures.js';
import { configGet, type ConfigMap, type ConfigValue } from './config.js';
import { ConfigError, PifError, UnsupportedError } from './errors.js';
import { engineNote, validateHpiConfig, type HpiConfig } from './hpi-config.js';
import { exportOnnx, ONNX_FILE_NAME } from './export.js';
import {
  createModel,
  OFFICIAL_MODELS,
  officialModelDir,
  type FeatureModel,
} from './image-feature.js';
import { saveModel } from './model.js';
import { resolveModelDir } from './modeldir.js';
import { PyInt, pyJsonDumps, type PyJsonValue } from './pyjson.js';
import { writeFileAtomic } from './fsutil.js';
import { createProgress } from './progress.js';

/** The modes this build runs (train: lib/train/train-mode.ts). */
export const SUPPORTED_MODES = ['check_dataset', 'train', 'evaluate', 'predict', 'export'] as const;
export type Mode = (typeof SUPPORTED_MODES)[number];

export interface ModeIo {
  /** Human output (PaddleX prints results and logs to stdout). */
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Show progress bars (only drawn when stderr is a TTY). */
  progress?: boolean;
}

type ResultObject = { [key: string]: PyJsonValue };

function str(config: ConfigMap, key: string, def?: string): string {
  const v = configGet(config, key);
  if (v === undefined || v === null) {
    if (def !== undefined) return def;
    throw new ConfigError(`${key} is not set (give it in the config or with -o ${key}=...)`);
  }
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw new ConfigError(`${key} must be a string, got ${JSON.stringify(v)}`);
  }
  return String(v);
}

function optStr(config: ConfigMap, key: string): string | null {
  const v = configGet(config, key);
  return v === undefined || v === null ? null : str(config, key);
}

function int(config: ConfigMap, key: string, def: number, min = 1): number {
  const v = configGet(config, key);
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new ConfigError(`${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(config: ConfigMap, key: string): boolean {
  const v = configGet(config, key);
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean')
    throw new ConfigError(`${key} must be True or False, got ${JSON.stringify(v)}`);
  return v;
}

/** `kernel_option.run_mode` → our run mode (spec §4.3). */
function runModeOptions(runMode: string | null): { useHpip: boolean; precision: 'fp32' | 'bf16' } {
  switch (runMode ?? 'paddle') {
    case 'paddle':
    case 'paddle_fp32':
      return { useHpip: false, precision: 'fp32' };
    case 'mkldnn':
      return { useHpip: true, precision: 'fp32' };
    case 'mkldnn_bf16':
      return { useHpip: true, precision: 'bf16' };
    default:
      throw new UnsupportedError(
        `run_mode '${String(runMode)}' is not available on CPU; use paddle (normal mode), ` +
          'mkldnn (high-performance mode) or mkldnn_bf16',
      );
  }
}

const INFERENCE_FILES = ['inference.json', 'inference.pdmodel', '__model__', 'model.pdmodel'];

async function isModelDir(dir: string): Promise<boolean> {
  for (const f of INFERENCE_FILES) {
    if ((await stat(path.join(dir, f)).catch(() => null))?.isFile() === true) return true;
  }
  return false;
}

/**
 * Where the weights of `Evaluate`/`Export` come from. `model_dir` (ours) wins; else
 * `weight_path`: an inference model directory, a directory with an `inference/` export, or a
 * PaddleClas `*.pdparams` checkpoint whose sibling `inference/` export is used (training
 * checkpoints themselves need the training code to load). An http(s) URL or an official model
 * name means the official inference model of `Global.model`. Returns a model dir or null (= the
 * official model).
 */
async function resolveWeights(
  config: ConfigMap,
  section: 'Evaluate' | 'Export',
  io: ModeIo,
): Promise<string | null> {
  const modelDir = optStr(config, `${section}.model_dir`);
  const model = str(config, 'Global.model');
  const ref = modelDir ?? optStr(config, `${section}.weight_path`);
  if (ref === null || (OFFICIAL_MODELS as readonly string[]).includes(ref)) return null;
  if (/^https?:\/\//.test(ref)) {
    io.stderr(
      `${section}.weight_path is a training checkpoint URL; training checkpoints are not loadable ` +
        `here, so the official inference model of ${model} is used\n`,
    );
    return null;
  }
  const abs = path.resolve(ref);
  const st = await stat(abs).catch(() => null);
  if (st?.isDirectory() === true) {
    if (await isModelDir(abs)) return abs;
    if (await isModelDir(path.join(abs, 'inference'))) return path.join(abs, 'inference');
  } else if (st?.isFile() === true && abs.endsWith('.pdparams')) {
    const sibling = path.join(path.dirname(abs), 'inference');
    if (await isModelDir(sibling)) return sibling;
  }
  const key = modelDir !== null ? `${section}.model_dir` : `${section}.weight_path`;
  throw new ConfigError(
    `${key} ${abs} is not an inference model: ${st === null ? 'it does not exist' : 'no inference.json/inference.pdmodel there or in an inference/ folder beside it'}. ` +
      `Set -o ${section}.model_dir=<inference model dir> or -o ${section}.model_dir=${model} (official model)`,
    { file: abs },
  );
}

/**
 * `Predict.use_hpip` and `Predict.hpi_config` (spec §4.5): with use_hpip, hpi_config decides the
 * backend (PaddleX ignores kernel_option then); null when use_hpip is off.
 */
function hpiSettings(config: ConfigMap): { hpiConfig: HpiConfig } | null {
  if (!bool(config, 'Predict.use_hpip')) return null;
  const raw = configGet(config, 'Predict.hpi_config');
  try {
    validateHpiConfig(raw, 'Predict.hpi_config');
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return { hpiConfig: (raw ?? {}) as HpiConfig };
}

async function openModel(
  config: ConfigMap,
  modelDir: string | null,
  extra: { batchSize?: number; runMode?: string | null; hpi?: { hpiConfig: HpiConfig } | null },
): Promise<FeatureModel> {
  const device = str(config, 'Global.device', 'cpu');
  const { useHpip, precision } =
    extra.hpi != null
      ? { useHpip: true, precision: 'fp32' as const }
      : runModeOptions(extra.runMode ?? null);
  return createModel(str(config, 'Global.model'), {
    ...(modelDir === null ? {} : { modelDir }),
    device: device.startsWith('cpu') ? 'cpu' : device,
    useHpip,
    precision,
    ...(extra.hpi != null ? { hpiConfig: extra.hpi.hpiConfig } : {}),
    ...(extra.batchSize === undefined ? {} : { batchSize: extra.batchSize }),
  });
}

async function checkDatasetMode(config: ConfigMap, io: ModeIo): Promise<ResultObject> {
  const dir = str(config, 'Global.dataset_dir');
  const output = str(config, 'Global.output', 'output');
  if (bool(config, 'CheckDataset.convert.enable')) {
    const type = optStr(config, 'CheckDataset.convert.src_dataset_type') ?? 'null';
    const { convertLabelMe } = await import('./dataset/convert.js');
    const bar = createProgress('convert', { enabled: io.progress === true });
    const r = await convertLabelMe(dir, {
      srcDatasetType: type,
      onProgress: (done, total) => {
        bar.setTotal(total);
        bar.update(done);
      },
    }).finally(() => {
      bar.stop();
    });
    io.stdout(
      `Converted ${type} dataset: train ${r.counts.train}, gallery ${r.counts.gallery}, query ${r.counts.query}\n`,
    );
  }
  if (bool(config, 'CheckDataset.split.enable')) {
    const pct = (k: string): number => {
      const v = configGet(config, `CheckDataset.split.${k}`);
      if (typeof v !== 'number') {
        throw new ConfigError(`CheckDataset.split.${k} must be a number, got ${JSON.stringify(v)}`);
      }
      return v;
    };
    const { splitDataset } = await import('./dataset/split.js');
    const r = await splitDataset(dir, {
      trainPercent: pct('train_percent'),
      galleryPercent: pct('gallery_percent'),
      queryPercent: pct('query_percent'),
      seed: int(config, 'CheckDataset.split.seed', 123, 0),
    });
    io.stdout(
      `Split dataset: train ${r.counts.train}, gallery ${r.counts.gallery}, query ${r.counts.query}\n`,
    );
  }
  const { checkDataset } = await import('./dataset/check.js');
  const bar = createProgress('check', { enabled: io.progress === true });
  const result = await checkDataset(dir, {
    output,
    onProgress: (done, total) => {
      bar.setTotal(total);
      bar.update(done);
    },
  }).finally(() => {
    bar.stop();
  });
  io.stdout('Check dataset passed !\n');
  return { ...result };
}

async function evaluateMode(config: ConfigMap, io: ModeIo): Promise<ResultObject> {
  const dir = str(config, 'Global.dataset_dir');
  const modelDir = await resolveWeights(config, 'Evaluate', io);
  const batchSize = int(config, 'Evaluate.batch_size', 32);
  // Features come from the predictor, so Predict's run mode and hpi settings apply here too.
  const hpi = hpiSettings(config);
  const model = await openModel(config, modelDir, {
    batchSize,
    runMode: optStr(config, 'Predict.kernel_option.run_mode'),
    hpi,
  });
  if (hpi !== null) io.stderr(`${engineNote(model.engine)}\n`);
  const { evaluateDataset } = await import('./evaluate-dataset.js');
  const { evalLogLine, roundMetric } = await import('./evaluate.js');
  const bar = createProgress('features', { enabled: io.progress === true });
  try {
    const r = await evaluateDataset(dir, model, {
      onProgress: (done, total) => {
        bar.setTotal(total);
        bar.update(done);
      },
    });
    bar.stop();
    const m = r.metrics;
    io.stdout(`${evalLogLine(m)}\n`);
    return {
      metrics: {
        recall1: roundMetric(m.recall1),
        recall5: roundMetric(m.recall5),
        mAP: roundMetric(m.mAP),
      },
    };
  } finally {
    bar.stop();
    model.close();
  }
}

async function predictMode(config: ConfigMap, io: ModeIo): Promise<ResultObject> {
  const input = configGet(config, 'Predict.input');
  if (input === undefined || input === null) {
    throw new ConfigError('Predict.input is not set (-o Predict.input=<image, directory or URL>)');
  }
  const inputs: string[] = (Array.isArray(input) ? input : [input]).map((v: ConfigValue) => {
    if (typeof v !== 'string') {
      throw new ConfigError(
        `Predict.input must be a path, URL or a list of them, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  });
  const modelDirRaw = optStr(config, 'Predict.model_dir');
  const modelDir = modelDirRaw === null ? null : path.resolve(modelDirRaw);
  if (modelDir !== null && (await stat(modelDir).catch(() => null)) === null) {
    throw new ConfigError(
      `Predict.model_dir ${modelDir} does not exist; use -o Predict.model_dir=None for the official ` +
        `${str(config, 'Global.model')} model`,
      { file: modelDir },
    );
  }
  const output = str(config, 'Global.output', 'output');
  const hpi = hpiSettings(config);
  const model = await openModel(config, modelDir, {
    batchSize: int(config, 'Predict.batch_size', 1),
    runMode: optStr(config, 'Predict.kernel_option.run_mode'),
    hpi,
  });
  if (hpi !== null) io.stderr(`${engineNote(model.engine)}\n`);
  const saved: PyJsonValue[] = [];
  const failed = new FailedInputs(io);
  try {
    for await (const res of model.predict(inputs)) {
      if (res.error !== null) {
        failed.report(res.inputPath, res.error);
        continue;
      }
      io.stdout(`${res.toString()}\n`);
      saved.push(await res.saveToJson(output));
    }
  } finally {
    model.close();
  }
  failed.throwIfAny(
    (n, first) =>
      `${n} input(s) could not be processed, the others were saved; the first: ` +
      `${first.path ?? '<input>'}: ${first.error.message}`,
  );
  return { num_results: new PyInt(saved.length), saved };
}

async function exportMode(config: ConfigMap, io: ModeIo): Promise<ResultObject> {
  let src = await resolveWeights(config, 'Export', io);
  // The official model: its directory in the cache (downloaded when missing), not loaded.
  src ??= await officialModelDir(str(config, 'Global.model'));
  const output = path.resolve(str(config, 'Global.output', 'output'));
  const format = optStr(config, 'Export.format') ?? 'paddle';
  if (format === 'onnx') {
    // exportOnnx creates Global.output (with its parents) when it does not exist yet.
    const r = await exportOnnx(src, path.join(output, ONNX_FILE_NAME));
    io.stdout(`wrote ${r.file} (${r.bytes} bytes)\n`);
    return { format: 'onnx', files: [r.file] };
  }
  if (format !== 'paddle') {
    throw new ConfigError(`Export.format must be paddle or onnx, got '${format}'`);
  }
  const resolved = await resolveModelDir(src);
  const r = await saveModel(src, output);
  const files: string[] = [r.programFile, ...(r.paramsFile === null ? [] : [r.paramsFile])];
  if (resolved.configFile !== null) {
    const yml = path.join(output, 'inference.yml');
    if (path.resolve(resolved.configFile) !== yml) await copyFile(resolved.configFile, yml);
    files.push(yml);
  }
  for (const f of files) io.stdout(`wrote ${f}\n`);
  return { format: 'paddle', files };
}

async function trainMode(config: ConfigMap, io: ModeIo): Promise<ResultObject> {
  return (await import('./train/train-mode.js')).trainMode(config, io);
}

const RUNNERS: Record<Mode, (c: ConfigMap, io: ModeIo) => Promise<ResultObject>> = {
  check_dataset: checkDatasetMode,
  train: trainMode,
  evaluate: evaluateMode,
  predict: predictMode,
  export: exportMode,
};

/** PaddleX's `err_type`: `<class '...'>` with PaddleX's class name where one corresponds. */
export function errType(err: unknown): string {
  if (err instanceof PifError) {
    const px = (err as PifError & { paddlexType?: string }).paddlexType;
    return `<class '${px ?? err.name}'>`;
  }
  return `<class '${err instanceof Error ? err.name : typeof err}'>`;
}

async function writeResult(output: string, mode: string, body: ResultObject): Promise<string> {
  const file = path.join(output, `${mode}_result.json`);
  await writeFileAtomic(file, pyJsonDumps(body, { indent: 2, ensureAscii: false }));
  return file;
}

/**
 * Runs `Global.mode` of a loaded config. Writes `<output>/<mode>_result.json` and returns the
 * exit code (0 ok, 1 failure); the error is reported on `io.stderr`.
 */
export async function runMode(config: ConfigMap, io: ModeIo): Promise<number> {
  const mode = configGet(config, 'Global.mode');
  const output = (() => {
    const v = configGet(config, 'Global.output');
    return typeof v === 'string' && v !== '' ? v : 'output';
  })();
  const safeMode = typeof mode === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(mode);
  try {
    if (typeof mode !== 'string' || !(SUPPORTED_MODES as readonly string[]).includes(mode)) {
      throw new UnsupportedError(
        `Global.mode ${JSON.stringify(mode ?? null)}: unknown mode. Supported modes: ${SUPPORTED_MODES.join(', ')}`,
      );
    }
    const result = await RUNNERS[mode as Mode](config, io);
    await writeResult(output, mode, { done_flag: true, ...result });
    return 0;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const code = err instanceof PifError ? ` [${err.code}]` : '';
    io.stderr(
      `paddle-image-feature: ${typeof mode === 'string' ? mode : 'mode'} failed${code}: ${e.message}\n`,
    );
    if (safeMode) {
      const body: ResultObject = {
        done_flag: false,
        err_type: errType(err),
        err_msg: e.message,
        ...(err instanceof PifError ? { err_code: err.code } : {}),
      };
      await writeResult(output, mode, body).catch((werr: unknown) => {
        io.stderr(
          `paddle-image-feature: cannot write the result file: ${(werr as Error).message}\n`,
        );
      });
    }
    if (!(err instanceof PifError)) throw err;
    return 1;
  }
}
