#!/usr/bin/env bash
# Soak benchmark (not a test): does memory stay flat under a steady load?
# Loopback only (127.0.0.210-214); nothing leaves 127.0.0.0/8.
#
#   bench/soak.sh
#
# The loopback registrar and proxy (built from this tree, started the way
# bench/run.sh starts them: registrar with its fsync'd journal and the
# proxy as trusted proxy, proxy challenging INVITEs with 407) carry for
# MINUTES minutes:
# - UAS registered UAs re-registering: sipp registers bench0000.. through
#   the proxy (REGISTER, 401, REGISTER with digest, 200; bench/sipp/register.xml)
#   at REG_RATE/s in turn, so every UA refreshes every UAS/REG_RATE seconds;
# - CALLS concurrent calls: sipp calls a sipp UAS through the proxy (INVITE,
#   407, ACK, INVITE with credentials, 180, 200, ACK, HOLD seconds, BYE,
#   200; bench/sipp/uac.xml, uas.xml) at CALLS/HOLD calls/s, at most CALLS
#   at a time.
# Every 10 s it samples each daemon's RSS and the server transactions it
# holds. At the end it prints sipp's successful/failed counts, the samples,
# and whether RSS was flat after WARMUP seconds: the highest RSS of the
# last half of the run is compared with the highest of the first half
# after warm-up (flat: at most 10 % + 2 MiB more), and the least-squares
# slope over the post-warm-up samples is printed.
#
# Environment (defaults): MINUTES (10), UAS (500), REG_RATE (25), CALLS
# (100), HOLD (10) seconds, WARMUP (120) seconds, LOG_LEVEL (warn).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-10}
UAS=${UAS:-500}
REG_RATE=${REG_RATE:-25}
CALLS=${CALLS:-100}
HOLD=${HOLD:-10}
WARMUP=${WARMUP:-120}
LOG_LEVEL=${LOG_LEVEL:-warn}

. bench/lib.sh
bench_require soak

# Addresses of the soak only (bench/run.sh uses .200-.206).
PROXY=127.0.0.210 REG=127.0.0.211 REGCLIENT=127.0.0.212 UASIP=127.0.0.213 UAC=127.0.0.214
SIP_PORT=5060 HTTP_PORT=8080 UAS_PORT=5070
bench_setup soak $PROXY:$SIP_PORT $REG:$SIP_PORT $REG:$HTTP_PORT $UASIP:$UAS_PORT

bench_build

bench_users soak "$UAS" 127.0.0.215 $UASIP:$UAS_PORT

# held URL [curl options]: the "transactions" of a status document.
held() { curl -sf "$@" | grep -o '"transactions": *[0-9]*' | grep -o '[0-9]*$' || echo "?"; }

bench_start_daemons soak "$work/data" -ctl ""

# The callee registers from the UAS's own ip:port, then the UAS takes it.
sipp $PROXY:$SIP_PORT -sf bench/sipp/register.xml -inf "$work/callee.csv" -auth_uri siplab.test \
  -i $UASIP -p $UAS_PORT -m 1 -nostdin -timeout 10s -timeout_error >/dev/null 2>&1 ||
  { echo "soak: the callee's registration failed"; exit 1; }
sipp -sf bench/sipp/uas.xml -i $UASIP -p $UAS_PORT -mp 16000 -nostdin >/dev/null 2>&1 &
pids+=($!)
sleep 0.5

secs=$((MINUTES * 60))
call_rate=$(awk -v c="$CALLS" -v h="$HOLD" 'BEGIN { printf "%.2f", c / h }')
reg_count=$((REG_RATE * secs))
call_count=$(awk -v r="$call_rate" -v s="$secs" 'BEGIN { printf "%d", r * s }')
echo "== soak: $MINUTES min, $UAS UAs re-registering at $REG_RATE/s (each every $((UAS / REG_RATE)) s) through the proxy," \
  "$CALLS concurrent calls ($call_rate/s, ${HOLD}s hold)"
echo "   $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(go env GOVERSION)," \
  "sipp $(sipp -v 2>/dev/null | awk '/SIPp v/ {print $2; exit}')"

