#!/usr/bin/env bash
# The HTTP load bench: the gateway (`hookroom serve`) over real sockets, next to a bare
# hyper server, with wrk.
#
#   bash benches/http_load.sh
#   HOOKROOM_BENCH_POSTGRES_URL=postgres://user:pw@host/db bash benches/http_load.sh
#   ROUNDS=5 DURATION=30 bash benches/http_load.sh
#   BASELINE=/path/to/an/older/hookroom bash benches/http_load.sh
#   HOOKROOM_BIN=/path/to/hookroom bash benches/http_load.sh   # built already
#
# Method: each server runs pinned to one core (`taskset -c $SERVER_CPU`,
# default 1), wrk pinned to another (`taskset -c $CLIENT_CPU`, default 0)
# with 1 thread and $CONNECTIONS connections (64). Each measurement is
# $DURATION seconds (10) after a $WARMUP-second warm-up (2) on a freshly
# started server with an empty store; the servers take turns, $ROUNDS rounds
# (3), and the table gives the medians; the ratios are the medians of the
# ratios within each round (the servers of a round share its conditions). Every request is a fresh ~1 KiB
# Hugging Face `discussion.comment` delivery with `X-Webhook-Secret`
# (benches/http_load/hf_comment.lua): a counter in the body makes each one a
# new task. RSS is the server's resident set at the end of a measurement.
#
# Servers: bare hyper (examples/bare_hyper.rs: reads the body, answers 200),
# the gateway on `--store memory`, on `--store sqlite:FILE` (a fresh
# file in a temporary directory, on the same disk as $TMPDIR) and, when
# HOOKROOM_BENCH_POSTGRES_URL is set, on that PostgreSQL database (its
# hookroom tables are dropped before each PostgreSQL server starts, so each
# starts empty; psql is needed). With BASELINE set to another build of the
# `hookroom` binary (an older commit, say), that binary's memory, SQLite
# and PostgreSQL gateways run in the same rounds, rows marked "before".
#
# wrk is installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BASE_PORT=${BASE_PORT:-18940}
POSTGRES_URL=${HOOKROOM_BENCH_POSTGRES_URL:-}
BASELINE=${BASELINE:-}
LUA=benches/http_load/hf_comment.lua
SECRET=hookroom-bench-secret

if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get install -y wrk >/dev/null || {
        $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null
    }
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 1; }

echo "== building (release): the hookroom binary and the bare hyper baseline"
[ -n "${HOOKROOM_BIN:-}" ] || cargo build --release -p hookroom-gateway --bin hookroom
cargo build --release -p hookroom --example bare_hyper
target_dir=$(cargo metadata --format-version 1 --no-deps |
    grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
bin=$target_dir/release
# HOOKROOM_BIN: a hookroom binary built already, measured instead.
hookroom=${HOOKROOM_BIN:-$bin/hookroom}

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The gateway reads every secret of the shipped routes file.
export GITHUB_WEBHOOK_SECRET=bench-github SLACK_SIGNING_SECRET=bench-slack \
    JIRA_WEBHOOK_SECRET=bench-jira HF_WEBHOOK_SECRET=$SECRET

# "gateway memory, no metrics" is the memory gateway started with
# `--no-metrics` (no recorder installed, so every metric call is a no-op, and
# no tracing subscriber below `warn`): the cost of observability is the ratio
# between the two memory rows.
names=("bare hyper" "gateway memory" "gateway memory, no metrics" "gateway sqlite")
[ -n "$POSTGRES_URL" ] && names+=("gateway postgres")
if [ -n "$BASELINE" ]; then
    names+=("before: gateway memory" "before: gateway sqlite")
    [ -n "$POSTGRES_URL" ] && names+=("before: gateway postgres")
fi
[ -n "$POSTGRES_URL" ] && command -v psql >/dev/null || [ -z "$POSTGRES_URL" ] || {
    echo "psql is needed to empty the PostgreSQL database between runs" >&2
    exit 1
}

# Drops the hookroom tables, so a PostgreSQL gateway starts on an empty store.
reset_postgres() {
    psql -q "$POSTGRES_URL" -c "DROP TABLE IF EXISTS hookroom_job_keys, hookroom_job_history,
        hookroom_jobs, hookroom_tasks CASCADE" >/dev/null
}

# start_server INDEX PORT ROUND: starts server INDEX on PORT; sets server_pid.
start_server() {
    local index=$1 port=$2 round=$3 addr=127.0.0.1:$2
    local gateway=("$hookroom" serve --config gateway/routes.json --listen "$addr")
    local before=("$BASELINE" serve --config gateway/routes.json --listen "$addr")
    case ${names[$index]} in
        "bare hyper") set -- "$bin/examples/bare_hyper" --listen "$addr" ;;
        "gateway memory") set -- "${gateway[@]}" --store memory ;;
        "gateway memory, no metrics") set -- env RUST_LOG=warn "${gateway[@]}" --store memory --no-metrics ;;
        "gateway sqlite") set -- "${gateway[@]}" --store "sqlite:$work/round$round.db" ;;
        "gateway postgres") reset_postgres; set -- "${gateway[@]}" --store "$POSTGRES_URL" ;;
        "before: gateway memory") set -- "${before[@]}" --store memory ;;
        "before: gateway sqlite") set -- "${before[@]}" --store "sqlite:$work/before$round.db" ;;
        "before: gateway postgres") reset_postgres; set -- "${before[@]}" --store "$POSTGRES_URL" ;;
    esac
    taskset -c "$SERVER_CPU" "$@" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "server ${names[$index]} did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# run_wrk PORT SECONDS NONCE: prints wrk's RESULT line fields.
