/** Load-time limits: validation shared by every API that reads a model. */
import { InvalidArgumentError } from './errors.js';
import type { NativeLimits } from './native.js';

/**
 * Load-time limits. Files that would exceed one are refused with PIF_MODEL_LIMIT before
 * any large allocation. Defaults (native/format/error.h) accept every real model.
 */
export interface LoadLimits {
  /** Largest single input file, in bytes (default 8 GiB). */
  maxFileBytes?: number;
  /** Largest single tensor record, in bytes (default 4 GiB). */
  maxTensorBytes?: number;
  /** All parameters together, in bytes (default 16 GiB). */
  maxTotalParamBytes?: number;
  /** Most dims per tensor (default 16). */
  maxRank?: number;
  /** Most ops over all blocks (default 2^20). */
  maxOps?: number;
  /** Most variables / PIR values (default 2^22). */
  maxValues?: number;
  /** Most blocks (default 2^16). */
  maxBlocks?: number;
  /** Deepest JSON / protobuf nesting (default 128). */
  maxDepth?: number;
}

const LIMIT_KEYS: readonly (keyof LoadLimits)[] = [
  'maxFileBytes',
  'maxTensorBytes',
  'maxTotalParamBytes',
  'maxRank',
  'maxOps',
  'maxValues',
  'maxBlocks',
  'maxDepth',
];

/** Largest value of the 32-bit count limits (ops, values, blocks, depth, rank). */
const MAX_COUNT = 0xffffffff;
const COUNT_KEYS = new Set<keyof LoadLimits>([
  'maxRank',
  'maxOps',
  'maxValues',
  'maxBlocks',
  'maxDepth',
]);

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Rejects keys that are not in `allowed` (catches typos such as `cpuThread`). */
export function checkKnownKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  what: string,
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(
        `${what}: unknown option '${key}' (known: ${allowed.join(', ')})`,
      );
    }
  }
}

/** Validates a `limits` option; returns a clean copy for the native layer. */
export function validateLimits(limits: unknown, what = 'options.limits'): NativeLimits {
  if (limits === undefined) return {};
  if (!isPlainObject(limits)) {
    throw new InvalidArgumentError(`${what} must be an object, got ${describeValue(limits)}`);
  }
  checkKnownKeys(limits, LIMIT_KEYS, what);
  const out: NativeLimits = {};
  for (const key of LIMIT_KEYS) {
    const v = limits[key];
    if (v === undefined) continue;
    const max = COUNT_KEYS.has(key) ? MAX_COUNT : Number.MAX_SAFE_INTEGER;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
      throw new InvalidArgumentError(
        `${what}.${key} must be an integer from 1 to ${max}, got ${describeValue(v)}`,
      );
    }
    out[key] = v;
  }
  return out;
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
}
