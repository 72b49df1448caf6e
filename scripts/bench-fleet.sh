#!/bin/sh
# Fleet benchmarks of issue 15 (README, Benchmarks): collector CPU per full and delta report on
# SQLite and on PostgreSQL, many agents on one SQLite collector (compressed steady state and
# the reconnect storm), two collectors against one on one PostgreSQL, and PostgreSQL's own COPY
# of a full report's rows as the physical baseline. Not run by CI (minutes of load on the
# machine); everything listens on 127.0.0.1 only.
#
# Usage: scripts/bench-fleet.sh [OUT_DIR]     (root or the postgres user's rights for the
# scratch cluster; PostgreSQL 15 from scripts/deps/postgres.sh)
# Sizes: AGENTS (SQLite vs PostgreSQL, default 300), MANY (one collector, default 10000),
# STEADY (seconds of steady state, default 300: one 5-minute cycle), PAIR (two vs one, 300),
# ONLY (space-separated subset of: compare many pair copy, or many-pg: MANY agents on one
# PostgreSQL collector, not run by default); BUILD=0 uses the binaries as built.
set -eu

out=${1:-/tmp/tillsyn-bench-fleet}
agents=${AGENTS:-300}
many=${MANY:-10000}
steady=${STEADY:-300}
pair=${PAIR:-300}
only=${ONLY:-compare many pair copy}
bin=${CARGO_TARGET_DIR:-target}/release
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$out"

[ "${BUILD:-1}" = 0 ] || cargo build --release -p tillsyn-collector -p tillsyn-loadgen
collector=$bin/tillsyn-collector
loadgen=$bin/tillsyn-loadgen

# A scratch PostgreSQL cluster with its default (durable) settings: fsync and synchronous
# commit on, as the collector's SQLite runs with synchronous = FULL.
pg=$(mktemp -d /tmp/tillsyn-bench-pg.XXXXXX)
pgport=${PGPORT_BENCH:-55433}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$pg"
pids=""
cleanup() {
    for pid in $pids; do kill -INT "$pid" 2>/dev/null || true; done
    as_pg "$pgbin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$pg"
}
trap cleanup EXIT INT TERM
as_pg "$pgbin/initdb" -D "$pg/data" -A trust -U postgres --locale=C -E UTF8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -o \
    "-k $pg -p $pgport -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB" start >/dev/null
postmaster=$(head -1 "$pg/data/postmaster.pid")
psql() { "$pgbin/psql" -X -q -h "$pg" -p "$pgport" -U postgres "$@"; }
database() { psql -d postgres -c "CREATE DATABASE $1" >/dev/null; echo "postgres://postgres@localhost:$pgport/$1?host=$pg"; }

# `serve` on DIR with database URL; adds "--collector URL --collector-pid PID" to $targets.
serve() {
    TILLSYN_DATABASE_URL=$2 "$collector" --dir "$1" serve --listen 127.0.0.1:0 >"$1/stdout" 2>"$1/serve.log" &
    pid=$!
    pids="$pids $pid"
    for _ in $(seq 100); do
        line=$(head -1 "$1/stdout" 2>/dev/null || true)
        case "$line" in "listening on "*)
            targets="$targets --collector https://${line#listening on } --collector-pid $pid"
            return ;;
        esac
        sleep 0.1
    done
    echo "serve on $1 did not start; see $1/serve.log" >&2
    exit 1
}

case " $only " in *" compare "*)
    # 1. The same run shape on SQLite and on PostgreSQL: one full report per agent, then three
    #    deltas of five changed packages each, then the storm: a restart and a second full
    #    report per agent (of a host the collector knows).
    rm -rf "$out/sqlite" "$out/pg"
    "$loadgen" --serve "$out/sqlite" --agents "$agents" --deltas 3 --churn 5 --storm --json "$out/sqlite.json"
    url=$(database bench_compare)
    "$loadgen" --serve "$out/pg" --database "$url" --database-pid "$postmaster" \
        --agents "$agents" --deltas 3 --churn 5 --storm --json "$out/pg.json"
;; esac

case " $only " in *" many "*)
    # 2. Many agents on one SQLite collector: after every agent's first full report, the
    #    steady state at the real intervals (a report every 5 minutes, every 12th full, i.e.
    #    hourly) for one 5-minute cycle, then the reconnect storm.
    rm -rf "$out/many"
    "$loadgen" --serve "$out/many" --agents "$many" --deltas 0 --churn 5 \
        --steady-seconds "$steady" --delta-interval 300 --full-interval 3600 \
        --storm --storm-timeout 900 --json "$out/many.json"
