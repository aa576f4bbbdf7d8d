#!/usr/bin/env bash
# test_api.sh BIN SRC - the REST API of `coinhound serve` end to end with curl: every route of
# the OpenAPI document (which tests/unit/test_api.c holds equal to the route table) against
# every kind of caller (viewer, analyst, admin and ingest tokens, no credential, a bad token);
# offense updates with ETag / If-Match (412 on a stale one, 428 without); filter, sort, fields
# and paging with Range / Content-Range and limit/offset; console sessions (login, password
# change at first login, CSRF on state changes, logout); the error shape, body limits and the
# security headers; and that each change is in the audit log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1 src=$2
need_cmd curl "the API test"
need_cmd jq "the API test"
need_cmd python3 "the API test"
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
g=$src/tests/golden
db=$work/store.db

# Credentials exist only once an administrator makes them.
for r in viewer analyst admin ingest; do
  "$bin" token create "t-$r" --role $r --db "$db" >"$work/$r.tok" || fail "token create $r"
done
"$bin" user add alice --role analyst --db "$db" >"$work/alice.pw" || fail "user add"
cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $db
no_geoip: true
journal: {dir: $work/journal, max_bytes: 64MiB}
checkpoint: 1s
max_body: 1MiB
EOF
: >"$work/serve.log"
"$bin" serve --config "$work/serve.yaml" 2>>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | head -n1)
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
[ -n "$port" ] || fail "server did not start: $(cat "$work/serve.log")"
base=http://127.0.0.1:$port
tok() { cat "$work/$1.tok"; }
# req METHOD PATH [curl args...] -> status in $code, body in $work/out, headers in $work/hdr
req() {
  local m=$1 p=$2
  shift 2
  code=$(curl -s -o "$work/out" -D "$work/hdr" -w '%{http_code}' -X "$m" "$@" "$base$p")
}
hdr() { tr -d '\r' <"$work/hdr" | awk -v h="$(echo "$1" | tr A-Z a-z)" 'tolower($1) == h":" {sub(/^[^:]*: /, ""); print}'; }

# Offenses to work on: the golden CloudTrail through the ingest route.
for f in identities.jsonl array_pretty.json; do
  req POST /api/v1/ingest -H "Authorization: Bearer $(tok ingest)" --data-binary "@$g/cloudtrail/$f"
  [ "$code" = 202 ] || fail "ingest $f: $code $(cat "$work/out")"
done
req POST /api/v1/ingest -H "Authorization: Bearer $(tok ingest)" -H 'Content-Encoding: gzip' \
  --data-binary "@$g/cloudtrail/s3_delivery.json.gz"
for _ in $(seq 150); do
  req GET /api/v1/offenses -H "Authorization: Bearer $(tok viewer)"
  [ "$code" = 200 ] && [ "$(jq length "$work/out")" -gt 1 ] && break
  sleep 0.1
done
total=$(jq length "$work/out")
[ "$total" -gt 1 ] || fail "no offenses after ingest: $code $(head -c 300 "$work/out")"
id=$(jq '.[0].id' "$work/out")
# Offenses show up from the running pipeline at once; users and triage wait for its checkpoint.
for _ in $(seq 150); do
  user=$(curl -s -H "Authorization: Bearer $(tok viewer)" "$base/api/v1/users" | jq -r '.[0].name')
  [ -n "$user" ] && [ "$user" != null ] && break
  sleep 0.1
done
[ -n "$user" ] && [ "$user" != null ] || fail "GET /users names no user"

# ---- the route x role matrix, from the served OpenAPI document ------------------------------
curl -sf "$base/api/v1/openapi.json" >"$work/openapi.json" || fail "openapi.json"
jq -e '.openapi == "3.1.0"' "$work/openapi.json" >/dev/null || fail "OpenAPI 3.1"
python3 - "$work/openapi.json" "$base" "$id" "$user" "$work" <<'PY' || fail "route x role matrix"
import json, subprocess, sys
doc, base, oid, user, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
spec = json.load(open(doc))
rank = {"viewer": 1, "analyst": 2, "admin": 3}
def allowed(have, need):
    if need == "public": return True
    if need == "ingest": return have in ("ingest", "admin")
    return have in rank and rank[have] >= rank[need]
creds = {"none": None, "bad": "chk_" + "A" * 43}
for r in ("viewer", "analyst", "admin", "ingest"):
    creds[r] = open("%s/%s.tok" % (work, r)).read().strip()
