/**
 * Request bodies of the HTTP service, validated by hand (PaddleX's pydantic schemas, spec §9.5):
 * a wrong type or a missing field is a RequestError with status 422 whose message names the
 * field (`imageLabelPairs[2].label must be a string, got 7`). Unknown fields are ignored, as
 * pydantic ignores them; optional fields may be null.
 */
import { PifError } from '../errors.js';
import { describeValue, isPlainObject } from '../limits.js';

/**
 * An error answered with an HTTP status (422 validation, 404 unknown, 413 too large, ...): a
 * PifError whose code is PIF_CLOSED for 503 (shutting down) and PIF_INVALID_ARG for the rest (the
 * request is at fault).
 */
export class RequestError extends PifError {
  readonly status: number;

  constructor(status: number, message: string) {
    super(status === 503 ? 'PIF_CLOSED' : 'PIF_INVALID_ARG', message);
    this.status = status;
  }
}

export const invalid = (message: string): RequestError => new RequestError(422, message);

export interface ImageLabelPair {
  /** Base64 (optionally a data: URL) or an http(s) URL. */
  image: string;
  label: string;
}

export interface IndexBuildRequest {
  imageLabelPairs: ImageLabelPair[];
}

export interface IndexAddRequest {
  imageLabelPairs: ImageLabelPair[];
  indexKey: string;
}

export interface IndexRemoveRequest {
  ids: number[];
  indexKey: string;
}

export interface InferRequest {
  image: string;
  indexKey: string | undefined;
  detThreshold: number | undefined;
  recThreshold: number | undefined;
  hammingRadius: number | undefined;
  topk: number | undefined;
  /** Whether to answer the visualisation image; undefined: the server's default. */
  visualize: boolean | undefined;
}

export interface FeatureRequest {
  images: string[];
  /** Whether the request used `image` (one) rather than `images`. */
  single: boolean;
}

/** The largest `topk` a request may ask for. */
export const MAX_TOPK = 10_000;

/** indexKey: what this server hands out (uuid4), or any safe directory name. */
const INDEX_KEY = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function body(v: unknown): Record<string, unknown> {
  if (!isPlainObject(v)) {
    throw invalid(`the request body must be a JSON object, got ${describeValue(v)}`);
  }
  return v;
}

function optional(o: Record<string, unknown>, key: string): unknown {
  const v = o[key];
  return v === null ? undefined : v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') {
    throw invalid(
      `${what} must be a string, got ${v === undefined ? 'nothing' : describeValue(v)}`,
    );
  }
  return v;
}

function image(v: unknown, what: string): string {
  const s = str(v, what);
  if (s === '') throw invalid(`${what} must not be empty (Base64 image data or an http(s) URL)`);
  return s;
}

function num(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw invalid(`${what} must be a finite number, got ${describeValue(v)}`);
  }
  return v;
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(`${what} must be an integer from ${min} to ${max}, got ${describeValue(v)}`);
  }
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) {
    throw invalid(
      `${what} must be an array, got ${v === undefined ? 'nothing' : describeValue(v)}`,
    );
  }
  return v;
}

/** Validates an indexKey's form (unknown keys are a 404 later). */
export function indexKey(v: unknown, what = 'indexKey'): string {
  const s = str(v, what);
  if (!INDEX_KEY.test(s)) {
    throw invalid(
      `${what} ${JSON.stringify(s.slice(0, 140))} is not an index key (letters, digits, '-' and '_', at most 128)`,
    );
  }
  return s;
}

function pairs(v: unknown, maxImages: number): ImageLabelPair[] {
  const arr = list(v, 'imageLabelPairs');
  if (arr.length === 0) throw invalid('imageLabelPairs must not be empty');
  if (arr.length > maxImages) {
    throw invalid(
      `imageLabelPairs has ${arr.length} items; this server takes at most ${maxImages}`,
    );
  }
  return arr.map((p, i) => {
    const what = `imageLabelPairs[${i}]`;
    if (!isPlainObject(p))
      throw invalid(`${what} must be an object {image, label}, got ${describeValue(p)}`);
    return { image: image(p['image'], `${what}.image`), label: str(p['label'], `${what}.label`) };
  });
}

export function parseIndexBuild(v: unknown, maxImages: number): IndexBuildRequest {
  const o = body(v);
  return { imageLabelPairs: pairs(o['imageLabelPairs'], maxImages) };
}

export function parseIndexAdd(v: unknown, maxImages: number): IndexAddRequest {
  const o = body(v);
  return {
    imageLabelPairs: pairs(o['imageLabelPairs'], maxImages),
    indexKey: indexKey(o['indexKey']),
  };
}

export function parseIndexRemove(v: unknown): IndexRemoveRequest {
  const o = body(v);
  const ids = list(o['ids'], 'ids').map((id, i) =>
    int(id, `ids[${i}]`, 0, Number.MAX_SAFE_INTEGER),
  );
  return { ids, indexKey: indexKey(o['indexKey']) };
}

export function parseInfer(v: unknown): InferRequest {
  const o = body(v);
  const key = optional(o, 'indexKey');
  const topk = optional(o, 'topk');
  const hamming = optional(o, 'hammingRadius');
  const visualize = optional(o, 'visualize');
  if (visualize !== undefined && typeof visualize !== 'boolean') {
    throw invalid(`visualize must be a boolean, got ${describeValue(visualize)}`);
  }
  return {
    image: image(o['image'], 'image'),
    indexKey: key === undefined ? undefined : indexKey(key),
    detThreshold: num(optional(o, 'detThreshold'), 'detThreshold'),
    recThreshold: num(optional(o, 'recThreshold'), 'recThreshold'),
    hammingRadius:
      hamming === undefined ? undefined : int(hamming, 'hammingRadius', 0, Number.MAX_SAFE_INTEGER),
    topk: topk === undefined ? undefined : int(topk, 'topk', 1, MAX_TOPK),
    visualize,
  };
}

export function parseFeature(v: unknown, maxImages: number): FeatureRequest {
  const o = body(v);
  const one = optional(o, 'image');
  const many = optional(o, 'images');
  if (one !== undefined && many !== undefined)
    throw invalid('give either image or images, not both');
  if (one !== undefined) return { images: [image(one, 'image')], single: true };
  if (many === undefined) throw invalid('image (one image) or images (an array) is required');
  const arr = list(many, 'images');
  if (arr.length === 0) throw invalid('images must not be empty');
  if (arr.length > maxImages) {
    throw invalid(`images has ${arr.length} items; this server takes at most ${maxImages}`);
  }
  return { images: arr.map((x, i) => image(x, `images[${i}]`)), single: false };
}
