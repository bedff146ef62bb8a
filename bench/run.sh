#!/usr/bin/env bash
# Throughput and memory figures for the platform daemons, measured with sipp
# on loopback (nothing leaves 127.0.0.0/8). Not a test: it prints figures.
#
#   bench/run.sh [all|memory|register|calls]
#
# - memory:   idle RSS of registrar, proxy and one registered uaclient;
# - register: authenticated registrations/s straight at the registrar
#             (REGISTER, 401, REGISTER with digest, 200; bench/sipp/register.xml);
# - calls:    calls/s through the proxy (INVITE, 407, ACK, INVITE with
#             Proxy-Authorization, 100, 180, 200, ACK, BYE, 200; no hold time)
#             from sipp (bench/sipp/uac.xml) to a sipp UAS registered as a user
#             (bench/sipp/uas.xml, which copies Record-Route so ACK and BYE
#             are loose-routed through the proxy).
#
# Each phase starts fresh daemons (built from this tree), so one phase's
# garbage does not slow the next. The rate is raised step by step (x STEP)
# until sipp reports a failed call or cannot reach the rate asked; when the
# first rate already fails it is halved until a run has no failures. The
# figure is the highest rate measured with zero failed calls. Every step runs
# DURATION seconds and every sipp run is bounded by -timeout, so the script
# stops by itself (a few minutes for "all").
#
# Environment (defaults): REG_RATE (1000) and CALL_RATE (300) first rates
# tried, per second; STEP (1.5); MAX_STEPS (8) per phase; DURATION (8)
# seconds per step; USERS (1000) provisioned users; LOG_LEVEL (warn) of the
# daemons; DATA (disk) "disk" = the registrar's fsync'd journal as deployed,
# "memory" = -data ""; AFTER_WAIT (40) seconds of idle before the after-load
# RSS (an answered INVITE's client transaction lives 64*T1 = 32 s).
#
# Reference on the 2-core machine: Kamailio does 8,000 stateful calls/s and
# 20,000 authenticated registrations/s.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
REG_RATE=${REG_RATE:-1000}
CALL_RATE=${CALL_RATE:-300}
STEP=${STEP:-1.5}
MAX_STEPS=${MAX_STEPS:-8}
DURATION=${DURATION:-8}
USERS=${USERS:-1000}
LOG_LEVEL=${LOG_LEVEL:-warn}
DATA=${DATA:-disk}
AFTER_WAIT=${AFTER_WAIT:-40}
case $what in all | memory | register | calls) ;; *)
  echo "usage: bench/run.sh [all|memory|register|calls]" >&2
  exit 2
  ;;
esac

. bench/lib.sh
bench_require bench

# Addresses of the bench only (the interop tests use 127.0.0.101-127).
PROXY=127.0.0.200 REG=127.0.0.201 REGCLIENT=127.0.0.202 UAS=127.0.0.203 UAC=127.0.0.204 PHONE=127.0.0.205
SIP_PORT=5060 HTTP_PORT=8080 UAS_PORT=5070

bench_setup bench $PROXY:$SIP_PORT $REG:$SIP_PORT $REG:$HTTP_PORT $UAS:$UAS_PORT

# The phone only for the memory phase: the other phases do not need it.
bench_build

# Users: bench0000.. each with its own password, the callee and a phone.
bench_users bench "$USERS" 127.0.0.206 $UAS:$UAS_PORT memphone memphone-pw

rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
# CPU seconds (user+system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# udp_drops IP:PORT: datagrams the kernel dropped because the socket's
# receive buffer was full (ss skmem "d"): the daemon did not read fast enough.
udp_drops() { ss -Huanm "src $1" 2>/dev/null | grep -o 'd[0-9]*)' | tr -d 'd)' | head -1; }

start_daemons() {
  local datadir="$work/data.$RANDOM"
  [ "$DATA" = memory ] && datadir=""
  bench_start_daemons bench "$datadir"
}

stop_daemons() {
  kill $REG_PID $PROXY_PID 2>/dev/null || true
  wait $REG_PID $PROXY_PID 2>/dev/null || true
}

summary=()