bad = 0
checked = 0
for path, item in spec["paths"].items():
    for method, op in item.items():
        need = op["x-coinhound-role"]
        url = base + path.replace("{id}", oid).replace("{name}", user).replace("{value}", "x")
        for who, token in creds.items():
            if method == "delete" and path == "/api/v1/session":
                continue  # logout is walked with a session below
            args = ["curl", "-sg", "-o", "/dev/null", "-w", "%{http_code}", "-X", method.upper()]
            if token: args += ["-H", "Authorization: Bearer " + token]
            if method in ("post", "put"):
                args += ["-H", "Content-Type: application/json", "--data-binary", "{}"]
            st = int(subprocess.run(args + [url], capture_output=True, text=True).stdout)
            checked += 1
            if who == "bad":
                want = "401"
                ok = st == 401
            elif need == "public":
                want = "not 403"
                ok = st != 403 and st < 500
            elif who == "none":
                want = "401"
                ok = st == 401
            elif allowed(who, need):
                want = "not 401/403/5xx"
                ok = st not in (401, 403) and st < 500
            else:
                want = "403"
                ok = st == 403
            if not ok:
                bad += 1
                print("FAIL: %s %s as %s (route role %s): %d, want %s" % (method.upper(), path, who, need, st, want))
print("route x role matrix: %d calls checked" % checked)
sys.exit(1 if bad else 0)
PY

# ---- errors, headers, limits ----------------------------------------------------------------
req GET /api/v1/nowhere
[ "$code" = 404 ] && jq -e '.code == "not_found" and (.message | length > 0) and has("details")' "$work/out" >/dev/null ||
  fail "404 shape: $code $(cat "$work/out")"
[ "$(hdr content-security-policy | grep -c "default-src 'self'")" = 1 ] || fail "CSP on a 404"
[ "$(hdr x-frame-options)" = DENY ] && [ "$(hdr x-content-type-options)" = nosniff ] &&
  [ "$(hdr referrer-policy)" = no-referrer ] || fail "security headers: $(cat "$work/hdr")"
[ -z "$(hdr strict-transport-security)" ] || fail "HSTS without TLS"
req DELETE "/api/v1/offenses/$id" -H "Authorization: Bearer $(tok admin)"
[ "$code" = 405 ] && [ "$(jq -r .code "$work/out")" = method_not_allowed ] || fail "405: $code"
head -c 20000 /dev/zero | tr '\0' a >"$work/big"
req POST "/api/v1/offenses/$id/notes" -H "Authorization: Bearer $(tok analyst)" --data-binary "@$work/big"
[ "$code" = 413 ] && [ "$(jq -r .code "$work/out")" = payload_too_large ] || fail "note body limit: $code"
req GET /api/v1/offenses/99999999 -H "Authorization: Bearer $(tok viewer)"
[ "$code" = 404 ] || fail "unknown offense: $code"
req GET /api/v1/offenses/abc -H "Authorization: Bearer $(tok viewer)"
[ "$code" = 404 ] || fail "non-numeric offense id: $code"
req GET /api/v1/audit -H "Authorization: Bearer $(tok analyst)"
[ "$code" = 403 ] && [ "$(jq -r .code "$work/out")" = forbidden ] || fail "audit is admin's: $code"

# ---- filter, sort, fields, paging -----------------------------------------------------------
V=(-H "Authorization: Bearer $(tok viewer)")
req GET "/api/v1/offenses" "${V[@]}" -G --data-urlencode 'filter=magnitude >= 1 and status == "open"'
[ "$code" = 200 ] && [ "$(jq length "$work/out")" = "$total" ] || fail "filter all open: $code $(jq length "$work/out")"
[ "$(hdr content-range)" = "items 0-$((total - 1))/$total" ] || fail "Content-Range: $(hdr content-range)"
req GET "/api/v1/offenses" "${V[@]}" -G --data-urlencode "filter=id == $id"
[ "$(jq -c '[.[].id]' "$work/out")" = "[$id]" ] || fail "filter by id: $(cat "$work/out")"
req GET "/api/v1/offenses" "${V[@]}" -G --data-urlencode 'filter=magnitude >= 11'
[ "$code" = 200 ] && [ "$(jq length "$work/out")" = 0 ] && [ "$(hdr content-range)" = "items */0" ] ||
  fail "filter nothing: $code $(hdr content-range)"