run_wrk() {
    local path=/webhook/huggingface
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$2s" -s "$LUA" \
        "http://127.0.0.1:$1$path" -- "$SECRET" "$3" | grep '^RESULT' | cut -d' ' -f2-
}

declare -A rps p50 p99 rss to_bare to_memory
echo "== $ROUNDS rounds of ${DURATION}s (after ${WARMUP}s warm-up), $CONNECTIONS connections;" \
    "servers on core $SERVER_CPU, wrk on core $CLIENT_CPU"
for round in $(seq "$ROUNDS"); do
    for index in "${!names[@]}"; do
        port=$((BASE_PORT + 10 * index + round))
        start_server "$index" "$port" "$round"
        run_wrk "$port" "$WARMUP" "w$round-$$-$RANDOM" >/dev/null
        read -r r a b n bad errors < <(run_wrk "$port" "$DURATION" "m$round-$$-$RANDOM")
        kb=$(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status")
        stop_server
        rps[$index]+="$r "
        p50[$index]+="$a "
        p99[$index]+="$b "
        rss[$index]+="$kb "
        # Ratios within the round: the servers of one round share its
        # conditions (other load on the machine drifts between rounds).
        [ "$index" = 0 ] && round_bare=$r
        [ "$index" = 1 ] && round_memory=$r
        [ "${names[$index]}" = "before: gateway memory" ] && round_memory_before=$r
        to_bare[$index]+="$(awk -v r="$r" -v b="$round_bare" 'BEGIN {print r / b}') "
        # A "before" row is compared with the memory gateway of its own build.
        memory=$round_memory
        [[ ${names[$index]} == before:* ]] && memory=$round_memory_before
        if [ "$index" -ge 1 ]; then
            to_memory[$index]+="$(awk -v r="$r" -v m="$memory" 'BEGIN {print r / m}') "
        else
            to_memory[$index]+="0 "
        fi
        printf '   round %d  %-27s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  RSS %4d MiB  (%d requests, %d not 2xx, %d socket errors)\n' \
            "$round" "${names[$index]}" "$r" "$a" "$b" $((kb / 1024)) "$n" "$bad" "$errors"
        if [ "$bad" != 0 ]; then
            echo "   ${names[$index]} refused $bad requests; its log:" >&2
            tail -5 "$work/server.log" >&2
        fi
    done
    rm -f "$work"/round"$round".db* "$work"/before"$round".db*
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo
echo "medians of $ROUNDS rounds ($(nproc) cores: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)); ratios are medians of the ratios within each round"
echo
echo "| server | req/s | × bare hyper | × memory | p50 | p99 | RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for index in "${!names[@]}"; do
    r=$(median "${rps[$index]}")
    if [ "$index" = 0 ]; then to_mem=—; else to_mem=$(printf '%.2f' "$(median "${to_memory[$index]}")"); fi
    printf '| %s | %s | %s | %s | %s ms | %s ms | %s MiB |\n' "${names[$index]}" \
        "$(printf '%.0f' "$r" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')" \
        "$(printf '%.2f' "$(median "${to_bare[$index]}")")" "$to_mem" \
        "$(printf "%.2f" "$(median "${p50[$index]}")")" "$(printf "%.2f" "$(median "${p99[$index]}")")" \
        "$(($(median "${rss[$index]}") / 1024))"
done
