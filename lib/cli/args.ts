/**
 * Shared by the CLI modules: commander argument parsers (bad values fail up front, exit 2),
 * the model name of --model/--model-dir, and the --json line of a failed input.
 */
import { InvalidArgumentError as CommanderArgError, Option } from 'commander';

import { PifError } from '../errors.js';
import { HPI_BACKENDS, type HpiBackend } from '../hpi-config.js';
import { pyJsonDumps } from '../pyjson.js';

/** An integer in [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CommanderArgError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** A finite number in [min, max]. */
export function numberArg(min = -Infinity, max = Infinity): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new CommanderArgError(
        Number.isFinite(min) || Number.isFinite(max)
          ? `expected a number from ${min} to ${max}`
          : 'expected a number',
      );
    }
    return n;
  };
}

/**
 * The model name for `--model` / `--model-dir`: the name given, else the one in the model
 * directory's inference.yml (so `--model-dir` alone works for any of the three models), else
 * PP-ShiTuV2_rec.
 */
export async function modelNameFor(model?: string, modelDir?: string): Promise<string> {
  if (model !== undefined) return model;
  if (modelDir !== undefined) {
    const { loadInferenceConfig } = await import('../modeldir.js');
    return (await loadInferenceConfig(modelDir)).Global.model_name;
  }
  return 'PP-ShiTuV2_rec';
}

/** Help text of the `--model` option. */
export const HPI_OPTION_HELP =
  "high-performance mode: the backend PaddleX's auto_config picks for the model (see --hpi-backend)";
export const HPI_BACKEND_HELP =
  'hpi backend: paddle_mkldnn (our oneDNN engine), paddle, or onnxruntime (needs onnxruntime-node); implies --hpi';

/** --hpi-backend, its values checked by commander (exit 2). */
export function hpiBackendOption(): Option {
  return new Option('--hpi-backend <name>', HPI_BACKEND_HELP).choices([...HPI_BACKENDS]);
}

/** createModel's useHpip/hpiConfig of --hpi and --hpi-backend. */
export function hpiModelOptions(o: { hpi: boolean; hpiBackend?: string }): {
  useHpip: boolean;
  hpiConfig?: { backend: HpiBackend };
} {
  if (o.hpiBackend === undefined) return { useHpip: o.hpi };
  return { useHpip: true, hpiConfig: { backend: o.hpiBackend as HpiBackend } };
}

export const MODEL_OPTION_HELP =
  'official model (PP-ShiTuV2_rec, PP-ShiTuV2_rec_CLIP_vit_base, PP-ShiTuV2_rec_CLIP_vit_large); ' +
  'default: the name in --model-dir/inference.yml, else PP-ShiTuV2_rec';

/**
 * The `--json` line of an input that failed: the result's shape (`{"res": {"input_path": ...,
 * "page_index": null, ...}}`) with `error: { code, message }` in place of the feature, written
 * with the same separators as a result line (Python's json.dumps), so one parser reads both.
 */
export function errorJsonLine(inputPath: string | null, error: Error): string {
  const code = error instanceof PifError ? error.code : 'PIF_INTERNAL';
  return pyJsonDumps(
    { res: { input_path: inputPath, page_index: null, error: { code, message: error.message } } },
    { indent: null, ensureAscii: false },
  );
}

/** Commander's collector of a repeatable option. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
