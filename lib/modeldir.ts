/**
 * Model directories as PaddleX lays them out, and their inference.yml.
 *
 * A PaddleX model directory holds `inference.json` (PIR, Paddle 3.x) or `inference.pdmodel`
 * (legacy ProgramDesc), plus `inference.pdiparams` and `inference.yml`; the JSON program is
 * preferred when both exist. Older exports use `model.json` or `model.pdmodel` with
 * `model.pdiparams`, or `__model__` with `__params__`/`params` or one file per parameter. The
 * native reader does the same resolution (native/format/model_dir.cc, in the same order); this
 * module does it for early, clear errors and to find the yml.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { isMap, parseDocument } from 'yaml';

import { ModelConfigError, ModelNotFoundError, PifIoError } from './errors.js';
import { isPlainObject } from './limits.js';

export type ModelFormat = 'pir' | 'pdmodel';

/** Program file names in PaddleX's order of preference (native/format/model_dir.cc's order). */
export const PROGRAM_FILES: readonly { name: string; format: ModelFormat }[] = [
  { name: 'inference.json', format: 'pir' },
  { name: 'inference.pdmodel', format: 'pdmodel' },
  { name: 'model.json', format: 'pir' },
  { name: 'model.pdmodel', format: 'pdmodel' },
  { name: '__model__', format: 'pdmodel' },
];

export const INFERENCE_CONFIG_FILE = 'inference.yml';

export interface ResolvedModelDir {
  /** Absolute directory of the model. */
  readonly dir: string;
  /** Absolute path of the program file. */
  readonly programFile: string;
  readonly format: ModelFormat;
  /** Absolute path of inference.yml, or null when the directory has none. */
  readonly configFile: string | null;
}