;; esac

case " $only " in *" many-pg "*)
    # 2b. The same on one PostgreSQL collector (not in the default set: about 12 minutes).
    rm -rf "$out/many-pg"
    url=$(database bench_many)
    "$loadgen" --serve "$out/many-pg" --database "$url" --database-pid "$postmaster" \
        --agents "$many" --deltas 0 --churn 5 \
        --steady-seconds "$steady" --delta-interval 300 --full-interval 3600 \
        --storm --storm-timeout 900 --json "$out/many-pg.json"
;; esac

case " $only " in *" pair "*)
    # 3. Two collectors on one PostgreSQL database (copies of one state directory: the same
    #    CA and server certificate) against one, the same load through the same loadgen.
    for n in 1 2; do
        rm -rf "$out/pair$n-a" "$out/pair$n-b"
        url=$(database "bench_pair$n")
        TILLSYN_DATABASE_URL=$url "$collector" --dir "$out/pair$n-a" init >/dev/null
        targets=""
        serve "$out/pair$n-a" "$url"
        if [ "$n" = 2 ]; then
            mkdir -p "$out/pair$n-b"
            for f in "$out/pair$n-a"/*; do
                case "$(basename "$f")" in tillsyn.db*|stdout|serve.log) ;; *) cp -p "$f" "$out/pair$n-b/" ;; esac
            done
            serve "$out/pair$n-b" "$url"
        fi
        token=$(TILLSYN_DATABASE_URL=$url "$collector" --dir "$out/pair$n-a" token create --uses "$pair" --ttl 1d | tail -1)
        # shellcheck disable=SC2086
        "$loadgen" $targets --ca "$out/pair$n-a/ca.pem" --token "$token" --database-pid "$postmaster" \
            --agents "$pair" --deltas 3 --churn 5 --concurrency 32 --json "$out/pair$n.json"
        for pid in $pids; do kill -INT "$pid" 2>/dev/null || true; done
        for pid in $pids; do wait "$pid" 2>/dev/null || true; done
        pids=""
    done
;; esac

case " $only " in *" copy "*)
    # 4. The physical baseline: one stored full report's observation rows (taken from the
    #    comparison's database), written again by COPY FROM STDIN, one transaction per report,
    #    into a table like `observations` (same columns, primary key), 200 times.
    db=bench_compare
    mkdir -p "$out/copy"
    asset=$(psql -d $db -At -c "SELECT asset_id FROM observations GROUP BY asset_id ORDER BY count(*) DESC LIMIT 1")
    psql -d $db -c "DROP TABLE IF EXISTS copy_baseline; CREATE TABLE copy_baseline (LIKE observations INCLUDING ALL)"
    psql -d $db -c "\\copy (SELECT category, name, value_json, evidence_json, first_seen_at, changed_at FROM observations WHERE asset_id = '$asset') TO '$out/copy/report.tsv'"
    rows=$(wc -l <"$out/copy/report.tsv")
    # The rows with their asset id, prepared beforehand so the timing is COPY's alone.
    for i in $(seq 200); do sed "s/\$/	copy-$i/" "$out/copy/report.tsv" >"$out/copy/report-$i.tsv"; done
    : >"$out/copy/copy.sql"
    for i in $(seq 200); do
        # printf, not echo: dash's echo would read "\c" as the end of its output.
        printf '%s\n' "\\copy copy_baseline (category, name, value_json, evidence_json, first_seen_at, changed_at, asset_id) FROM '$out/copy/report-$i.tsv'" >>"$out/copy/copy.sql"
    done
    # The backend's CPU reaches the postmaster's cutime + cstime when it has ended.
    ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$postmaster/stat"; }
    before=$(ticks)
    start=$(date +%s.%N)
    psql -d $db -f "$out/copy/copy.sql" >/dev/null
    end=$(date +%s.%N)
    sleep 1
    after=$(ticks)
    count=$(psql -d $db -At -c "SELECT count(*) FROM copy_baseline")
    awk -v rows="$rows" -v count="$count" -v wall="$(echo "$end - $start" | bc)" -v cpu="$((after - before))" 'BEGIN {
        printf "COPY: %d rows per report, 200 reports (%d rows): %.3f s wall = %.2f ms per report; server CPU %.2f s = %.2f ms per report\n",
            rows, count, wall, wall * 1000 / 200, cpu / 100, cpu * 10 / 200 }' | tee "$out/copy.txt"
;; esac

echo "figures in $out"
