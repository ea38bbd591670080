#!/usr/bin/env bash
# Instructions per delivery of the gateway (`hookroom serve`) on each store,
# counted by callgrind: a count of instructions, which a busy machine does
# not blur as it blurs seconds.
#
#   bash benches/callgrind_stores.sh
#   HOOKROOM_BENCH_POSTGRES_URL=postgres://user:pw@host/db bash benches/callgrind_stores.sh
#   BASELINE=/path/to/an/older/hookroom bash benches/callgrind_stores.sh
#   HOOKROOM_BIN=/path/to/hookroom bash benches/callgrind_stores.sh   # built already
#
# Method: each gateway runs under `valgrind --tool=callgrind` twice, once
# idle and once loaded by wrk ($CONNECTIONS connections, 64, for $DURATION
# seconds, 20) with the load bench's fresh ~1 KiB Hugging Face deliveries
# (benches/http_load/hf_comment.lua), then stops on SIGTERM. Instructions
# per delivery are the loaded run's total less the idle run's (start-up and
# shutdown), divided by the deliveries wrk saw answered 2xx. Every thread of
# the gateway is counted (the runtime's, SQLite's writer and checkpointer,
# PostgreSQL's connections); the database server's own work is not.
# Deliveries still in flight when wrk stops are counted in the instructions
# but not in the deliveries: at most $CONNECTIONS, a fraction of a percent.
#
# Needs valgrind and wrk (installed with apt-get when missing) and, for the
# PostgreSQL rows, psql (the hookroom tables are dropped before each run).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18990}
POSTGRES_URL=${HOOKROOM_BENCH_POSTGRES_URL:-}
BASELINE=${BASELINE:-}
LUA=benches/http_load/hf_comment.lua
SECRET=hookroom-bench-secret

for tool in valgrind wrk; do
    if ! command -v "$tool" >/dev/null; then
        echo "== installing $tool"
        if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
        $SUDO apt-get install -y "$tool" >/dev/null || {
            $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "$tool" >/dev/null
        }
    fi
done
if [ -n "$POSTGRES_URL" ] && ! command -v psql >/dev/null; then
    echo "psql is needed to empty the PostgreSQL database between runs" >&2
    exit 1
fi

# HOOKROOM_BIN: a hookroom binary built already, measured instead.
if [ -n "${HOOKROOM_BIN:-}" ]; then
    bin=$HOOKROOM_BIN
else
    echo "== building (release): the hookroom binary"
    cargo build --release -p hookroom-gateway --bin hookroom
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
    bin=$target_dir/release/hookroom
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

export GITHUB_WEBHOOK_SECRET=bench-github SLACK_SIGNING_SECRET=bench-slack \
    JIRA_WEBHOOK_SECRET=bench-jira HF_WEBHOOK_SECRET=$SECRET

reset_postgres() {
    psql -q "$POSTGRES_URL" -c "DROP TABLE IF EXISTS hookroom_job_keys, hookroom_job_history,
        hookroom_jobs, hookroom_tasks CASCADE" >/dev/null
}

# run BINARY STORE OUT SECONDS: the gateway under callgrind, loaded for
# SECONDS (0: idle); prints the instructions and, when loaded, wrk's
# RESULT fields.
run() {
    local binary=$1 store=$2 out=$3 seconds=$4 result=
    rm -f "$work"/*.db*
    case $store in postgres*) reset_postgres ;; esac
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" serve \
        --config gateway/routes.json --listen "127.0.0.1:$PORT" --store "$store" \
        >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$work/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [ "$seconds" -gt 0 ]; then
        result=$(wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" -s "$LUA" \
            "http://127.0.0.1:$PORT/webhook/huggingface" -- "$SECRET" "cg-$$-$RANDOM" |
            grep '^RESULT' | cut -d' ' -f2-)
    else
        sleep 2
    fi
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    echo "$(awk '/^totals:/ {print $2}' "$out") $result"
}

stores=("memory" "sqlite:$work/cg.db")
[ -n "$POSTGRES_URL" ] && stores+=("$POSTGRES_URL")
builds=("$bin")
[ -n "$BASELINE" ] && builds+=("$BASELINE")

echo
echo "| build | store | deliveries | instructions per delivery |"
echo "| --- | --- | --- | --- |"
for build in "${builds[@]}"; do
    label=after
    [ "$build" = "$BASELINE" ] && label=before
    for store in "${stores[@]}"; do
        read -r idle < <(run "$build" "$store" "$work/idle.out" 0)
        read -r loaded _ _ _ requests bad _ < <(run "$build" "$store" "$work/loaded.out" "$DURATION")
        ok=$((requests - bad))
        name=${store%%:*}
        [ "$name" = postgres ] || [ "$name" = postgresql ] && name=postgres
        printf '| %s | %s | %d | %s |\n' "$label" "$name" "$ok" \
            "$(awk -v l="$loaded" -v i="$idle" -v n="$ok" 'BEGIN {printf "%.0f", (l - i) / n}')"
    done
done
