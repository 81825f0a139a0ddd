#!/usr/bin/env node
// Packages a built addon as a self-contained prebuild that `npm install` ships with no
// install script: prebuilds/linux-<arch>/node.napi.node plus every non-system shared
// library it needs (oneDNN, libgomp, the OpenCL loader oneDNN binds at load time), each
// copied, renamed <base>-<sha256[:8]>.so.<N> (so a system oneDNN or libgomp of another
// version, or one another addon already loaded, can never be picked up instead), with its
// NEEDED entries rewritten and RUNPATH $ORIGIN on every file (RUNPATH only applies to an
// object's own NEEDED, so each bundled library needs it too). Writes the Debian
// copyright files of what it bundles under licenses/ and a MANIFEST.json, then checks
// the result (ELF guard: version floors, closed NEEDED set, RUNPATH, exported symbols)
// and exits non-zero when a check fails.
//
//   node scripts/package-prebuild.mjs [--arch x64|arm64] [--addon build/Release/paddle_image_feature.node]
//        [--libdir DIR]... [--out prebuilds] [--no-strip] [--check-only DIR]
//
// Needs patchelf and binutils (readelf, strip; aarch64-linux-gnu-strip for arm64).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What each target looks like: its multiarch triplet, loader and strip tool. */
const TARGETS = {
  x64: {
    triplet: 'x86_64-linux-gnu',
    machine: 'Advanced Micro Devices X86-64',
    loader: 'ld-linux-x86-64.so.2',
    strip: ['strip'],
  },
  arm64: {
    triplet: 'aarch64-linux-gnu',
    machine: 'AArch64',
    loader: 'ld-linux-aarch64.so.1',
    strip: ['aarch64-linux-gnu-strip'],
  },
};

/**
 * Libraries every supported glibc system has; never bundled. libstdc++/libgcc_s come with
 * any system that runs Node.js itself (its binary needs them).
 */
const SYSTEM_LIBS = new Set([
  'libc.so.6',
  'libm.so.6',
  'libdl.so.2',
  'libpthread.so.0',
  'librt.so.1',
  'libstdc++.so.6',
  'libgcc_s.so.1',
]);

/** Highest symbol versions any file may need: the floor oneDNN 2.6 from Debian 12 sets. */
export const VERSION_FLOORS = { GLIBC: '2.34', GLIBCXX: '3.4.29', CXXABI: '1.3.13' };

/** The only dynamic symbols the addon may export. */
export const ADDON_EXPORTS = ['napi_register_module_v1', 'node_api_module_get_api_version_v1'];

export const ADDON_NAME = 'node.napi.node';

