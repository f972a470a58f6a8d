#!/bin/sh
# HTTP caching conformance (http-tests/cache-tests, from npm as
# http-cache-tests) against `bugpack proxy --mode rfc` and against squid
# from Debian's packages, both as forward proxies with a memory cache, and
# the scores side by side. A benchmark, not a CI gate: it installs what it
# needs (squid, Node.js and npm with apt-get; the suite with npm) and
# leaves nothing running. Run: benches/cache-tests/run.sh (with
# CACHE_TESTS_RESULTS=DIR, the raw results are kept there).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/bugpack-cache-tests.XXXXXX)
chmod 0777 "$work"  # squid drops to its own user and writes its log here
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "installing $2 (apt-get)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null
    }
}
need squid squid
need node nodejs
need npm npm

echo "installing http-cache-tests@0.4.5 (npm)" >&2
npm install --silent --no-audit --no-fund --prefix "$work" http-cache-tests@0.4.5 >/dev/null
suite=$work/node_modules/http-cache-tests

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bugpack=$root/target/release/bugpack

origin=18000 rfc=18001 squidport=18002
(cd "$suite" && npm_config_protocol=http npm_config_port=$origin \
    npm_config_pidfile="$work/server.pid" exec node server/server.mjs) >"$work/server.log" 2>&1 &
pids="$pids $!"
"$bugpack" -q proxy --mode rfc --listen 127.0.0.1:$rfc --log "$work/rfc.log" 2>"$work/rfc.err" &
pids="$pids $!"
cat >"$work/squid.conf" <<CONF
http_port 127.0.0.1:$squidport
http_access allow all
cache_mem 64 MB
maximum_object_size_in_memory 8 MB
access_log none
cache_store_log none
cache_log $work/squid-cache.log
pid_filename none
coredump_dir $work
shutdown_lifetime 0 seconds
workers 1
CONF
squid -N -f "$work/squid.conf" >/dev/null 2>&1 &
pids="$pids $!"

for port in $origin $rfc $squidport; do
    tries=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do
        tries=$((tries + 1))
        [ $tries -lt 150 ] || { echo "nothing listens on port $port" >&2; exit 1; }
        sleep 0.1
    done
done

run() {
    (cd "$suite" && CACHE_TESTS_PROXY=http://127.0.0.1:$2 npm_config_base=http://127.0.0.1:$origin \
        npm_config_id= npm_package_config_id= node --no-warnings -r "$here/via-proxy.cjs" cli.mjs) >"$work/$1.json"
}
start=$(date +%s)
run rfc $rfc
run squid $squidport
echo "ran the suite twice in $(( $(date +%s) - start )) s" >&2
if [ -n "${CACHE_TESTS_RESULTS:-}" ]; then
    mkdir -p "$CACHE_TESTS_RESULTS" && cp "$work/rfc.json" "$work/squid.json" "$CACHE_TESTS_RESULTS/"
fi
node "$here/score.mjs" "$suite" "bugpack-rfc=$work/rfc.json" "squid=$work/squid.json"
