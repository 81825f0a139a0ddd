/** `inspect`: what a model file holds, as an object, human text or JSON. */
import path from 'node:path';

import { captureCaller } from './errors.js';
import {
  checkPath,
  freezeInfo,
  infoSummary,
  readOptions,
  type ModelInfo,
  type ReadOptions,
} from './model.js';
import { resolveModelDir } from './modeldir.js';
import { nativeBinding } from './native.js';

/**
 * Reads a model directory (or program file) and reports its format, inputs, outputs, op
 * census and parameters. Parameters are optional unless `requireParams` is true (a
 * graph-only model then reports `parameters.loaded: false`).
 */
export async function inspectModel(modelPath: string, options?: ReadOptions): Promise<ModelInfo> {
  const convert = captureCaller(inspectModel);
  const p = checkPath(modelPath, 'modelPath');
  const opts = readOptions(options, false);
  await resolveModelDir(p).catch((err: unknown) => Promise.reject(convert(err)));
  try {
    return freezeInfo(await nativeBinding().inspectModel(path.resolve(p), opts));
  } catch (err) {
    throw convert(err);
  }
}

export interface FormatOptions {
  /** Machine-readable JSON instead of text. */
  json?: boolean;
  /** Canonical IR text to append (from dumpModel). */
  ir?: string;
  /** The path the user gave (shown in the report). */
  modelPath?: string;
}

/** Op census sorted by count (descending), then name. */
export function sortedOps(ops: Readonly<Record<string, number>>): [string, number][] {
  return Object.entries(ops).sort(
    (a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
  );
}

/** The JSON document printed by `inspect --json` (stable key order, ops sorted by name). */
export function inspectionJson(
  info: ModelInfo,
  options: FormatOptions = {},
): Record<string, unknown> {
  const ops: Record<string, number> = {};
  for (const k of Object.keys(info.ops).sort()) ops[k] = info.ops[k] ?? 0;
  return {
    ...(options.modelPath === undefined ? {} : { model: path.resolve(options.modelPath) }),
    ...infoSummary(info),
    inputs: info.inputs,
    outputs: info.outputs,
    ops,
    parameters: info.parameters,
    ...(options.ir === undefined ? {} : { ir: options.ir }),
  };
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Bytes as "321,104 bytes (313.6 KiB)". */
export function bytesText(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let unit = '';
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  const exact = `${n.toLocaleString('en-US')} bytes`;
  return unit === '' ? exact : `${exact} (${v.toFixed(1)} ${unit})`;
}

/** Renders an inspection as human text (default) or JSON (`json: true`). */
export function formatModelInfo(info: ModelInfo, options: FormatOptions = {}): string {
  if (options.json === true) return `${JSON.stringify(inspectionJson(info, options), null, 2)}\n`;
  const formatName =
    info.format === 'pir'
      ? 'PIR JSON program (Paddle 3.x)'
      : 'legacy ProgramDesc protobuf (Paddle 2.x)';
  const lines: string[] = [];
  if (options.modelPath !== undefined)
    lines.push(`model:       ${path.resolve(options.modelPath)}`);
  lines.push(`format:      ${formatName}, version ${info.version ?? 'none'}`);
  lines.push(`program:     ${info.programFile}`);
  lines.push(
    `params:      ${info.paramsFile ?? '(none)'} (${info.paramsLayout}${info.parameters.loaded ? '' : ', not loaded'})`,
  );
  lines.push(`blocks:      ${info.blocks}`);
  const tensorLines = (ts: ModelInfo['inputs']): string[] => {
    const w = Math.max(0, ...ts.map((t) => t.name.length));
    return ts.map((t) => `  ${t.name.padEnd(w)}  ${t.dtype.padEnd(8)}  ${shapeText(t.shape)}`);
  };
  lines.push(`inputs:      ${info.inputs.length}`, ...tensorLines(info.inputs));
  lines.push(`outputs:     ${info.outputs.length}`, ...tensorLines(info.outputs));
  lines.push(`parameters:  ${info.parameters.count} tensors, ${bytesText(info.parameters.bytes)}`);
  const ops = sortedOps(info.ops);
  lines.push(`ops:         ${info.opCount} in total, ${ops.length} types`);
  const w = Math.max(0, ...ops.map(([k]) => k.length));
  for (const [k, n] of ops) lines.push(`  ${k.padEnd(w)}  ${n}`);
  if (options.ir !== undefined) lines.push('', 'IR:', options.ir.trimEnd());
  return `${lines.join('\n')}\n`;
}
