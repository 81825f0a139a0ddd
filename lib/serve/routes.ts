/**
 * The routes of the service (see server.ts for the endpoints): index build / add / remove,
 * recognition (/shitu-infer), features (/image-feature) and health. Request images are loaded
 * (images.ts) and go through the batcher, so concurrent requests share inference calls.
 */
import { DEFAULT_REC_THRESHOLD, DEFAULT_REC_TOPK, recognizeWithIndex } from '../recognize.js';
import { createIndex } from '../vector-index/index.js';
import { loadImage, type LoadedImage } from './images.js';
import {
  failure,
  imageErrors,
  LOAD_CONCURRENCY,
  mapLimit,
  perImage,
  SLICE,
  type ImageError,
  type Outcome,
} from './request.js';
import {
  invalid,
  parseFeature,
  parseIndexAdd,
  parseIndexBuild,
  parseIndexRemove,
  parseInfer,
  RequestError,
  type ImageLabelPair,
} from './schemas.js';
import type { Service } from './server.js';
import { renderShituImage } from './visualize.js';

type Handler = (body: unknown) => Promise<unknown>;

export interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
}

/** Features of request images through the batcher. */
interface Features {
  /** Feature of a loaded image; a decode failure is a 422 naming the field. */
  featureOf: (img: LoadedImage, what: string) => Promise<Float32Array>;
  /**
   * Features of several images, per image its feature or its error entry: fetched / decoded
   * LOAD_CONCURRENCY at a time, then all submitted at once so that they share batches.
   * `first` is the request position of refs[0]; `what` names a position's field.
   */
  featuresOf: (
    refs: readonly string[],
    what: (index: number) => string,
    first?: number,
  ) => Promise<Outcome<Float32Array>[]>;
}

function features(svc: Service): Features {
  const { batcher } = svc;
  const { limits } = svc.settings;
  const featureOf = async (img: LoadedImage, what: string): Promise<Float32Array> => {
    try {
      return await batcher.submit(img.data);
    } catch (err) {
      const f = failure(err);
      if (f.status === 422) throw invalid(`${what}: ${f.message}`);
      throw err;
    }
  };
  const featuresOf = async (
    refs: readonly string[],
    what: (index: number) => string,
    first = 0,
  ): Promise<Outcome<Float32Array>[]> => {
    const loaded = await mapLimit(refs, LOAD_CONCURRENCY, (ref, i) =>
      perImage(first + i, () => loadImage(ref, what(first + i), limits)),
    );
    return Promise.all(
      loaded.map((o, i) =>
        o.ok ? perImage(first + i, () => featureOf(o.value, what(first + i))) : Promise.resolve(o),
      ),
    );
  };
  return { featureOf, featuresOf };
}

/**
 * Features (n × dim) and labels of the usable image/label pairs, a slice at a time; `positions`
 * are their places in `pairs`, `errors` the entries of the others.
 */
async function pairFeatures(
  f: Features,
  pairs: readonly ImageLabelPair[],
): Promise<{
  features: Float32Array;
  labels: string[];
  positions: number[];
  errors: ImageError[];
}> {
  const outcomes: Outcome<Float32Array>[] = [];
  for (let start = 0; start < pairs.length; start += SLICE) {
    const slice = pairs.slice(start, start + SLICE).map((p) => p.image);
    outcomes.push(...(await f.featuresOf(slice, (i) => `imageLabelPairs[${i}].image`, start)));
  }
  const errors = imageErrors(outcomes);
  const rows = outcomes.flatMap((o, i) => (o.ok ? [{ i, feature: o.value }] : []));
  const dim = rows[0]?.feature.length ?? 0;
  const features = new Float32Array(rows.length * dim);
  rows.forEach((r, k) => {
    features.set(r.feature, k * dim);
  });
  const positions = rows.map((r) => r.i);
  return {
    features,
    labels: positions.map((i) => (pairs[i] as ImageLabelPair).label),
    positions,
    errors,
  };
}

/** Per pair of the request: the id its image got, or null (see its error entry). */
function idsByPosition(n: number, positions: readonly number[], ids: readonly number[]) {
  const out = new Array<number | null>(n).fill(null);
  positions.forEach((p, k) => {
    out[p] = ids[k] ?? null;
  });
  return out;
}

const unknownKey = (key: string) => new RequestError(404, `unknown indexKey '${key}'`);

