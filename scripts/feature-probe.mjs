#!/usr/bin/env node
// Cross-platform feature probe (scripts/check-arm64.sh runs it on the x64 host and, under
// qemu-user, in an arm64 Debian root): builds the PP-ShiTuV2_rec test model with the
// builder (seeded random weights) unless the model directory already has one, runs
// createModel(...).predict on one image in normal and in high-performance mode, and
// writes everything needed to compare two platforms as one JSON document:
//   - the platform (arch, Node, glibc) and the shared objects the process has mapped at
//     the end (from /proc/self/maps), so the caller can prove which libdnnl/libgomp were
//     loaded (under qemu-user the emulated /proc/self/maps lists the guest's mappings);
//   - sha256 of every model file it built or found, and of the preprocessed input tensor
//     (the tensor itself goes to <out>.input.f32);
//   - per mode: the L2-normalised image feature, the raw output for a fixed synthetic
//     input (the engines compared without image decoding), timings, and in hpi mode the
//     engine report (nodes on oneDNN, fallbacks to split/reference paths).
// (oneDNN's ISA and the primitives it ran come from ONEDNN_VERBOSE=1 on stdout when --out
// is given; check-arm64.sh summarises them.)
//
//   node scripts/feature-probe.mjs --pkg <package root> --model-dir <dir> --image <jpeg>
//        [--out result.json] [--modes normal,hpi] [--threads 1]
//   node scripts/feature-probe.mjs image probe.jpg   (the test image, written with sharp)
//   node scripts/feature-probe.mjs compare REF.json TEST.json [--min-cosine 0.9999]
//        [--expect-prebuild linux-arm64]
//
// The package is imported from <package root>/dist/index.js, so the same file works from
// the source tree (dist/ compiled, addon in build/Release) and from an installed copy
// (node_modules/paddle-image-feature with prebuilds/linux-<arch>/).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const MODEL = 'PP-ShiTuV2_rec';

function parseArgs(argv) {
  const o = { pkg: '', modelDir: '', image: '', out: '', modes: ['normal', 'hpi'], threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--pkg') o.pkg = path.resolve(next());
    else if (a === '--model-dir') o.modelDir = path.resolve(next());
    else if (a === '--image') o.image = path.resolve(next());
    else if (a === '--out') o.out = path.resolve(next());
    else if (a === '--modes') o.modes = next().split(',');
    else if (a === '--threads') o.threads = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.pkg || !o.modelDir || !o.image) {
    throw new Error('usage: feature-probe.mjs --pkg DIR --model-dir DIR --image FILE [--out FILE]');
  }
  return o;
}