start=$(date +%s)
# sipp's -timeout bounds each run (the scenario's own pace plus margin).
sipp $PROXY:$SIP_PORT -sf bench/sipp/register.xml -inf "$work/register.csv" -auth_uri siplab.test \
  -i $REGCLIENT -p 5060 -r "$REG_RATE" -m "$reg_count" -l $((REG_RATE * 4)) -recv_timeout 5000 \
  -timeout "$((secs + 60))s" -nostdin -trace_screen -screen_file "$work/register.screen" >/dev/null 2>&1 &
reg_sipp=$!
pids+=($reg_sipp)
sipp $PROXY:$SIP_PORT -sf bench/sipp/uac.xml -inf "$work/calls.csv" -auth_uri callee@siplab.test \
  -i $UAC -p 5060 -mp 16100 -r "$call_rate" -m "$call_count" -l "$CALLS" -d $((HOLD * 1000)) -recv_timeout 10000 \
  -timeout "$((secs + 60))s" -nostdin -trace_screen -screen_file "$work/calls.screen" >/dev/null 2>&1 &
call_sipp=$!
pids+=($call_sipp)

printf '%6s %14s %12s %14s %12s\n' "t (s)" "registrar RSS" "reg. tx held" "proxy RSS" "proxy tx held" | tee "$work/samples.txt"
while kill -0 $reg_sipp 2>/dev/null || kill -0 $call_sipp 2>/dev/null; do
  t=$(($(date +%s) - start))
  printf '%6d %10.1f MiB %12s %10.1f MiB %12s\n' "$t" "$(awk -v k="$(rss_kb $REG_PID)" 'BEGIN { print k / 1024 }')" \
    "$(held http://$REG:$HTTP_PORT/v1/status)" "$(awk -v k="$(rss_kb $PROXY_PID)" 'BEGIN { print k / 1024 }')" \
    "$(held http://ctl/status --unix-socket "$work/proxy.sock")" | tee -a "$work/samples.txt"
  echo "$t $(rss_kb $REG_PID) $(rss_kb $PROXY_PID)" >>"$work/rss.dat"
  sleep 10
done
wait $reg_sipp 2>/dev/null || true
wait $call_sipp 2>/dev/null || true
elapsed=$(($(date +%s) - start))

reg_ok=$(screen_value "$work/register.screen" "Successful call")
reg_failed=$(screen_value "$work/register.screen" "Failed call")
call_ok=$(screen_value "$work/calls.screen" "Successful call")
call_failed=$(screen_value "$work/calls.screen" "Failed call")

# flat DAT COLUMN: post-warm-up first-half max, second-half max, slope.
flat() {
  awk -v w="$WARMUP" -v c="$2" -v e="$elapsed" '
    $1 >= w { n++; x = $1; y = $c / 1024; sx += x; sy += y; sxx += x * x; sxy += x * y
              if ($1 < w + (e - w) / 2) { if (y > a) a = y } else { if (y > b) b = y } }
    END {
      slope = (n > 1 && n * sxx - sx * sx != 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60 : 0
      verdict = (n >= 4 && b <= a * 1.10 + 2) ? "flat" : "NOT flat"
      printf "%s: max %.1f MiB in the first half after warm-up, %.1f MiB in the second; slope %+.2f MiB/min", verdict, a, b, slope
    }' "$1"
}
echo
echo "== summary (${elapsed}s, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
echo "  registrations: ${reg_ok:-?} ok, ${reg_failed:-?} failed (asked $reg_count)"
echo "  calls:         ${call_ok:-?} ok, ${call_failed:-?} failed (asked $call_count)"
echo "  registrar RSS $(flat "$work/rss.dat" 2)"
echo "  proxy RSS     $(flat "$work/rss.dat" 3)"
# grep -c exits 1 when nothing matched: that is the good case.
warnings=$( (grep -c 'level=ERROR\|level=WARN' "$work/registrar.log" "$work/proxy.log" || true) | sed 's#.*/##' | paste -sd' ' -)
echo "  warning/error lines logged: $warnings"
if [ "${reg_failed:-1}" != 0 ] || [ "${call_failed:-1}" != 0 ]; then
  echo "  FAILURES: see the sipp screens (kept in $work.keep)"
  cp -r "$work" "$work.keep"
  exit 1
fi
