#!/usr/bin/env bash
# The asynchronous search routes of `serve` (docs/API.md, docs/SEARCH.md), over a store that an
# analyze run wrote (two sources, a day of segments, read on the server's default threads):
#   - POST /api/v1/searches needs a token (401 without one); a viewer's starts one: 201, its id,
#     a Location; GET /searches/{id} reports running or done with the segments' progress;
#   - GET .../results pages through the matches: the pages put together are the events that
#     `coinhound search --threads 1` prints for the same expression, in the same order; count_by
#     gives its groups (the server reads on one thread per CPU: one shard's groups lost, or a
#     page out of order, shows here);
#   - an expression error is a 400 that names line and column, an unknown member a 400 that
#     names it;
#   - DELETE of a search that may still run cancels and forgets it (204, then 404), and the
#     server stays healthy.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve tests"
need_cmd jq "the serve tests"
need_cmd python3 "the record generator"
with_servers serve.log
db=$work/store.db

python3 "$src/bench/gen" cloudtrail --records 60000 --span-hours 24 --out "$work/ct.jsonl" --quiet
python3 "$src/bench/gen" route53 --records 20000 --span-hours 24 --out "$work/dns.jsonl" --quiet
"$bin" analyze --no-progress -q --no-geoip --db "$db" "$work/ct.jsonl" "$work/dns.jsonl" >/dev/null
"$bin" store compact --db "$db" >/dev/null
"$bin" token create t-viewer --role viewer --db "$db" >"$work/viewer.tok"
viewer=$(cat "$work/viewer.tok")

cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $db
no_geoip: true
journal: {dir: $work/journal}
EOF
serve_start "$bin" "$work/serve.yaml" "$work/serve.log" json
api() { # api METHOD PATH [BODY] -> status in $code, body in $work/out (viewer's token)
    local body=${3:-}
    code=$(curl -s -o "$work/out" -D "$work/hdr" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $viewer" -H 'Content-Type: application/json' \
        ${body:+--data-binary "$body"} "http://127.0.0.1:$port$2")
}
# wait_done ID: poll until the search has finished; its status in $work/out
wait_done() {
    for _ in $(seq 300); do
        api GET "/api/v1/searches/$1"
        [ "$code" = 200 ] || fail "GET /api/v1/searches/$1: $code $(cat "$work/out")"
        [ "$(jq -r .status "$work/out")" != running ] && return 0
        sleep 0.05
    done
    fail "search $1 still running after 15 s: $(cat "$work/out")"
}

code=$(curl -s -o "$work/out" -w '%{http_code}' -X POST --data-binary '{"expression":"user.name exists"}' \
    "http://127.0.0.1:$port/api/v1/searches")
[ "$code" = 401 ] || fail "POST /api/v1/searches without a token: $code"

# The busiest user's events, newest first, paged 700 at a time.
user=$("$bin" search 'user.name exists' --db "$db" --top user.name --limit 1 --format json 2>/dev/null |
    jq -r '.groups[0]["user.name"]')
[ -n "$user" ] && [ "$user" != null ] || fail "no user to look up"
"$bin" search "user.name == \"$user\"" --db "$db" --format jsonl --limit 10000 --threads 1 2>/dev/null |
    jq -r '.event.id' >"$work/cli.ids"
n=$(wc -l <"$work/cli.ids")
[ "$n" -gt 1000 ] || fail "the CLI found only $n events of $user"
api POST /api/v1/searches "{\"expression\":\"user.name == \\\"$user\\\"\",\"limit\":10000}"
[ "$code" = 201 ] || fail "POST /api/v1/searches: $code $(cat "$work/out")"
id=$(jq -r .id "$work/out")
grep -qi "^location: /api/v1/searches/$id" "$work/hdr" || fail "no Location for search $id: $(cat "$work/hdr")"
wait_done "$id"
jq -e '.status == "done" and .segments_total > 40 and .segments_done == .segments_total' \
    "$work/out" >/dev/null || fail "search $id finished as: $(cat "$work/out")"
[ "$(jq -r .kept "$work/out")" = "$n" ] || fail "search $id kept $(jq -r .kept "$work/out") of the CLI's $n"
: >"$work/api.ids"
for off in $(seq 0 700 "$n"); do
    api GET "/api/v1/searches/$id/results?offset=$off&limit=700"
    [ "$code" = 200 ] || fail "results at $off: $code $(cat "$work/out")"
    [ "$(jq -r .total "$work/out")" = "$n" ] || fail "results at $off: total $(jq -r .total "$work/out")"
    jq -r '.events[].event.id' "$work/out" >>"$work/api.ids"
done
cmp -s "$work/cli.ids" "$work/api.ids" ||
    fail "the API's pages are not the CLI's events in its order: $(diff "$work/cli.ids" "$work/api.ids" | head -n 4)"

# count_by: the CLI's groups.
"$bin" search 'dns.question.name exists' --db "$db" --count-by dns.question.type --format json --threads 1 2>/dev/null |
    jq -c '.groups' >"$work/cli.groups"
api POST /api/v1/searches '{"expression":"dns.question.name exists","count_by":"dns.question.type"}'
[ "$code" = 201 ] || fail "POST count_by: $code $(cat "$work/out")"
id2=$(jq -r .id "$work/out")
wait_done "$id2"
api GET "/api/v1/searches/$id2/results"
jq -c '.counts' "$work/out" >"$work/api.groups"
[ "$(jq length "$work/cli.groups")" -ge 2 ] || fail "the CLI's groups: $(cat "$work/cli.groups")"
cmp -s "$work/cli.groups" "$work/api.groups" ||
    fail "count_by: the API's counts $(cat "$work/api.groups") are not the CLI's $(cat "$work/cli.groups")"

# Errors name what is wrong.
api POST /api/v1/searches '{"expression":"user.name == "}'
[ "$code" = 400 ] && grep -q '1:1[0-9]' "$work/out" || fail "a bad expression: $code $(cat "$work/out")"
api POST /api/v1/searches '{"expression":"user.name exists","colour":"red"}'
[ "$code" = 400 ] && grep -q 'colour' "$work/out" || fail "an unknown member: $code $(cat "$work/out")"

# DELETE of a full scan that may still run: cancelled and forgotten.
api POST /api/v1/searches '{"expression":"requestParameters.instanceType == \"no-such-type\"","sort":"asc"}'
[ "$code" = 201 ] || fail "POST the scan: $code $(cat "$work/out")"
id3=$(jq -r .id "$work/out")
api DELETE "/api/v1/searches/$id3"
[ "$code" = 204 ] || fail "DELETE /api/v1/searches/$id3: $code $(cat "$work/out")"
api GET "/api/v1/searches/$id3"
[ "$code" = 404 ] || fail "a deleted search is still there: $code $(cat "$work/out")"
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "the server is not healthy after a cancel"
api GET "/api/v1/searches/$id"
[ "$code" = 200 ] || fail "the first search was forgotten by another's delete: $code"
echo "api search: ok ($n events of $user in $(jq -r .segments_total "$work/out") segments)"
