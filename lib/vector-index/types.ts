/**
 * The vector index's public shape (issue 7; PaddleX's faiss wrapper, spec §9.4, with its gaps
 * fixed): Flat (exact, native blockwise GEMM) and HNSW (usearch), metrics IP and L2, ids
 * 0..n-1 in gallery order, `add` continuing from max id + 1, `remove` for every type, atomic
 * save/load of `vector.index` + `id_map.yaml`.
 *
 * Ids: `build` numbers the gallery 0..n-1 in gallery order; `add` continues from the largest id
 * ever given + 1, so an id is never reused, not even after the highest one was removed (PaddleX
 * takes max(remaining ids) + 1 and can hand a removed id to a new image). The counter is saved.
 */
import type { FeatureModel } from '../image-feature.js';
import type { IndexModelRecord } from './model-record.js';
import type { PredictInput } from '../input.js';

export type Metric = 'IP' | 'L2';
export type IndexType = 'Flat' | 'HNSW';

/** One gallery item: an image (path, URL, Buffer, pixels) and its label. */
export interface GalleryItem {
  image: PredictInput;
  label: string;
}

/**
 * One search hit. `score` is the inner product (IP, larger = closer) or the squared L2 distance
 * (L2, smaller = closer), as faiss (and so PaddleX) reports them. Hits are best first; Flat
 * breaks exact ties by the lower id.
 */
export interface SearchHit {
  id: number;
  label: string;
  score: number;
}

/**
 * HNSW graph settings (usearch). Defaults: connectivity 32 (faiss HNSW32's M), expansionAdd 128
 * (faiss' efConstruction is 40; a larger value builds a better graph, more slowly) and
 * expansionSearch 128 (faiss' efSearch is 16). Measured recall@10 against Flat with the
 * defaults: ≥ 0.96 on the test's 10 000 × 128 clustered set and 0.956 on uniform random
 * 10 000 × 128; 1.000 on clustered 50 000 × 512 (scripts/bench-index.ts, where efSearch 32
 * already gives 0.9999). Unstructured 512-d data (uniform random directions) is the exception:
 * no graph index reaches high recall there at small expansions (see the benchmark). Lower
 * expansionSearch for speed when your features are well clustered; raise it for recall.
 */
export interface HnswOptions {
  /** Graph degree M (2..256). Default 32. */
  connectivity?: number;
  /** Candidate list size while inserting (efConstruction). Default 128. */
  expansionAdd?: number;
  /** Candidate list size while searching (efSearch, at least topk is used). Default 128. */
  expansionSearch?: number;
  /**
   * Threads of one `add`/`build` insertion call (usearch starts them for the call). Default:
   * `os.availableParallelism()`. Searching uses `searchThreads`.
   */
  addThreads?: number;
}

export interface CreateIndexOptions {
  metric?: Metric; // default 'IP'
  type?: IndexType; // default 'Flat'
  /** Feature model used by build/add/search with images. */
  model?: FeatureModel;
  /** Feature dimension; taken from the first features added when omitted. */
  dim?: number;
  /**
   * Threads of one search call (default 1). A single query always runs on one thread, whatever
   * this says. Flat: the native search's OpenMP pool (reused, never created per call); HNSW:
   * usearch runs a multi-query search on this many threads, which it starts for the call, so
   * keep 1 (the default) for a long-running service that searches one query at a time.
   */
  searchThreads?: number;
  /** HNSW graph settings; ignored for Flat. */
  hnsw?: HnswOptions;
}

export interface LoadIndexOptions {
  /**
   * Feature model for build/add/search with images: the one recorded for the index (model.json;
   * another name, feature size, weights or preprocessing is PIF_INDEX). An index without a record
   * (saved by an older version) only checks the feature size.
   */
  model?: FeatureModel;
  /** Threads of one search call (default 1), as in {@link CreateIndexOptions}. */
  searchThreads?: number;
  /** HNSW only: override the saved expansionSearch / addThreads (the graph itself is saved). */
  hnsw?: Pick<HnswOptions, 'expansionSearch' | 'addThreads'>;
}

export interface BuildProgress {
  (done: number, total: number): void;
}

export interface BuildOptions {
  /** Images per inference call (default: the model's batchSize). */
  batchSize?: number;
  /** Called after every feature batch with (images done, images in total). */
  onProgress?: BuildProgress;
}

/** What `info()` reports. */
export interface IndexInfo {
  type: IndexType;
  /** PaddleX's name of the type (`Flat`, `HNSW32`), as written to id_map.yaml. */
  indexTypeName: string;
  metric: Metric;
  dim: number;
  size: number;
  /** The id the next added vector gets. */
  nextId: number;
  /** HNSW settings in effect (null for Flat). */
  hnsw: Readonly<Required<HnswOptions>> | null;
  searchThreads: number;
  /** The directory it was loaded from or last saved to (absolute); null before either. */
  dir: string | null;
  /**
   * The model recorded for it (model.json) at the last load or save: name, directory, feature
   * dim, weights and preprocessing fingerprints. null: none recorded (an index saved by an older
   * version or without a model, or a new index not saved yet).
   */
  model: IndexModelRecord | null;
}

export interface VectorIndex {
  readonly type: IndexType;
  readonly metric: Metric;
  /** 0 until the first vectors are added (when created without `dim`). */
  readonly dim: number;
  /** Number of vectors. */
  readonly size: number;
  /** The id the next added vector gets (largest id ever given + 1). */
  readonly nextId: number;
  /** The model used for images, if any. */
  readonly model: FeatureModel | undefined;
  /** All ids in ascending order. */
  ids(): number[];
  /** Label of an id, or undefined. */
  labelOf(id: number): string | undefined;
  /** Type, metric, sizes and settings. */
  info(): IndexInfo;
  /**
   * Replaces the contents with a gallery: a directory plus a label file (lines `path label`,
   * split on one space, paths relative to the directory; PaddleX's format) or a list of items.
   * Features come from the model, batched. Ids are 0..n-1 in gallery order. Nothing changes
   * when an image cannot be read (the error is thrown).
   */
  build(
    gallery: string | readonly GalleryItem[],
    labelFile?: string,
    options?: BuildOptions,
  ): Promise<number[]>;
  /** Appends images (via the model) or features; ids continue from max id + 1. Returns the new ids. */
  add(
    items: readonly GalleryItem[] | { features: Float32Array; labels: readonly string[] },
    options?: BuildOptions,
  ): Promise<number[]>;
  /** Removes ids (unknown ids are ignored); returns how many were removed. */
  remove(ids: readonly number[]): Promise<number>;
  /**
   * Top-k hits per query: queries are features (n×dim, row-major) or images (via the model).
   * An empty index gives an empty list per query (one empty list for a non-empty Float32Array
   * when the index has no dimension yet); topk larger than the index gives all vectors (Flat;
   * HNSW gives at most that many).
   */
  search(queries: Float32Array | PredictInput, topk: number): Promise<SearchHit[][]>;
  /**
   * Writes `dir/vector.index` and `dir/id_map.yaml` atomically (a crash never corrupts an earlier
   * save), and `dir/model.json`: the index's model (its fingerprint), else the recorded one.
   */
  save(dir: string): Promise<void>;
}
