/**
 * PaddleX's multi-backend high-performance mode (../shared/spec/paddlex-behaviour.md §4.4):
 * `hpi_config` (`backend`, `auto_config`, `backend_config`), and the automatic choice of a
 * backend by PaddleX's per-model priority lists for x86-64 CPUs
 * (`suggest_inference_backend_and_config`: drop what is unavailable, take the first; a backend the
 * user names must be on the model's list).
 *
 * The backends here: `paddle` with run_mode `paddle` (our normal mode, the reference kernels) or
 * `mkldnn` / `mkldnn_bf16` (our oneDNN engine, PaddleX's pseudo-backend `paddle_mkldnn`, which
 * is also accepted as a backend name), and `onnxruntime` (onnxruntime-node, an optional peer
 * dependency, fed our own ONNX export in memory). OpenVINO, TensorRT and OM do not exist for
 * this package: auto skips them, naming them is PIF_UNSUPPORTED.
 */
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import { checkKnownKeys, describeValue, isPlainObject } from './limits.js';

/** PaddleX's backend names (`InferenceBackend`), plus its pseudo-backend `paddle_mkldnn`. */
export const HPI_BACKENDS = [
  'paddle',
  'paddle_mkldnn',
  'onnxruntime',
  'openvino',
  'tensorrt',
  'om',
] as const;
export type HpiBackend = (typeof HPI_BACKENDS)[number];

/** What runs a model: our reference kernels, our oneDNN engine, or ONNX Runtime. */
export type EngineBackend = 'paddle' | 'paddle_mkldnn' | 'onnxruntime';

/**
 * PaddleX's `hpi_config` (its keys as PaddleX spells them; the camelCase spellings are accepted
 * too). Defaults as PaddleX: `auto_config` true, no backend (the model's list decides).
 */
export interface HpiConfig {
  /** Choose the backend by PaddleX's priority list of the model (default true). */
  auto_config?: boolean;
  autoConfig?: boolean;
  /** The backend to run; with auto_config it must be on the model's list. */
  backend?: HpiBackend;
  /**
   * paddle: `run_mode` ('paddle' | 'mkldnn' | 'mkldnn_bf16'; PaddleX's CPU default mkldnn),
   * `cpu_threads`. onnxruntime: `cpu_num_threads`. Thread counts default to the model's
   * cpuThreads (PaddleX's default is 10 there, 8-10 here would oversubscribe small machines).
   */
  backend_config?: Record<string, unknown>;
  backendConfig?: Record<string, unknown>;
  /** PaddleX: export to ONNX when the directory has no .onnx file (default true). */
  auto_paddle2onnx?: boolean;
}

export interface ResolvedHpiConfig {
  readonly autoConfig: boolean;
  readonly backend: HpiBackend | null;
  readonly backendConfig: Readonly<Record<string, unknown>>;
  readonly autoPaddle2onnx: boolean;
}

/** PaddleX's `cpu_x64` priority lists (hpi_model_info_collection.json). */
export const CPU_PRIORITY: Readonly<Record<string, readonly string[]>> = {
  'PP-ShiTuV2_rec': ['openvino', 'onnxruntime', 'paddle_mkldnn', 'paddle'],
  'PP-ShiTuV2_rec_CLIP_vit_base': ['paddle_mkldnn', 'paddle'],
  'PP-ShiTuV2_rec_CLIP_vit_large': ['paddle_mkldnn', 'paddle'],
  'PP-ShiTuV2_det': ['openvino', 'paddle_mkldnn', 'onnxruntime', 'paddle'],
};

/** The list for a model PaddleX does not list: our engine, then normal mode. */
const DEFAULT_PRIORITY = ['paddle_mkldnn', 'paddle'] as const;

const PADDLE_RUN_MODES = ['paddle', 'paddle_fp32', 'mkldnn', 'mkldnn_bf16'] as const;
const PADDLE_CONFIG_KEYS = ['run_mode', 'cpu_threads'] as const;
const ORT_CONFIG_KEYS = ['cpu_num_threads'] as const;

