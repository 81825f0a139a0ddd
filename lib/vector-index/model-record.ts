/**
 * The model an index was built with (issue 15): `dir/model.json`, next to vector.index and
 * id_map.yaml (PaddleX's files are unchanged; PaddleX ignores this one).
 *
 * ```json
 * {
 *   "paddle_image_feature_model_record": 1,
 *   "saves": {
 *     "<vector.index SHA-256>": {
 *       "model_name": "PP-ShiTuV2_rec",
 *       "model_dir": "/abs/path/of/the/model",
 *       "feature_dim": 512,
 *       "weights_fingerprint": "sha256-sampled-v1:…",
 *       "preprocess_fingerprint": "sha256:…",
 *       "preprocess": { "size": [224, 224], "resize_short": null, "scale": 0.00392…, "mean": […], "std": […] }
 *     }
 *   }
 * }
 * ```
 *
 * Records are keyed by the stamp of the vector.index they describe, so the file needs no
 * protocol of its own: a save writes the record of the new vector.index plus the current one's
 * and renames model.json before the other two files (store.ts), so whichever vector.index a crash
 * leaves finds its record. An index whose vector.index has no record here (saved by an older
 * version, or never with a model) loads without a model check. Fingerprints:
 * lib/model-fingerprint.ts (the weights one is sampled).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { IndexError, type PifErrorDetails } from '../errors.js';
import { isPlainObject } from '../limits.js';
import type { ModelFingerprint, PreprocessRecord } from '../model-fingerprint.js';

export const MODEL_FILE = 'model.json';
const FORMAT_KEY = 'paddle_image_feature_model_record';
const FORMAT = 1;

/** The model recorded for an index. */
export interface IndexModelRecord {
  modelName: string;
  /** Absolute directory the model was loaded from when the index was saved. */
  modelDir: string;
  /** Feature size (0: the index held no vector). */
  dim: number;
  /** Sampled weights fingerprint (lib/model-fingerprint.ts). */
  weights: string;
  /** Preprocessing fingerprint. */
  preprocess: string;
  preprocessSpec: PreprocessRecord;
}

/** The record of a model whose features have `dim` values. */
export function recordOf(fp: ModelFingerprint, dim: number): IndexModelRecord {
  return {
    modelName: fp.modelName,
    modelDir: fp.modelDir,
    dim,
    weights: fp.weights,
    preprocess: fp.preprocess,
    preprocessSpec: fp.preprocessSpec,
  };
}

/** What differs: 'model name', 'feature dim', 'weights', 'preprocessing' (dim when both known). */
export function modelDifferences(
  expected: IndexModelRecord,
  found: Omit<IndexModelRecord, 'dim'> & { dim: number | null },
): string[] {
  const out: string[] = [];
  if (expected.modelName !== found.modelName) out.push('model name');
  if (expected.dim > 0 && found.dim !== null && found.dim > 0 && expected.dim !== found.dim) {
    out.push(`feature dim (${expected.dim} vs ${found.dim})`);
  }
  if (expected.weights !== found.weights) out.push('weights');
  if (expected.preprocess !== found.preprocess) out.push('preprocessing');
  return out;
}

/**
 * A PIF_INDEX error that is a conflict, not damage: the index and the model it is used with do
 * not belong together (other weights, preprocessing or feature size). Its name stays
 * `IndexError` (PaddleX-style `err_type` and messages are unchanged); the service answers 409.
 */
export class IndexConflictError extends IndexError {
  constructor(message: string, details?: PifErrorDetails) {
    super(message, details);
    this.name = 'IndexError';
  }
}

/**
 * The PIF_INDEX error for a model that is not the index's: names both models, what differs,
 * the index directory and what to pass instead.
 */
export function modelMismatchError(
  indexDir: string | null,
  expected: { modelName: string; modelDir: string },
  found: { modelName: string; modelDir: string },
  differences: readonly string[],
  what = 'the model given',
): IndexConflictError {
  const file = indexDir === null ? undefined : path.join(indexDir, MODEL_FILE);
  const hint =
    found.modelDir === expected.modelDir
      ? `the model in ${expected.modelDir} changed since the index was built: pass --model-dir ` +
        'with the model that built it, or build the index again'
      : `use the model that built it (--model-dir ${expected.modelDir}) or build the index again`;
  return new IndexConflictError(
    `${indexDir ?? 'an unsaved index'}: the index was built with the model ${expected.modelName} (${expected.modelDir}) ` +
      `but ${what} is ${found.modelName} (${found.modelDir}); they differ in ` +
      `${differences.join(', ')}; ${hint}`,
    { file },
  );
}