req GET "/api/v1/offenses" "${V[@]}" -G --data-urlencode 'filter=magnitude >= '
[ "$code" = 400 ] && [ "$(jq -r .code "$work/out")" = bad_filter ] && jq -r .message "$work/out" | grep -q '1:' ||
  fail "bad filter: $code $(cat "$work/out")"
rule=$(curl -s "${V[@]}" "$base/api/v1/offenses/$id" | jq -r '.rules[0].id')
req GET "/api/v1/offenses" "${V[@]}" -G --data-urlencode "filter=rules == \"$rule\""
jq -e --argjson id "$id" 'map(.id) | index($id) != null' "$work/out" >/dev/null || fail "filter on rules"
req GET "/api/v1/offenses?sort=-id" "${V[@]}"
jq -e '[.[].id] == ([.[].id] | sort | reverse)' "$work/out" >/dev/null || fail "sort=-id"
req GET "/api/v1/offenses?sort=%2Bid&fields=id,status" "${V[@]}"
jq -e '[.[].id] == ([.[].id] | sort) and all(.[]; keys == ["id", "status"])' "$work/out" >/dev/null ||
  fail "sort=+id, fields: $(head -c 300 "$work/out")"
req GET "/api/v1/offenses?sort=colour" "${V[@]}"
[ "$code" = 400 ] || fail "unknown sort field: $code"
req GET "/api/v1/offenses?sort=id" "${V[@]}" -H 'Range: items=1-1'
[ "$code" = 200 ] && [ "$(jq length "$work/out")" = 1 ] && [ "$(hdr content-range)" = "items 1-1/$total" ] ||
  fail "Range items=1-1: $code $(hdr content-range)"
second=$(jq '.[0].id' "$work/out")
req GET "/api/v1/offenses?sort=id&limit=1&offset=1" "${V[@]}"
[ "$(jq '.[0].id' "$work/out")" = "$second" ] && [ "$(jq length "$work/out")" = 1 ] || fail "limit/offset"
req GET "/api/v1/offenses" "${V[@]}" -H "Range: items=$total-$((total + 5))"
[ "$code" = 416 ] || fail "Range past the end: $code"
req GET "/api/v1/offenses" "${V[@]}" -H 'Range: items=5-1'
[ "$code" = 416 ] || fail "backwards Range: $code"
req GET "/api/v1/offenses?limit=0" "${V[@]}"
[ "$code" = 400 ] || fail "limit=0: $code"

# ---- ETag / If-Match ------------------------------------------------------------------------
A=(-H "Authorization: Bearer $(tok analyst)" -H 'Content-Type: application/json')
req GET "/api/v1/offenses/$id" "${V[@]}"
etag=$(hdr etag)
[ -n "$etag" ] || fail "GET /offenses/{id} has no ETag"
req POST "/api/v1/offenses/$id" "${A[@]}" --data '{"assigned_to":"alice"}'
[ "$code" = 428 ] && [ "$(jq -r .code "$work/out")" = precondition_required ] || fail "no If-Match: $code"
req POST "/api/v1/offenses/$id" "${A[@]}" -H "If-Match: $etag" --data '{"assigned_to":"alice","follow_up":true}'
[ "$code" = 200 ] && jq -e '.assigned_to == "alice" and .follow_up == true' "$work/out" >/dev/null ||
  fail "update: $code $(cat "$work/out")"
etag2=$(hdr etag)
[ "$etag2" != "$etag" ] || fail "the ETag did not change"
# A second analyst still holding the first ETag is refused, and told the current one.
req POST "/api/v1/offenses/$id" "${A[@]}" -H "If-Match: $etag" --data '{"assigned_to":"bob"}'
[ "$code" = 412 ] && [ "$(jq -r .details.etag "$work/out")" = "$etag2" ] || fail "stale ETag: $code $(cat "$work/out")"
[ "$(curl -s "${V[@]}" "$base/api/v1/offenses/$id" | jq -r .assigned_to)" = alice ] || fail "412 changed the offense"
req POST "/api/v1/offenses/$id" "${A[@]}" -H "If-Match: $etag2" --data '{"status":"closed"}'
[ "$code" = 422 ] && jq -r .message "$work/out" | grep -q closing_reason || fail "close without reason: $code"
req GET /api/v1/offense_closing_reasons "${V[@]}"
reason=$(jq -r '.[0].text' "$work/out")
req POST "/api/v1/offenses/$id" "${A[@]}" -H "If-Match: $etag2" --data '{"status":"hidden"}'
[ "$code" = 200 ] && [ "$(jq -r .status "$work/out")" = hidden ] || fail "hide: $code"
etag3=$(hdr etag)
req GET "/api/v1/offenses" "${V[@]}" -G --data-urlencode 'filter=status == "hidden" and assigned_to == "alice"'
[ "$(jq -c '[.[].id]' "$work/out")" = "[$id]" ] || fail "filter hidden and assigned: $(cat "$work/out")"
req POST "/api/v1/offenses/$id" "${A[@]}" -H "If-Match: $etag3" \
  --data "$(jq -n --arg r "$reason" '{status: "closed", closing_reason: $r}')"
