#!/usr/bin/env bash
# A one-host Ceph radosgw for pagevault's real-S3 test tier (`npm run test:rgw`).
#
#   scripts/rgw.sh up       install Debian's ceph packages if missing, start mon + one memstore OSD + radosgw on
#                           127.0.0.1, create an S3 user, write $DIR/env (PAGEVAULT_RGW_ENDPOINT/ACCESS_KEY/SECRET_KEY)
#   scripts/rgw.sh down     stop the daemons this script started (by their pid files) and remove $DIR
#   scripts/rgw.sh test     up, run the rgw test tier with $DIR/env exported, down (keeps the tests' exit code)
#   scripts/rgw.sh status   which daemons run, their memory, whether radosgw answers
#
# DIR is PAGEVAULT_RGW_DIR (default /tmp/pagevault-rgw). PAGEVAULT_RGW_MEMSTORE_MIB sizes the in-memory OSD
# (default 4096; memory is only taken as objects are written, the OSD's RSS grows ~1.6x the bytes stored, and
# deleted data is given back by radosgw's garbage collection within ~2 minutes), PAGEVAULT_RGW_TIMEOUT bounds each
# wait (seconds).
# Runs as root (apt-get, daemons); the daemons are detached and recorded in $DIR/pid/, logs go to $DIR/log/.
set -euo pipefail

DIR=${PAGEVAULT_RGW_DIR:-/tmp/pagevault-rgw}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEMSTORE_MIB=${PAGEVAULT_RGW_MEMSTORE_MIB:-4096}
TIMEOUT=${PAGEVAULT_RGW_TIMEOUT:-120}
CONF=$DIR/ceph.conf
DAEMONS=(mon.a osd.0 client.rgw) # in start order
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
COMMANDS=(ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool)

log() { echo "rgw.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
elapsed() { echo "$((SECONDS - ${1}))s"; }

# ---------------------------------------------------------------------------------------------------------------------
# processes

pid_of() { # the recorded pid of a daemon, if that process still runs this daemon's program
  local file=$DIR/pid/$1.pid pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "-c $CONF" || return 1
  echo "$pid"
}

log_tail() {
  local name=$1 f
  if grep -q -- ' -1 ' "$DIR/log/$name.log" 2>/dev/null; then
    echo "---- first errors in $DIR/log/$name.log" >&2
    grep -m 10 -- ' -1 ' "$DIR/log/$name.log" >&2
  fi
  for f in "$DIR/log/$name.log" "$DIR/log/$name.out"; do
    [[ -s $f ]] || continue
    echo "---- last lines of $f" >&2
    tail -n 40 "$f" >&2
  done
}

fail_daemon() {
  log_tail "$1"
  die "$2"
}

start_daemon() { # name, then the command: run in its own session, detached, pid recorded
  local name=$1
  shift
  setsid "$@" -f -c "$CONF" </dev/null >"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/pid/$name.pid"
  disown $! # no "Killed" notice from this shell when `test` stops them
}

# wait_for NAME WHAT COMMAND...: poll COMMAND until it succeeds; fail early if the daemon died, or after TIMEOUT
wait_for() {
  local name=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    pid_of "$name" >/dev/null || fail_daemon "$name" "$name exited while waiting for $what"
    ((SECONDS - start < TIMEOUT)) || fail_daemon "$name" "$what: not within ${TIMEOUT}s"
    sleep 0.3
  done
  log "$what ($(elapsed "$start"))"
}

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 10 "$@"; }

osd_up() { [[ $(ceph_cli osd dump -f json) == *'"osd":0,"uuid":'*'"up":1'* ]]; }

http_ok() { # radosgw answers (an anonymous ListBuckets is 200)
  local url=$1
  if command -v curl >/dev/null; then
    curl -sf -o /dev/null --max-time 5 "$url"
  else
    node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) })
      .then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$url"
  fi
}

free_ports() { # N distinct free TCP ports on 127.0.0.1
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]);
    const servers = Array.from({ length: n }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", ok)))).then(() => {
      console.log(servers.map((s) => s.address().port).join(" "));
      servers.forEach((s) => s.close());
    });' "$1"
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

