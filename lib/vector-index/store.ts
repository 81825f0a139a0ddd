/**
 * The index on disk: `dir/vector.index` (ours, self-contained) and `dir/id_map.yaml` (PaddleX's
 * keys, a mirror of the labels that PaddleX users can read), written so that a crash at any
 * moment (kill -9, power loss) leaves the previous save or the new one, never a mix.
 *
 * ## vector.index (format version 1, little-endian)
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 8 | magic `PIFVINDX` |
 * | 8 | 4 | format version (1) |
 * | 12 | 4 | header size (128) |
 * | 16 | 1 | type: 0 Flat, 1 HNSW |
 * | 17 | 1 | metric: 0 IP, 1 L2 |
 * | 18 | 2 | reserved (0) |
 * | 20 | 4 | dim (0 only for an index that never held a vector) |
 * | 24 | 8 | count: number of vectors |
 * | 32 | 8 | nextId: the id the next added vector gets |
 * | 40 | 12 | HNSW connectivity, expansionAdd, expansionSearch (u32 each; 0 for Flat) |
 * | 52 | 4 | reserved (0) |
 * | 56 | 8 | labels section size in bytes |
 * | 64 | 8 | payload size in bytes |
 * | 72 | 32 | stamp of the id_map.yaml this save replaces (all zeros: none) |
 * | 104 | 8 | HNSW: placeholder vectors in the graph (see hnsw.ts `saveTo`; 0 for Flat) |
 * | 112 | 16 | reserved (0) |
 * | 128 | 8 × count | ids, ascending u64 |
 * | … | labels size | the labels, a JSON array of count strings (UTF-8), in id order |
 * | … | payload size | Flat: count × dim float32 rows in id order; HNSW: usearch's serialised index |
 * | end − 32 | 32 | SHA-256 of every byte before it: the file's **stamp** |
 *
 * ## id_map.yaml
 *
 * PaddleX's keys `id_map` ({int: str}, block style, unicode as is), `index_type` (`Flat`,
 * `HNSW32` — PaddleX's names; `HNSW<M>` for another connectivity) and `metric_type`, plus
 * `vector_index_sha256`: the stamp of the vector.index it belongs to. vector.index is the
 * authority; the yaml must agree with it (same ids, labels, type and metric) or loading fails.
 *
 * ## Save protocol
 *
 * 1. Both files are written to temp files in `dir` (`.vector.index.<pid>.<rand>.tmp`, …) and
 *    fsynced. The new vector.index records the stamp of the id_map.yaml currently in `dir`.
 * 2. If `dir` holds a valid id_map.yaml: rename vector.index, fsync `dir`, rename id_map.yaml,
 *    fsync `dir`. Otherwise (first save) the other order: id_map.yaml first.
 * 3. Temp files left by a killed saver (their pid is gone) are deleted by the next save.
 *
 * On load, id_map.yaml's stamp decides:
 * - equal to vector.index's stamp: a complete save; the two must agree in every entry;
 * - equal to the stamp vector.index recorded as replaced: the save was interrupted between the two
 *   renames; vector.index (the new save, complete) is used and the stale yaml is ignored (the next
 *   save rewrites it);
 * - anything else (or no vector.index): IndexError.
 * So every crash point gives the old index (before the first rename; a first save then has no
 * vector.index, which is "no index", as before) or the new one (after it).
 *
 * Damage is detected before anything is trusted: magic, version, header fields, the exact file
 * size, then the SHA-256 over the whole file; only then are ids, labels and the payload decoded.
 * The HNSW payload is usearch's own file, saved without deleted slots (usearch 2.25's loader
 * corrupts memory on a file with many; hnsw.ts `saveTo` fills them with placeholders, whose
 * number the header records and which are removed again after loading). Its head (vector count,
 * deleted count, dimension) must agree with our header before usearch's loader sees the bytes.
 * Every problem is an IndexError (PIF_INDEX) naming the file. (The checksum detects damage, not
 * forgery: a crafted file with a correct checksum and head reaches usearch's loader.)
 *
 * ## model.json
 *
 * The model that built the index (model-record.ts), when the index has one: records keyed by
 * the vector.index stamp they belong to. A save writes the new stamp's record plus the current
 * vector.index's and renames model.json first, so either vector.index a crash leaves finds its
 * record; a save without a model record deletes model.json after the other renames.
 *
 * Concurrent saves of different indexes into one directory are not supported (saves within one
 * process are serialised per directory).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness, tmpdir } from 'node:os';
import path from 'node:path';

import { isMap, isScalar, parseDocument } from 'yaml';

import { IndexError, PifError, PifIoError, UnsupportedError } from '../errors.js';
import { fsyncDir, tempPathFor } from '../fsutil.js';

import { FlatStore } from './flat.js';
import { HnswStore, readUsearchHead, type HnswSettings, type UsearchHead } from './hnsw.js';
import { MODEL_FILE, modelFileText, readModelFile, type IndexModelRecord } from './model-record.js';
import type { IndexType, Metric } from './types.js';

export const INDEX_FILE = 'vector.index';
export const ID_MAP_FILE = 'id_map.yaml';
export const FORMAT_VERSION = 1;

const MAGIC = Buffer.from('PIFVINDX', 'latin1');
const HEADER_BYTES = 128;
const DIGEST_BYTES = 32;
const STAMP_KEY = 'vector_index_sha256';
const CHUNK = 8 << 20;
/** More vectors than this in one file is taken as header damage, not a real index. */
const MAX_COUNT = 2 ** 40;

