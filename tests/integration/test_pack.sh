#!/usr/bin/env bash
# Integration test of the cryptojacking-aws content pack through the CLI, as a pack author runs
# it: `coinhound rules check` validates every rule and reference set, `coinhound rules test`
# runs every rule's cases (fire and near miss) and exits 0. A broken copy of the pack (a typo in
# one rule, a case whose expectation is wrong) makes them exit 1.
# GeoIP comes from the pack's tests/geoip.csv fixture, so no installed database is needed: the
# data directory (COINHOUND_HOME) points at an empty folder to make sure none is used.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
pack=$src/content/cryptojacking-aws
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/home"
export COINHOUND_HOME=$work/home

need_subcommand "$bin" rules

"$bin" rules check "$pack" >"$work/check.out" 2>&1 || { cat "$work/check.out" >&2; fail "rules check"; }
grep -q "OK" "$work/check.out" || fail "rules check prints OK"

"$bin" rules test "$pack" >"$work/test.out" 2>&1 || { cat "$work/test.out" >&2; fail "rules test"; }
grep -q "GeoIP from the pack's fixture" "$work/test.out" || fail "rules test uses the pack's GeoIP fixture"
grep -q " 0 failed" "$work/test.out" || fail "rules test reports no failure"
for id in CJ-AUTH-01 CJ-AUTH-02 CJ-AUTH-03 CJ-AUTH-04 CJ-AUTH-05 CJ-AUTH-06 CJ-IAM-01 \
          CJ-RECON-01 CJ-RECON-02 CJ-EC2-01 CJ-EC2-02 CJ-EC2-03 CJ-EC2-04 CJ-MINE-01 \
          CJ-MINE-02 CJ-CHAIN-01 CJ-EVADE-01 CJ-EVADE-06 CJ-EVADE-07 CJ-EVADE-08 CJ-IAM-06 CJ-IAM-07 CJ-IAM-08 CJ-IAM-09; do
    grep -q "^PASS $id: .*expect fire" "$work/test.out" || fail "$id has a passing case that fires"
    grep -q "^PASS $id: .*expect silent" "$work/test.out" || fail "$id has a passing near miss"
done

# A broken copy: a typo in a rule fails check; a wrong expectation fails test.
cp -r "$pack" "$work/pack"
sed -i 's/^correlate:/corelate:/' "$work/pack/rules/CJ-AUTH-03.yml"
set +e
"$bin" rules check "$work/pack" >"$work/bad.out" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "rules check of a broken pack exits 1 (got $rc)"
grep -q "CJ-AUTH-03.yml:[0-9]*:[0-9]*" "$work/bad.out" || fail "the message names file:line:column"
rm -rf "$work/pack"; cp -r "$pack" "$work/pack"
sed -i 's/expect: silent}/expect: fire}/' "$work/pack/rules/CJ-AUTH-05.yml"
set +e
"$bin" rules test "$work/pack" >"$work/bad.out" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "rules test with a wrong expectation exits 1 (got $rc)"
grep -q "^FAIL CJ-AUTH-05" "$work/bad.out" || fail "the failing case is named"
# The OS comes from the image. Terraform launching Amazon Linux raises nothing; a launch whose
# response carries Kali's Marketplace product code raises CJ-EC2-01 on its own event.
offense_rules() { # db file... -> the rule ids of every offense, one per line
    local db=$1; shift
    "$bin" analyze --db "$db" --no-geoip -q --format json "$@" | python3 -c '
import json, sys
for o in json.load(sys.stdin).get("offenses", []):
    for r in o.get("rules", []):
        print(r["id"])'
}
t=$pack/tests
[ -z "$(offense_rules "$work/tf.db" "$t/ec2-01-terraform-amazon-linux.jsonl")" ] ||
    fail "Terraform launches of Amazon Linux raise no offense"
offense_rules "$work/kali.db" "$t/ec2-01-kali-product-code.jsonl" | grep -qx CJ-EC2-01 ||
    fail "a launch with Kali's product code raises CJ-EC2-01"
# What a DescribeImages response taught is kept in the store: the launch, read in a later run
# on the same --db, is judged with it; on a fresh store the same launch is an unknown image.
head -n 1 "$t/ec2-01-kali-described-by-id.jsonl" >"$work/describe.jsonl"
tail -n 1 "$t/ec2-01-kali-described-by-id.jsonl" >"$work/launch.jsonl"
[ -z "$(offense_rules "$work/two.db" "$work/describe.jsonl")" ] || fail "a DescribeImages alone raises nothing"
offense_rules "$work/two.db" "$work/launch.jsonl" | grep -qx CJ-EC2-01 ||
    fail "an image learned in an earlier run on the same --db is known in the next"
offense_rules "$work/fresh.db" "$work/launch.jsonl" | grep -qx CJ-EC2-01 &&
    fail "on a fresh store the launch of an undescribed image raises nothing"
# A replay changes nothing: the image is one row, with what the response said of it.
offense_rules "$work/two.db" "$work/describe.jsonl" >/dev/null
python3 - "$work/two.db" <<'PY' || fail "the store keeps one row per image, with its name, owner and verdict"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT image_id, name, owner_id, os FROM images").fetchall()
assert rows == [("ami-0c0ffee00000000aa",
                 "kali-last-snapshot-amd64-2024.2.0-804fcc46-63fc-4eb6-85a1-50e66d6c7215",
                 "679593333241", "Kali Linux")], rows
assert db.execute("SELECT version FROM schema_versions WHERE component = 'images'").fetchone() == (1,)
PY
echo "pack OK"
