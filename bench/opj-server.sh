#!/usr/bin/env bash
# Runs OpenJPEG's JPIP server (Debian libopenjpip-server: opj_server, a
# FastCGI program) behind lighttpd on 127.0.0.1, probes it with every
# conformance fixture, then runs `jpip-bench conform --profile full` against
# it. Not part of the tests or CI: run it by hand (as root, for apt-get).
#
#   bash bench/opj-server.sh [OUTDIR]        (default /tmp/jpip-opj-server)
#
# What it needs is installed with apt-get when missing: libopenjpip-server,
# lighttpd, spawn-fcgi. Without root or apt-get it says so and exits 0.
# Everything listens on 127.0.0.1 only; every wait is bounded; every process
# it starts is stopped by its PID at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${1:-/tmp/jpip-opj-server}
FCGI_PORT=${FCGI_PORT:-3917}
HTTP_PORT=${HTTP_PORT:-8917}
DEADLINE=$(( $(date +%s) + ${MAX_SECONDS:-900} ))

skip() { echo "opj-server: $*; skipping"; exit 0; }

need=()
command -v opj_server >/dev/null 2>&1 || need+=(libopenjpip-server)
command -v lighttpd >/dev/null 2>&1 || need+=(lighttpd)
command -v spawn-fcgi >/dev/null 2>&1 || need+=(spawn-fcgi)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || skip "${need[*]} missing and not root"
  command -v apt-get >/dev/null 2>&1 || skip "${need[*]} missing and no apt-get"
  echo "== apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || skip "apt-get install failed"
fi
dpkg-query -W libopenjpip-server 2>/dev/null | sed 's/^/package: /'

rm -rf "$OUT" && mkdir -p "$OUT/images"
# The conformance fixtures, plus the one file opj_compress -jpip made (its index boxes are zero-filled).
cp -r test/fixtures/. "$OUT/images/"

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [ -f "$OUT/lighttpd.pid" ] && kill "$(cat "$OUT/lighttpd.pid")" 2>/dev/null
  [ -f "$OUT/opj.pid" ] && kill -9 "$(cat "$OUT/opj.pid")" 2>/dev/null
  return 0
}
trap cleanup EXIT

# opj_server in a restart loop: it exits on some requests, and the run should see what it does next.
(
  while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    spawn-fcgi -n -a 127.0.0.1 -p "$FCGI_PORT" -d "$OUT/images" -- /usr/bin/opj_server >>"$OUT/opj_server.log" 2>&1 &
    echo $! >"$OUT/opj.pid"
    wait $!
    echo "$(date +%T) opj_server exited with status $?" >>"$OUT/restarts.log"
    sleep 0.2
  done
) &
PIDS+=($!)

cat >"$OUT/lighttpd.conf" <<EOF
server.modules = ( "mod_fastcgi" )
server.bind = "127.0.0.1"
server.port = $HTTP_PORT
server.document-root = "$OUT/images"
server.pid-file = "$OUT/lighttpd.pid"
server.errorlog = "$OUT/lighttpd-error.log"
fastcgi.server = ( "/openjpip" => (( "host" => "127.0.0.1", "port" => $FCGI_PORT, "check-local" => "disable", "disable-time" => 0 )) )
EOF
lighttpd -f "$OUT/lighttpd.conf" || skip "lighttpd did not start"
for _ in $(seq 50); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$HTTP_PORT/" && break; sleep 0.1; done
URL="http://127.0.0.1:$HTTP_PORT/openjpip"
echo "== opj_server at $URL (targets named with target=, as OpenJPIP expects)"

# 1. What it does with each kind of file (the -jpip one last: opj_server spins on it).
probe() {
  local q=$1
  local line
  line=$(curl -s -o "$OUT/probe.bin" -w '%{http_code} %{size_download} bytes %{content_type}' --max-time 5 "$URL?$q" 2>/dev/null) || line="no answer within 5 s (curl $?)"
  printf '%-75s %s\n' "$q" "$line" | tee -a "$OUT/probes.txt"
}
for f in "movie/frames/frame%20000.jp2" rgb200x150-t64-rpcl-plt-tpr.jp2 g128-default-jp2.jp2 g97x61-odd-t32-rpcl.j2k movie/movie.jpx movie/linked.jpx README.md no-such-file.jp2; do
  probe "target=$f&cnew=http&fsiz=64,64&len=2000"
  sleep 0.3
done
probe "fsiz=64,64&len=2000"
probe "target=g64-jpip-rpcl.jp2&cnew=http&fsiz=64,64&len=2000"
if [ -f "$OUT/opj.pid" ]; then
  pid=$(cat "$OUT/opj.pid")
  cpu=$(ps -o %cpu= -p "$pid" 2>/dev/null | tr -d ' ')
  echo "opj_server (pid $pid) after the -jpip file: ${cpu:-gone}% CPU" | tee -a "$OUT/probes.txt"
  kill -9 "$pid" 2>/dev/null
fi
sleep 0.5

# 2. The conformance suite, every check.
echo "== jpip-bench conform --profile full"
node --import tsx bench/opj-conform.ts "$URL" "$OUT" --target-style query --profile full --timeout 3000 --pause 1200 | tee "$OUT/conform.txt"
echo "== restarts of opj_server: $(wc -l <"$OUT/restarts.log" 2>/dev/null || echo 0)"
echo "reports in $OUT (conform.json, conform.xml, conform.md, probes.txt)"