/** PaddleX's name of an index type. */
export function indexTypeName(type: IndexType, connectivity: number): string {
  return type === 'Flat' ? 'Flat' : `HNSW${connectivity}`;
}

/** Our type of a PaddleX `index_type` name, or null. */
export function parseIndexTypeName(name: string): IndexType | null {
  if (name === 'Flat') return 'Flat';
  if (/^HNSW\d*$/.test(name)) return 'HNSW';
  return null;
}

/** What is saved besides the vectors. */
export interface IndexMeta {
  type: IndexType;
  metric: Metric;
  dim: number;
  nextId: number;
  /** Graph settings (HNSW) or null (Flat). addThreads is not saved. */
  hnsw: Omit<HnswSettings, 'addThreads'> | null;
  /** Ascending. */
  ids: Float64Array;
  /** One per id. */
  labels: readonly string[];
  /** The model that built the index (model.json), or null: unknown. */
  model: IndexModelRecord | null;
}

/** The vectors to save. */
export type SavePayload =
  | { kind: 'none' }
  | { kind: 'vectors'; vectors: Float32Array }
  /** Writes the usearch file; returns how many placeholders it holds. */
  | { kind: 'usearch'; write: (file: string) => number };

export interface LoadedIndex extends IndexMeta {
  labels: string[];
  flat: FlatStore | null;
  hnswStore: HnswStore | null;
  /** The SHA-256 of vector.index (hex). */
  stamp: string;
  /** id_map.yaml was the previous save's (a save was interrupted between its two renames). */
  idMapStale: boolean;
}

function checkEndianness(): void {
  if (endianness() !== 'LE') {
    throw new UnsupportedError('vector index files need a little-endian machine');
  }
}

// ---------------------------------------------------------------------------------------------
// id_map.yaml

const YAML_WORDS =
  /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL)$/;
const PLAIN_SAFE = /^[\p{L}\p{N}_][\p{L}\p{N}_\-./]*$/u;

/**
 * A label as a YAML scalar: plain when it can only be read back as this string by YAML 1.1
 * (PyYAML, what PaddleX uses) and 1.2 parsers, else double-quoted with escapes.
 */
export function yamlScalar(label: string): string {
  if (PLAIN_SAFE.test(label) && !/^[0-9]/.test(label) && !YAML_WORDS.test(label)) return label;
  let out = '"';
  for (const ch of label) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 || c === 0xfeff) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** The text of id_map.yaml (PyYAML's layout: keys sorted, block style, unicode as is). */
export function idMapYaml(meta: IndexMeta, stamp: string): string {
  const lines: string[] = [];
  if (meta.ids.length === 0) lines.push('id_map: {}');
  else {
    lines.push('id_map:');
    for (let i = 0; i < meta.ids.length; i++) {
      lines.push(`  ${meta.ids[i] as number}: ${yamlScalar(meta.labels[i] as string)}`);
    }
  }
  lines.push(`index_type: ${indexTypeName(meta.type, meta.hnsw?.connectivity ?? 0)}`);
  lines.push(`metric_type: ${meta.metric}`);
  lines.push(`${STAMP_KEY}: ${stamp}`);
  return `${lines.join('\n')}\n`;
}

/** The stamp an id_map.yaml names, or null (missing file, no stamp). Never throws. */
async function yamlStamp(file: string): Promise<string | null> {
  try {
    const text = await readFile(file, 'utf8');
    const m = new RegExp(`^${STAMP_KEY}: ([0-9a-f]{64})$`, 'm').exec(text);
    return m === null ? null : (m[1] as string);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Saving

const saving = new Map<string, Promise<unknown>>();

/** Runs saves into the same directory one after another (within this process). */
async function serialised<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = saving.get(dir) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  saving.set(dir, tail);
  try {
    return await run;
  } finally {
    if (saving.get(dir) === tail) saving.delete(dir);
  }
}

const TEMP_NAME =
  /^\.(?:vector\.index(?:\.usearch)?|id_map\.yaml|model\.json)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes temp files of earlier saves whose process is gone (a kill during save). */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (m === null || processAlive(Number(m[1]))) continue;
    await rm(path.join(dir, name), { force: true }).catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
    off += bytesWritten;
  }
}