memory() {
  echo "== idle memory (RSS)"
  CGO_ENABLED=0 go build -trimpath -o "$work/" ./cmd/uaclient
  start_daemons
  sleep 1
  local r p
  r="registrar $(rss $REG_PID)"
  p="proxy $(rss $PROXY_PID)"
  # A phone: registered through the proxy, no call.
  "$work/uaclient" run -name memphone -password memphone-pw -domain siplab.test \
    -proxy $PROXY:$SIP_PORT -sip $PHONE:5060 -ctl "$work/memphone.sock" -log-level error &
  local phone=$! i
  pids+=($phone)
  for i in $(seq 1 50); do # until its control socket exists
    "$work/uaclient" wait -ctl "$work/memphone.sock" -timeout 10s registered >/dev/null 2>&1 && break
    sleep 0.1
  done
  [ "$i" -lt 50 ] || { echo "bench: the uaclient did not register"; exit 1; }
  sleep 1
  local u="uaclient $(rss $phone)"
  kill $phone
  wait $phone 2>/dev/null || true
  stop_daemons
  echo "  $r, $p, $u"
  summary+=("idle RSS at start: $r, $p, $u (one registered phone, no call)")
}


# ramp NAME PID IP:PORT RATE SIPP-ARGS...: runs sipp at changing rates, one
# line per step; sets best_line (highest measured rate with zero failed
# calls), clean_line (the same with zero retransmissions too) and peak_kb
# (the daemon's highest RSS seen after a step).
ramp() {
  local name=$1 target=$2 addr=$3 rate=$4
  shift 4
  local step=0 down=0 screen count tout ok failed secs got retr c0 c1 cpu_daemon cpu_sipp d0 d1 kb pass
  local best=0 clean=0
  best_line="" clean_line="" peak_kb=0
  while [ $step -lt "$MAX_STEPS" ] && [ "$rate" -ge 10 ]; do
    step=$((step + 1))
    count=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN { printf "%d", r * d }')
    tout=$((DURATION * 3 + 20))
    screen="$work/$name-$rate.screen"
    c0=$(cpu "$target")
    d0=$(udp_drops "$addr")
    # times: CPU used by sipp itself, to tell a saturated sipp from a
    # saturated daemon (both share the cores).
    cpu_sipp=$( (sipp "$@" -r "$rate" -rp 1000 -m "$count" -l $((rate * 2 + 100)) -recv_timeout 5000 \
      -timeout "${tout}s" -timeout_error -nostdin -trace_screen -screen_file "$screen" >/dev/null 2>&1 || true
      times) | awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    c1=$(cpu "$target")
    d1=$(udp_drops "$addr")
    kb=$(rss_kb "$target")
    [ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
    ok=$(screen_value "$screen" "Successful call")
    failed=$(screen_value "$screen" "Failed call")
    secs=$(elapsed "$screen")
    if [ -z "$ok" ] || [ -z "$secs" ]; then
      echo "  asked $rate/s: sipp printed no statistics"
      break
    fi
    got=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
    retr=$(retransmissions "$screen")
    cpu_daemon=$(awk -v a="$c0" -v b="$c1" -v s="$secs" 'BEGIN { printf "%.2f", (s > 0 ? (b - a) / s : 0) }')
    cpu_sipp=$(awk -v c="$cpu_sipp" -v s="$secs" 'BEGIN { printf "%.2f", (s > 0 ? c / s : 0) }')
    echo "  asked $rate/s: $ok ok, $failed failed in ${secs}s = $got/s, $retr retransmissions," \
      "$((${d1:-0} - ${d0:-0})) UDP drops at the $name; CPU: $name $cpu_daemon cores, sipp $cpu_sipp; $name RSS $((kb / 1024)) MiB"
    pass=0
    [ "$failed" = 0 ] && [ "$ok" -ge "$count" ] && pass=1
    if [ $pass = 1 ] && [ "$got" -gt "$best" ]; then
      best=$got
      best_line="$got/s ($count in ${secs}s asked at $rate/s, 0 failed, $retr retransmissions; CPU $name $cpu_daemon cores, sipp $cpu_sipp)"
    fi
    # Also the highest rate that needed no retransmission at all: less
    # sensitive to what else the machine is doing.
    if [ $pass = 1 ] && [ "$retr" = 0 ] && [ "$got" -gt "$clean" ]; then
      clean=$got
      clean_line="$got/s"
    fi
    if [ $pass = 0 ]; then
      # Failures on the first rate tried: halve until a run passes.
      [ "$best" = 0 ] || break
      down=1
      rate=$((rate / 2))
      continue
    fi
    # Stepping down found a passing rate, or sipp could not keep up with
    # the rate asked (the system is saturated): done.
    [ $down = 1 ] && break
    [ "$got" -lt $((rate * 85 / 100)) ] && break
    rate=$(awk -v r="$rate" -v f="$STEP" 'BEGIN { printf "%d", r * f }')
  done
}

register() {
  echo "== authenticated registrations/s at the registrar ($REG), users $USERS, data $DATA"
  start_daemons
  ramp registrar $REG_PID $REG:$SIP_PORT "$REG_RATE" $REG:$SIP_PORT -sf bench/sipp/register.xml \
    -inf "$work/register.csv" -auth_uri siplab.test -i $REGCLIENT -p 5060
  summary+=("authenticated registrations/s (registrar, zero failed): ${best_line:-none without failures}; with no retransmission either: ${clean_line:-none}")
  echo "  (idle ${AFTER_WAIT}s)"
  sleep "$AFTER_WAIT"
  summary+=("registrar RSS: peak $((peak_kb / 1024)) MiB after a step, $(rss $REG_PID) ${AFTER_WAIT}s after the runs")
  stop_daemons
}

calls() {
  echo "== calls/s through the proxy ($PROXY) to a sipp UAS"
  start_daemons
  # The callee registers from the UAS's own ip:port (the proxy sends calls
  # where the REGISTER came from), then the UAS takes that socket.
  sipp $PROXY:$SIP_PORT -sf bench/sipp/register.xml -inf "$work/callee.csv" -auth_uri siplab.test \
    -i $UAS -p $UAS_PORT -m 1 -nostdin -timeout 10s -timeout_error >/dev/null 2>&1 ||
    { echo "bench: the callee's registration failed"; exit 1; }
  sipp -sf bench/sipp/uas.xml -i $UAS -p $UAS_PORT -mp 16000 -nostdin >/dev/null 2>&1 &
  local uas=$!
  pids+=($uas)
  sleep 0.5
  ramp proxy $PROXY_PID $PROXY:$SIP_PORT "$CALL_RATE" $PROXY:$SIP_PORT -sf bench/sipp/uac.xml \
    -inf "$work/calls.csv" -auth_uri callee@siplab.test -i $UAC -p 5060 -mp 16100
  kill $uas 2>/dev/null || true
  wait $uas 2>/dev/null || true
  summary+=("calls/s through the proxy (zero failed): ${best_line:-none without failures}; with no retransmission either: ${clean_line:-none}")
  local tw
  tw=$(ss -Htan state time-wait "dst $REG:$HTTP_PORT" | wc -l)
  echo "  (idle ${AFTER_WAIT}s)"
  sleep "$AFTER_WAIT"
  summary+=("proxy RSS: peak $((peak_kb / 1024)) MiB after a step, $(rss $PROXY_PID) ${AFTER_WAIT}s after the runs; registrar $(rss $REG_PID) (location lookups)")
  summary+=("location API (HTTP) connections left in TIME-WAIT by the proxy's lookups: $tw")
  stop_daemons
}

case $what in
  memory) memory ;;
  register) register ;;
  calls) calls ;;
  all)
    memory
    register
    calls
    ;;
esac

echo
echo "== summary ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), sipp $(sipp -v 2>/dev/null | awk '/SIPp v/ {print $2; exit}'), $(go env GOVERSION), daemons' log level $LOG_LEVEL, registrar data $DATA)"
for s in "${summary[@]}"; do echo "  $s"; done
echo "  Kamailio, measured beside siplab in the same run: bench/sidebyside.sh"