[ "$code" = 200 ] && [ "$(jq -r .status "$work/out")" = closed ] && [ "$(jq -r .closing_reason "$work/out")" = "$reason" ] ||
  fail "close: $code $(cat "$work/out")"
etag4=$(hdr etag)
req POST "/api/v1/offenses/$id" "${A[@]}" -H "If-Match: $etag4" --data '{"status":"open"}'
[ "$code" = 422 ] || fail "reopen a closed offense: $code"
# The pipeline's next checkpoint must not bring the old status back.
req POST /api/v1/ingest -H "Authorization: Bearer $(tok ingest)" --data-binary "@$g/cloudtrail/identities.jsonl"
sleep 2
[ "$(curl -s "${V[@]}" "$base/api/v1/offenses/$id" | jq -r .status)" = closed ] || fail "a checkpoint reopened the offense"

# ---- notes ----------------------------------------------------------------------------------
req POST "/api/v1/offenses/$id/notes" "${A[@]}" --data '{"text":"checked with the account owner"}'
[ "$code" = 201 ] || fail "add note: $code $(cat "$work/out")"
req POST "/api/v1/offenses/$id/notes" "${A[@]}" --data '{"txt":"x"}'
[ "$code" = 400 ] || fail "bad note body: $code"
req GET "/api/v1/offenses/$id/notes" "${V[@]}"
jq -e '.[-1].text == "checked with the account owner" and .[-1].author == "t-analyst"' "$work/out" >/dev/null ||
  fail "notes: $(cat "$work/out")"

# ---- users ----------------------------------------------------------------------------------
req GET "/api/v1/users/$user" "${V[@]}"
[ "$code" = 200 ] && jq -e '(.risk | type) == "number" and (.recent_hits | length > 0)' "$work/out" >/dev/null ||
  fail "user detail: $code $(cat "$work/out")"
req GET /api/v1/users/nobody-at-all "${V[@]}"
[ "$code" = 404 ] || fail "unknown user: $code"
req GET /api/v1/users "${V[@]}" -H 'Range: items=0-0'
[ "$(jq length "$work/out")" = 1 ] && hdr content-range | grep -q '^items 0-0/' || fail "users paging"

# ---- console sessions -----------------------------------------------------------------------
J=(-H 'Content-Type: application/json')
req POST /api/v1/session "${J[@]}" --data '{"name":"alice","password":"wrong-password-123"}'
[ "$code" = 401 ] && [ "$(jq -r .code "$work/out")" = login_failed ] || fail "bad login: $code"
req POST /api/v1/session "${J[@]}" --data "$(jq -n --arg p "$(cat "$work/alice.pw")" '{name: "alice", password: $p}')"
[ "$code" = 200 ] && jq -e '.must_change_password == true and .role == "analyst"' "$work/out" >/dev/null ||
  fail "login: $code $(cat "$work/out")"
cookie=$(hdr set-cookie)
echo "$cookie" | grep -q 'HttpOnly' && echo "$cookie" | grep -q 'SameSite=Strict' && ! echo "$cookie" | grep -q Secure ||
  fail "session cookie flags: $cookie"
sid=$(echo "$cookie" | sed 's/^ch_session=\([^;]*\);.*/\1/')
csrf=$(jq -r .csrf_token "$work/out")
C=(-H "Cookie: ch_session=$sid")
req GET /api/v1/offenses "${C[@]}"
[ "$code" = 403 ] && [ "$(jq -r .code "$work/out")" = password_change_required ] || fail "must change first: $code"
newpw=new-password-for-alice-42
req PUT /api/v1/session/password "${C[@]}" "${J[@]}" \
  --data "$(jq -n --arg o "$(cat "$work/alice.pw")" --arg n "$newpw" '{old_password: $o, new_password: $n}')"
