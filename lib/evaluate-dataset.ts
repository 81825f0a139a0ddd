/**
 * Evaluation of a model on a ShiTuRecDataset (PaddleX `Global.mode=evaluate`): features of every
 * gallery.txt and query.txt image through the model (batched, L2-normalised), then recall@k and
 * mAP exactly as PaddleClas computes them (lib/evaluate.ts, native and blockwise).
 */
import { InputDecodeError } from './errors.js';
import { evaluateFeatures, type RetrievalMetrics } from './evaluate.js';
import type { FeatureModel } from './image-feature.js';
import { findDatasetRoot, parseIntLabel, readDatasetList } from './dataset/lists.js';

export interface EvaluateDatasetOptions {
  /** Images per inference call (default: the model's batch size). */
  batchSize?: number;
  /** Queries per similarity block (PaddleClas `sim_block_size`, default 64). */
  blockSize?: number;
  /** Threads for the similarity/ranking step (default 1). */
  threads?: number;
  /** Called after each image with (done, total) over gallery + query. */
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluateDatasetResult {
  /** The dataset root (the parent of `images/`). */
  root: string;
  gallerySize: number;
  querySize: number;
  dim: number;
  /** Raw fractions (not rounded). */
  metrics: RetrievalMetrics;
}

/**
 * Labels as dense class numbers: equal integer labels (Python int() semantics, checked by the
 * list reader) get equal numbers, so arbitrarily large labels compare exactly.
 */
function denseLabels(
  lists: readonly (readonly { label: string }[])[],
  parse: (label: string) => bigint,
): Float64Array[] {
  const ids = new Map<bigint, number>();
  return lists.map((entries) =>
    Float64Array.from(entries, (e) => {
      const v = parse(e.label);
      let id = ids.get(v);
      if (id === undefined) {
        id = ids.size;
        ids.set(v, id);
      }
      return id;
    }),
  );
}

async function featuresOf(
  model: FeatureModel,
  files: readonly string[],
  batchSize: number | undefined,
  tick: () => void,
): Promise<{ data: Float32Array; dim: number }> {
  let data: Float32Array | null = null;
  let dim = 0;
  let i = 0;
  const opts = batchSize === undefined ? {} : { batchSize };
  for await (const r of model.predict([...files], opts)) {
    if (r.error !== null) {
      const file = files[i] ?? r.inputPath ?? '';
      throw new InputDecodeError(`cannot compute the feature of ${file}: ${r.error.message}`, {
        file,
        cause: r.error,
      });
    }
    if (data === null) {
      dim = r.feature.length;
      data = new Float32Array(dim * files.length);
    }
    data.set(r.feature, i * dim);
    i++;
    tick();
  }
  return { data: data ?? new Float32Array(0), dim };
}

/** Extracts gallery and query features with `model` and computes recall@1/5 and mAP. */
export async function evaluateDataset(
  datasetDir: string,
  model: FeatureModel,
  options: EvaluateDatasetOptions = {},
): Promise<EvaluateDatasetResult> {
  const root = await findDatasetRoot(datasetDir);
  const gallery = await readDatasetList(root, 'gallery', { checkLabels: true });
  const query = await readDatasetList(root, 'query', { checkLabels: true });
  const [galleryLabels = new Float64Array(0), queryLabels = new Float64Array(0)] = denseLabels(
    [gallery.entries, query.entries],
    (l) => parseIntLabel(l),
  );
  const total = gallery.entries.length + query.entries.length;
  let done = 0;
  const tick = (): void => {
    done++;
    options.onProgress?.(done, total);
  };
  const g = await featuresOf(
    model,
    gallery.entries.map((e) => e.absPath),
    options.batchSize,
    tick,
  );
  const q = await featuresOf(
    model,
    query.entries.map((e) => e.absPath),
    options.batchSize,
    tick,
  );
  const metrics = await evaluateFeatures(
    {
      gallery: { features: g.data, labels: galleryLabels },
      query: { features: q.data, labels: queryLabels },
      dim: g.dim,
    },
    {
      ...(options.blockSize === undefined ? {} : { blockSize: options.blockSize }),
      ...(options.threads === undefined ? {} : { threads: options.threads }),
    },
  );
  return {
    root,
    gallerySize: gallery.entries.length,
    querySize: query.entries.length,
    dim: g.dim,
    metrics,
  };
}
