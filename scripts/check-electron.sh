#!/usr/bin/env bash
# Electron packaging check without Electron (CI stage; spec B3 and B5 item 4).
#
#   bash scripts/check-electron.sh [paddle-image-feature-X.Y.Z.tgz]
#
# Takes the packed package (`npm pack` after `npm run prebuilds`; packs the repo itself when
# no tarball is given) and, in a throwaway app under $PIF_ELECTRON_CHECK_DIR
# (/tmp/pif-electron-check, wiped at the start of every run), checks:
#
#  1. @electron/rebuild, run for a current Electron, finds our prebuilt Node-API module
#     (prebuilds/linux-x64/node.napi.node) and builds nothing: its debug log says
#     "Found prebuilt Node-API module", it never reaches node-gyp, no compiler, make or
#     python is started (PATH shims record any call), and no .node file appears outside
#     prebuilds/. Electron's Node-API version is at least the one the package needs.
#  2. The addon imports no napi_create_external_(array)buffer: Electron's V8 memory cage
#     forbids ArrayBuffers over native memory.
#  3. @electron/asar packs the app with the unpack globs of examples/electron (the
#     electron-builder `build.asarUnpack` list and the Forge `packagerConfig.asar.unpack`
#     glob): every file under our prebuilds/ is in app.asar.unpacked with identical bytes,
#     and no .node or .so file of any package stays inside app.asar.
#  4. In app.asar.unpacked: every file MANIFEST.json lists is there; every ELF file of our
#     prebuild has RUNPATH $ORIGIN and each NEEDED is a file beside it or a base system
#     library; ldd resolves the bundled libraries there.
#  5. Plain node (not Electron) loads node.napi.node from app.asar.unpacked, inspects and runs
#     a fixture model (oneDNN and OpenMP from the bundle), and the process maps the bundled
#     libraries from app.asar.unpacked and no system libdnnl.
#  6. Negative control: with only the glob of Forge's AutoUnpackNatives plugin
#     (`**/{.**,**}/**/*.node`, .node files only), the .so files stay inside the asar and the
#     unpacked .node fails to load.
#
# Needs network access to the npm registry (installs the package's dependencies and the
# pinned tools), node >= 20, binutils (readelf, nm) and ldd. No Electron binary is downloaded.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKG=paddle-image-feature
# A current Electron (latest on npm when this was written; Node-API 10).
ELECTRON_VERSION=${PIF_ELECTRON_VERSION:-45.6.1}
# @electron/rebuild 4.2.1: what electron-builder 26 and Forge 8 depend on.
REBUILD_VERSION=4.2.1
# @electron/asar 3.4.1: the version electron-builder 26.18.1 pins; the 4.x CLI refuses Node < 22.12.
ASAR_VERSION=3.4.1
WORK=${PIF_ELECTRON_CHECK_DIR:-/tmp/pif-electron-check}
FIXTURE=${PIF_FIXTURES:-$ROOT/../shared/fixtures}/paddle-models/mnist_mlp_legacy_separate
EXAMPLE=$ROOT/examples/electron
export ELECTRON_SKIP_BINARY_DOWNLOAD=1
T0=$SECONDS

say() { echo "check-electron: $*"; }
fail() {
  echo "check-electron: FAIL: $*" >&2
  exit 1
}
npm_quiet() { npm "$@" --no-audit --no-fund --loglevel=error; }

case "$WORK" in
  /tmp/?*) ;;
  *) fail "PIF_ELECTRON_CHECK_DIR must be a directory under /tmp (it is wiped): $WORK" ;;
esac
rm -rf "$WORK"
mkdir -p "$WORK"/{tools,app,shims,out}