[ "$code" = 403 ] && [ "$(jq -r .code "$work/out")" = csrf ] || fail "password change without CSRF: $code"
req PUT /api/v1/session/password "${C[@]}" "${J[@]}" -H "X-CSRF-Token: $csrf" \
  --data "$(jq -n --arg o "$(cat "$work/alice.pw")" --arg n "$newpw" '{old_password: $o, new_password: $n}')"
[ "$code" = 200 ] || fail "password change: $code $(cat "$work/out")"
sid=$(hdr set-cookie | sed 's/^ch_session=\([^;]*\);.*/\1/')
csrf=$(jq -r .csrf_token "$work/out")
C=(-H "Cookie: ch_session=$sid")
req GET /api/v1/offenses "${C[@]}"
[ "$code" = 200 ] || fail "session reads offenses: $code"
req GET /api/v1/session "${C[@]}"
[ "$code" = 200 ] && jq -e '.name == "alice" and .via == "session" and (.csrf_token | length == 43)' "$work/out" >/dev/null ||
  fail "who am I: $(cat "$work/out")"
csrf=$(jq -r .csrf_token "$work/out") # GET hands out a new one; the old one stops working
other=$(jq -r '.[] | select(.status != "closed") | .id' <(curl -s "${V[@]}" "$base/api/v1/offenses") | head -n1)
req POST "/api/v1/offenses/$other/notes" "${C[@]}" "${J[@]}" --data '{"text":"from the console"}'
[ "$code" = 403 ] && [ "$(jq -r .code "$work/out")" = csrf ] || fail "note without CSRF: $code"
req POST "/api/v1/offenses/$other/notes" "${C[@]}" "${J[@]}" -H "X-CSRF-Token: AAAA$csrf" --data '{"text":"x"}'
[ "$code" = 403 ] || fail "note with a wrong CSRF token: $code"
req POST "/api/v1/offenses/$other/notes" "${C[@]}" "${J[@]}" -H "X-CSRF-Token: $csrf" --data '{"text":"from the console"}'
[ "$code" = 201 ] || fail "note with CSRF: $code $(cat "$work/out")"
req GET /api/v1/audit "${C[@]}"
[ "$code" = 403 ] || fail "an analyst session reads the audit log: $code"
req DELETE /api/v1/session "${C[@]}"
[ "$code" = 403 ] || fail "logout without CSRF: $code"
req DELETE /api/v1/session "${C[@]}" -H "X-CSRF-Token: $csrf"
[ "$code" = 204 ] && hdr set-cookie | grep -q 'Max-Age=0' || fail "logout: $code"
req GET /api/v1/offenses "${C[@]}"
[ "$code" = 401 ] || fail "a session after logout: $code"

# ---- reference sets -------------------------------------------------------------------------
req POST /api/v1/reference_sets "${A[@]}" --data '{"name":"mining_pools","type":"domain"}'
[ "$code" = 201 ] && [ "$(jq -r .type "$work/out")" = domain ] || fail "create set: $code $(cat "$work/out")"
req POST /api/v1/reference_sets "${A[@]}" --data '{"name":"mining_pools","type":"ip"}'
[ "$code" = 409 ] || fail "create a set twice: $code"
req POST /api/v1/reference_sets "${A[@]}" --data '{"name":"bad name!","type":"ip"}'
[ "$code" = 400 ] || fail "bad set name: $code"
req POST /api/v1/reference_sets/mining_pools/values "${A[@]}" \
  --data '{"values":["Pool.MinerGate.com.","xmr.nanopool.org","supportxmr.com"],"ttl":"1d","source":"analyst"}'
[ "$code" = 200 ] && [ "$(jq .added "$work/out")" = 3 ] || fail "bulk add: $code $(cat "$work/out")"
req POST /api/v1/reference_sets/mining_pools/values "${A[@]}" --data '{"values":["ok.example","not a domain!"]}'
[ "$code" = 422 ] && [ "$(jq .details.index "$work/out")" = 1 ] || fail "a bad value in a bulk load: $code $(cat "$work/out")"
req GET /api/v1/reference_sets/mining_pools "${V[@]}"
[ "$code" = 200 ] && [ "$(jq .count "$work/out")" = 3 ] && jq -e '[.elements[].value] | index("pool.minergate.com") != null' "$work/out" >/dev/null &&
  jq -e 'all(.elements[]; .expiry != null)' "$work/out" >/dev/null || fail "get set: $(cat "$work/out")"
