#!/usr/bin/env bash
# `make bench-validate`: times `wasmixer validate` (release build) on generated files of
# N rules of two shapes:
#   shared: deny rules with their own match, all sending one checknothing instance to one
#           denier handler (the shape of issue 25's measurements; 50,000 rules in under 10 s);
#   own:    each rule with its own listchecker handler and listentry instance, in 50 namespaces
#           (three resources per rule), half of them also sending a metric to a shared
#           prometheus handler.
# Validation must grow linearly with the rule count; the times printed for each size show it.
#
# usage: bench/validate/scale.sh WASMIXER_BIN [N...]   (default sizes: 10000 25000 50000)
set -euo pipefail
bin=$1
shift
sizes=("${@:-10000 25000 50000}")
read -r -a sizes <<<"${sizes[*]}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

generate_shared() {
  awk -v n="$1" 'BEGIN {
    print "kind: handler\nmetadata: {name: denyh, namespace: istio-system}"
    print "spec: {compiledAdapter: denier, params: {status: {code: 7, message: Not allowed}}}"
    print "---\nkind: instance\nmetadata: {name: denyi, namespace: istio-system}\nspec: {compiledTemplate: checknothing}"
    for (i = 0; i < n; i++) {
      printf "---\napiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {name: r%d, namespace: istio-system}\nspec:\n", i
      printf "  match: source.labels[\"app\"] == \"a%d\" && destination.labels[\"version\"] == \"v%d\"\n", i, i
      print "  actions: [{handler: denyh, instances: [denyi]}]"
    }
  }'
}

generate_own() {
  awk -v n="$1" 'BEGIN {
    print "apiVersion: config.istio.io/v1alpha2\nkind: instance\nmetadata: {name: requests, namespace: istio-system}"
    print "spec: {compiledTemplate: metric, params: {value: \"1\", dimensions: {code: response.code | 200}}}"
    print "---\napiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: {name: prom, namespace: istio-system}"
    print "spec: {compiledAdapter: prometheus, params: {metrics: [{name: requests_total, instance_name: requests.instance.istio-system, kind: COUNTER, label_names: [code]}]}}"
    for (i = 0; i < n; i++) {
      ns = "ns" (i % 50)
      printf "---\nkind: handler\nmetadata: {name: h%d, namespace: %s}\nspec: {compiledAdapter: listchecker, params: {overrides: [a%d, b], blacklist: true}}\n", i, ns, i
      printf "---\nkind: instance\nmetadata: {name: i%d, namespace: %s}\nspec: {compiledTemplate: listentry, params: {value: '\''source.labels[\"app\"] | \"x\"'\''}}\n", i, ns
      extra = (i % 2 == 0) ? ", {handler: prom.istio-system, instances: [requests.instance.istio-system]}" : ""
      printf "---\nkind: rule\nmetadata: {name: r%d, namespace: %s}\nspec:\n  match: source.labels[\"app\"] == \"a%d\" && request.path.startsWith(\"/p%d\")\n  actions: [{handler: h%d, instances: [i%d]}%s]\n", i, ns, i, i, i, i, extra
    }
  }'
}

echo "==> wasmixer validate, release build ($bin)"
printf '  %-7s %8s %10s %10s %12s\n' shape rules bytes seconds max_rss_kb
for shape in shared own; do for n in "${sizes[@]}"; do
  file=$dir/rules-$shape-$n.yaml
  "generate_$shape" "$n" >"$file"
  echo "-" >"$dir/rss"
  # GNU time for the peak memory when it is installed; the exit status 0 (valid) is expected.
  timer=()
  if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -f '%M' -o "$dir/rss"); fi
  start=$(date +%s%N)
  "${timer[@]}" "$bin" validate "$file" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
  end=$(date +%s%N)
  secs=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')
  printf '  %-7s %8d %10d %10s %12s\n' "$shape" "$n" "$(stat -c %s "$file")" "$secs" "$(cat "$dir/rss")"
  rm -f "$file"
done; done