function headerBytes(
  meta: IndexMeta,
  labelsBytes: number,
  payloadBytes: number,
  prevStamp: string | null,
  placeholders: number,
): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(FORMAT_VERSION, 8);
  h.writeUInt32LE(HEADER_BYTES, 12);
  h.writeUInt8(meta.type === 'Flat' ? 0 : 1, 16);
  h.writeUInt8(meta.metric === 'IP' ? 0 : 1, 17);
  h.writeUInt32LE(meta.dim, 20);
  h.writeBigUInt64LE(BigInt(meta.ids.length), 24);
  h.writeBigUInt64LE(BigInt(meta.nextId), 32);
  h.writeUInt32LE(meta.hnsw?.connectivity ?? 0, 40);
  h.writeUInt32LE(meta.hnsw?.expansionAdd ?? 0, 44);
  h.writeUInt32LE(meta.hnsw?.expansionSearch ?? 0, 48);
  h.writeBigUInt64LE(BigInt(labelsBytes), 56);
  h.writeBigUInt64LE(BigInt(payloadBytes), 64);
  if (prevStamp !== null) Buffer.from(prevStamp, 'hex').copy(h, 72);
  h.writeBigUInt64LE(BigInt(placeholders), 104);
  return h;
}

/** Writes vector.index to `file` (fsynced); returns its stamp. */
async function writeIndexFile(
  file: string,
  meta: IndexMeta,
  payload: SavePayload,
  usearchFile: string,
  prevStamp: string | null,
): Promise<string> {
  let payloadBytes = 0;
  let placeholders = 0;
  if (payload.kind === 'vectors') payloadBytes = payload.vectors.byteLength;
  else if (payload.kind === 'usearch') {
    placeholders = payload.write(usearchFile);
    payloadBytes = (await stat(usearchFile)).size;
  }
  const labels = Buffer.from(JSON.stringify(meta.labels), 'utf8');
  const ids = Buffer.alloc(meta.ids.length * 8);
  for (let i = 0; i < meta.ids.length; i++) {
    ids.writeBigUInt64LE(BigInt(meta.ids[i] as number), i * 8);
  }
  const hash = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    const put = async (bytes: Uint8Array): Promise<void> => {
      hash.update(bytes);
      await writeAll(fh, bytes);
    };
    await put(headerBytes(meta, labels.length, payloadBytes, prevStamp, placeholders));
    await put(ids);
    await put(labels);
    if (payload.kind === 'vectors') {
      const v = payload.vectors;
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (let off = 0; off < bytes.length; off += CHUNK) {
        await put(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)));
      }
    } else if (payload.kind === 'usearch') {
      const src = await open(usearchFile, 'r');
      try {
        const buf = Buffer.alloc(Math.min(CHUNK, Math.max(payloadBytes, 1)));
        let done = 0;
        while (done < payloadBytes) {
          const { bytesRead } = await src.read(buf, 0, buf.length, done);
          if (bytesRead === 0) throw new Error(`${usearchFile} shrank while being copied`);
          await put(buf.subarray(0, bytesRead));
          done += bytesRead;
        }
      } finally {
        await src.close();
      }
    }
    const digest = hash.digest();
    await writeAll(fh, digest);
    await fh.sync();
    return digest.toString('hex');
  } finally {
    await fh.close();
  }
}

