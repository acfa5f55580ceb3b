#!/usr/bin/env bash
# One-node SLURM cluster on localhost for the SLURM tests and CI (Debian/Ubuntu, root, no systemd).
#
#   bash scripts/slurm_local.sh start    # install if needed, write /etc/slurm/slurm.conf, start
#   bash scripts/slurm_local.sh status   # our daemons and `sinfo`; exit 0 if a controller answers
#   bash scripts/slurm_local.sh stop     # stop exactly what `start` started, restore the config
#
# `start` installs the Debian packages slurmctld, slurmd, slurm-client and munge when they are
# missing (apt-get, no recommends), then starts munged (unless one already answers), slurmctld and
# slurmd. State, spool, logs and PID files live in $SLURM_LOCAL_DIR (default /tmp/slurm_local);
# the PIDs of the daemons started here go to $SLURM_LOCAL_DIR/pids and `stop` kills only those.
# The config has to be /etc/slurm/slurm.conf: the srun inside each Snakemake job drops SLURM_*
# variables, so SLURM_CONF pointing elsewhere would break every job. A slurm.conf that this script
# did not write is backed up and restored by `stop`.
#
# Settings that work without cgroups or systemd: select/cons_tres with CR_Core_Memory,
# proctrack/linuxproc, task/none, jobacct_gather/none, no accounting database (so Snakemake must use
# `--slurm-status-command squeue`; MinJobAge=300 keeps finished jobs visible to squeue).
set -euo pipefail

PATH=$PATH:/usr/sbin:/sbin   # the daemons live in sbin, missing from some root shells
DIR=${SLURM_LOCAL_DIR:-${TMPDIR:-/tmp}/slurm_local}
CONF=/etc/slurm/slurm.conf
MARKER="# Written by scripts/slurm_local.sh (one-node test cluster); restored by its 'stop'."
PIDS=$DIR/pids
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "slurm_local: $*" >&2; }
die() { say "error: $*"; exit 1; }

# PID recorded for daemon $1, if that process is still alive and still that daemon.
recorded_pid() {
    local name=$1 pid
    [[ -f $PIDS ]] || return 1
    pid=$(awk -v n="$name" '$1 == n {print $2}' "$PIDS")
    [[ -n $pid && -r /proc/$pid/comm && $(cat "/proc/$pid/comm") == "$name" ]] || return 1
    echo "$pid"
}

controller_answers() { timeout 10 sinfo -h >/dev/null 2>&1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sinfo >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "installing ${PACKAGES[*]} needs root"
    command -v apt-get >/dev/null || die "slurmctld/slurmd/munge are missing; no apt-get to install"
    say "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

write_config() {
    local node_line node_name host
    # First line of `slurmd -C`: NodeName=... CPUs=... RealMemory=... as this machine really is.
    node_line=$(slurmd -C | head -n 1)
    [[ $node_line == NodeName=* ]] || die "unexpected 'slurmd -C' output: $node_line"
    node_name=${node_line%% *}
    node_name=${node_name#NodeName=}
    host=$(hostname -s)
    mkdir -p /etc/slurm
    if [[ -f $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
        cp -p "$CONF" "$DIR/slurm.conf.orig"
        say "backed up the existing $CONF to $DIR/slurm.conf.orig"
    fi
    cat >"$CONF" <<EOF
$MARKER
ClusterName=localtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$node_name Default=YES MaxTime=INFINITE State=UP
EOF
}

restore_config() {
    if [[ -f $DIR/slurm.conf.orig ]]; then
        mv -f "$DIR/slurm.conf.orig" "$CONF"
        say "restored the original $CONF"
    elif [[ -f $CONF ]] && grep -qxF "$MARKER" "$CONF"; then
        rm -f "$CONF"
    fi
}

start_munge() {
    if echo | munge 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already answers; using it (not ours to stop)"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chmod 755 /run/munge
    runuser -u munge -- munged --force
    wait_for "munged" 10 bash -c 'echo | munge | unmunge >/dev/null'
    echo "munged $(cat /run/munge/munged.pid)" >>"$PIDS"
}

# wait_for WHAT SECONDS COMMAND...: retry COMMAND twice a second until it succeeds.
wait_for() {
    local what=$1 seconds=$2 i
    shift 2
    for ((i = 0; i < 2 * seconds; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    say "$what did not come up within ${seconds}s"
    return 1
}

node_idle() { [[ $(sinfo -h -o %T 2>/dev/null) == idle* ]]; }

show_logs() {
    local f
    for f in "$DIR"/log/*.log; do
        [[ -f $f ]] && { say "last lines of $f:"; tail -n 15 "$f" >&2; }
    done
}

cmd_start() {
    [[ $(id -u) -eq 0 ]] || die "start needs root (the daemons run as SlurmUser=root)"
    if recorded_pid slurmctld >/dev/null && recorded_pid slurmd >/dev/null \
        && controller_answers; then
        say "already running (started earlier by this script)"
        return 0
    fi
    local other
    if other=$(pgrep -x slurmctld || pgrep -x slurmd); then
        die "a slurmctld/slurmd not started by this script runs (pid $(echo $other)); stop it first"
    fi
    install_packages
    [[ -d $DIR ]] && [[ -f $PIDS ]] && cmd_stop
    mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log
    : >"$PIDS"
    write_config
    if ! start_munge; then show_logs; cmd_stop; die "munged failed to start"; fi
    if ! slurmctld || ! wait_for slurmctld 20 test -s "$DIR/slurmctld.pid"; then
        show_logs; cmd_stop; die "slurmctld failed to start"
    fi
    echo "slurmctld $(cat "$DIR/slurmctld.pid")" >>"$PIDS"
    if ! slurmd || ! wait_for slurmd 20 test -s "$DIR/slurmd.pid"; then
        show_logs; cmd_stop; die "slurmd failed to start"
    fi
    echo "slurmd $(cat "$DIR/slurmd.pid")" >>"$PIDS"
    if ! wait_for "an idle node in sinfo" 30 node_idle; then
        sinfo >&2 || true
        show_logs; cmd_stop; die "the node did not become idle"
    fi
    say "cluster up: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -n 1); state in $DIR"
}

cmd_stop() {
    local name pid i
    if [[ ! -f $PIDS ]]; then
        say "nothing to stop (no $PIDS)"
        restore_config
        return 0
    fi
    if recorded_pid slurmctld >/dev/null; then
        # Jobs of this test cluster only: its controller is ours.
        scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
    fi
    for name in slurmd slurmctld munged; do
        pid=$(recorded_pid "$name") || continue
        kill -TERM "$pid" 2>/dev/null || continue
        for ((i = 0; i < 40; i++)); do
            [[ -d /proc/$pid ]] || break
            sleep 0.25
        done
        if [[ -d /proc/$pid ]]; then
            say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    done
    restore_config
    rm -rf "$DIR"
}

cmd_status() {
    local name pid rc=0
    for name in munged slurmctld slurmd; do
        if pid=$(recorded_pid "$name"); then
            say "$name running (pid $pid, started by this script)"
        fi
    done
    if controller_answers; then
        sinfo
    else
        say "no SLURM controller answers (sinfo failed or is missing)"
        rc=1
    fi
    return "$rc"
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: bash $0 start|stop|status" >&2; exit 2 ;;
esac
