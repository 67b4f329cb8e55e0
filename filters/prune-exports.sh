#!/usr/bin/env bash
# prune-exports.sh IN.wasm KEEP.txt OUT.wasm
#
# Keeps only the exports KEEP.txt lists (one name per line, '#' comments) and removes the code
# only they reached (binaryen's wasm-metadce). The proxy-wasm SDK exports every callback of the
# ABI; Envoy skips a callback a module does not export, so a filter that declares what it uses
# is never called for the rest (a request body chunk, trailers, gRPC events...): each call into
# the VM costs CPU on every request.
#
# No filter lists proxy_on_done: none of them does anything when a stream is done, and the
# SDK forgets a stream in proxy_on_delete, which Envoy calls whether or not proxy_on_done exists
# (a missing proxy_on_done counts as "done"). That saves one VM call per request.
set -euo pipefail
in=$1 keep=$2 out=$3

names=()
while IFS= read -r line; do
  name=${line%%#*}
  name=${name//[[:space:]]/}
  [ -n "$name" ] && names+=("$name")
done <"$keep"

graph=$(mktemp)
trap 'rm -f "$graph"' EXIT
{
  printf '['
  sep=''
  for name in "${names[@]}"; do
    printf '%s{"name":"export_%s","root":true,"export":"%s"}' "$sep" "$name" "$name"
    sep=','
  done
  printf ']\n'
} >"$graph"
# WASM_METADCE_FLAGS: e.g. -g to keep the name section (make profile-instructions).
# shellcheck disable=SC2086
wasm-metadce ${WASM_METADCE_FLAGS:-} "$in" --graph-file "$graph" -o "$out" \
  --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
  | grep -v '^unused: ' || true

# Every export the list names must still be there (a typo would silently drop a callback).
exports=$(wasm-dis "$out" | sed -n 's/^ *(export "\([^"]*\)".*/\1/p')
for name in "${names[@]}"; do
  if ! grep -qx "$name" <<<"$exports"; then
    echo "prune-exports: $in has no export $name (listed in $keep)" >&2
    exit 1
  fi
done
