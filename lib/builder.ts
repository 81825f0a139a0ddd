/**
 * Test models of the three targets: the exact exported graphs of PP-ShiTuV2_rec and the two
 * CLIP ViT feature models with seeded random weights (official weights come from Baidu's
 * model host at run time). Tests and benchmarks use them; users can smoke-test a deployment.
 */
import path from 'node:path';

import { captureCaller, InvalidArgumentError } from './errors.js';
import { describeValue, isPlainObject, checkKnownKeys } from './limits.js';
import { checkPath } from './model.js';
import { nativeBinding } from './native.js';

export const BUILDABLE_MODELS = [
  'PP-ShiTuV2_rec',
  'PP-ShiTuV2_rec_CLIP_vit_base',
  'PP-ShiTuV2_rec_CLIP_vit_large',
] as const;
export type BuildableModel = (typeof BUILDABLE_MODELS)[number];

export interface BuildModelOptions {
  /** 'pir' (inference.json, Paddle 3 export; default) or 'legacy' (inference.pdmodel). */
  format?: 'pir' | 'legacy';
  /** Weight seed (default 0). The same seed gives the same weights in both formats. */
  seed?: number;
  /**
   * CLIP MLP activation: exact 'gelu' (default; PaddleClas's CLIP models use nn.GELU since
   * 2024-05, which PaddleX exports) or 'quick_gelu' (x·sigmoid(1.702x), older CLIP exports).
   */
  clipActivation?: 'gelu' | 'quick_gelu';
  /** CLIP models with this many encoder blocks (default: 12 / 24), e.g. 1 for small tests. */
  vitDepth?: number;
}

/**
 * The builder's version: it changes whenever a built graph or its weights change for some
 * (name, format, seed), so caches of built models can key on it.
 */
export function builderVersion(): number {
  return nativeBinding().builderVersion;
}

/** Writes `name` to `outDir`: program, inference.pdiparams and inference.yml. */
export async function buildModel(
  name: string,
  outDir: string,
  options: BuildModelOptions = {},
): Promise<{ programFile: string; paramsFile: string; configFile: string }> {
  const convert = captureCaller(buildModel);
  if (!(BUILDABLE_MODELS as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(
      `unknown model ${describeValue(name)}; buildable: ${BUILDABLE_MODELS.join(', ')}`,
    );
  }
  const dir = checkPath(outDir, 'outDir');
  if (!isPlainObject(options)) {
    throw new InvalidArgumentError(`options must be an object, got ${describeValue(options)}`);
  }
  checkKnownKeys(options, ['format', 'seed', 'clipActivation', 'vitDepth'], 'buildModel options');
  try {
    return await nativeBinding().buildModel(name, path.resolve(dir), { ...options });
  } catch (err) {
    throw convert(err);
  }
}
