#!/usr/bin/env bash
# The pack on real attack logs nobody here generated: Stratus Red Team's detonation logs
# (../shared/corpora, skipped when absent), one `coinhound analyze` per technique through
# tests/proof/pack_proof.py. Each technique the pack README says fires must raise an offense
# from the named rule, and the techniques it says stay silent must raise none (a new rule that
# starts firing on them has to update the README's table, which says why).
# Args: coinhound-binary source-dir corpora-dir. Exit 77 (skip) when a piece is missing.
set -euo pipefail
bin=$1 src=$2 corpora=${3:-}
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
command -v python3 >/dev/null || skip "python3 is not installed"
command -v jq >/dev/null || skip "jq is not installed"
[ -n "$corpora" ] && [ -d "$corpora/cloudtrail/stratus_red_team_detonation_logs" ] ||
    skip "no Stratus Red Team corpus in '$corpora'"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$src/tests/proof/pack_proof.py" stratus "$bin" "$corpora" --pack "$src/content/cryptojacking-aws" \
    --json >"$work/stratus.json"

fired() { jq -r --arg t "$1" '.[] | select(.technique == $t) | .fired | join(",")' "$work/stratus.json"; }
expect_fire() { # technique rule
    grep -qw -- "$2" <<<"$(fired "$1")" || fail "$1 raises $2 (fired: '$(fired "$1")')"
}
expect_fire aws.defense-evasion.cloudtrail-delete CJ-EVADE-01
expect_fire aws.defense-evasion.cloudtrail-stop CJ-EVADE-01
expect_fire aws.defense-evasion.cloudtrail-event-selectors CJ-EVADE-01
expect_fire aws.defense-evasion.dns-delete-logs CJ-EVADE-04
expect_fire aws.defense-evasion.vpc-remove-flow-logs CJ-EVADE-04
expect_fire aws.defense-evasion.organizations-leave CJ-EVADE-03
expect_fire aws.execution.ec2-launch-unusual-instances CJ-EC2-05
expect_fire aws.execution.ec2-user-data CJ-EC2-11
expect_fire aws.exfiltration.ec2-security-group-open-port-22-ingress CJ-NET-01
expect_fire aws.initial-access.console-login-without-mfa CJ-AUTH-05
expect_fire aws.persistence.iam-create-admin-user CJ-IAM-02
expect_fire aws.persistence.iam-create-admin-user CJ-IAM-04
expect_fire aws.persistence.iam-create-backdoor-role CJ-IAM-04
expect_fire aws.persistence.iam-create-user-login-profile CJ-IAM-03
expect_fire aws.privilege-escalation.iam-update-user-login-profile CJ-IAM-03
expect_fire aws.persistence.iam-backdoor-user CJ-IAM-06
expect_fire aws.persistence.iam-backdoor-role CJ-IAM-07
expect_fire aws.persistence.sts-federation-token CJ-IAM-08
expect_fire aws.persistence.rolesanywhere-create-trust-anchor CJ-IAM-09

# Silent on purpose (README: outside cryptojacking, or below a threshold on purpose).
for t in aws.credential-access.secretsmanager-retrieve-secrets aws.execution.ssm-send-command \
         aws.exfiltration.ec2-share-ebs-snapshot aws.persistence.lambda-overwrite-code \
         aws.execution.ssm-start-session; do
    [ -z "$(fired "$t")" ] || fail "$t stays silent (fired: $(fired "$t"))"
done
# Every record parses.
[ "$(jq '[.[] | .errors] | add' "$work/stratus.json")" -eq 0 ] || fail "every Stratus record parses"
n=$(jq '[.[] | select(.fired | length > 0)] | length' "$work/stratus.json")
[ "$n" -ge 18 ] || fail "at least 18 techniques raise an offense (got $n)"
echo "stratus: $n of $(jq length "$work/stratus.json") techniques raise an offense"
