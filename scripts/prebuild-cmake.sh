#!/usr/bin/env bash
# Called by prebuildify (`npm run prebuilds`) in place of node-gyp, with
# node-gyp-style arguments (rebuild --target=... --release ...). The addon is a
# cmake-js project, so ignore them and build with cmake-js; prebuildify then
# picks up build/Release/*.node, strips it and copies it to prebuilds/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx --no-install cmake-js rebuild