/** Deterministic values in [-2, 2) from a 32-bit LCG: the same bits on every platform. */
function syntheticTensor(n) {
  const t = new Float32Array(n);
  let s = 20240531;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    t[i] = (s / 2 ** 32) * 4 - 2;
  }
  return t;
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** Shared objects (.so*, .node) mapped into this process, with the address ranges' count. */
function mappedObjects() {
  let text;
  try {
    text = readFileSync('/proc/self/maps', 'utf8');
  } catch (err) {
    return { error: String(err) };
  }
  const seen = new Map();
  for (const line of text.split('\n')) {
    const file = line.trim().split(/\s+/).slice(5).join(' ');
    if (!/\.so(\.\d+)*$|\.node$/.test(file)) continue;
    seen.set(file, (seen.get(file) ?? 0) + 1);
  }
  return Object.fromEntries([...seen].sort(([a], [b]) => a.localeCompare(b)));
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const pif = await import(pathToFileURL(path.join(o.pkg, 'dist', 'index.js')).href);
  const report = {
    platform: {
      arch: process.arch,
      node: process.version,
      glibc: process.report?.getReport()?.header?.glibcVersionRuntime ?? null,
    },
    model: { name: MODEL, dir: o.modelDir, built: false, buildMs: null, files: {} },
    input: {},
    modes: {},
  };

  if (!existsSync(path.join(o.modelDir, 'inference.yml'))) {
    const t0 = performance.now();
    await pif.buildModel(MODEL, o.modelDir, { seed: 0 });
    report.model.built = true;
    report.model.buildMs = Math.round(performance.now() - t0);
  }
  for (const f of readdirSync(o.modelDir).sort()) {
    report.model.files[f] = sha256(readFileSync(path.join(o.modelDir, f)));
  }

  // The tensor the model sees (decode + resize + normalise), hashed: if two platforms
  // disagree on the features, this says whether preprocessing or the network differs.
  const items = await pif.resolveInputs(o.image);
  const img = await pif.decodeItem(items[0]);
  const model0 = await pif.createModel(MODEL, { modelDir: o.modelDir, cpuThreads: o.threads });
  const spec = model0.preprocess;
  const [w, h] = pif.targetSize(spec, img.width, img.height);
  const { tensor } = await pif.preprocessImage(img, { ...spec, width: w, height: h });
  model0.close();
  report.input = {
    image: path.basename(o.image),
    imageSha256: sha256(readFileSync(o.image)),
    decoded: [img.width, img.height],
    tensorShape: [1, 3, h, w],
    tensorSha256: sha256(Buffer.from(tensor.buffer, tensor.byteOffset, tensor.byteLength)),
  };

  // A fixed synthetic input (no image decoding involved), to compare the engines alone.
  const synthetic = syntheticTensor(3 * h * w);

  for (const mode of o.modes) {
    const hpi = mode === 'hpi';
    const entry = {};
    const t0 = performance.now();
    const model = await pif.createModel(MODEL, {
      modelDir: o.modelDir,
      useHpip: hpi,
      cpuThreads: o.threads,
    });
    entry.loadMs = Math.round(performance.now() - t0);
    const t1 = performance.now();
    const [result] = await model.predictAll(o.image);
    entry.firstPredictMs = Math.round(performance.now() - t1);
    if (result.error) throw result.error;
    const t2 = performance.now();
    await model.predictAll(o.image);
    entry.secondPredictMs = Math.round(performance.now() - t2);
    entry.feature = Array.from(result.feature);
    model.close();

    // The raw output (not normalised) for the synthetic input, and the engine report
    // (which lives on the Predictor), from a predictor loaded the way createModel loads one.
    const p = await pif.loadPredictor(o.modelDir, { runMode: mode, cpuThreads: o.threads });
    const out = await p.run({ data: synthetic, shape: [1, 3, h, w] });
    entry.syntheticOutput = Array.from(Object.values(out)[0].data);
    if (hpi) {
      const e = p.engine;
      entry.engine = {
        nodes: e.nodes,
        dnnlNodes: e.dnnlNodes,
        passes: e.passes,
        ops: e.ops,
        fallbacks: e.fallbacks,
      };
    }
    p.close();
    report.modes[mode] = entry;
  }
  report.mapped = mappedObjects();

  const json = JSON.stringify(report, null, 1) + '\n';
  if (o.out) {
    writeFileSync(o.out, json);
    // The preprocessed tensor itself, for an element-wise comparison (see compare).
    writeFileSync(
      `${o.out}.input.f32`,
      Buffer.from(tensor.buffer, tensor.byteOffset, tensor.byteLength),
    );
  } else process.stdout.write(json);
}

/** Cosine similarity and largest absolute difference of two equal-length vectors. */
function agreement(a, b) {
  if (a.length !== b.length || a.length === 0) return { cosine: NaN, maxAbsDiff: NaN };
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i] - b[i]));
  }
  return { cosine: dot / Math.sqrt(na * nb), maxAbsDiff };
}

/**
 * compare REF.json TEST.json [--min-cosine 0.9999] [--expect-prebuild linux-arm64]: prints
 * the agreement of TEST with REF per mode (image feature and synthetic-input output) and
 * of their preprocessed inputs; exits 1 when a cosine is below the minimum, the model files
 * differ, or (with --expect-prebuild) TEST mapped a libdnnl/libgomp from anywhere but
 * prebuilds/<that folder>/.
 */