endpoint() { sed -n 's/^PAGEVAULT_RGW_ENDPOINT=//p' "$DIR/env" 2>/dev/null; }

is_up() {
  local d
  [[ -s $DIR/env ]] || return 1
  for d in "${DAEMONS[@]}"; do pid_of "$d" >/dev/null || return 1; done
  http_ok "$(endpoint)"
}

# ---------------------------------------------------------------------------------------------------------------------
# install

install_ceph() {
  local c missing=()
  for c in "${COMMANDS[@]}"; do command -v "$c" >/dev/null || missing+=("$c"); done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; installing Debian's ${PACKAGES[*]} needs root"
  local start=$SECONDS
  log "installing ${PACKAGES[*]} (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=300 >"$DIR.apt.log" 2>&1 || {
    tail -n 20 "$DIR.apt.log" >&2
    die "apt-get update failed"
  }
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${PACKAGES[@]}" \
    >>"$DIR.apt.log" 2>&1 || {
    tail -n 20 "$DIR.apt.log" >&2
    die "apt-get install ${PACKAGES[*]} failed"
  }
  rm -f "$DIR.apt.log"
  for c in "${COMMANDS[@]}"; do command -v "$c" >/dev/null || die "$c is still missing after installing"; done
  log "installed $(dpkg-query -W -f '${Version}' radosgw) ($(elapsed "$start"))"
}

# ---------------------------------------------------------------------------------------------------------------------
# subcommands

write_conf() { # mon_v2 mon_v1 rgw_port fsid
  cat >"$CONF" <<EOF
[global]
fsid = $4
mon host = [v2:127.0.0.1:$1,v1:127.0.0.1:$2]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw is a daemon of type client, whose mon connection defaults to "secure" mode only: auth none has no secure
# mode, so without this radosgw never authenticates (get_initial_auth_request returned -13)
ms mon client mode = crc
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
mon data = $DIR/\$name
osd data = $DIR/\$name
osd objectstore = memstore
memstore device bytes = $((MEMSTORE_MIB * 1024 * 1024))
osd crush update on start = false
osd crush chooseleaf type = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
# the mon batches map changes once a second by default; radosgw creates its pools one after another
paxos propose interval = 0.05
paxos min wait = 0.01

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$3
rgw thread pool size = 64
rgw enable usage log = false
# deleted and overwritten objects' tails go to garbage collection: reclaim memstore memory within minutes
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
}

cmd_up() {
  if is_up; then
    log "already up at $(endpoint) (env: $DIR/env)"
    return 0
  fi
  if [[ -e $DIR ]]; then
    log "$DIR exists but radosgw is not up: tearing it down first"
    cmd_down
  fi
  local start=$SECONDS t
  mkdir -p "$(dirname "$DIR")"
  install_ceph
  mkdir -p "$DIR"/{pid,log,run,crash,mon.a,osd.0}

  local ports fsid
  read -r -a ports <<<"$(free_ports 3)"
  fsid=$(</proc/sys/kernel/random/uuid)
  write_conf "${ports[0]}" "${ports[1]}" "${ports[2]}" "$fsid"

  t=$SECONDS
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:${ports[0]},v1:127.0.0.1:${ports[1]}]" \
    "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/keyring" >"$DIR/log/mon.a.out" 2>&1 ||
    fail_daemon mon.a "ceph-mon --mkfs failed"
  start_daemon mon.a ceph-mon -i a
  wait_for mon.a "mon up" ceph_cli mon stat

  local uuid id
  uuid=$(</proc/sys/kernel/random/uuid)
  id=$(ceph_cli osd new "$uuid") || die "ceph osd new failed"
  [[ $id == 0 ]] || die "expected osd id 0, got '$id'"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >"$DIR/log/osd.0.out" 2>&1 ||
    fail_daemon osd.0 "ceph-osd --mkfs failed"
  ceph_cli osd crush add osd.0 1.0 root=default host=localhost >/dev/null 2>&1 ||
    die "ceph osd crush add failed"
  start_daemon osd.0 ceph-osd -i 0
  # radosgw waits for the OSD by itself and creates its pools: start it now, wait for both
  start_daemon client.rgw radosgw -n client.rgw
  wait_for osd.0 "osd up" osd_up

  local url=http://127.0.0.1:${ports[2]}
  wait_for client.rgw "radosgw answers at $url" http_ok "$url"

  local access secret
  access=$(random_hex 10 | tr a-f A-F)
  secret=$(random_hex 20)
  timeout "$TIMEOUT" radosgw-admin -c "$CONF" -n client.admin user create --uid=pagevault --display-name=pagevault \
    --access-key="$access" --secret-key="$secret" >"$DIR/log/user-create.out" 2>&1 || {
    tail -n 20 "$DIR/log/user-create.out" >&2
    die "radosgw-admin user create failed"
  }
  printf 'PAGEVAULT_RGW_ENDPOINT=%s\nPAGEVAULT_RGW_ACCESS_KEY=%s\nPAGEVAULT_RGW_SECRET_KEY=%s\n' \
    "$url" "$access" "$secret" >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  log "up at $url in $(elapsed "$start") (cluster $(elapsed "$t")); env: $DIR/env"
}