function parseArgs(argv) {
  const o = {
    arch: process.arch === 'arm64' ? 'arm64' : 'x64',
    addon: path.join(root, 'build', 'Release', 'paddle_image_feature.node'),
    libdirs: [],
    out: path.join(root, 'prebuilds'),
    strip: true,
    checkOnly: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    if (a === '--arch') o.arch = next();
    else if (a === '--addon') o.addon = path.resolve(next());
    else if (a === '--libdir') o.libdirs.push(path.resolve(next()));
    else if (a === '--out') o.out = path.resolve(next());
    else if (a === '--no-strip') o.strip = false;
    else if (a === '--check-only') o.checkOnly = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      console.log(
        readFileSync(fileURLToPath(import.meta.url), 'utf8')
          .split('\n')
          .slice(1, 17)
          .join('\n'),
      );
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  if (!(o.arch in TARGETS)) fail(`--arch must be one of ${Object.keys(TARGETS).join(', ')}`);
  const t = TARGETS[o.arch];
  if (o.libdirs.length === 0) o.libdirs = [`/usr/lib/${t.triplet}`, `/lib/${t.triplet}`];
  return o;
}

function fail(msg) {
  console.error(`package-prebuild: ${msg}`);
  process.exit(1);
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch (err) {
    const e = /** @type {NodeJS.ErrnoException & {stderr?: string}} */ (err);
    if (e.code === 'ENOENT') fail(`${cmd} not found (apt-get install -y patchelf binutils)`);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

/** The facts of one ELF file that packaging and the guard need (read with readelf). */
export function readElf(file) {
  const header = run('readelf', ['-h', file]);
  const dyn = run('readelf', ['-d', '-W', file]);
  const syms = run('readelf', ['--dyn-syms', '-W', file]);
  const machine = /Machine:\s+(.+)/.exec(header)?.[1]?.trim() ?? '?';
  const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const soname = /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(dyn)?.[1];
  const runpath = /\((?:RUNPATH)\)\s+Library runpath: \[([^\]]*)\]/.exec(dyn)?.[1];
  const rpath = /\((?:RPATH)\)\s+Library rpath: \[([^\]]*)\]/.exec(dyn)?.[1];
  /** Highest version per versioned namespace, over the symbols this file imports. */
  const maxVersion = {};
  const exported = [];
  for (const line of syms.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // Num: Value Size Type Bind Vis Ndx Name
    if (cols.length < 8 || !/^\d+:$/.test(cols[0])) continue;
    const [, , , type, bind, , ndx, name] = cols;
    const m = /@@?(GLIBC|GLIBCXX|CXXABI)_([\d.]+)/.exec(name);
    if (m && ndx === 'UND') {
      const [, ns, ver] = m;
      if (maxVersion[ns] === undefined || compareVersions(ver, maxVersion[ns]) > 0)
        maxVersion[ns] = ver;
    }
    if (ndx !== 'UND' && bind !== 'LOCAL' && type !== 'SECTION' && type !== 'FILE') {
      exported.push(name.replace(/@.*$/, ''));
    }
  }
  return { machine, needed, soname, runpath, rpath, maxVersion, exported };
}

export function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function findLib(name, libdirs) {
  for (const d of libdirs) {
    const p = path.join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Which Debian package (and version) installed a file, for the licence notes. */
function debianPackage(file) {
  for (const candidate of new Set([file, realpathSync(file)])) {
    try {
      const owner = execFileSync('dpkg', ['-S', candidate], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .split('\n')[0]
        .split(':')
        .slice(0, -1)
        .join(':');
      if (!owner) continue;
      const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', owner], {
        encoding: 'utf8',
      });
      const source = execFileSync(
        'dpkg-query',
        ['-W', '-f', '${source:Package} ${source:Version}', owner],
        {
          encoding: 'utf8',
        },
      );
      return { package: owner, version, source };
    } catch {
      // not from a Debian package (a local build): no package note
    }
  }
  return undefined;
}

/** Renamed file name for a bundled library: libdnnl.so.2 -> libdnnl-1a2b3c4d.so.2 */
function bundledName(soname, hash) {
  const m = /^(.*?)\.so((?:\.\d+)*)$/.exec(soname);
  if (!m) fail(`unexpected soname ${soname}`);
  return `${m[1]}-${hash.slice(0, 8)}.so${m[2]}`;
}

function packagePrebuild(o) {
  const t = TARGETS[o.arch];
  if (!existsSync(o.addon)) fail(`no addon at ${o.addon}: build it first (npm run build:native)`);
  const addonElf = readElf(o.addon);
  if (addonElf.machine !== t.machine) {
    fail(`${o.addon} is built for ${addonElf.machine}, not ${o.arch} (${t.machine})`);
  }
  const outDir = path.join(o.out, `linux-${o.arch}`);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(path.join(outDir, 'licenses'), { recursive: true });

  // 1. Walk the NEEDED graph from the addon; everything that is not a system library is bundled.
  /** @type {Map<string, {src: string, real: string, hash: string, name: string}>} by original soname */
  const bundle = new Map();
  const queue = [...addonElf.needed];
  while (queue.length > 0) {
    const soname = queue.shift();
    if (SYSTEM_LIBS.has(soname) || soname === t.loader || bundle.has(soname)) continue;
    const src = findLib(soname, o.libdirs);
    if (!src)
      fail(
        `${soname} (needed by the addon or a bundled library) is not in ${o.libdirs.join(', ')}`,
      );
    const real = realpathSync(src);
    const hash = sha256(real);
    bundle.set(soname, { src, real, hash, name: bundledName(soname, hash) });
    queue.push(...readElf(real).needed);
  }

  // 2. Copy and rename; rewrite sonames, NEEDED entries and RUNPATH on every file.
  const addonOut = path.join(outDir, ADDON_NAME);
  copyFileSync(o.addon, addonOut);
  chmodSync(addonOut, 0o755);
  if (o.strip) {
    try {
      run(t.strip[0], ['--strip-unneeded', addonOut]);
    } catch (err) {
      console.warn(`package-prebuild: not stripped (${String(err).split('\n')[0]})`);
    }
  }
  for (const [, lib] of bundle) {
    const dst = path.join(outDir, lib.name);
    copyFileSync(lib.real, dst);
    chmodSync(dst, 0o755);
    run('patchelf', ['--set-soname', lib.name, dst]);
  }
  const files = [ADDON_NAME, ...[...bundle.values()].map((l) => l.name)];
  for (const f of files) {
    const p = path.join(outDir, f);
    const needed = readElf(p).needed;
    const args = [];
    for (const n of needed) {
      const b = bundle.get(n);
      if (b) args.push('--replace-needed', n, b.name);
    }
    if (args.length > 0) run('patchelf', [...args, p]);
    run('patchelf', ['--set-rpath', '$ORIGIN', p]);
  }

  // 3. Licences: each bundled library's Debian copyright file, plus where its source is.
  const notices = [];
  for (const [soname, lib] of bundle) {
    const pkg = debianPackage(lib.src);
    const entry = { soname, file: lib.name, from: lib.real, sha256: lib.hash };
    if (pkg) {
      const docName = pkg.package.replace(/:.*$/, '');
      const copyright = `/usr/share/doc/${docName}/copyright`;
      if (existsSync(copyright)) {
        const licName = `${docName}.copyright.txt`;
        copyFileSync(copyright, path.join(outDir, 'licenses', licName));
        entry.license = `licenses/${licName}`;
      }
      entry.debian = pkg;
    }
    notices.push(entry);
  }
  const notice = [
    'Third-party libraries bundled in this prebuild, unmodified except for their ELF dynamic',
    'section (soname, NEEDED and RUNPATH rewritten with patchelf so that they load from this',
    'folder only). Each licence text is in licenses/ (the Debian copyright file of the package',
    'the binary came from). The corresponding source of each is the Debian source package named',
    'below, at that exact version: `apt-get source <source>=<version>`, or',
    'https://snapshot.debian.org/package/<source>/<version>/.',
    '',
    ...notices.map(
      (n) =>
        `${n.file}  (was ${n.soname})\n  binary package: ${n.debian?.package ?? '?'} ${n.debian?.version ?? ''}\n` +
        `  source package: ${n.debian?.source ?? '? (not from a Debian package)'}\n  licence: ${n.license ?? '?'}`,
    ),
    '',
  ].join('\n');
  writeFileSync(path.join(outDir, 'licenses', 'NOTICE.txt'), notice);
  // The full texts the copyright files refer to (Apache-2.0, GPL-3 with the GCC runtime
  // exception's base licence, ...), since a user's system may not have them.
  const referenced = new Set();
  for (const f of readdirSync(path.join(outDir, 'licenses'))) {
    const text = readFileSync(path.join(outDir, 'licenses', f), 'utf8');
    for (const m of text.matchAll(/\/usr\/share\/common-licenses\/([A-Za-z0-9+-]+(?:[.][0-9]+)*)/g))
      referenced.add(m[1]);
  }
  for (const name of referenced) {
    const src = `/usr/share/common-licenses/${name}`;
    if (existsSync(src) && statSync(src).isFile())
      copyFileSync(src, path.join(outDir, 'licenses', `${name}.txt`));
  }

  // 4. Manifest: what is here, its size and hash, and what each file needs.
  const manifest = {
    package: JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version,
    platform: 'linux',
    arch: o.arch,
    libc: 'glibc',
    napiVersion: 8,
    files: files.map((f) => {
      const p = path.join(outDir, f);
      const e = readElf(p);
      const n = notices.find((x) => x.file === f);
      return {
        file: f,
        bytes: statSync(p).size,
        sha256: sha256(p),
        soname: e.soname ?? null,
        needed: e.needed,
        runpath: e.runpath ?? null,
        maxVersion: e.maxVersion,
        ...(n ? { bundledFrom: n.from, debian: n.debian ?? null } : {}),
      };
    }),
  };
  writeFileSync(path.join(outDir, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
  return outDir;
}

/**
 * The ELF guard over a packaged prebuild folder: returns a list of problems (empty = OK).
 * Every file must stay under the version floors, need only bundled or system libraries,
 * carry RUNPATH $ORIGIN, and the addon must export only the N-API entry points.
 */
export function checkPrebuild(dir, arch) {
  const t = TARGETS[arch];
  const problems = [];
  const names = readdirSync(dir).filter((f) => f.endsWith('.node') || /\.so(\.\d+)*$/.test(f));
  if (!names.includes(ADDON_NAME)) problems.push(`${ADDON_NAME} is missing`);
  for (const f of names) {
    const e = readElf(path.join(dir, f));
    if (e.machine !== t.machine) problems.push(`${f}: built for ${e.machine}, not ${t.machine}`);
    for (const [ns, floor] of Object.entries(VERSION_FLOORS)) {
      const v = e.maxVersion[ns];
      if (v !== undefined && compareVersions(v, floor) > 0)
        problems.push(`${f}: needs ${ns}_${v} (> ${floor})`);
    }
    for (const n of e.needed) {
      if (!SYSTEM_LIBS.has(n) && n !== t.loader && !names.includes(n)) {
        problems.push(`${f}: needs ${n}, which is neither bundled nor a system library`);
      }
    }
    if (e.runpath !== '$ORIGIN')
      problems.push(`${f}: RUNPATH is ${e.runpath ?? 'unset'}, not $ORIGIN`);
    if (e.rpath !== undefined)
      problems.push(`${f}: has DT_RPATH ${e.rpath} (searched before LD_LIBRARY_PATH)`);
    if (f !== ADDON_NAME && e.soname !== f)
      problems.push(`${f}: soname ${e.soname ?? 'unset'} differs from its file name`);
    if (f === ADDON_NAME) {
      const extra = e.exported.filter((s) => !ADDON_EXPORTS.includes(s));
      if (extra.length > 0)
        problems.push(
          `${f}: exports ${extra.length} extra symbols (${extra.slice(0, 5).join(', ')})`,
        );
      for (const s of ADDON_EXPORTS)
        if (!e.exported.includes(s)) problems.push(`${f}: does not export ${s}`);
    }
  }
  return problems;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = o.checkOnly ?? packagePrebuild(o);
  const problems = checkPrebuild(dir, o.arch);
  let total = 0;
  for (const f of readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (!statSync(p).isFile()) continue;
    total += statSync(p).size;
    console.log(`  ${String(statSync(p).size).padStart(10)}  ${f}`);
  }
  console.log(`  ${String(total).padStart(10)}  total (${dir})`);
  if (problems.length > 0) {
    for (const p of problems) console.error(`ELF guard: ${p}`);
    process.exit(1);
  }
  console.log(
    `ELF guard: OK (glibc <= ${VERSION_FLOORS.GLIBC}, GLIBCXX <= ${VERSION_FLOORS.GLIBCXX}, ` +
      `CXXABI <= ${VERSION_FLOORS.CXXABI}, NEEDED closed, RUNPATH $ORIGIN, ${ADDON_EXPORTS.length} exports)`,
  );
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) main();
