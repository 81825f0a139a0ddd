/**
 * Paddle checkpoint files as `paddle.save` writes them (../shared/spec/training-packaging.md
 * A3.1-A3.2): `.pdparams` (a dict of numpy arrays by structured name, plus Paddle's
 * `StructuredToParameterName@@` table when the internal names are known) and `.pdstates` (a
 * plain dict such as `{"metric": 0.84, "epoch": 12}`). Written atomically: a reader sees the
 * old file or the whole new one, never a part.
 */
import { InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { encodePickle, PyFloat, type NdArray, type PyValue } from './pickle.js';

/** One parameter: its structured (layer) name, its internal program name, its value. */
export interface ParamEntry {
  /** The key in the file, e.g. `head.fc.weight` (or the internal name when none is known). */
  structuredName: string;
  /** The program's variable name, e.g. `linear_0.w_0`; recorded in the name table. */
  name?: string;
  array: NdArray;
}

/** The key `paddle.save` adds for the structured -> internal name table. */
export const NAME_TABLE_KEY = 'StructuredToParameterName@@';

/** The bytes of a `.pdparams` file for `params`, in their order. */
export function pdparamsBytes(params: readonly ParamEntry[]): Buffer {
  const dict: Record<string, PyValue> = {};
  const table: Record<string, string> = {};
  for (const p of params) {
    if (p.structuredName === NAME_TABLE_KEY || p.structuredName === '')
      throw new InvalidArgumentError(`pdparams: bad parameter name '${p.structuredName}'`);
    if (Object.hasOwn(dict, p.structuredName))
      throw new InvalidArgumentError(`pdparams: parameter '${p.structuredName}' given twice`);
    dict[p.structuredName] = p.array;
    if (p.name !== undefined) table[p.structuredName] = p.name;
  }
  if (Object.keys(table).length > 0) dict[NAME_TABLE_KEY] = table;
  return encodePickle(dict);
}

export async function writePdparams(file: string, params: readonly ParamEntry[]): Promise<void> {
  await writeFileAtomic(file, pdparamsBytes(params));
}

/** What a `.pdstates` file records: the checkpoint's metric and epoch. */
export interface CheckpointState {
  metric: number;
  epoch: number;
}

export function pdstatesBytes(s: CheckpointState): Buffer {
  if (!Number.isFinite(s.metric)) throw new InvalidArgumentError('pdstates: metric must be finite');
  if (!Number.isSafeInteger(s.epoch) || s.epoch < 0)
    throw new InvalidArgumentError('pdstates: epoch must be a non-negative integer');
  return encodePickle({ metric: new PyFloat(s.metric), epoch: s.epoch });
}

export async function writePdstates(file: string, s: CheckpointState): Promise<void> {
  await writeFileAtomic(file, pdstatesBytes(s));
}
