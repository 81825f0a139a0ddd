/**
 * Fingerprints of a feature model, so that a vector index can record the model that built it
 * (lib/vector-index/model-record.ts) and refuse another one.
 *
 * - **weights**: SHA-256 over the program file (all of it) and the parameters file, **sampled**:
 *   its size plus {@link SAMPLE_CHUNKS} chunks of {@link SAMPLE_BYTES} bytes at evenly spaced
 *   offsets (first and last included; a file up to SAMPLE_CHUNKS × SAMPLE_BYTES is read whole).
 *   So 1 MiB is read of a 1.2 GB params file, with fs/promises (never blocking the event loop).
 *   Two weight files that differ only between the samples get the same fingerprint: it tells
 *   models apart (other training, other seed, other export), it does not prove two files equal.
 *   Without a combined params file (legacy one file per variable) every other file of the
 *   directory is sampled, in name order.
 * - **preprocess**: SHA-256 of the resolved preprocessing (size or resize_short, scale, mean,
 *   std) as canonical JSON.
 *
 * Computed once per model, on first need, and cached (the files are read after the model was
 * loaded: replacing them under a running model changes what the fingerprint says).
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { PifError, PifIoError } from './errors.js';
import type { FeatureModel, ModelPreprocess } from './image-feature.js';
import { INFERENCE_CONFIG_FILE, resolveModelDir } from './modeldir.js';

/** Chunks sampled from a large weights file. */
export const SAMPLE_CHUNKS = 16;
/** Bytes per sampled chunk. */
export const SAMPLE_BYTES = 64 << 10;
const WEIGHTS_SCHEME = 'sha256-sampled-v1';
const PREPROCESS_SCHEME = 'sha256';

/** What identifies a model for a vector index. */
export interface ModelFingerprint {
  modelName: string;
  /** Absolute model directory. */
  modelDir: string;
  /** `sha256-sampled-v1:<hex>` over the program and (sampled) parameters. */
  weights: string;
  /** `sha256:<hex>` over {@link ModelFingerprint.preprocessSpec}. */
  preprocess: string;
  /** The resolved preprocessing the fingerprint covers. */
  preprocessSpec: PreprocessRecord;
}

/** The resolved preprocessing, as recorded: a fixed size or resize_short, and normalisation. */
export interface PreprocessRecord {
  /** [w, h], or null with resizeShort. */
  size: [number, number] | null;
  resizeShort: number | null;
  scale: number;
  mean: number[];
  std: number[];
}

/** The record of a model's preprocessing (defaults filled in as the preprocessor does). */
export function preprocessRecord(p: Readonly<ModelPreprocess>): PreprocessRecord {
  const short = p.resizeShort ?? null;
  return {
    size: short === null ? [p.width, p.height] : null,
    resizeShort: short,
    scale: p.scale ?? 1 / 255,
    mean: [...(p.mean ?? [0.485, 0.456, 0.406])],
    std: [...(p.std ?? [0.229, 0.224, 0.225])],
  };
}

/** `sha256:<hex>` of a preprocessing record (keys in a fixed order). */
export function preprocessFingerprint(r: PreprocessRecord): string {
  const canonical = JSON.stringify([r.size, r.resizeShort, r.scale, r.mean, r.std]);
  return `${PREPROCESS_SCHEME}:${createHash('sha256').update(canonical).digest('hex')}`;
}

/** Feeds `file` into `hash`: its size, then all of it or the evenly spaced samples. */
async function hashFile(hash: Hash, file: string, sampled: boolean): Promise<void> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new PifIoError(`cannot read ${file} for its fingerprint: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
  try {
    const { size } = await fh.stat();
    hash.update(`${path.basename(file)}\0${size}\0`);
    const whole = !sampled || size <= SAMPLE_CHUNKS * SAMPLE_BYTES;
    const chunk = whole ? Math.min(Math.max(size, 1), 8 << 20) : SAMPLE_BYTES;
    const buf = Buffer.alloc(chunk);
    const offsets: number[] = [];
    if (whole) for (let off = 0; off < size; off += chunk) offsets.push(off);
    else {
      const step = (size - SAMPLE_BYTES) / (SAMPLE_CHUNKS - 1);
      for (let i = 0; i < SAMPLE_CHUNKS; i++) offsets.push(Math.round(i * step));
    }
    for (const off of offsets) {
      const want = Math.min(chunk, size - off);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, off + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      hash.update(buf.subarray(0, got));
    }
  } catch (err) {
    if (err instanceof PifError) throw err;
    throw new PifIoError(`cannot read ${file} for its fingerprint: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  } finally {
    await fh.close();
  }
}

/** The parameter files of a model directory, as the native reader finds them. */
async function paramsFiles(dir: string, programFile: string): Promise<string[]> {
  const base = path.basename(programFile);
  const stem = base.includes('.') ? base.slice(0, base.lastIndexOf('.')) : base;
  const combined = [`${stem}.pdiparams`, ...(base === '__model__' ? ['__params__', 'params'] : [])];
  for (const name of combined) {
    const s = await stat(path.join(dir, name)).catch(() => null);
    if (s?.isFile() === true) return [path.join(dir, name)];
  }
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('.') || name === base || name === INFERENCE_CONFIG_FILE) continue;
    const file = path.join(dir, name);
    if ((await stat(file).catch(() => null))?.isFile() === true) out.push(file);
  }
  return out;
}

/** `sha256-sampled-v1:<hex>` of the model in `modelDir` (see the module comment). */
export async function weightsFingerprint(modelDir: string): Promise<string> {
  const { dir, programFile } = await resolveModelDir(modelDir);
  const hash = createHash('sha256');
  await hashFile(hash, programFile, false);
  for (const file of await paramsFiles(dir, programFile)) await hashFile(hash, file, true);
  return `${WEIGHTS_SCHEME}:${hash.digest('hex')}`;
}

const cache = new WeakMap<FeatureModel, Promise<ModelFingerprint>>();

/** The fingerprint of a model: computed on the first call, then cached. */
export function modelFingerprint(model: FeatureModel): Promise<ModelFingerprint> {
  let fp = cache.get(model);
  if (fp === undefined) {
    const spec = preprocessRecord(model.preprocess);
    fp = weightsFingerprint(model.modelDir).then((weights) => ({
      modelName: model.modelName,
      modelDir: model.modelDir,
      weights,
      preprocess: preprocessFingerprint(spec),
      preprocessSpec: spec,
    }));
    // A failed read is not cached: the next call tries again.
    fp.catch(() => cache.delete(model));
    cache.set(model, fp);
  }
  return fp;
}