req DELETE /api/v1/reference_sets/mining_pools/values/POOL.minergate.com -H "Authorization: Bearer $(tok analyst)"
[ "$code" = 204 ] || fail "remove a value (normalized): $code $(cat "$work/out")"
req DELETE /api/v1/reference_sets/mining_pools/values/absent.example -H "Authorization: Bearer $(tok analyst)"
[ "$code" = 404 ] || fail "remove an absent value: $code"
req GET /api/v1/reference_sets "${V[@]}"
jq -e '.[] | select(.name == "mining_pools") | .count == 2' "$work/out" >/dev/null || fail "list sets: $(cat "$work/out")"
"$bin" refset show mining_pools --db "$db" | grep -q xmr.nanopool.org || fail "the CLI sees what the API added"
req DELETE /api/v1/reference_sets/mining_pools -H "Authorization: Bearer $(tok viewer)"
[ "$code" = 403 ] || fail "a viewer deletes a set: $code"
req DELETE /api/v1/reference_sets/mining_pools -H "Authorization: Bearer $(tok analyst)"
[ "$code" = 204 ] || fail "delete set: $code"
req GET /api/v1/reference_sets/mining_pools "${V[@]}"
[ "$code" = 404 ] || fail "a deleted set: $code"

# ---- rules ----------------------------------------------------------------------------------
req GET /api/v1/rules "${V[@]}"
[ "$code" = 200 ] && jq -e --arg r "$rule" 'length > 0 and (map(.id) | index($r) != null)' "$work/out" >/dev/null ||
  fail "rules list: $code $(head -c 300 "$work/out")"
req GET "/api/v1/rules/$rule" "${V[@]}"
[ "$code" = 200 ] && jq -e '(.where | length > 0) and (.cases | length) == .tests and .tests > 0 and
  all(.cases[]; .expect == "fire" or .expect == "silent")' "$work/out" >/dev/null || fail "rule detail: $(head -c 400 "$work/out")"
req GET /api/v1/rules/NO-SUCH-RULE "${V[@]}"
[ "$code" = 404 ] || fail "unknown rule: $code"

# ---- ingest status --------------------------------------------------------------------------
req GET /api/v1/ingest/status "${V[@]}"
[ "$code" = 200 ] && jq -e '.ready == true and .journal.broken == false and .pipeline.events_processed > 0 and
  (.watermarks.cloudtrail | test("^20"))' "$work/out" >/dev/null || fail "ingest status: $code $(cat "$work/out")"

# ---- the audit log has every change with who and before/after -------------------------------
req GET "/api/v1/audit?limit=10000" -H "Authorization: Bearer $(tok admin)"
[ "$code" = 200 ] || fail "audit: $code"
jq -e --arg o "offense:$id" '[.[] | select(.action == "offense.update" and .object == $o and .actor == "t-analyst")] | length == 3' \
  "$work/out" >/dev/null || fail "three offense updates audited (assign, hide, close): $(jq -c '[.[] | .action]' "$work/out")"
jq -e --arg o "offense:$id" '[.[] | select(.action == "offense.update" and .object == $o)] | last |
  .before.status == "hidden" and .after.status == "closed"' "$work/out" >/dev/null || fail "before/after of the close"
jq -e '[.[] | select(.action == "offense.note" and .actor == "alice")] | length == 1' "$work/out" >/dev/null ||
  fail "the console note audited as alice"
jq -e '[.[] | select(.action | test("login"))] | length >= 2' "$work/out" >/dev/null || fail "logins audited"
jq -e '[.[] | select(.object == "refset:mining_pools") | .action] == ["refset.create", "refset.add", "refset.remove", "refset.drop"]' \
  "$work/out" >/dev/null || fail "reference set changes audited: $(jq -c '[.[] | select(.object == "refset:mining_pools")]' "$work/out")"
req GET "/api/v1/audit?since=2999-01-01T00:00:00Z" -H "Authorization: Bearer $(tok admin)"
[ "$(jq length "$work/out")" = 0 ] || fail "audit since the future"
req GET "/api/v1/audit?since=yesterday" -H "Authorization: Bearer $(tok admin)"
[ "$code" = 400 ] || fail "audit since junk: $code"

kill -TERM $pid
wait $pid || fail "serve exit status"
pid=
echo "api: OK"
