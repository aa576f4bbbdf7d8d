#!/usr/bin/env bash
# The web console in a real browser: the demo scenario (bench/scenario, the attack inside an
# organisation's benign logs) analyzed into a store, `coinhound serve` serving it with the
# console, two one-time logins made on the command line (an admin and a viewer), and
# tests/browser/console.mjs driving Debian's chromium through playwright-core as an analyst
# and as a viewer. Screenshots are kept in browser-artifacts/ of the build directory.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
need_cmd python3 "the scenario generator (bench/scenario)"
need_cmd jq "reading the ground truth"
need_cmd curl "waiting for the server"
need_cmd node "the browser test driver"
need_geoip "$src" "the login countries of the scenario"
chromium=${CH_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "chromium is not installed at $chromium (scripts/deps test installs it)"
[ -d "$src/web/node_modules/playwright-core" ] ||
    fail "playwright-core is not in web/node_modules (scripts/install-web installs it)"
[ -f "$src/data/console/index.html" ] || fail "the console is not built in data/console (run scripts/install-web)"

work=$(mktemp -d)
artifacts=$PWD/browser-artifacts
rm -rf "$artifacts"
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/serve.log" ] && tail -n 30 "$work/serve.log" >&2; exit 1; }

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 10 --hours 30 --seed 7 >/dev/null
attacker=$(jq -r .attacker.user "$work/scn/ground_truth.json")
"$bin" analyze --no-progress -q --db "$work/run.db" --context "$work/scn/context.yaml" \
    --geoip "$src/data/geoip/country.mmdb" "$work/scn/logs" >/dev/null 2>"$work/analyze.err" ||
    { cat "$work/analyze.err" >&2; fail "analyze of the scenario"; }
admin_otp=$("$bin" user add alice --role admin --db "$work/run.db")
viewer_otp=$("$bin" user add victor --role viewer --db "$work/run.db")

# An intel feed nobody serves (a free loopback port): the ingest page shows it failing.
feedport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/serve.yaml" <<YAML
listen: 127.0.0.1:0
db: $work/run.db
context: $work/scn/context.yaml
journal: {dir: $work/journal}
console: $src/data/console
intel:
  pull:
    - {url: "http://127.0.0.1:$feedport/", every: 1h}
YAML
"$bin" serve --config "$work/serve.yaml" 2>"$work/serve.log" &
pid=$!
port=
for _ in $(seq 200); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | head -n1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    port=
    sleep 0.1
done
[ -n "$port" ] || fail "server did not become ready"

# The console's own files come with the security headers a browser needs.
hdrs=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/")
grep -qi '^content-security-policy: .*script-src .self.' <<<"$hdrs" || fail "the console is served with a strict CSP"
grep -qi '^content-type: text/html' <<<"$hdrs" || fail "the console's index is HTML"
code=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/../../etc/passwd")
[ "$code" = 404 ] || fail "a path out of the console directory: $code"

CH_ADMIN_NAME=alice CH_ADMIN_OTP=$admin_otp CH_VIEWER_NAME=victor CH_VIEWER_OTP=$viewer_otp \
CH_ATTACKER=$attacker CH_CHROMIUM=$chromium CH_FEED=http://127.0.0.1:$feedport/ \
    node "$src/tests/browser/console.mjs" "http://127.0.0.1:$port" "$artifacts" ||
    fail "the browser walk-through (screenshots in $artifacts)"
kill -TERM $pid
wait $pid || fail "serve exits 0 on SIGTERM"
pid=
