#!/usr/bin/env bash
# Builds an OCI image of each filter in dist/ in the layout Istio accepts for `oci://` URLs of a
# WasmPlugin: an OCI image manifest with one layer (application/vnd.oci.image.layer.v1.tar+gzip)
# holding `plugin.wasm` at its root -- the "compat" variant of the Wasm image spec that Istio's
# image fetcher reads (the same image `FROM scratch` + `COPY x.wasm /plugin.wasm` makes). No
# registry and no container engine are needed: plain tar, gzip and sha256sum, reproducible
# (fixed mtimes and owners), so the digests only change when the .wasm does.
#
# Output, per filter <f> (deny, metrics, access-log, peer-metadata):
#   <out>/<f>/          OCI image layout (oci-layout, index.json, blobs/sha256/...)
#   <out>/<f>.oci.tar   the same as one archive (`docker load -i`, `skopeo copy oci-archive:...`),
#                       with Docker's manifest.json beside the OCI index
#
# Publish to a registry, e.g.:
#   skopeo copy oci:dist/oci/deny:0.1.0 docker://registry.example.com/wasmixer/deny:0.1.0
#   crane push dist/oci/deny.oci.tar registry.example.com/wasmixer/deny:0.1.0   (crane >= 0.19)
#   docker load -i dist/oci/deny.oci.tar && docker push registry.example.com/wasmixer/deny:0.1.0
# then point the WasmPlugin at oci://registry.example.com/wasmixer/deny:0.1.0.
#
# Usage: build-oci.sh <dist dir> <out dir> <version>
set -euo pipefail

DIST=${1:?usage: build-oci.sh <dist dir> <out dir> <version>}
OUT=${2:?usage: build-oci.sh <dist dir> <out dir> <version>}
VERSION=${3:?usage: build-oci.sh <dist dir> <out dir> <version>}

shopt -s nullglob
wasms=("$DIST"/*.wasm)
if [ ${#wasms[@]} -eq 0 ]; then
  echo "build-oci.sh: no $DIST/*.wasm: run 'make wasm'" >&2
  exit 1
fi
mkdir -p "$OUT"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# Stores a file as a blob; prints its digest.
put_blob() {
  local d; d=$(sha "$1")
  cp "$1" "$2/blobs/sha256/$d"
  echo "$d"
}

for wasm in "${wasms[@]}"; do
  name=$(basename "$wasm" .wasm)
  layout="$OUT/$name"
  rm -rf "$layout" "$layout.oci.tar"
  mkdir -p "$layout/blobs/sha256"
  work=$(mktemp -d)
  cp "$wasm" "$work/plugin.wasm"
  chmod 0644 "$work/plugin.wasm"
  touch -d @0 "$work/plugin.wasm"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
      -C "$work" -cf "$work/layer.tar" plugin.wasm
  diff_id=$(sha "$work/layer.tar")
  gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"
  layer=$(put_blob "$work/layer.tar.gz" "$layout")
  layer_size=$(size "$work/layer.tar.gz")

  printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.title":"wasmixer-%s","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"wasmixer make oci: COPY %s.wasm /plugin.wasm"}]}' \
    "$name" "$VERSION" "$diff_id" "$name" >"$work/config.json"
  config=$(put_blob "$work/config.json" "$layout")
  config_size=$(size "$work/config.json")

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}],"annotations":{"org.opencontainers.image.title":"wasmixer-%s","org.opencontainers.image.version":"%s","org.opencontainers.image.description":"wasmixer %s filter (proxy-wasm) for Istio WasmPlugin oci:// URLs"}}' \
    "$config" "$config_size" "$layer" "$layer_size" "$name" "$VERSION" "$name" >"$work/manifest.json"
  manifest=$(put_blob "$work/manifest.json" "$layout")
  manifest_size=$(size "$work/manifest.json")

  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s","io.containerd.image.name":"wasmixer/%s:%s"}}]}' \
    "$manifest" "$manifest_size" "$VERSION" "$name" "$VERSION" >"$layout/index.json"
  # Docker's own archive index too (as `docker save` writes since Docker 25), so that
  # `docker load` accepts the archive; OCI tools ignore it.
  printf '[{"Config":"blobs/sha256/%s","RepoTags":["wasmixer/%s:%s"],"Layers":["blobs/sha256/%s"]}]' \
    "$config" "$name" "$VERSION" "$layer" >"$layout/manifest.json"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
      -C "$layout" -cf "$layout.oci.tar" oci-layout index.json manifest.json blobs
  rm -rf "$work"

  # Self-check: every blob's name is its digest, and the layer holds exactly plugin.wasm,
  # byte for byte the filter.
  for blob in "$layout"/blobs/sha256/*; do
    [ "$(sha "$blob")" = "$(basename "$blob")" ] || { echo "build-oci.sh: bad digest $blob" >&2; exit 1; }
  done
  listing=$(tar -tzf "$layout/blobs/sha256/$layer")
  [ "$listing" = "plugin.wasm" ] || { echo "build-oci.sh: layer lists $listing" >&2; exit 1; }
  cmp -s <(tar -xzOf "$layout/blobs/sha256/$layer" plugin.wasm) "$wasm" \
    || { echo "build-oci.sh: plugin.wasm differs from $wasm" >&2; exit 1; }
  printf '  %-34s manifest sha256:%s  (wasm sha256 %s)\n' "$layout/" "$manifest" "$(sha "$wasm")"
done
