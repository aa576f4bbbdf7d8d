#!/usr/bin/env bash
# Accounts, tokens and the audit log end to end through the coinhound command: `token create`
# prints the token as the only line on stdout; `user add` and `user passwd` print a one-time
# password; list, disable, enable, revoke and role work; nothing secret reaches the database or
# a listing; `coinhound audit` shows every change, as table and JSON, with --since.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
need_cmd jq "reading the JSON listings"
db=$work/sub/dir/c.db
export COINHOUND_HOME=$work/home   # never the real default database

# Nothing exists before an administrator creates it; reading a missing database fails.
set +e
"$bin" user list --db "$db" >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 1 ] || fail "user list on a missing database exits 1, got $rc"
[ ! -e "$db" ] || fail "user list must not create the database"

# user add: one line on stdout, the one-time password.
"$bin" user add alice --role admin --db "$db" >"$work/pw" 2>"$work/err"
[ "$(wc -l <"$work/pw")" = 1 ] || fail "user add prints exactly one line"
pw=$(cat "$work/pw")
[[ "$pw" =~ ^[A-Za-z0-9_-]{20}$ ]] || fail "one-time password looks like one: '$pw'"
grep -q "must be changed" "$work/err" || fail "user add says the password is one-time"
"$bin" user add bob --role viewer --db "$db" >/dev/null 2>&1

# token create: exactly one line, the token.
"$bin" token create ci --role ingest --db "$db" >"$work/tok" 2>/dev/null
[ "$(wc -l <"$work/tok")" = 1 ] || fail "token create prints exactly one line"
tok=$(cat "$work/tok")
[[ "$tok" =~ ^chk_[A-Za-z0-9_-]{43}$ ]] || fail "token has the chk_ form: '$tok'"
"$bin" token create reader --role viewer --db "$db" >/dev/null 2>&1

# Usage errors exit 2 and change nothing.
set +e
"$bin" user add carol --role ingest --db "$db" >/dev/null 2>&1; rc1=$?
"$bin" user add carol --db "$db" >/dev/null 2>&1; rc2=$?
"$bin" token create x --role root --db "$db" >/dev/null 2>&1; rc3=$?
"$bin" user add alice --role admin --db "$db" >/dev/null 2>&1; rc4=$?
"$bin" user disable nobody --db "$db" >/dev/null 2>&1; rc5=$?
"$bin" token create ci --role ingest --db "$db" >/dev/null 2>&1; rc6=$?
set -e
[ "$rc1$rc2$rc3$rc4$rc5$rc6" = 222212 ] || fail "exit codes of bad requests: $rc1$rc2$rc3$rc4$rc5$rc6"

# Listings: names and roles, the token's shown prefix, never a secret.
"$bin" user list --db "$db" --format json >"$work/users.json"
[ "$(jq -r '[.accounts[] | "\(.name):\(.role):\(.must_change)"] | join(" ")' "$work/users.json")" = \
  "alice:admin:true bob:viewer:true" ] || fail "user list: $(cat "$work/users.json")"
"$bin" token list --db "$db" --format json >"$work/tokens.json"
[ "$(jq -r '[.tokens[].name] | join(" ")' "$work/tokens.json")" = "ci reader" ] ||
  fail "token list: $(cat "$work/tokens.json")"
[ "$(jq -r '.tokens[] | select(.name == "ci") | .shown' "$work/tokens.json")" = "${tok:0:12}" ] ||
  fail "token list shows the token's first 12 characters"
"$bin" user list --db "$db" >"$work/users.txt"
"$bin" token list --db "$db" >"$work/tokens.txt"
for f in "$work/users.txt" "$work/tokens.txt" "$work/users.json" "$work/tokens.json" "$db"*; do
  ! grep -qF -- "${tok:4}" "$f" || fail "the token's secret appears in $f"
  ! grep -qF -- "$pw" "$f" || fail "the password appears in $f"
done
grep -q "^alice " "$work/users.txt" || fail "user list table names alice"