/** /shitu-index-build, /shitu-index-add and /shitu-index-remove. */
function indexRoutes(svc: Service, f: Features): Record<string, Route> {
  const { store } = svc;
  const { model, maxImages } = svc.settings;
  return {
    '/shitu-index-build': {
      method: 'POST',
      handler: async (body) => {
        const req = parseIndexBuild(body, maxImages);
        const n = req.imageLabelPairs.length;
        const { features, labels, positions, errors } = await pairFeatures(f, req.imageLabelPairs);
        // PaddleX's server always builds Flat / IP.
        const index = createIndex({ metric: 'IP', type: 'Flat', model });
        const ids = await index.add({ features, labels });
        const indexKey = await store.create(index);
        return {
          indexKey,
          imageCount: index.size,
          ids: idsByPosition(n, positions, ids),
          errors,
        };
      },
    },
    '/shitu-index-add': {
      method: 'POST',
      handler: async (body) => {
        const req = parseIndexAdd(body, maxImages);
        if (!(await store.has(req.indexKey))) throw unknownKey(req.indexKey);
        const n = req.imageLabelPairs.length;
        const { features, labels, positions, errors } = await pairFeatures(f, req.imageLabelPairs);
        return store.update(req.indexKey, async (index) => {
          const ids = await index.add({ features, labels });
          return { imageCount: index.size, ids: idsByPosition(n, positions, ids), errors };
        });
      },
    },
    '/shitu-index-remove': {
      method: 'POST',
      handler: async (body) => {
        const req = parseIndexRemove(body);
        return store.update(req.indexKey, async (index) => {
          await index.remove(req.ids);
          return { imageCount: index.size };
        });
      },
    },
  };
}

/** /shitu-infer: recognition of one image over an index, with PaddleX's visualisation. */
function inferRoute(svc: Service, f: Features): Route {
  const { store } = svc;
  const { limits, visualizeByDefault } = svc.settings;
  return {
    method: 'POST',
    handler: async (body) => {
      const req = parseInfer(body);
      const key = req.indexKey;
      if (key === undefined) {
        throw invalid(
          'indexKey is required: this server has no default index (build one with /shitu-index-build)',
        );
      }
      if (!(await store.has(key))) throw unknownKey(key);
      const img = await loadImage(req.image, 'image', limits);
      const feature = await f.featureOf(img, 'image');
      const [res] = await store.read(key, (index) =>
        recognizeWithIndex(index, feature, [{ width: img.width, height: img.height }], {
          recThreshold: req.recThreshold ?? DEFAULT_REC_THRESHOLD,
          topk: req.topk ?? DEFAULT_REC_TOPK,
        }),
      );
      const boxes = res?.boxes ?? [];
      const detectedObjects = boxes.map((b) => ({
        bbox: b.coordinate,
        recResults:
          b.labels[0] === null || b.labels[0] === undefined
            ? []
            : b.labels.map((label, i) => ({ label, score: b.recScores[i] })),
        score: b.detScore,
      }));
      if (!(req.visualize ?? visualizeByDefault)) return { detectedObjects, image: null };
      const drawn = detectedObjects.map((o) => ({
        bbox: o.bbox,
        label: o.recResults[0]?.label ?? null,
        score: o.recResults[0]?.score ?? null,
      }));
      let image: string;
      try {
        image = await renderShituImage(img.data, img.width, img.height, drawn);
      } catch (err) {
        throw invalid(
          `image: cannot draw the visualisation image (${(err as Error).message}); send visualize: false to skip it`,
        );
      }
      return { detectedObjects, image };
    },
  };
}

/** Every route of the service. */
export function routesOf(svc: Service): Record<string, Route> {
  const f = features(svc);
  const { batcher } = svc;
  const { model, maxImages } = svc.settings;
  return {
    ...indexRoutes(svc, f),
    '/shitu-infer': inferRoute(svc, f),
    '/image-feature': {
      method: 'POST',
      handler: async (body) => {
        const req = parseFeature(body, maxImages);
        const outcomes = await f.featuresOf(req.images, (i) =>
          req.single ? 'image' : `images[${i}]`,
        );
        const errors = imageErrors(outcomes);
        const features = outcomes.map((o) => (o.ok ? Array.from(o.value) : null));
        return { features, dim: features.find((x) => x !== null)?.length ?? 0, errors };
      },
    },
    '/health': {
      method: 'GET',
      handler: () =>
        Promise.resolve({
          status: svc.counters.closing ? 'closing' : 'ok',
          model: model.modelName,
          batching: {
            maxBatch: batcher.maxBatch,
            maxWaitMs: batcher.maxWaitMs,
            maxInFlight: batcher.maxInFlight,
          },
          stats: svc.stats(),
        }),
    },
  };
}
