/**
 * Test fixtures: real Paddle models in ../shared/fixtures (or $PIF_FIXTURES).
 *
 * When the fixtures are absent, tests that need them are skipped with the reason printed,
 * unless PIF_REQUIRE_FIXTURES=1 (CI), which turns their absence into a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The fixtures root directory (whether or not it exists). */
export const fixturesRoot: string = path.resolve(
  process.env['PIF_FIXTURES'] ?? path.join(repoRoot, '..', 'shared', 'fixtures'),
);

export const requireFixtures = process.env['PIF_REQUIRE_FIXTURES'] === '1';

/** Why fixture tests cannot run, or null when they can. */
export function fixturesMissingReason(): string | null {
  const models = path.join(fixturesRoot, 'paddle-models');
  if (!existsSync(models) || !statSync(models).isDirectory()) {
    return `fixtures not found at ${models} (set PIF_FIXTURES to the shared fixtures directory)`;
  }
  return null;
}

/**
 * Call at the top of a test that needs fixtures. Returns the fixtures root, or null after
 * marking the test skipped (printing why). With PIF_REQUIRE_FIXTURES=1 a missing fixture
 * directory fails the test instead.
 */
let printed = false;

export function needFixtures(t: TestContext): string | null {
  const reason = fixturesMissingReason();
  if (reason === null) return fixturesRoot;
  if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${reason}`);
  if (!printed) {
    printed = true;
    console.log(`# fixture tests skipped: ${reason}`);
  }
  t.skip(reason);
  return null;
}

/** A tensor as SOURCE.md states it, with dtype mapped to Paddle's Python spelling. */
export interface FactTensor {
  name: string;
  dtype: string;
  shape: number[];
}

/** The "Parsed facts" of a fixture's SOURCE.md. */
export interface ModelFacts {
  /** Fixture name (its directory). */
  name: string;
  dir: string;
  format: 'pir' | 'pdmodel';
  version: number;
  blocks: number | null;
  opCount: number;
  /** Persistable tensors (legacy) / builtin.parameter ops (PIR). */
  persistable: number;
  inputs: FactTensor[];
  outputs: FactTensor[];
  ops: Record<string, number>;
  /** Whether the parameters are present (not a GRAPH-ONLY fixture). */
  hasParams: boolean;
}

const DTYPE: Readonly<Record<string, string>> = {
  f32: 'float32',
  fp32: 'float32',
  float32: 'float32',
  f64: 'float64',
  fp64: 'float64',
  f16: 'float16',
  fp16: 'float16',
  bf16: 'bfloat16',
  i64: 'int64',
  int64: 'int64',
  i32: 'int32',
  int32: 'int32',
  i16: 'int16',
  i8: 'int8',
  int8: 'int8',
  u8: 'uint8',
  ui8: 'uint8',
  uint8: 'uint8',
  b: 'bool',
  bool: 'bool',
};

export function mapDtype(s: string): string {
  const d = DTYPE[s];
  if (d === undefined) throw new Error(`unknown dtype spelling in SOURCE.md: ${s}`);
  return d;
}

function parseShape(s: string): number[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map(Number);
}

function factLine(section: string, label: string, file: string): string {
  const re = new RegExp(`^- ${label}[^:]*:\\s*(.*)$`, 'm');
  const m = re.exec(section);
  if (m?.[1] === undefined) throw new Error(`${file}: no "${label}" line in Parsed facts`);
  return m[1];
}

function parseTensors(line: string, pir: boolean): FactTensor[] {
  const out: FactTensor[] = [];
  const re = pir
    ? /`([^`]+)`\s*\[\('(\w+)',\s*\[([^\]]*)\]\)\]/g
    : /\d+\s+`([^`]+)`\s+(\w+)\s+\[([^\]]*)\]/g;
  for (const m of line.matchAll(re)) {
    out.push({ name: m[1] ?? '', dtype: mapDtype(m[2] ?? ''), shape: parseShape(m[3] ?? '') });
  }
  return out;
}

/** Parses the "## Parsed facts" section of a SOURCE.md. */
export function parseSourceMd(text: string, file: string, dir: string): ModelFacts {
  const start = text.indexOf('## Parsed facts');
  if (start < 0) throw new Error(`${file}: no "## Parsed facts" section`);
  const rest = text.slice(start + 1);
  const next = rest.indexOf('\n## ');
  const section = next < 0 ? rest : rest.slice(0, next);
  const formatLine = factLine(section, 'Format', file);
  const pir = formatLine.startsWith('PIR');
  let version: number;
  let blocks: number | null = null;
  let opCount: number;
  let persistable: number;
  if (pir) {
    const v = /"version":\s*(\d+)/.exec(formatLine);
    const ops = /ops = (\d+)/.exec(formatLine);
    const params = /incl\. (\d+) builtin\.parameter/.exec(formatLine);
    if (!v || !ops || !params) throw new Error(`${file}: cannot parse Format line: ${formatLine}`);
    version = Number(v[1]);
    opCount = Number(ops[1]);
    persistable = Number(params[1]);
  } else {
    const v = /ProgramDesc\.version = (\d+)/.exec(formatLine);
    const b = /blocks = (\d+)/.exec(formatLine);
    const ops = /ops = (\d+)/.exec(formatLine);
    const p = /persistable tensors = (\d+)/.exec(formatLine);
    if (!v || !b || !ops || !p) throw new Error(`${file}: cannot parse Format line: ${formatLine}`);
    version = Number(v[1]);
    blocks = Number(b[1]);
    opCount = Number(ops[1]);
    persistable = Number(p[1]);
  }
  const inputs = parseTensors(factLine(section, 'Inputs', file), pir);
  const outputs = parseTensors(factLine(section, 'Outputs', file), pir);
  if (inputs.length === 0 || outputs.length === 0) {
    throw new Error(`${file}: cannot parse Inputs/Outputs`);
  }
  const ops: Record<string, number> = {};
  for (const item of factLine(section, 'Op types', file).split(',')) {
    const m = /^\s*(\S+)×(\d+)\s*$/.exec(item);
    if (!m?.[1] || m[2] === undefined)
      throw new Error(`${file}: cannot parse op census item '${item}'`);
    ops[m[1]] = Number(m[2]);
  }
  const hasParams = !/GRAPH-ONLY/.test(text.split('\n')[0] ?? '');
  return {
    name: path.basename(dir),
    dir,
    format: pir ? 'pir' : 'pdmodel',
    version,
    blocks,
    opCount,
    persistable,
    inputs,
    outputs,
    ops,
    hasParams,
  };
}

/** Every fixture model directory with a SOURCE.md, with its parsed facts, sorted by name. */
export function fixtureModels(root: string): ModelFacts[] {
  const models = path.join(root, 'paddle-models');
  return readdirSync(models, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(models, d.name, 'SOURCE.md')))
    .map((d) => {
      const dir = path.join(models, d.name);
      const file = path.join(dir, 'SOURCE.md');
      return parseSourceMd(readFileSync(file, 'utf8'), file, dir);
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Path of one fixture model directory by name. */
export function fixtureDir(root: string, name: string): string {
  return path.join(root, 'paddle-models', name);
}