function compare(argv) {
  const [refFile, testFile, ...rest] = argv;
  let minCosine = 0.9999;
  let prebuild = '';
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--min-cosine') minCosine = Number(rest[++i]);
    else if (rest[i] === '--expect-prebuild') prebuild = rest[++i] ?? '';
    else throw new Error(`unknown argument ${rest[i]}`);
  }
  const ref = JSON.parse(readFileSync(refFile, 'utf8'));
  const test = JSON.parse(readFileSync(testFile, 'utf8'));
  const problems = [];
  const summary = { ref: ref.platform, test: test.platform, minCosine, modes: {} };

  summary.modelFilesEqual = JSON.stringify(ref.model.files) === JSON.stringify(test.model.files);
  if (!summary.modelFilesEqual) problems.push('the built model files differ (sha256)');
  summary.inputTensorEqual = ref.input.tensorSha256 === test.input.tensorSha256;
  if (existsSync(`${refFile}.input.f32`) && existsSync(`${testFile}.input.f32`)) {
    const f32 = (f) => {
      const b = readFileSync(f);
      return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    };
    summary.inputTensor = agreement(f32(`${refFile}.input.f32`), f32(`${testFile}.input.f32`));
  }

  for (const mode of Object.keys(test.modes)) {
    const t = test.modes[mode];
    const r = ref.modes[mode];
    if (!r) {
      problems.push(`mode ${mode}: not in ${refFile}`);
      continue;
    }
    const feature = agreement(r.feature, t.feature);
    const synthetic = agreement(r.syntheticOutput, t.syntheticOutput);
    summary.modes[mode] = { feature, synthetic };
    for (const [what, a] of Object.entries({ feature, synthetic })) {
      if (!(a.cosine >= minCosine))
        problems.push(`mode ${mode}, ${what}: cosine ${a.cosine} < ${minCosine}`);
    }
  }

  if (prebuild) {
    const mapped = Object.keys(test.mapped ?? {});
    const libs = mapped.filter((f) => /\/lib(dnnl|gomp|omp|OpenCL)[-.]/.test(f));
    const outside = libs.filter((f) => !f.includes(`/prebuilds/${prebuild}/`));
    summary.bundledLibsMapped = libs;
    if (test.mapped?.error) problems.push(`no /proc/self/maps: ${test.mapped.error}`);
    else if (!mapped.some((f) => f.endsWith(`/prebuilds/${prebuild}/node.napi.node`)))
      problems.push(`the addon was not loaded from prebuilds/${prebuild}/`);
    if (!libs.some((f) => /\/libdnnl-[0-9a-f]{8}\.so/.test(f)))
      problems.push('no bundled libdnnl mapped');
    if (outside.length > 0) problems.push(`libraries loaded from outside the prebuild: ${outside}`);
  }
  summary.problems = problems;
  console.log(JSON.stringify(summary, null, 1));
  if (problems.length > 0) process.exit(1);
}

/**
 * image OUT.jpg: writes the probe's test image (640x480 JPEG: smooth waves, a product of the
 * coordinates, a checkerboard, LCG noise) with sharp from the package at cwd.
 */
async function writeImage(out) {
  const { default: sharp } = await import('sharp');
  const [W, H] = [640, 480];
  const px = Buffer.alloc(W * H * 3);
  let s = 12345;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const n = (s >>> 24) & 31;
      const i = (y * W + x) * 3;
      px[i] = Math.min(255, 128 + 100 * Math.sin(x / 23) * Math.cos(y / 41) + n);
      px[i + 1] = Math.min(255, (((x * y) >> 8) % 200) + n);
      px[i + 2] = Math.min(255, (((x >> 4) ^ (y >> 4)) & 1 ? 200 : 40) + n);
    }
  }
  await sharp(px, { raw: { width: W, height: H, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(out);
}

const commands = {
  compare: async () => compare(process.argv.slice(3)),
  image: async () => writeImage(path.resolve(process.argv[3] ?? 'probe.jpg')),
};
const run = commands[process.argv[2]] ?? main;
run().catch((err) => {
  console.error(err);
  process.exit(1);
});