const KEYS = [
  'auto_config',
  'autoConfig',
  'backend',
  'backend_config',
  'backendConfig',
  'auto_paddle2onnx',
] as const;

function pick(o: Record<string, unknown>, snake: string, camel: string, where: string): unknown {
  if (o[snake] !== undefined && o[camel] !== undefined) {
    throw new InvalidArgumentError(`${where}: give ${snake} or ${camel}, not both`);
  }
  return o[snake] ?? o[camel];
}

/** Validates an hpi_config object (API, module yaml or -o). `where` names it in errors. */
export function validateHpiConfig(raw: unknown, where = 'hpiConfig'): ResolvedHpiConfig {
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) {
    throw new InvalidArgumentError(`${where} must be an object, got ${describeValue(raw)}`);
  }
  checkKnownKeys(raw, KEYS, where);
  const auto = pick(raw, 'auto_config', 'autoConfig', where) ?? true;
  if (typeof auto !== 'boolean') {
    throw new InvalidArgumentError(
      `${where}.auto_config must be true or false, got ${describeValue(auto)}`,
    );
  }
  const backend = raw['backend'] ?? null;
  if (backend !== null && !(HPI_BACKENDS as readonly unknown[]).includes(backend)) {
    throw new InvalidArgumentError(
      `${where}.backend must be one of ${HPI_BACKENDS.join(', ')}, got ${describeValue(backend)}`,
    );
  }
  const cfg = pick(raw, 'backend_config', 'backendConfig', where) ?? {};
  if (!isPlainObject(cfg)) {
    throw new InvalidArgumentError(
      `${where}.backend_config must be an object, got ${describeValue(cfg)}`,
    );
  }
  const p2o = raw['auto_paddle2onnx'] ?? true;
  if (typeof p2o !== 'boolean') {
    throw new InvalidArgumentError(
      `${where}.auto_paddle2onnx must be true or false, got ${describeValue(p2o)}`,
    );
  }
  if (!auto && backend === null) {
    throw new InvalidArgumentError(
      `${where}: with auto_config false, backend must be set (paddle, paddle_mkldnn or onnxruntime)`,
    );
  }
  return Object.freeze({
    autoConfig: auto,
    backend: backend as HpiBackend | null,
    backendConfig: Object.freeze({ ...cfg }),
    autoPaddle2onnx: p2o,
  });
}

function threadsOf(
  cfg: Readonly<Record<string, unknown>>,
  key: string,
  where: string,
): number | null {
  const v = cfg[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1024) {
    throw new InvalidArgumentError(
      `${where}.backend_config.${key} must be an integer from 1 to 1024, got ${describeValue(v)}`,
    );
  }
  return v;
}

/** What runs the model, with what settings, and why. */
export interface BackendChoice {
  readonly backend: EngineBackend;
  /** Our engine's precision (onnxruntime: fp32). */
  readonly precision: 'fp32' | 'bf16' | 'int8';
  /** Threads of one inference call. */
  readonly threads: number;
  /** One sentence: why this backend. */
  readonly reason: string;
  /** Backends of the model's list that auto_config passed over, and why. */
  readonly skipped: readonly { readonly backend: string; readonly reason: string }[];
}

export interface ChooseArgs {
  /** inference.yml's Global.model_name (null: unknown). */
  modelName: string | null;
  config: ResolvedHpiConfig;
  /** The model's precision option ('bf16': only our oneDNN engine). */
  precision: 'fp32' | 'bf16' | 'int8';
  /** The model's cpuThreads (the default of every backend's thread count). */
  cpuThreads: number;
  /** Why onnxruntime cannot run (onnxruntime-node missing), or null when it can. */
  ortUnavailable: () => Promise<string | null>;
  where?: string;
}

