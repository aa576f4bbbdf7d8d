# lib.sh - sourced by the integration tests (test_*.sh): how they report a failure and check
# their prerequisites.
#
# No prerequisite turns into a skip: python3, jq, curl, the GeoIP database, a command being
# registered, each missing one fails the test with what to do about it, because a skip that can
# also mean "broken" lets a regression through. The one exception is the shared corpora folder
# (../shared/corpora), which cannot ship with the repository: when the folder itself is absent,
# corpora_present says so on stderr and returns 1 so that the test leaves out the part that
# needs it (the rest still runs), except under CI (CI set to anything but "", "0", "false"),
# where the corpora are a prerequisite and their absence fails. A file missing from a present
# folder always fails.

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# need_cmd NAME WHAT: fail unless NAME is on PATH.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed (needed for $2; scripts/deps test installs it)"
}

# need_geoip SRC WHAT: fail unless the installed GeoIP database is there.
need_geoip() {
    [ -r "$1/data/geoip/country.mmdb" ] ||
        fail "no GeoIP database at $1/data/geoip/country.mmdb (needed for $2): run scripts/install-geoip"
}

# need_subcommand BIN WORDS...: fail unless `BIN WORDS --help` works (the command is registered).
need_subcommand() {
    local bin=$1
    shift
    "$bin" "$@" --help >/dev/null 2>&1 || fail "'coinhound $*' is not registered (or its --help fails)"
}

# Peak RSS in KiB of one command (the child's ru_maxrss); fails when the command does. Under
# AddressSanitizer freed memory waits in a quarantine of up to 256 MB, so a peak would grow with
# everything a run ever allocated, not with what it holds (the store memory tests saw 29-31 MB of
# quarantine where the release build grows 1-1.5 MB): the quarantine is off for the measure.
peak_rss_kib() {
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" python3 - "$@" <<'PY'
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
if r.returncode != 0:
    sys.exit("%s failed with %d" % (" ".join(sys.argv[1:3]), r.returncode))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}

in_ci() {
    case ${CI:-} in
    "" | 0 | false | FALSE | False) return 1 ;;
    *) return 0 ;;
    esac
}

# corpora_present CORPORA PATH...: 0 when every PATH (relative to CORPORA) is there; 1, after
# saying so, when the CORPORA folder itself is absent outside CI; fails otherwise.
corpora_present() {
    local corpora=$1 p
    shift
    if [ ! -d "$corpora" ]; then
        in_ci && fail "the shared corpora folder $corpora is absent, and CI is set: the corpora are a prerequisite of CI runs"
        echo "SKIPPED (part): the shared corpora folder $corpora is absent" >&2
        return 1
    fi
    for p in "$@"; do
        [ -e "$corpora/$p" ] || fail "$corpora/$p is missing from the shared corpora folder (moved or renamed?)"
    done
    return 0
}

# with_servers LOG...: make $work (a temporary folder) and arrange that at exit the servers whose
# pids the test keeps in $pid and $tpid are killed and $work removed; fail also prints the tail
# of each LOG (a name inside $work) that exists, so a failure shows what the servers said.
with_servers() {
    work=$(mktemp -d)
    pid= tpid=
    fail_logs=("$@")
    trap cleanup_servers EXIT
    fail() {
        echo "FAIL: $*" >&2
        local l
        for l in "${fail_logs[@]}"; do
            [ -f "$work/$l" ] && { echo "--- $l:" >&2; tail -n 25 "$work/$l" >&2; }
        done
        exit 1
    }
}
cleanup_servers() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$tpid" ] && kill -9 "$tpid" 2>/dev/null
    rm -rf "$work"
}

# serve_start BIN CONFIG LOG [text|json]: start `BIN serve --config CONFIG` in the background,
# its stderr appended to LOG (emptied first), and wait until /healthz answers on the port its
# "listening" line names (configs use port 0). Sets $pid and $port; fails after 10 s.
serve_start() {
    local bin=$1 config=$2 log=$3 format=${4:-text}
    : >"$log"
    "$bin" serve --config "$config" --log-format "$format" 2>>"$log" &
    pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$log" | head -n1)
        [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
        sleep 0.1
    done
    fail "the server did not become ready: $(tail -n 5 "$log")"
}

# serve_settled: wait until the server on $port has processed and checkpointed its journal
# (healthz's journal_lag_bytes is 0); fails after 10 s.
serve_settled() {
    for _ in $(seq 100); do
        jq -e '.journal_lag_bytes == 0' <(curl -s "http://127.0.0.1:$port/healthz") >/dev/null && return 0
        sleep 0.1
    done
    fail "the journal was not processed"
}