async function writeTextFile(file: string, text: string): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await writeAll(fh, Buffer.from(text, 'utf8'));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The stamp at the end of a vector.index (not verified: only a key for its model record), or
 * null when there is none. Never throws.
 */
async function trailingStamp(file: string): Promise<string | null> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size < HEADER_BYTES + DIGEST_BYTES) return null;
      const buf = Buffer.alloc(DIGEST_BYTES);
      const { bytesRead } = await fh.read(buf, 0, DIGEST_BYTES, size - DIGEST_BYTES);
      return bytesRead === DIGEST_BYTES ? buf.toString('hex') : null;
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

/** The model.json text for a save: the new stamp's record plus the current vector.index's. */
async function modelFileFor(
  dir: string,
  indexFile: string,
  stamp: string,
  model: IndexModelRecord,
): Promise<string> {
  const records = new Map([[stamp, model]]);
  const current = await trailingStamp(indexFile);
  // A damaged model.json only loses the old record, which this save replaces anyway.
  const existing = await readModelFile(dir).catch(() => null);
  const kept = current === null ? undefined : existing?.get(current);
  if (current !== null && kept !== undefined) records.set(current, kept);
  return modelFileText(records);
}

/**
 * The model recorded for the index in `dir` (model.json's record for the current vector.index),
 * or null: no record. Cheap (vector.index is not verified): for choosing a model before
 * {@link loadIndexFiles}.
 */
export async function readRecordedModel(dir: string): Promise<IndexModelRecord | null> {
  const abs = path.resolve(dir);
  const stamp = await trailingStamp(path.join(abs, INDEX_FILE));
  if (stamp === null) return null;
  return (await readModelFile(abs))?.get(stamp) ?? null;
}

/**
 * Saves an index into `dir` (created when missing) with the protocol above; returns the stamp.
 * Any failure is a PifIoError naming the file; earlier saves in `dir` stay intact.
 */