/** Why a backend PaddleX knows cannot run in this package (null: it can). */
async function unavailable(b: string, args: ChooseArgs): Promise<string | null> {
  switch (b) {
    case 'paddle':
    case 'paddle_mkldnn':
      return null;
    case 'onnxruntime':
      if (!args.config.autoPaddle2onnx) {
        return 'auto_paddle2onnx is false and this package runs onnxruntime on its own ONNX export only';
      }
      return args.ortUnavailable();
    case 'openvino':
      return 'OpenVINO is not available to this package (no maintained Node binding)';
    default:
      return `${b} needs a GPU or NPU; this build runs on CPU only`;
  }
}

/** The backend a pseudo-backend of PaddleX's lists belongs to. */
function baseOf(pseudo: string): string {
  if (pseudo.startsWith('paddle')) return 'paddle';
  if (pseudo.startsWith('tensorrt')) return 'tensorrt';
  return pseudo;
}

/** backend_config with its keys checked for `backend`, and the name errors give hpi_config. */
function backendConfigFor(
  args: ChooseArgs,
  keys: readonly string[],
  backend: string,
): { where: string; cfg: Readonly<Record<string, unknown>> } {
  const where = args.where ?? 'hpi_config';
  const cfg = args.config.backendConfig;
  checkKnownKeys(cfg, keys, `${where}.backend_config (backend ${backend})`);
  return { where, cfg };
}

function paddleChoice(
  pseudo: 'paddle' | 'paddle_mkldnn',
  args: ChooseArgs,
  reason: string,
  skipped: BackendChoice['skipped'],
): BackendChoice {
  const { where, cfg } = backendConfigFor(args, PADDLE_CONFIG_KEYS, 'paddle');
  const rm = cfg['run_mode'];
  if (rm !== undefined && !(PADDLE_RUN_MODES as readonly unknown[]).includes(rm)) {
    throw new UnsupportedError(
      `${where}.backend_config.run_mode ${describeValue(rm)} is not available on CPU; use ` +
        PADDLE_RUN_MODES.join(', '),
    );
  }
  let runMode = (rm as string | undefined) ?? (pseudo === 'paddle_mkldnn' ? 'mkldnn' : 'paddle');
  if (args.precision !== 'fp32') {
    const want = args.precision === 'bf16' ? 'mkldnn_bf16' : 'mkldnn';
    if (rm !== undefined && rm !== want) {
      throw new InvalidArgumentError(
        `precision '${args.precision}' contradicts ${where}.backend_config.run_mode ${describeValue(rm)}`,
      );
    }
    runMode = want;
  }
  const threads = threadsOf(cfg, 'cpu_threads', where) ?? args.cpuThreads;
  if (runMode === 'paddle' || runMode === 'paddle_fp32') {
    return { backend: 'paddle', precision: 'fp32', threads, reason, skipped };
  }
  return {
    backend: 'paddle_mkldnn',
    precision: runMode === 'mkldnn_bf16' ? 'bf16' : args.precision === 'int8' ? 'int8' : 'fp32',
    threads,
    reason,
    skipped,
  };
}

function ortChoice(
  args: ChooseArgs,
  reason: string,
  skipped: BackendChoice['skipped'],
): BackendChoice {
  const { where, cfg } = backendConfigFor(args, ORT_CONFIG_KEYS, 'onnxruntime');
  if (args.precision !== 'fp32') {
    throw new UnsupportedError(
      `precision '${args.precision}' runs on paddle_mkldnn only, not on onnxruntime`,
    );
  }
  const threads = threadsOf(cfg, 'cpu_num_threads', where) ?? args.cpuThreads;
  return { backend: 'onnxruntime', precision: 'fp32', threads, reason, skipped };
}

function explicitUnavailable(b: string, why: string, where: string): never {
  throw new UnsupportedError(
    b === 'onnxruntime'
      ? `${where}.backend 'onnxruntime' cannot run: ${why}`
      : `${where}.backend '${b}' is unavailable: ${why}`,
  );
}

