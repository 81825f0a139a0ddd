#!/usr/bin/env bash
# Building from source the way the README tells a user to, on a machine with g++, make,
# python3 and libdnnl-dev: pack this repository, install the tarball into an empty project,
# then `npm run build:from-source` (node-gyp, bundled with npm) inside
# node_modules/paddle-image-feature. The local build must then win over the prebuilt binary
# (the process maps the system's libdnnl, not the bundled one) and predict must work.
#
#   bash scripts/check-source-build.sh
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
IMAGE=${PIF_SMOKE_IMAGE:-/usr/share/doc/opencv-doc/examples/data/HappyFish.jpg}
WORK=$(mktemp -d /tmp/pif-source-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS
die() {
  echo "check-source-build: $*" >&2
  exit 1
}

npm pack --pack-destination "$WORK" --silent >/dev/null
cd "$WORK"
echo '{ "name": "app", "version": "1.0.0", "private": true, "type": "module" }' >package.json
npm install ./paddle-image-feature-*.tgz
PKG=$WORK/node_modules/paddle-image-feature
[ ! -e "$PKG/build" ] || die "the installed package already has a build/ folder"
echo "--- [$((SECONDS - T0))s] npm run build:from-source in $PKG"
(cd "$PKG" && npm run build:from-source >"$WORK/build.log" 2>&1) || {
  tail -30 "$WORK/build.log"
  die "build:from-source failed"
}
[ -f "$PKG/build/Release/paddle_image_feature.node" ] || die "no build/Release/paddle_image_feature.node after the build"
echo "--- [$((SECONDS - T0))s] predict with the source build"
cp "$REPO/scripts/install-smoke.mjs" "$WORK/smoke.mjs"
node smoke.mjs "$IMAGE" "$WORK/model" >"$WORK/smoke.out"
grep -v '^RESULT ' "$WORK/smoke.out"
grep -q '^mapped: .*/libdnnl\.so\.2' "$WORK/smoke.out" || die "the source build did not load the system libdnnl.so.2"
if grep -q '^mapped: .*/prebuilds/' "$WORK/smoke.out"; then die "the prebuilt binary's libraries were loaded"; fi
echo "check-source-build: OK in $((SECONDS - T0))s"