async function statOrNull(p: string): Promise<import('node:fs').Stats | null> {
  try {
    return await fs.stat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
    throw new PifIoError(`cannot stat ${p}: ${(err as Error).message}`, { file: p, cause: err });
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

function formatOfFile(file: string): ModelFormat {
  return file.endsWith('.json') ? 'pir' : 'pdmodel';
}

/**
 * Resolves a model directory (or a program file inside one): the one check of a model path in
 * lib/ (the native reader resolves it again when it loads). Throws ModelNotFoundError
 * (PIF_MODEL_NOT_FOUND) when the path does not exist (`missing` words that message) or holds
 * no program file.
 */
export async function resolveModelDir(
  modelPath: string,
  missing: (abs: string) => string = (abs) => `model directory not found: ${abs}`,
): Promise<ResolvedModelDir> {
  const abs = path.resolve(modelPath);
  const st = await statOrNull(abs);
  if (st === null) {
    throw new ModelNotFoundError(missing(abs), { file: abs });
  }
  let dir: string;
  let programFile: string | undefined;
  let format: ModelFormat | undefined;
  if (st.isDirectory()) {
    dir = abs;
    for (const cand of PROGRAM_FILES) {
      const p = path.join(dir, cand.name);
      const s = await statOrNull(p);
      if (s?.isFile()) {
        programFile = p;
        format = cand.format;
        break;
      }
    }
    if (programFile === undefined || format === undefined) {
      throw new ModelNotFoundError(
        `no model program in ${dir}: expected one of ${PROGRAM_FILES.map((c) => c.name).join(', ')}`,
        { file: dir },
      );
    }
  } else {
    dir = path.dirname(abs);
    programFile = abs;
    format = formatOfFile(abs);
  }
  const yml = path.join(dir, INFERENCE_CONFIG_FILE);
  const ymlStat = await statOrNull(yml);
  return { dir, programFile, format, configFile: ymlStat?.isFile() ? yml : null };
}

// ---------------------------------------------------------------------------
// inference.yml

/** One entry of PreProcess.transform_ops: a single-key map `{Name: args}`. */
export interface TransformOp {
  /** The op name, e.g. 'ResizeImage', 'NormalizeImage', 'ToCHWImage'. */
  readonly name: string;
  /** Its arguments; `{}` when the yml says `null`. */
  readonly args: Readonly<Record<string, unknown>>;
}

/** inference.yml, typed. Key names follow the file (PaddleX spelling). */
export interface InferenceConfig {
  /** The file it was read from (or '<string>'). */
  readonly file: string;
  readonly Global: Readonly<{ model_name: string } & Record<string, unknown>>;
  /** High-performance-inference hints (anchors already resolved), or null. */
  readonly Hpi: unknown;
  readonly PreProcess: { readonly transform_ops: readonly TransformOp[] };
  /** E.g. `{NormalizeFeatures: null}`, `{Topk: {...}}`, `{name: 'DBPostProcess', ...}`; null when absent. */
  readonly PostProcess: Readonly<Record<string, unknown>> | null;
  /** The whole parsed document. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Largest inference.yml we read (official ones are < 200 KB; OCR dicts included). */
export const MAX_CONFIG_BYTES = 16 << 20;

/** Parses inference.yml text. `file` names the file in errors. Throws ModelConfigError. */
export function parseInferenceConfig(text: string, file = '<string>'): InferenceConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const firstError = doc.errors[0];
  if (firstError !== undefined) {
    const line = firstError.linePos?.[0];
    const where = line === undefined ? undefined : `line ${line.line}, column ${line.col}`;
    throw new ModelConfigError(
      `${file}: invalid YAML: ${firstError.message.split('\n')[0] ?? ''}`,
      {
        file,
        where,
        offset: firstError.pos[0],
      },
    );
  }
  if (!isMap(doc.contents)) {
    throw new ModelConfigError(`${file}: expected a mapping at the top level`, { file });
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ModelConfigError(`${file}: ${(err as Error).message}`, { file, cause: err });
  }
  if (!isPlainObject(raw)) {
    throw new ModelConfigError(`${file}: expected a mapping at the top level`, { file });
  }

  const global = raw['Global'];
  if (!isPlainObject(global)) {
    throw new ModelConfigError(`${file}: missing 'Global' section`, { file, where: 'Global' });
  }
  const modelName = global['model_name'];
  if (typeof modelName !== 'string' || modelName === '') {
    throw new ModelConfigError(`${file}: 'Global.model_name' must be a non-empty string`, {
      file,
      where: 'Global.model_name',
    });
  }

  const pre = raw['PreProcess'];
  if (!isPlainObject(pre)) {
    throw new ModelConfigError(`${file}: missing 'PreProcess' section`, {
      file,
      where: 'PreProcess',
    });
  }
  const opsRaw = pre['transform_ops'];
  if (!Array.isArray(opsRaw)) {
    throw new ModelConfigError(`${file}: 'PreProcess.transform_ops' must be a list`, {
      file,
      where: 'PreProcess.transform_ops',
    });
  }
  const transformOps = opsRaw.map((entry: unknown, i): TransformOp => {
    const where = `PreProcess.transform_ops[${i}]`;
    if (!isPlainObject(entry) || Object.keys(entry).length !== 1) {
      throw new ModelConfigError(`${file}: ${where} must be a single-key mapping {OpName: args}`, {
        file,
        where,
      });
    }
    const [name, args] = Object.entries(entry)[0] as [string, unknown];
    if (args !== null && args !== undefined && !isPlainObject(args)) {
      throw new ModelConfigError(
        `${file}: ${where} (${name}): arguments must be a mapping or null`,
        {
          file,
          where,
        },
      );
    }
    return Object.freeze({ name, args: Object.freeze({ ...(args ?? {}) }) });
  });

  const post = raw['PostProcess'];
  if (post !== undefined && post !== null && !isPlainObject(post)) {
    throw new ModelConfigError(`${file}: 'PostProcess' must be a mapping`, {
      file,
      where: 'PostProcess',
    });
  }

  return Object.freeze({
    file,
    Global: Object.freeze({ ...global, model_name: modelName }),
    Hpi: raw['Hpi'] ?? null,
    PreProcess: Object.freeze({ transform_ops: Object.freeze(transformOps) }),
    PostProcess: post ?? null,
    raw,
  });
}

/**
 * Reads `inference.yml` from a model directory (or reads the given .yml file).
 * Throws ModelNotFoundError when it is missing, ModelConfigError when it is malformed.
 */
export async function loadInferenceConfig(modelDirOrFile: string): Promise<InferenceConfig> {
  const abs = path.resolve(modelDirOrFile);
  const st = await statOrNull(abs);
  if (st === null) throw new ModelNotFoundError(`model directory not found: ${abs}`, { file: abs });
  const file = st.isDirectory() ? path.join(abs, INFERENCE_CONFIG_FILE) : abs;
  return readInferenceConfig(file, abs, st.isDirectory() ? undefined : st);
}

/**
 * Reads the inference.yml `file` of the model directory `dir` (as resolveModelDir found it, or
 * null when it found none). Throws ModelNotFoundError when it is missing, ModelConfigError
 * when it is malformed.
 */
export async function readInferenceConfig(
  file: string | null,
  dir: string,
  known?: import('node:fs').Stats,
): Promise<InferenceConfig> {
  const fst = file === null ? null : (known ?? (await statOrNull(file)));
  if (file === null || fst === null || !fst.isFile()) {
    throw new ModelNotFoundError(`${INFERENCE_CONFIG_FILE} not found in ${dir}`, {
      file: file ?? path.join(dir, INFERENCE_CONFIG_FILE),
    });
  }
  if (fst.size > MAX_CONFIG_BYTES) {
    throw new ModelConfigError(
      `${file}: ${fst.size} bytes is larger than the ${MAX_CONFIG_BYTES}-byte limit`,
      {
        file,
      },
    );
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new PifIoError(`cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
  return parseInferenceConfig(text, file);
}