/**
 * PaddleX's choice of a backend for hpi (suggest_inference_backend_and_config), on this
 * package's backends. Throws PIF_UNSUPPORTED for a named backend that cannot run here or is
 * not on the model's list (with auto_config), PIF_INVALID_ARG for bad backend_config keys.
 */
export async function chooseBackend(args: ChooseArgs): Promise<BackendChoice> {
  const where = args.where ?? 'hpi_config';
  const { config } = args;
  const named = config.backend;
  if (named !== null) {
    const why = await unavailable(named, args);
    if (why !== null) explicitUnavailable(named, why, where);
  }
  if (!config.autoConfig) {
    // PaddleX without auto_config: the named backend with backend_config as given; paddle's
    // run_mode defaults to PaddlePredictorOption's CPU default, mkldnn.
    const reason = `${where}.backend '${String(named)}' with auto_config false`;
    if (named === 'onnxruntime') return ortChoice(args, reason, []);
    return paddleChoice('paddle_mkldnn', args, reason, []);
  }
  const known = args.modelName !== null ? CPU_PRIORITY[args.modelName] : undefined;
  const list: readonly string[] = known ?? DEFAULT_PRIORITY;
  const listName =
    known !== undefined
      ? `PaddleX's cpu_x64 list for ${String(args.modelName)} (${list.join(' > ')})`
      : `the default list (${list.join(' > ')}; ${args.modelName === null ? 'the model has no name in inference.yml' : `PaddleX does not list ${args.modelName}`})`;
  const skipped: { backend: string; reason: string }[] = [];
  const supported: string[] = [];
  for (const pseudo of list) {
    const why = await unavailable(pseudo, args);
    if (why !== null) skipped.push({ backend: pseudo, reason: why });
    else if (args.precision !== 'fp32' && pseudo !== 'paddle_mkldnn') {
      skipped.push({
        backend: pseudo,
        reason: `precision '${args.precision}' runs on paddle_mkldnn only`,
      });
    } else supported.push(pseudo);
  }
  let pseudo: string | undefined;
  if (named !== null) {
    // A named backend must be on the model's list; paddle takes its first paddle pseudo-backend
    // (paddle_mkldnn before paddle), unless run_mode asks otherwise (paddleChoice).
    const wanted = named === 'paddle_mkldnn' ? 'paddle_mkldnn' : null;
    pseudo = supported.find((p) => (wanted !== null ? p === wanted : baseOf(p) === named));
    if (pseudo === undefined) {
      throw new UnsupportedError(
        `${where}.backend '${named}' is not on ${listName}` +
          (args.precision !== 'fp32' ? ` with precision '${args.precision}'` : '') +
          `; set auto_config false to run it anyway`,
      );
    }
    const reason = `${where}.backend '${named}' (auto_config, ${listName})`;
    return named === 'onnxruntime'
      ? ortChoice(args, reason, [])
      : paddleChoice(pseudo as 'paddle' | 'paddle_mkldnn', args, reason, []);
  }
  pseudo = supported[0];
  if (pseudo === undefined) {
    throw new UnsupportedError(`no backend of ${listName} can run here`);
  }
  const reason = `auto_config: the first available backend of ${listName}`;
  const passed = skipped.filter((s) => list.indexOf(s.backend) < list.indexOf(pseudo));
  return pseudo === 'onnxruntime'
    ? ortChoice(args, reason, passed)
    : paddleChoice(pseudo as 'paddle' | 'paddle_mkldnn', args, reason, passed);
}

/** One line for a person: which backend runs, why, and what auto_config passed over. */
export function engineNote(e: {
  backend: EngineBackend;
  reason: string;
  skipped: readonly { backend: string; reason: string }[];
}): string {
  const skipped = e.skipped.map((s) => `${s.backend} skipped: ${s.reason}`).join('; ');
  return `hpi: backend ${e.backend} (${e.reason})${skipped === '' ? '' : `; ${skipped}`}`;
}
