#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for trying `dre_survey --executor slurm`
# and for the tests: Debian's slurm-wlm and munge, slurmctld and slurmd run as root with no
# systemd, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, no accounting database.
#
#   scripts/slurm-local.sh start    install (apt) if needed, configure, start; waits until the
#                                   node takes jobs (a few seconds)
#   scripts/slurm-local.sh stop     stop the daemons this script started
#   scripts/slurm-local.sh status   say whether the cluster is up
#
# It writes /etc/slurm/slurm.conf (refusing to replace one it did not write) and keeps its
# state in /var/lib/slurm-local and /run/slurm-local. Needs root (or sudo).
set -euo pipefail

STATE=/var/lib/slurm-local
RUN=/run/slurm-local
CONF=/etc/slurm/slurm.conf
MARK="# written by DRE's scripts/slurm-local.sh"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

install() {
  local need=0
  for p in slurm-wlm munge; do dpkg -s "$p" >/dev/null 2>&1 || need=1; done
  if [ "$need" = 1 ]; then
    say "installing slurm-wlm and munge (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: not replacing it"
  fi
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  # RealMemory in MiB, a little under the machine's so that the node is never drained.
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  $SUDO mkdir -p "$STATE/ctld" "$STATE/d" "$RUN" /var/log/slurm-local
  $SUDO tee "$CONF" >/dev/null <<EOF
$MARK
ClusterName=dre-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Schedule every second (default: every minute, backfill every 30 s): array tasks of a
# small test follow each other at once.
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=/var/log/slurm-local/slurmctld.log
SlurmdLogFile=/var/log/slurm-local/slurmd.log
# Finished jobs stay visible to squeue (--states=all) for 10 minutes: how dre_survey tells
# a cancelled array task from one still running, without an accounting database.
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return # a munged already answers
  fi
  $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    $SUDO mungekey --create --force >/dev/null 2>&1 \
      || $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  $SUDO chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
  $SUDO chmod 0700 /etc/munge
  $SUDO chmod 0400 /etc/munge/munge.key
  $SUDO chmod 0755 /run/munge
  $SUDO runuser -u munge -- /usr/sbin/munged
  $SUDO touch "$RUN/started-munge"
  for _ in $(seq 50); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "munged did not start"
}

node_ready() {
  local s
  s=$(sinfo -h -N -o '%T' 2>/dev/null | head -1)
  case "$s" in idle* | mixed* | allocated* | completing*) return 0 ;; *) return 1 ;; esac
}

start() {
  install
  write_conf
  start_munge
  running "$RUN/slurmctld.pid" || $SUDO slurmctld
  running "$RUN/slurmd.pid" || $SUDO slurmd
  local host
  host=$(hostname -s)
  for i in $(seq 150); do
    if node_ready; then
      say "up: node $host, $(nproc) CPUs, partition debug (sinfo, sbatch, squeue, scancel)"
      return 0
    fi
    # A node left down by an earlier run comes back.
    if [ $((i % 10)) = 0 ]; then
      $SUDO scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    fi
    sleep 0.2
  done
  die "the node did not come up in 30 s: see /var/log/slurm-local/ ($(sinfo -h -N -o '%T %E' 2>&1 | head -1))"
}

stop_pid() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    $SUDO kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && $SUDO kill -9 "$pid" 2>/dev/null || true
  fi
  $SUDO rm -f "$f"
}

stop() {
  # Jobs first, so that no slurmstepd is left behind; then the daemons.
  if [ -f "$CONF" ] && grep -qF "$MARK" "$CONF" && command -v scancel >/dev/null; then
    timeout 5 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    timeout 5 scancel --quiet --partition=debug 2>/dev/null || true
  fi
  stop_pid "$RUN/slurmd.pid"
  stop_pid "$RUN/slurmctld.pid"
  if [ -f "$RUN/started-munge" ]; then
    stop_pid /run/munge/munged.pid
    $SUDO rm -f "$RUN/started-munge"
  fi
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if node_ready; then sinfo; else say "down"; exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
