#!/usr/bin/env bash
# `make test-compose`: the mesh as containers (envoy-config/docker-compose.yml), brought up,
# checked against the seed's deny and metrics scenarios, then again with every sidecar under the
# Istio sidecar profile, and torn down. Skips (exit 0, with a SKIP line) where no Docker engine
# or no compose is available.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "SKIP test-compose: no Docker engine here (docker info failed)"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  echo "SKIP test-compose: Docker has no compose (neither 'docker compose' nor 'docker-compose')"
  exit 0
fi
for wasm in peer-metadata deny metrics access-log; do
  [ -f "dist/$wasm.wasm" ] || { echo "test-compose: dist/$wasm.wasm missing: run 'make wasm'" >&2; exit 1; }
done

CARGO=${CARGO:-cargo}
"$CARGO" build -q -p wasmixer-integration --bin mesh-app --bin mesh-compose
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug

echo "==> images (FROM scratch, no registry)"
bash envoy-config/compose/build-images.sh "$BIN/mesh-app"
echo "==> certificates and bootstraps"
"$BIN/mesh-compose" generate
if ! git diff --quiet -- envoy-config/docker-compose.yml 2>/dev/null; then
  echo "test-compose: envoy-config/docker-compose.yml was stale and has been regenerated" >&2
fi

PROJECT=wasmixer-test
dc() { "${COMPOSE[@]}" -f envoy-config/docker-compose.yml -p "$PROJECT" "$@"; }
down() {
  echo "==> ${COMPOSE[*]} down"
  dc down -v --remove-orphans >/dev/null 2>&1 || true
}
trap down EXIT
down
echo "==> ${COMPOSE[*]} up"
dc up -d
if ! "$BIN/mesh-compose" verify; then
  echo "==> logs"
  dc logs --tail 40 || true
  exit 1
fi
# The same outcomes inside Istio 1.22+ sidecars: Istio's metadata exchange (emulated) strips
# x-envoy-peer-metadata(-id) ahead of our filters.
echo "==> the Istio sidecar profile: bootstraps regenerated, containers restarted"
"$BIN/mesh-compose" generate --istio
dc restart
if ! "$BIN/mesh-compose" verify; then
  echo "==> logs (Istio sidecar profile)"
  dc logs --tail 40 || true
  exit 1
fi
