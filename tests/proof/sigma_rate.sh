#!/usr/bin/env bash
# tests/proof/sigma_rate.sh BIN CORPORA - the Sigma conversion rate: every rule file of
# CORPORA/sigma (the specification's examples aside) alone in a pack, `coinhound rules check`;
# prints LOAD or REFUSE with the reason per file, then "loaded N of M" (docs/BENCHMARKS.md).
bin=$1 corpora=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ok=0 total=0
while IFS= read -r f; do
  rm -rf "$work/p"; mkdir -p "$work/p/rules"; cp "$f" "$work/p/rules/"
  total=$((total+1))
  if "$bin" rules check "$work/p" >"$work/out" 2>&1; then ok=$((ok+1)); echo "LOAD ${f#$corpora/}"
  else echo "REFUSE ${f#$corpora/}: $(grep -m1 -o 'not supported.*\|FAIL.*\|error.*' "$work/out" | head -c 160)"; fi
done < <(find "$corpora/sigma" -name '*.yml' -not -path '*/sigma-specification/*' | sort)
echo "loaded $ok of $total"