/** The text of model.json. */
export function modelFileText(records: ReadonlyMap<string, IndexModelRecord>): string {
  const saves: Record<string, unknown> = {};
  for (const [stamp, r] of records) {
    saves[stamp] = {
      model_name: r.modelName,
      model_dir: r.modelDir,
      feature_dim: r.dim,
      weights_fingerprint: r.weights,
      preprocess_fingerprint: r.preprocess,
      preprocess: {
        size: r.preprocessSpec.size,
        resize_short: r.preprocessSpec.resizeShort,
        scale: r.preprocessSpec.scale,
        mean: r.preprocessSpec.mean,
        std: r.preprocessSpec.std,
      },
    };
  }
  return `${JSON.stringify({ [FORMAT_KEY]: FORMAT, saves }, null, 2)}\n`;
}

function isNumbers(v: unknown, n: number | null): v is number[] {
  return (
    Array.isArray(v) &&
    (n === null || v.length === n) &&
    v.every((x) => typeof x === 'number' && Number.isFinite(x))
  );
}

function parseRecord(v: unknown): IndexModelRecord | null {
  if (!isPlainObject(v)) return null;
  const p = v['preprocess'];
  if (!isPlainObject(p)) return null;
  const { model_name, model_dir, feature_dim, weights_fingerprint, preprocess_fingerprint } = v;
  const size = p['size'];
  const short = p['resize_short'];
  if (
    typeof model_name !== 'string' ||
    typeof model_dir !== 'string' ||
    typeof feature_dim !== 'number' ||
    !Number.isSafeInteger(feature_dim) ||
    feature_dim < 0 ||
    typeof weights_fingerprint !== 'string' ||
    typeof preprocess_fingerprint !== 'string' ||
    !(size === null || isNumbers(size, 2)) ||
    !(short === null || typeof short === 'number') ||
    typeof p['scale'] !== 'number' ||
    !isNumbers(p['mean'], null) ||
    !isNumbers(p['std'], null)
  ) {
    return null;
  }
  return {
    modelName: model_name,
    modelDir: model_dir,
    dim: feature_dim,
    weights: weights_fingerprint,
    preprocess: preprocess_fingerprint,
    preprocessSpec: {
      size: size === null ? null : [size[0] as number, size[1] as number],
      resizeShort: short,
      scale: p['scale'],
      mean: p['mean'],
      std: p['std'],
    },
  };
}

/** Parses model.json; an IndexError naming the file when it is not one. */
export function parseModelFile(text: string, file: string): Map<string, IndexModelRecord> {
  const bad = (what: string, cause?: unknown): never => {
    throw new IndexError(`${file}: ${what}`, { file, ...(cause === undefined ? {} : { cause }) });
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    bad(`not valid JSON: ${(err as Error).message}`, err);
  }
  if (!isPlainObject(doc) || !isPlainObject(doc['saves'])) {
    return bad(`not a model record (expected {"${FORMAT_KEY}": 1, "saves": {…}})`);
  }
  const version = doc[FORMAT_KEY];
  if (version !== FORMAT) {
    bad(
      typeof version === 'number' && version > FORMAT
        ? `model record version ${version} is newer than this library reads (${FORMAT}); upgrade paddle-image-feature`
        : `unknown model record version ${JSON.stringify(version)}`,
    );
  }
  const out = new Map<string, IndexModelRecord>();
  for (const [stamp, v] of Object.entries(doc['saves'])) {
    const r = parseRecord(v);
    if (!/^[0-9a-f]{64}$/.test(stamp) || r === null) {
      bad(`damaged model record for ${JSON.stringify(stamp.slice(0, 64))}`);
    }
    out.set(stamp, r as IndexModelRecord);
  }
  return out;
}

/** The records of `dir/model.json`, or null when there is no such file. */
export async function readModelFile(dir: string): Promise<Map<string, IndexModelRecord> | null> {
  const file = path.join(dir, MODEL_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new IndexError(`${file}: cannot be read: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
  return parseModelFile(text, file);
}
