#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node (the native TensorFlow backend) on a machine where its install
# script cannot download libtensorflow, against the TensorFlow C library of the tensorflow-cpu
# Python wheel (reachable through pip). Optional: r2n2 runs on WebAssembly without it; with it,
# training and `register series` are faster (docs/backends.md has the measurements).
#
#   npm ci --ignore-scripts                 # a plain `npm ci` removes tfjs-node when its download fails
#   bash scripts/tfjs-node-offline.sh [WHEEL]
#
# WHEEL: a tensorflow-cpu wheel already downloaded (default: `pip download --no-deps tensorflow-cpu`).
# Needs python3 + pip (or WHEEL), unzip, a C++ compiler, make and the Node headers (/usr/include/node,
# or npm_config_nodedir).
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=node_modules/@tensorflow/tfjs-node
[ -d "$pkg" ] || { echo "error: $pkg is missing: run npm ci --ignore-scripts first" >&2; exit 1; }
work=$(mktemp -d)
trap 'cp "$work/build.log" /tmp/tfjs-node-build.log 2>/dev/null; rm -rf "$work"' EXIT
wheel=${1:-}
if [ -z "$wheel" ]; then
  echo "downloading the tensorflow-cpu wheel (≈ 270 MB) with pip …" >&2
  python3 -m pip download --no-deps --quiet -d "$work" tensorflow-cpu
  wheel=$(ls "$work"/tensorflow_cpu-*.whl | head -n 1)
fi
[ -f "$wheel" ] || { echo "error: no wheel at $wheel" >&2; exit 1; }
unzip -q -o "$wheel" 'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' 'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/platform/*' 'tensorflow/include/tsl/*' 'tensorflow/include/xla/tsl/*' -d "$work/x" 2>/dev/null || true
[ -f "$work/x/tensorflow/libtensorflow_cc.so.2" ] || { echo "error: $wheel holds no libtensorflow_cc.so.2" >&2; exit 1; }
rm -rf "$pkg/deps"
mkdir -p "$pkg/deps/lib" "$pkg/deps/include"
cp "$work/x/tensorflow/libtensorflow_cc.so.2" "$work/x/tensorflow/libtensorflow_framework.so.2" "$pkg/deps/lib/"
cp -r "$work/x/tensorflow/include/"* "$pkg/deps/include/"
# the names binding.gyp links against (-ltensorflow -ltensorflow_framework) and loads at run time
( cd "$pkg/deps/lib" && ln -sf libtensorflow_cc.so.2 libtensorflow.so.2 && ln -sf libtensorflow.so.2 libtensorflow.so && ln -sf libtensorflow_framework.so.2 libtensorflow_framework.so )
nodedir=${npm_config_nodedir:-}
if [ -z "$nodedir" ] && [ -f /usr/include/node/node.h ]; then nodedir=/usr; fi
echo "building the binding (a few minutes) …" >&2
# node-pre-gyp directly: `npm rebuild` would run the package's install script, which deletes deps/ and downloads
( cd "$pkg" && npm_config_nodedir=$nodedir ../../.bin/node-pre-gyp install --build-from-source ) >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; echo "error: the build failed (log above)" >&2; exit 1; }
TF_CPP_MIN_LOG_LEVEL=2 node -e "import('@tensorflow/tfjs-node').then(tf=>{const x=tf.tensor([1,2,3]);console.log('tfjs-node loads: backend', tf.getBackend(), 'sum', x.sum().dataSync()[0])})" 
