/**
 * Image preprocessing identical to PaddleX's (../shared/spec/paddlex-behaviour.md §1.2):
 * OpenCV-exact INTER_LINEAR resize of 8-bit pixels (native/preprocess, value-for-value equal to
 * cv2.resize), then `(pixel * scale - mean) / std` in float32 and HWC -> CHW. Runs off the main
 * thread (one native job).
 */
import { captureCaller, InvalidArgumentError } from './errors.js';
import { nativeBinding } from './native.js';

/** Interleaved 8-bit pixels, row-major (HWC). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export interface PreprocessSpec {
  /** Target width and height (PaddleX ResizeImage `size`, [w, h]). */
  width: number;
  height: number;
  /** Default 1/255. */
  scale?: number;
  /** Per channel. Default (3 channels) ImageNet [0.485, 0.456, 0.406]; else 0. */
  mean?: readonly number[];
  /** Per channel. Default (3 channels) ImageNet [0.229, 0.224, 0.225]; else 1. */
  std?: readonly number[];
}

export interface Preprocessed {
  /** The resized image (HWC uint8), as cv2.resize(..., INTER_LINEAR) gives it. */
  resized: RawImage;
  /** Normalised planar float32 [channels, height, width]. */
  tensor: Float32Array;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

function checkDim(v: unknown, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidArgumentError(`${what} must be an integer from 1 to ${max}, got ${String(v)}`);
  }
  return v;
}

/** The normalisation of a spec with its defaults, checked for `channels` channels. */
export interface Normalization {
  scale: number;
  mean: number[];
  std: number[];
}

/**
 * The one check of a preprocessing spec: the target size (1 to 16384 each way) and the
 * normalisation for `channels` channels, defaults applied. Throws InvalidArgumentError.
 */
export function checkSpec(
  spec: PreprocessSpec,
  channels: number,
): { width: number; height: number } & Normalization {
  const width = checkDim(spec.width, 'spec.width', 16384);
  const height = checkDim(spec.height, 'spec.height', 16384);
  const mean = spec.mean ?? (channels === 3 ? IMAGENET_MEAN : new Array<number>(channels).fill(0));
  const std = spec.std ?? (channels === 3 ? IMAGENET_STD : new Array<number>(channels).fill(1));
  for (const [name, v] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (v.length !== channels || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw new InvalidArgumentError(`spec.${name} must hold ${channels} finite numbers`);
    }
  }
  if (std.some((x) => x === 0)) throw new InvalidArgumentError('spec.std must not contain 0');
  const scale = spec.scale ?? 1 / 255;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) {
    throw new InvalidArgumentError('spec.scale must be a finite number');
  }
  return { width, height, scale, mean: [...mean], std: [...std] };
}

/** Resizes (OpenCV INTER_LINEAR, exact) and normalises one image. */
export async function preprocessImage(
  image: RawImage,
  spec: PreprocessSpec,
): Promise<Preprocessed> {
  const convert = captureCaller(preprocessImage);
  if (!(image.data instanceof Uint8Array)) {
    throw new InvalidArgumentError('image.data must be a Uint8Array of HWC pixels');
  }
  const width = checkDim(image.width, 'image.width', 65536);
  const height = checkDim(image.height, 'image.height', 65536);
  const channels = checkDim(image.channels, 'image.channels', 4);
  if (image.data.length !== width * height * channels) {
    throw new InvalidArgumentError(
      `image.data has ${image.data.length} bytes; width * height * channels is ${width * height * channels}`,
    );
  }
  const { width: tw, height: th, ...norm } = checkSpec(spec, channels);
  try {
    const r = await nativeBinding().preprocessImage(
      image.data,
      { width, height, channels },
      { width: tw, height: th, ...norm },
    );
    return { resized: { data: r.resized, width: tw, height: th, channels }, tensor: r.tensor };
  } catch (err) {
    throw convert(err);
  }
}