export async function saveIndexFiles(
  dir: string,
  meta: IndexMeta,
  payload: SavePayload,
): Promise<string> {
  checkEndianness();
  const abs = path.resolve(dir);
  return serialised(abs, async () => {
    const indexFile = path.join(abs, INDEX_FILE);
    const yamlFile = path.join(abs, ID_MAP_FILE);
    const indexTmp = tempPathFor(indexFile);
    const yamlTmp = tempPathFor(yamlFile);
    const usearchTmp = tempPathFor(`${indexFile}.usearch`);
    const modelFile = path.join(abs, MODEL_FILE);
    const modelTmp = tempPathFor(modelFile);
    let current = indexFile;
    try {
      await mkdir(abs, { recursive: true });
      await removeStaleTemps(abs);
      const prevStamp = await yamlStamp(yamlFile);
      current = indexTmp;
      const stamp = await writeIndexFile(indexTmp, meta, payload, usearchTmp, prevStamp);
      await rm(usearchTmp, { force: true });
      current = yamlTmp;
      await writeTextFile(yamlTmp, idMapYaml(meta, stamp));
      const order: [string, string][] =
        prevStamp === null
          ? [
              [yamlTmp, yamlFile],
              [indexTmp, indexFile],
            ]
          : [
              [indexTmp, indexFile],
              [yamlTmp, yamlFile],
            ];
      if (meta.model !== null) {
        current = modelTmp;
        await writeTextFile(modelTmp, await modelFileFor(abs, indexFile, stamp, meta.model));
        order.unshift([modelTmp, modelFile]);
      }
      for (const [from, to] of order) {
        current = to;
        await rename(from, to);
        await fsyncDir(abs);
      }
      if (meta.model === null) {
        current = modelFile;
        await rm(modelFile, { force: true });
      }
      return stamp;
    } catch (err) {
      await Promise.all(
        [indexTmp, yamlTmp, usearchTmp, modelTmp].map((f) =>
          rm(f, { force: true }).catch(() => undefined),
        ),
      );
      if (err instanceof PifError) throw err;
      throw new PifIoError(`cannot save the index to ${current}: ${(err as Error).message}`, {
        file: current,
        cause: err,
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Loading

function bad(file: string, what: string, cause?: unknown): never {
  throw new IndexError(`${file}: ${what}`, {
    file,
    ...(cause === undefined ? {} : { cause }),
  });
}

async function readWhole(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      bad(
        file,
        `missing: an index directory holds ${INDEX_FILE} and ${ID_MAP_FILE} (${what})`,
        err,
      );
    }
    if (code === 'EISDIR') bad(file, `is a directory, not ${what}`, err);
    bad(file, `cannot be read: ${(err as Error).message}`, err);
  }
}

interface Header {
  version: number;
  type: IndexType;
  metric: Metric;
  dim: number;
  count: number;
  nextId: number;
  hnsw: Omit<HnswSettings, 'addThreads'> | null;
  labelsBytes: number;
  payloadBytes: number;
  prevStamp: string | null;
  placeholders: number;
}

function u64(buf: Buffer, off: number, file: string, what: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(file, `damaged header: ${what} is ${v}`);
  return Number(v);
}

function parseHeader(buf: Buffer, file: string): Header {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    bad(
      file,
      'not a paddle-image-feature vector index (wrong magic); a faiss index written by PaddleX ' +
        'cannot be read: build the index again from the gallery',
    );
  }
  if (buf.length < HEADER_BYTES + DIGEST_BYTES) {
    bad(file, `truncated: ${buf.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION) {
    bad(
      file,
      version > FORMAT_VERSION
        ? `format version ${version} is newer than this library reads (${FORMAT_VERSION}); upgrade paddle-image-feature`
        : `damaged header: unknown format version ${version}`,
    );
  }
  const headerSize = buf.readUInt32LE(12);
  if (headerSize !== HEADER_BYTES) bad(file, `damaged header: header size ${headerSize}`);
  const typeCode = buf.readUInt8(16);
  const metricCode = buf.readUInt8(17);
  if (typeCode > 1) bad(file, `damaged header: unknown index type code ${typeCode}`);
  if (metricCode > 1) bad(file, `damaged header: unknown metric code ${metricCode}`);
  const type: IndexType = typeCode === 0 ? 'Flat' : 'HNSW';
  const dim = buf.readUInt32LE(20);
  const count = u64(buf, 24, file, 'count');
  const nextId = u64(buf, 32, file, 'next id');
  const connectivity = buf.readUInt32LE(40);
  const expansionAdd = buf.readUInt32LE(44);
  const expansionSearch = buf.readUInt32LE(48);
  const labelsBytes = u64(buf, 56, file, 'labels size');
  const payloadBytes = u64(buf, 64, file, 'payload size');
  const prev = buf.subarray(72, 104);
  return {
    version,
    type,
    metric: metricCode === 0 ? 'IP' : 'L2',
    dim,
    count,
    nextId,
    hnsw: type === 'HNSW' ? { connectivity, expansionAdd, expansionSearch } : null,
    labelsBytes,
    payloadBytes,
    prevStamp: prev.every((b) => b === 0) ? null : prev.toString('hex'),
    placeholders: u64(buf, 104, file, 'placeholders'),
  };
}

function checkHeader(h: Header, file: string): void {
  if (h.count > MAX_COUNT) bad(file, `damaged header: count ${h.count}`);
  if (h.dim === 0 && h.count > 0) bad(file, `damaged header: dim 0 with ${h.count} vectors`);
  if (h.dim > 16777216) bad(file, `damaged header: dim ${h.dim}`);
  if (h.nextId < h.count) bad(file, `damaged header: next id ${h.nextId} < count ${h.count}`);
  if (h.hnsw !== null) {
    const { connectivity, expansionAdd, expansionSearch } = h.hnsw;
    if (connectivity < 2 || connectivity > 256 || expansionAdd < 1 || expansionSearch < 1) {
      bad(
        file,
        `damaged header: HNSW settings connectivity ${connectivity}, expansionAdd ${expansionAdd}, expansionSearch ${expansionSearch}`,
      );
    }
  }
  if (h.type === 'Flat' && h.placeholders !== 0) {
    bad(file, `damaged header: ${h.placeholders} placeholders in a Flat index`);
  }
  if (h.placeholders > MAX_COUNT) bad(file, `damaged header: ${h.placeholders} placeholders`);
  if (h.type === 'Flat' && h.payloadBytes !== h.count * h.dim * 4) {
    bad(
      file,
      `damaged header: ${h.payloadBytes} payload bytes for ${h.count} × ${h.dim} float32 vectors`,
    );
  }
}

function parseLabels(bytes: Buffer, count: number, file: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    bad(file, `damaged labels section: ${(err as Error).message}`, err);
  }
  if (!Array.isArray(v) || v.length !== count || !v.every((l) => typeof l === 'string')) {
    bad(file, `damaged labels section: expected ${count} label strings`);
  }
  return v;
}

interface YamlCheck {
  stale: boolean;
}

/** The parts of id_map.yaml that are checked. */
interface IdMapDoc {
  /** Top-level keys present. */
  keys: Set<string>;
  /** id_map entries as [key text, label] when id_map is a mapping. */
  entries: [string, unknown][] | null;
  indexType: unknown;
  metricType: unknown;
  stamp: unknown;
}

const FAST_ENTRY =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is excluded
  /^ {2}(0|[1-9]\d{0,15}): (?:([\p{L}\p{N}_][\p{L}\p{N}_\-./]*)|"((?:[^"\\\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]|\\["\\]|\\u[0-9a-fA-F]{4})*)")$/u;
const FAST_KEY = /^(index_type|metric_type|vector_index_sha256): ([A-Za-z0-9_]+)$/;

/**
 * Reads id_map.yaml exactly as written by {@link idMapYaml} with a line parser (the yaml library
 * needs ~30 µs per entry); returns null when the text is anything else, and the caller falls back
 * to a full YAML 1.1 parse. Every line it accepts means the same as in YAML.
 */
function parseOwnIdMap(text: string): IdMapDoc | null {
  const lines = text.split('\n');
  if (lines.pop() !== '') return null;
  const doc: IdMapDoc = {
    keys: new Set(),
    entries: [],
    indexType: undefined,
    metricType: undefined,
    stamp: undefined,
  };
  let i: number;
  if (lines[0] === 'id_map: {}') i = 1;
  else if (lines[0] === 'id_map:') {
    for (i = 1; i < lines.length; i++) {
      const m = FAST_ENTRY.exec(lines[i] as string);
      if (m === null) break;
      const label =
        m[2] ??
        (m[3] as string).replace(
          /\\(["\\])|\\u([0-9a-fA-F]{4})/g,
          (_, c: string | undefined, u: string | undefined) =>
            c ?? String.fromCharCode(parseInt(u as string, 16)),
        );
      if (m[2] !== undefined && (/^[0-9]/.test(label) || YAML_WORDS.test(label))) return null;
      doc.entries?.push([m[1] as string, label]);
    }
    if (i === 1) return null;
  } else return null;
  doc.keys.add('id_map');
  for (; i < lines.length; i++) {
    const m = FAST_KEY.exec(lines[i] as string);
    if (m === null || doc.keys.has(m[1] as string)) return null;
    doc.keys.add(m[1] as string);
    if (m[1] === 'index_type') doc.indexType = m[2];
    else if (m[1] === 'metric_type') doc.metricType = m[2];
    else doc.stamp = m[2];
  }
  // Duplicate ids make the YAML invalid: leave those to the full parser's message.
  const seen = new Set<string>();
  for (const [k] of doc.entries ?? []) {
    if (seen.has(k)) return null;
    seen.add(k);
  }
  return doc;
}

/** id_map.yaml by the full YAML 1.1 parser (PyYAML's dialect), for files we did not write. */
function parseIdMapYaml(text: string, yamlFile: string): IdMapDoc {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: false });
  const first = doc.errors[0];
  if (first !== undefined) {
    bad(yamlFile, `not valid YAML: ${first.message.split('\n')[0] ?? ''}`, first);
  }
  // Duplicate keys (checked here: the parser's own check is quadratic).
  const dupes = (node: unknown, what: string): void => {
    if (!isMap(node)) return;
    const seen = new Set<string>();
    for (const item of node.items) {
      const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
      if (seen.has(k)) bad(yamlFile, `${what} has the key ${JSON.stringify(k)} twice`);
      seen.add(k);
    }
  };
  dupes(doc.contents, 'the document');
  dupes(doc.get('id_map', true), 'id_map');
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    bad(yamlFile, `not usable YAML: ${(err as Error).message}`, err);
  }
  if (typeof js !== 'object' || js === null || Array.isArray(js)) {
    bad(yamlFile, 'not a mapping with id_map, index_type and metric_type');
  }
  const d = js as Record<string, unknown>;
  const map = d['id_map'];
  return {
    keys: new Set(Object.keys(d)),
    entries:
      typeof map === 'object' && map !== null && !Array.isArray(map)
        ? Object.entries(map as Record<string, unknown>)
        : null,
    indexType: d['index_type'],
    metricType: d['metric_type'],
    stamp: d[STAMP_KEY],
  };
}

/** Checks id_map.yaml against the (already verified) vector.index. */
async function checkIdMap(
  yamlFile: string,
  indexFile: string,
  h: Header,
  ids: Float64Array,
  labels: readonly string[],
  stamp: string,
): Promise<YamlCheck> {
  const bytes = await readWhole(yamlFile, 'the id map');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    bad(yamlFile, 'not valid UTF-8 text', err);
  }
  const d = parseOwnIdMap(text) ?? parseIdMapYaml(text, yamlFile);
  const fileStamp = d.stamp;
  if (fileStamp !== undefined) {
    if (typeof fileStamp !== 'string' || !/^[0-9a-f]{64}$/.test(fileStamp)) {
      bad(yamlFile, `${STAMP_KEY} is not a SHA-256 hex digest`);
    }
    if (fileStamp !== stamp) {
      // An interrupted save: vector.index renamed, the yaml not yet. vector.index is complete.
      if (fileStamp === h.prevStamp) return { stale: true };
      bad(
        yamlFile,
        `belongs to another save: its ${STAMP_KEY} ${fileStamp.slice(0, 12)}… does not match ` +
          `${indexFile} (${stamp.slice(0, 12)}…); save the index again`,
      );
    }
  }
  for (const key of ['id_map', 'index_type', 'metric_type']) {
    if (!d.keys.has(key)) bad(yamlFile, `has no '${key}' key`);
  }
  const typeName = d.indexType;
  const parsedType = typeof typeName === 'string' ? parseIndexTypeName(typeName) : null;
  if (parsedType === null) {
    bad(yamlFile, `unknown index_type ${JSON.stringify(typeName)} (expected Flat or HNSW32)`);
  }
  if (parsedType !== h.type) {
    bad(yamlFile, `index_type ${String(typeName)} does not match ${indexFile} (${h.type})`);
  }
  const metric = d.metricType;
  if (metric !== 'IP' && metric !== 'L2') {
    bad(yamlFile, `unknown metric_type ${JSON.stringify(metric)} (expected IP or L2)`);
  }
  if (metric !== h.metric) {
    bad(yamlFile, `metric_type ${metric} does not match ${indexFile} (${h.metric})`);
  }
  const entries = d.entries;
  if (entries === null) bad(yamlFile, 'id_map is not a mapping of id: label');
  if (entries.length !== ids.length) {
    bad(
      yamlFile,
      `id_map has ${entries.length} entries but ${indexFile} holds ${ids.length} vectors`,
    );
  }
  const byId = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) byId.set(ids[i] as number, i);
  for (const [key, value] of entries) {
    if (!/^(?:0|[1-9]\d*)$/.test(key))
      bad(yamlFile, `id_map key ${JSON.stringify(key)} is not an id`);
    const row = byId.get(Number(key));
    if (row === undefined) bad(yamlFile, `id_map has id ${key}, which ${indexFile} does not hold`);
    const label = typeof value === 'string' ? value : String(value);
    if (label !== labels[row]) {
      bad(
        yamlFile,
        `id_map gives id ${key} the label ${JSON.stringify(label)}, ${indexFile} has ${JSON.stringify(labels[row])}`,
      );
    }
  }
  return { stale: false };
}

/** Loads the HNSW graph from the verified payload bytes (through a temp file). */
async function loadGraph(
  file: string,
  payload: Buffer,
  h: Header,
  ids: Float64Array,
  settings: HnswSettings,
): Promise<HnswStore> {
  // The head must describe exactly this graph before usearch sees it (its loader trusts it).
  let head: UsearchHead;
  try {
    head = readUsearchHead(payload);
  } catch (err) {
    bad(file, `the HNSW graph is not a usearch index: ${(err as Error).message}`, err);
  }
  const slots = h.count + h.placeholders;
  if (
    head.present !== slots ||
    head.deleted !== 0 ||
    head.rows !== slots ||
    head.dimensions !== h.dim ||
    head.rowBytes !== h.dim * 4
  ) {
    bad(
      file,
      `the HNSW graph does not match the header: usearch head says ${head.present} present, ` +
        `${head.deleted} deleted, ${head.rows} rows of ${head.rowBytes} bytes, dim ${head.dimensions}; ` +
        `expected ${slots} vectors of dim ${h.dim} and no deleted slots`,
    );
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'pif-hnsw-'));
  try {
    const graphFile = path.join(tmp, `graph-${randomBytes(4).toString('hex')}.usearch`);
    const fh = await open(graphFile, 'w');
    try {
      await writeAll(fh, payload);
    } finally {
      await fh.close();
    }
    let store: HnswStore;
    try {
      store = HnswStore.loadFrom(graphFile, h.dim, h.metric, settings, h.placeholders);
    } catch (err) {
      if (err instanceof PifError) throw err;
      bad(file, `the HNSW graph cannot be loaded: ${(err as Error).message}`, err);
    }
    if (store.size !== h.count || store.graphDims() !== h.dim) {
      bad(
        file,
        `the HNSW graph holds ${store.size} vectors of dim ${store.graphDims()}, the header says ${h.count} of dim ${h.dim}`,
      );
    }
    const present = store.contains(Array.from(ids));
    const missing = present.findIndex((p) => !p);
    if (missing >= 0) bad(file, `the HNSW graph has no vector for id ${ids[missing] as number}`);
    return store;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Loads and verifies an index directory. `hnswRuntime` gives the settings that are not saved
 * (addThreads) and may override expansionSearch.
 */
export async function loadIndexFiles(
  dir: string,
  hnswRuntime: { addThreads: number; expansionSearch?: number | undefined },
): Promise<LoadedIndex> {
  checkEndianness();
  const abs = path.resolve(dir);
  const indexFile = path.join(abs, INDEX_FILE);
  const yamlFile = path.join(abs, ID_MAP_FILE);
  const buf = await readWhole(indexFile, 'the vectors');
  const h = parseHeader(buf, indexFile);
  checkHeader(h, indexFile);
  const expected = HEADER_BYTES + h.count * 8 + h.labelsBytes + h.payloadBytes + DIGEST_BYTES;
  if (buf.length !== expected) {
    bad(
      indexFile,
      buf.length < expected
        ? `truncated: ${buf.length} bytes, the header describes ${expected}`
        : `damaged: ${buf.length} bytes, the header describes ${expected}`,
    );
  }
  const body = buf.subarray(0, buf.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(buf.subarray(buf.length - DIGEST_BYTES))) {
    bad(indexFile, 'damaged: the SHA-256 checksum does not match the contents');
  }
  const stamp = digest.toString('hex');

  let off = HEADER_BYTES;
  const ids = new Float64Array(h.count);
  for (let i = 0; i < h.count; i++, off += 8) {
    const id = buf.readBigUInt64LE(off);
    if (id >= BigInt(h.nextId) || (i > 0 && Number(id) <= (ids[i - 1] as number))) {
      bad(indexFile, `damaged id list: id ${id} at position ${i}`);
    }
    ids[i] = Number(id);
  }
  const labels = parseLabels(buf.subarray(off, off + h.labelsBytes), h.count, indexFile);
  off += h.labelsBytes;
  const payload = buf.subarray(off, off + h.payloadBytes);

  const { stale } = await checkIdMap(yamlFile, indexFile, h, ids, labels, stamp);
  const model = (await readModelFile(abs))?.get(stamp) ?? null;

  const meta: IndexMeta = {
    type: h.type,
    metric: h.metric,
    dim: h.dim,
    nextId: h.nextId,
    hnsw: h.hnsw,
    ids,
    labels,
    model,
  };
  let flat: FlatStore | null = null;
  let hnswStore: HnswStore | null = null;
  if (h.type === 'Flat') {
    if (h.dim > 0) {
      const vectors = new Float32Array(h.count * h.dim);
      new Uint8Array(vectors.buffer).set(payload);
      flat = FlatStore.from(h.dim, ids.slice(), vectors);
    }
  } else if (h.hnsw !== null && h.dim > 0) {
    const settings: HnswSettings = {
      ...h.hnsw,
      expansionSearch: hnswRuntime.expansionSearch ?? h.hnsw.expansionSearch,
      addThreads: hnswRuntime.addThreads,
    };
    if (h.payloadBytes === 0) bad(indexFile, 'the HNSW graph is missing');
    hnswStore = await loadGraph(indexFile, payload, h, ids, settings);
  } else if (h.payloadBytes !== 0) {
    bad(indexFile, `damaged header: ${h.payloadBytes} payload bytes for an empty index`);
  }
  return { ...meta, labels, flat, hnswStore, stamp, idMapStale: stale };
}
