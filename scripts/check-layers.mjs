#!/usr/bin/env node
// Layer check of the native sources: every `#include "..."` in native/ must point to a
// header of the including file's own layer or of a layer below it (issue 16).
//
//   node scripts/check-layers.mjs [ROOT]     (ROOT: the package root, default this checkout)
//
// Layers, bottom to top (folders under native/; one rank may hold several sibling layers,
// which must not include each other):
//   0 common/                      errors (all error codes), JSON
//   1 graph/                       the IR, the op interface, the loaded-program record
//   2 format/                      readers and writers of Paddle files
//   3 passes/                      graph rewrites (constant folding, fusion)
//   4 kernels/common/, kernels/*   helpers both backends share; the op table (registry)
//   5 kernels/ref/ | kernels/dnnl/ the two backends
//   6 runtime/                     the executor
//   7 builder/ | export/ | preprocess/ | retrieval/ | train/   engine features, above the runtime
//   8 addon/                       the N-API layer
//   9 fuzz/, tests/, tools/        harnesses: may include any layer (never included by one)
// Includes are resolved against native/ (the include directory), then against the
// including file's folder. A file outside every layer, or an include that resolves to no
// file under native/, fails too, so a new folder has to be given a place here.
// Exit 0 with a one-line summary, or 1 listing file:line, the include and the rule broken.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LAYERS = [
  { name: 'common', rank: 0, dirs: ['common/'] },
  { name: 'graph', rank: 1, dirs: ['graph/'] },
  { name: 'format', rank: 2, dirs: ['format/'] },
  { name: 'passes', rank: 3, dirs: ['passes/'] },
  { name: 'kernels/common', rank: 4, dirs: ['kernels/common/'], files: /^kernels\/[^/]+$/ },
  { name: 'kernels/ref', rank: 5, dirs: ['kernels/ref/'] },
  { name: 'kernels/dnnl', rank: 5, dirs: ['kernels/dnnl/'] },
  { name: 'runtime', rank: 6, dirs: ['runtime/'] },
  { name: 'builder', rank: 7, dirs: ['builder/'] },
  { name: 'export', rank: 7, dirs: ['export/'] },
  { name: 'preprocess', rank: 7, dirs: ['preprocess/'] },
  { name: 'retrieval', rank: 7, dirs: ['retrieval/'] },
  { name: 'train', rank: 7, dirs: ['train/'] },
  { name: 'addon', rank: 8, dirs: ['addon/'] },
  { name: 'harness', rank: 9, dirs: ['fuzz/', 'tests/', 'tools/'] },
];

const SOURCE = /\.(h|hh|hpp|cc|cpp|cxx|c|inc)$/;
const INCLUDE = /^\s*#\s*include\s*"([^"]+)"/;

/** The layer of a path relative to native/ (forward slashes), or undefined. */
export function layerOf(rel) {
  return LAYERS.find((l) => l.dirs.some((d) => rel.startsWith(d)) || l.files?.test(rel));
}

function listSources(dir, base = dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) listSources(full, base, out);
    else if (entry.isFile() && SOURCE.test(entry.name)) {
      out.push(path.relative(base, full).split(path.sep).join('/'));
    }
  }
  return out;
}

function resolveInclude(nativeDir, fromRel, target) {
  const candidates = [target, path.posix.join(path.posix.dirname(fromRel), target)];
  for (const c of candidates) {
    const rel = path.posix.normalize(c);
    if (rel.startsWith('../')) continue;
    const full = path.join(nativeDir, rel);
    if (existsSync(full) && statSync(full).isFile()) return rel;
  }
  return undefined;
}

function describe(l) {
  return `${l.name} (rank ${l.rank})`;
}

/** Checks ROOT/native; returns { files, includes, problems: string[] }. */
export function checkLayers(root) {
  const nativeDir = path.join(root, 'native');
  if (!existsSync(nativeDir)) throw new Error(`no native/ folder under ${root}`);
  const files = listSources(nativeDir).sort();
  const problems = [];
  let includes = 0;
  for (const rel of files) {
    const from = layerOf(rel);
    if (!from) {
      problems.push(`native/${rel}: not in any layer (give its folder a place in LAYERS)`);
      continue;
    }
    const lines = readFileSync(path.join(nativeDir, rel), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const m = INCLUDE.exec(line);
      if (!m) return;
      includes++;
      const where = `native/${rel}:${i + 1}: #include "${m[1]}"`;
      const target = resolveInclude(nativeDir, rel, m[1]);
      if (!target) {
        problems.push(`${where}: resolves to no file under native/`);
        return;
      }
      const to = layerOf(target);
      if (!to) {
        problems.push(`${where}: native/${target} is not in any layer`);
      } else if (to !== from && to.rank >= from.rank) {
        const how = to.rank === from.rank ? 'a sibling layer' : 'a higher layer';
        problems.push(
          `${where}: ${describe(from)} may not include ${describe(to)}, ${how}` +
            ' (includes run downward only)',
        );
      }
    });
  }
  return { files: files.length, includes, problems };
}

function main() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(process.argv[2] ?? path.join(here, '..'));
  const { files, includes, problems } = checkLayers(root);
  if (problems.length) {
    console.error(`check-layers: ${problems.length} include(s) break the layer order:`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  const order = [...new Set(LAYERS.map((l) => l.rank))]
    .map((r) =>
      LAYERS.filter((l) => l.rank === r)
        .map((l) => l.name)
        .join('|'),
    )
    .join(' < ');
  console.log(`check-layers: ${files} files, ${includes} includes, all downward (${order})`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