# disable / enable / role / passwd / revoke.
[ "$("$bin" user disable bob --db "$db")" = "account bob disabled" ] || fail "user disable"
"$bin" user list --db "$db" --format json | jq -e '.accounts[] | select(.name == "bob") | .disabled' >/dev/null ||
  fail "bob is disabled"
"$bin" user enable bob --db "$db" >/dev/null
"$bin" user role bob --role analyst --db "$db" >/dev/null
"$bin" user list --db "$db" --format json | jq -e '.accounts[] | select(.name == "bob") | .role == "analyst" and (.disabled | not)' >/dev/null ||
  fail "bob is an enabled analyst"
pw2=$("$bin" user passwd bob --db "$db" 2>/dev/null)
[[ "$pw2" =~ ^[A-Za-z0-9_-]{20}$ ]] || fail "user passwd prints a new one-time password"
echo "a chosen password for bob" | "$bin" user passwd bob --password-stdin --db "$db" 2>/dev/null
"$bin" user list --db "$db" --format json | jq -e '.accounts[] | select(.name == "bob") | .must_change | not' >/dev/null ||
  fail "a password set from stdin need not be changed"
set +e
echo "short" | "$bin" user passwd bob --password-stdin --db "$db" >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "a too-short password is a usage error, got $rc"
"$bin" token revoke "${tok:0:12}" --db "$db" >/dev/null
"$bin" token revoke reader --db "$db" >/dev/null
[ "$("$bin" token list --db "$db" --format json | jq '.tokens | length')" = 0 ] || fail "both tokens revoked"
[ "$("$bin" token list --all --db "$db" --format json | jq '[.tokens[] | select(.revoked != null)] | length')" = 2 ] ||
  fail "token list --all shows the revoked tokens"
set +e
"$bin" token revoke reader --db "$db" >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 1 ] || fail "revoking a revoked token exits 1, got $rc"

# The audit log holds every change, in order, by the local user from the cli.
"$bin" audit --db "$db" --format json >"$work/audit.json"
want="user.add user.add token.create token.create user.disable user.enable user.role user.passwd user.passwd token.revoke token.revoke"
got=$(jq -r '[.audit[].action] | join(" ")' "$work/audit.json")
[ "$got" = "$want" ] || fail "audit actions: $got"
me=$(id -un 2>/dev/null || echo "uid:$(id -u)")
jq -e --arg me "$me" 'all(.audit[]; .actor == $me and .source == "cli")' "$work/audit.json" >/dev/null ||
  fail "audit actor is the local user ($me) and source cli"
jq -e '.audit[] | select(.action == "user.disable") | .before.disabled == false and .after.disabled == true' "$work/audit.json" >/dev/null ||
  fail "audit keeps the state before and after"
! grep -qF -- "${tok:4}" "$work/audit.json" || fail "the token's secret is in the audit log"
"$bin" audit --db "$db" >"$work/audit.txt"
[ "$(grep -c "token.revoke" "$work/audit.txt")" = 2 ] || fail "audit table lists the revocations"
[ "$("$bin" audit --db "$db" --since 1h --format json | jq '.audit | length')" = 11 ] || fail "--since 1h keeps all"
[ "$("$bin" audit --db "$db" --since 2999-01-01T00:00:00Z --format json | jq '.audit | length')" = 0 ] ||
  fail "--since in the future keeps none"
[ "$("$bin" audit --db "$db" --limit 3 --format json | jq '.audit | length')" = 3 ] || fail "--limit"
set +e
"$bin" audit --db "$db" --since yesterday >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "a bad --since is a usage error, got $rc"

# The audit log cannot be rewritten through SQL.
if command -v sqlite3 >/dev/null; then
  if sqlite3 "$db" "DELETE FROM audit_log" 2>/dev/null; then fail "audit rows could be deleted"; fi
  if sqlite3 "$db" "UPDATE audit_log SET actor = 'x'" 2>/dev/null; then fail "audit rows could be updated"; fi
fi

# The offense store shares the file: offenses list still works on it.
"$bin" offenses list --db "$db" >/dev/null || fail "offenses list on the shared database"
echo "test_accounts: ok"