running() { # the process exists and is not a zombie (orphaned daemons are reaped by PID 1, which may be slow)
  local state
  [[ -r /proc/$1/stat ]] || return 1
  read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null || return 1
  [[ $state != Z ]]
}

stop_pids() { # SIGTERM, 2 s of grace (the data is thrown away), then SIGKILL; waits until they are gone
  local i pid alive=()
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; ; i++)); do
    alive=()
    for pid in "$@"; do running "$pid" && alive+=("$pid"); done
    ((${#alive[@]})) || return 0
    if ((i == 20)); then
      log "killing ${alive[*]}: not stopped 2s after SIGTERM"
      kill -KILL "${alive[@]}" 2>/dev/null || true
    fi
    ((i < 150)) || die "pids ${alive[*]} survived SIGKILL"
    sleep 0.1
  done
}

cmd_down() {
  [[ -d $DIR ]] || {
    log "nothing at $DIR"
    return 0
  }
  local start=$SECONDS d pid clients=() mon=() n=0
  # radosgw and the OSD first, while the mon can still acknowledge the OSD's going down (without it the OSD waits
  # 5 s for an answer). radosgw takes ~5 s on SIGTERM (its background threads sleep), so it is usually killed.
  for d in client.rgw osd.0; do pid=$(pid_of "$d") && clients+=("$pid"); done
  pid=$(pid_of mon.a) && mon+=("$pid")
  stop_pids "${clients[@]}"
  stop_pids "${mon[@]}"
  n=$((${#clients[@]} + ${#mon[@]}))
  rm -rf "$DIR"
  log "down: stopped $n daemon(s), removed $DIR ($(elapsed "$start"))"
}

cmd_status() {
  local d pid rss total=0 up=1
  if [[ ! -d $DIR ]]; then
    echo "down (no $DIR)"
    return 3
  fi
  for d in "${DAEMONS[@]}"; do
    if pid=$(pid_of "$d"); then
      rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
      total=$((total + rss))
      printf '%-11s pid %-8s rss %6d MiB\n' "$d" "$pid" $((rss / 1024))
    else
      printf '%-11s not running\n' "$d"
      up=0
    fi
  done
  printf '%-11s %6d MiB\n' total $((total / 1024))
  if [[ -s $DIR/env ]] && http_ok "$(endpoint)"; then
    echo "radosgw answers at $(endpoint) (env: $DIR/env)"
  else
    echo "radosgw does not answer"
    up=0
  fi
  ((up)) || return 3
}

cmd_test() {
  trap 'cmd_down || true' EXIT
  cmd_up
  set -a
  # shellcheck disable=SC1091
  . "$DIR/env"
  set +a
  local status=0
  PAGEVAULT_TEST_TIER=rgw node "$ROOT/scripts/run-tests.mjs" "$@" || status=$?
  exit "$status"
}

case ${1:-} in
up | down | status)
  "cmd_$1"
  ;;
test)
  shift
  cmd_test "$@"
  ;;
*)
  echo "usage: $0 up|down|test [test filters...]|status" >&2
  exit 2
  ;;
esac