if [ $# -ge 1 ]; then
  TGZ=$(realpath "$1")
  [ -f "$TGZ" ] || fail "no such tarball: $1"
else
  say "no tarball given: npm pack in $ROOT"
  (cd "$ROOT" && npm pack --pack-destination "$WORK" --loglevel=error >/dev/null)
  TGZ=$(ls "$WORK"/$PKG-*.tgz)
fi
say "tarball $TGZ"
say "Electron $ELECTRON_VERSION, @electron/rebuild $REBUILD_VERSION, @electron/asar $ASAR_VERSION"

# --- install: the tools apart from the app, so that only production dependencies get packed
cat >"$WORK/tools/package.json" <<EOF
{ "name": "pif-electron-check-tools", "version": "1.0.0", "private": true,
  "dependencies": { "@electron/rebuild": "$REBUILD_VERSION", "@electron/asar": "$ASAR_VERSION" } }
EOF
(cd "$WORK/tools" && npm_quiet install --ignore-scripts 2>&1 | grep -v EBADENGINE || true)
REBUILD_BIN=$WORK/tools/node_modules/.bin/electron-rebuild
ASAR_BIN=$WORK/tools/node_modules/.bin/asar
[ -x "$REBUILD_BIN" ] && [ -x "$ASAR_BIN" ] || fail "tools did not install"

cat >"$WORK/app/package.json" <<EOF
{ "name": "pif-electron-check-app", "version": "1.0.0", "private": true, "main": "main.js",
  "dependencies": { "$PKG": "file:$TGZ" } }
EOF
echo "// placeholder main process" >"$WORK/app/main.js"
(cd "$WORK/app" && npm_quiet install --omit=dev --ignore-scripts)
MOD=$WORK/app/node_modules/$PKG
PREBUILD=$MOD/prebuilds/linux-x64
[ -f "$PREBUILD/node.napi.node" ] || fail "the package has no prebuilds/linux-x64/node.napi.node"
say "installed $(node -p "require('$MOD/package.json').version") in $((SECONDS - T0))s"
say "prebuild: $(cd "$PREBUILD" && find . -type f -not -path './licenses/*' | sed 's|^\./||' | sort | tr '\n' ' ')(+ $(find "$PREBUILD" -path '*/licenses/*' -type f | wc -l) licence files)"

# --- 1. @electron/rebuild skips the prebuilt module
need_napi=$(node -p "Math.max(...(require('$MOD/package.json').binary?.napi_versions ?? [8]))")
electron_napi=$(cd "$WORK/tools" && node -p "require('node-api-version').fromElectronVersion('$ELECTRON_VERSION')")
say "Node-API: the package needs $need_napi, Electron $ELECTRON_VERSION provides $electron_napi"
[ "$electron_napi" -ge "$need_napi" ] || fail "Electron $ELECTRON_VERSION lacks Node-API $need_napi"

for t in cc gcc g++ c++ clang clang++ make gmake cmake ninja python python3 node-gyp; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 127\n' "$t" "$WORK/compiler-calls.log" >"$WORK/shims/$t"
  chmod +x "$WORK/shims/$t"
done
touch "$WORK/before-rebuild"
set +e
(cd "$WORK/app" && PATH="$WORK/shims:$PATH" DEBUG=electron-rebuild timeout 60 \
  "$REBUILD_BIN" --version "$ELECTRON_VERSION" --arch x64 --only "$PKG" --force \
  --module-dir "$WORK/app") >"$WORK/rebuild.log" 2>&1
rc=$?
set -e
grep -E "Building modules|Checking for prebuilds|Found prebuilt|Could not locate|Rebuild Complete|rebuilding .* with args|built via node-gyp" "$WORK/rebuild.log" |
  sed -E 's/^[0-9T:.Z-]+ //; s/^/  electron-rebuild| /'
why="(it recognises a prebuild named prebuilds/linux-x64/node.napi.node when the package lists prebuildify in devDependencies)"
! grep -qE "rebuilding $PKG with args|built via node-gyp" "$WORK/rebuild.log" ||
  fail "electron-rebuild went on to build $PKG with node-gyp $why"
[ ! -s "$WORK/compiler-calls.log" ] ||
  fail "electron-rebuild started build tools: $(cut -c1-60 "$WORK/compiler-calls.log" | tr '\n' ';')"
[ "$rc" -eq 0 ] || fail "electron-rebuild exited $rc (log: $WORK/rebuild.log)"
grep -q "Found prebuilt Node-API module in $PREBUILD" "$WORK/rebuild.log" ||
  fail "electron-rebuild did not report the prebuilt Node-API module $why (log: $WORK/rebuild.log)"
new_nodes=$(find "$MOD" -name '*.node' -newer "$WORK/before-rebuild" -not -path "$MOD/prebuilds/*")
[ -z "$new_nodes" ] || fail "electron-rebuild produced $new_nodes"
[ ! -e "$MOD/bin" ] || fail "electron-rebuild copied a build to $MOD/bin"
say "OK electron-rebuild found the prebuilt Node-API module and started no build tool"

# --- 2. no external ArrayBuffers
for f in "$PREBUILD"/*.node; do
  ext=$(nm -D --undefined-only "$f" | grep -oE 'napi_create_external_(array)?buffer|node_api_create_external_[a-z_]*buffer' || true)
  [ -z "$ext" ] || fail "$(basename "$f") imports $ext (forbidden by Electron's memory cage)"
done
say "OK the addon imports no napi_create_external_arraybuffer / _buffer"

# --- 3. asar with the example's unpack globs
[ -f "$EXAMPLE/package.json" ] && [ -f "$EXAMPLE/forge.config.js" ] || fail "missing $EXAMPLE"
builder_glob=$(node -p "const u = require('$EXAMPLE/package.json').build.asarUnpack; u.length > 1 ? '{' + u.join(',') + '}' : u[0]")
forge_glob=$(node -p "require('$EXAMPLE/forge.config.js').packagerConfig.asar.unpack")
[[ "$builder_glob" == *"node_modules/$PKG/prebuilds/**"* ]] || fail "electron-builder asarUnpack lacks our prebuilds: $builder_glob"
[[ "$forge_glob" == *"node_modules/$PKG/prebuilds/**"* ]] || fail "Forge asar.unpack lacks our prebuilds: $forge_glob"

# verify_asar ARCHIVE MODE: MODE=ok (every .node/.so unpacked, ours byte-identical) or
# MODE=natives-only (negative control: our .so files must be inside the archive).
verify_asar() {
  (cd "$WORK/tools" && node - "$1" "$WORK/app" "$PKG" "$2") <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const asar = require('@electron/asar');
const [archive, appDir, pkg, mode] = process.argv.slice(2);
const unpackedRoot = `${archive}.unpacked`;
const entries = new Map(); // relative path -> header entry
(function walk(node, rel) {
  for (const [name, e] of Object.entries(node.files ?? {})) {
    const r = rel ? `${rel}/${name}` : name;
    if (e.files) walk(e, r);
    else entries.set(r, e);
  }
})(asar.getRawHeader(archive).header, '');
const native = /\.node$|\.so(\.\d+)*$/;
const sha = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const prebuildsRel = `node_modules/${pkg}/prebuilds`;
const ours = [];
(function walk(dir) {
  for (const d of fs.readdirSync(path.join(appDir, dir), { withFileTypes: true })) {
    const r = `${dir}/${d.name}`;
    if (d.name.startsWith('.')) continue; // e.g. .gitkeep: `**` globs skip dotfiles, and so may we
    if (d.isDirectory()) walk(r);
    else ours.push(r);
  }
})(prebuildsRel);
const problems = [];
let unpackedNative = 0;
if (mode === 'ok') {
  for (const r of ours) {
    const e = entries.get(r);
    const real = path.join(unpackedRoot, r);
    if (!e) problems.push(`${r}: not in the archive header`);
    else if (!e.unpacked) problems.push(`${r}: inside app.asar`);
    else if (!fs.existsSync(real)) problems.push(`${r}: missing from app.asar.unpacked`);
    else if (sha(real) !== sha(path.join(appDir, r))) problems.push(`${r}: bytes differ`);
  }
  for (const [r, e] of entries) {
    if (!native.test(r)) continue;
    if (e.unpacked) unpackedNative++;
    else problems.push(`${r}: native file inside app.asar`);
  }
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  const packed = [...entries.values()].filter((e) => !e.unpacked).length;
  console.log(
    `${ours.length} files of ${prebuildsRel} unpacked and byte-identical; ` +
      `${unpackedNative} .node/.so files in the app, all unpacked; ${packed} files inside app.asar`,
  );
} else {
  const inside = ours.filter((r) => native.test(r) && r.endsWith('.node') === false);
  const stillPacked = inside.filter((r) => entries.get(r) && !entries.get(r).unpacked);
  if (inside.length === 0 || stillPacked.length !== inside.length) {
    console.error(`expected our .so files inside app.asar, got: ${stillPacked.join(' ') || 'none'}`);
    process.exit(1);
  }
  console.log(`only .node files unpacked: ${stillPacked.map((r) => path.basename(r)).join(' ')} stay inside app.asar`);
}
EOF
}

pack_app() { # pack_app NAME GLOB
  local res=$WORK/out/$1/resources
  mkdir -p "$res"
  "$ASAR_BIN" pack "$WORK/app" "$res/app.asar" --unpack "$2"
  echo "$res/app.asar"
}

for which in electron-builder forge; do
  if [ "$which" = forge ]; then glob=$forge_glob; else glob=$builder_glob; fi
  archive=$(pack_app "$which" "$glob")
  say "asar ($which): --unpack '$glob'"
  out=$(verify_asar "$archive" ok 2>&1) || fail "asar ($which): $out"
  say "OK asar ($which): $out"
done
UNPACKED=$WORK/out/electron-builder/resources/app.asar.unpacked/node_modules/$PKG/prebuilds/linux-x64
UNPACKED_FORGE=$WORK/out/forge/resources/app.asar.unpacked/node_modules/$PKG/prebuilds/linux-x64
find "$UNPACKED" -maxdepth 1 -type f \( -name '*.node' -o -name '*.so*' \) -printf '%s %f\n' | sort -k2 |
  awk -v d="app.asar.unpacked/node_modules/$PKG/prebuilds/linux-x64/" '{ printf "  %10d  %s%s\n", $1, d, $2 }'

# --- 4. ELF: RUNPATH $ORIGIN, NEEDED closed over the unpacked directory
if [ -f "$UNPACKED/MANIFEST.json" ]; then
  missing=$(node -e "
    const [m, dir] = [require(process.argv[1]), require('path').dirname(process.argv[1])];
    console.log(m.files.map((f) => f.file).filter((f) => !require('fs').existsSync(dir + '/' + f)).join(' '));
  " "$UNPACKED/MANIFEST.json")
  [ -z "$missing" ] || fail "files of MANIFEST.json missing from app.asar.unpacked: $missing"
  say "OK every file MANIFEST.json lists is in app.asar.unpacked"
fi
BASE_LIBS=" libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2 libdl.so.2 libpthread.so.0 librt.so.1 "
bundled=$(cd "$UNPACKED" && ls | grep -E '\.so(\.[0-9]+)*$' || true)
if [ -z "$bundled" ]; then
  say "note: the prebuild bundles no shared libraries (node.napi.node alone, linked to system libraries); RUNPATH check not applicable"
else
  for f in "$UNPACKED"/node.napi.node $(printf "$UNPACKED/%s\n" $bundled); do
    b=$(basename "$f")
    runpath=$(readelf -d "$f" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
    [ "$runpath" = '$ORIGIN' ] || fail "$b in app.asar.unpacked: RUNPATH '${runpath}', want \$ORIGIN"
    for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [ -f "$UNPACKED/$n" ] || [[ "$BASE_LIBS" == *" $n "* ]] ||
        fail "$b needs $n, which is neither beside it in app.asar.unpacked nor a base system library"
    done
    say "OK $b: RUNPATH \$ORIGIN, NEEDED $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  done
  ldd_out=$(env -i PATH=/usr/bin:/bin ldd "$UNPACKED/node.napi.node")
  for l in $bundled; do
    grep -qF "$l => $UNPACKED/$l" <<<"$ldd_out" ||
      fail "ldd does not resolve $l into app.asar.unpacked: $(grep -F "$l" <<<"$ldd_out")"
  done
  say "OK ldd resolves $(echo $bundled | tr '\n' ' ')from app.asar.unpacked"
fi

# --- 5. plain node loads the addon from app.asar.unpacked and runs a model
if [ -d "$FIXTURE" ]; then
  load_out=$(env -i PATH=/usr/bin:/bin HOME=/tmp node - "$UNPACKED/node.napi.node" "$FIXTURE" $bundled <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [addonPath, fixture, ...bundled] = process.argv.slice(2);
const mod = { exports: {} };
process.dlopen(mod, addonPath);
const addon = mod.exports;
(async () => {
  const info = await addon.inspectModel(fixture, {});
  const model = await addon.loadModel(fixture, { executable: true });
  const [out] = await model.run(
    [{ name: 'image', dtype: 'float32', shape: [1, 1, 28, 28], data: new Float32Array(784).fill(0.5) }],
    { threads: 2 },
  );
  model.close();
  const probs = new Float32Array(out.data);
  const sum = probs.reduce((a, b) => a + b, 0);
  if (out.shape.join('x') !== '1x10' || Math.abs(sum - 1) > 1e-4) throw new Error(`bad output ${out.shape} sum ${sum}`);
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const dir = path.dirname(addonPath);
  for (const lib of bundled) {
    if (!maps.includes(path.join(dir, lib))) throw new Error(`${lib} not mapped from ${dir}`);
  }
  const system = maps.split('\n').filter((l) => /\/libdnnl\.so|\/libgomp\.so/.test(l) && !l.includes(dir));
  if (bundled.length && system.length) throw new Error(`system libraries mapped: ${system[0]}`);
  console.log(`${info.format} model, ${info.opCount} ops, inputs ${info.inputs.map((i) => i.name)}; run: [${out.shape}] softmax sum ${sum.toFixed(6)}` +
    (bundled.length ? `; ${bundled.length} bundled libraries mapped from app.asar.unpacked` : ''));
})().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
EOF
  ) || fail "node could not use the addon from app.asar.unpacked: $load_out"
  say "OK plain node, addon from app.asar.unpacked: $load_out"
elif [ "${PIF_REQUIRE_FIXTURES:-}" = 1 ]; then
  fail "fixture missing: $FIXTURE"
else
  say "note: fixture $FIXTURE missing, load test skipped"
fi

# --- 6. negative control: unpacking only .node files leaves the bundled libraries inside the asar
if [ -n "$bundled" ]; then
  archive=$(pack_app natives-only '**/{.**,**}/**/*.node') # AutoUnpackNatives' glob
  out=$(verify_asar "$archive" natives-only 2>&1) || fail "asar (natives-only): $out"
  say "OK negative control: $out"
  only_node=$WORK/out/natives-only/resources/app.asar.unpacked/node_modules/$PKG/prebuilds/linux-x64/node.napi.node
  if neg=$(env -i PATH=/usr/bin:/bin node -e "process.dlopen({ exports: {} }, process.argv[1])" "$only_node" 2>&1); then
    fail "negative control: node.napi.node loaded without its bundled libraries"
  fi
  grep -q "cannot open shared object file" <<<"$neg" || fail "negative control: unexpected error: $neg"
  say "OK negative control: that node.napi.node fails to load: $(grep -o '[^:]*: cannot open shared object file' <<<"$neg" | head -1)"
fi

[ "$(ls "$UNPACKED_FORGE")" = "$(ls "$UNPACKED")" ] || fail "Forge and electron-builder unpacked different files"
say "all checks passed in $((SECONDS - T0))s (work dir $WORK)"
