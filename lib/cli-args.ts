/** Commander argument parsers shared by the CLI modules: bad values fail up front (exit 2). */
import { InvalidArgumentError as CommanderArgError } from 'commander';

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
    const { loadInferenceConfig } = await import('./modeldir.js');
    return (await loadInferenceConfig(modelDir)).Global.model_name;
  }
  return 'PP-ShiTuV2_rec';
}

/** Help text of the `--model` option. */
export const MODEL_OPTION_HELP =
  'official model (PP-ShiTuV2_rec, PP-ShiTuV2_rec_CLIP_vit_base, PP-ShiTuV2_rec_CLIP_vit_large); ' +
  'default: the name in --model-dir/inference.yml, else PP-ShiTuV2_rec';
