"""The release's process on a target machine: started detached, found again, stopped. One POSIX sh script.

The same script runs locally (through ``Runner``) and over SSH (through ``RemoteRunner``), with its
arguments as separate words (``sh -c SCRIPT nixfly-service CMD ARGS…``), never spliced into the text.

* start: the program runs in a new session (``setsid``), so it is the leader of its own process group and
  session, outlives the SSH connection or the ``inv`` that started it, and can be stopped as a whole. Its
  output is appended to the log; its pid goes to the pidfile. The environment is built from scratch (PATH,
  HOME, TMPDIR, then the release's variables): the deployer's own environment (tokens included) must not
  leak into the app. The release's variables arrive on stdin as ``export NAME='value'`` lines, because
  secrets must never be on a command line.
* start waits until the program leads its own session (or has ended) before it records it: the pidfile
  then names a session that exists. If that takes longer than START_SECONDS, it kills the program and fails
  (returning a pid whose session did not exist yet made nixfly believe it had exited, and stop it never).
* The release's processes: every live process (zombies do not count: a container's init may never reap
  them) of the pidfile's session, and every process whose environment holds ``NIXFLY_SERVICE=<pidfile>``.
  start puts that marker in the release's environment, so it is inherited by whatever the release starts,
  and also finds a process that left the session (a daemon that called setsid, like `epmd -daemon`) or a
  release whose pidfile was lost. The pidfile holds the session id and its leader's start time; a pid that
  now belongs to another process (different start time: reboot, reuse) names no session, so a stale
  pidfile can never make nixfly signal a stranger. Read from /proc: Linux only, like Fly's Machines.
* stop: TERM to the session's process group and to every marked process outside the session, wait up to
  the grace period, then KILL every process of the release that is left.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from nixfly.hosts.host import Host

# The line start writes to the log before each start: where one run's output begins.
START_MARK = "nixfly: starting"
# How long a start may take to reach its `exec setsid` (eval of the exports, then exec): normally a few ms.
START_SECONDS = 30

SCRIPT = r"""
set -eu
# Unquoted ${stat…}, ${line…}, $left, $(marked) and $(outside) split /proc fields and pid lists on purpose
# (no glob characters).

field() { # field() PID N: field N (>= 3) of /proc/PID/stat, or fail
  stat=$(cat "/proc/$1/stat" 2> /dev/null) || return 1
  n=$2
  set -- ${stat##*") "}
  shift $((n - 3))
  echo "$1"
}

settled() { # true once process $1 leads its own session, or is gone
  state=$(field "$1" 3) || return 0
  [ "$state" != Z ] || return 0
  [ "$(field "$1" 6)" = "$1" ]
}

in_session() { # pids of live (non-zombie) processes in session $sid
  [ -n "$sid" ] || return 0
  for f in /proc/[0-9]*/stat; do
    read -r line 2> /dev/null < "$f" || continue
    p=${f#/proc/}
    set -- ${line##*") "}
    if [ "$1" != Z ] && [ "$4" = "$sid" ]; then echo "${p%/stat}"; fi
  done
}

marked() { # pids of live processes whose environment holds NIXFLY_SERVICE=$pidfile (a zombie's is empty)
  grep -lxzF -e "NIXFLY_SERVICE=$pidfile" /proc/[0-9]*/environ 2> /dev/null |
    while IFS=/ read -r _ _ p _; do echo "$p"; done
}

members() { # every live process of the release, one pid a line
  { in_session; marked; } | sort -nu
}

outside() { # marked processes that left session $sid (or all of them, with no session known)
  for p in $(marked); do
    [ "$(field "$p" 6 || true)" = "$sid" ] || echo "$p"
  done
}

load() { # sid := the session id in the pidfile, unless that pid belongs to another process now
  sid=""
  [ -r "$pidfile" ] || return 0
  read -r recorded started < "$pidfile" || true
  case ${recorded:-x} in *[!0-9]*) return 0 ;; esac
  if now=$(field "$recorded" 22); then
    [ "$now" = "${started:-}" ] || return 0
  fi
  sid=$recorded
}

cmd=$1
shift
case $cmd in
pid) # pidfile: the session id while the release runs (or a pid of it, if its session is gone), else nothing
  pidfile=$1
  load
  if [ -n "$(in_session)" ]; then
    echo "$sid"
  else
    left=$(members)
    if [ -n "$left" ]; then set -- $left && echo "$1"; fi
  fi
  ;;
start) # pidfile log workdir program start-seconds; stdin: export lines
  pidfile=$1 log=$2 workdir=$3 program=$4 start_seconds=$5
  load
  left=$(members)
  if [ -n "$left" ]; then echo "already running: pids" $left >&2; exit 3; fi
  command -v setsid > /dev/null || { echo "setsid not found (util-linux)" >&2; exit 127; }
  [ -x "$program" ] || { echo "$program is not an executable" >&2; exit 126; }
  mkdir -p "${pidfile%/*}" "${log%/*}" "$workdir"
  # The log holds whatever the app prints (secrets too, if it is careless): readable by its owner only.
  (umask 077 && touch "$log") && chmod 600 "$log"
  cd "$workdir"
  printf '%s nixfly: starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$program" >> "$log"
  exec 3<&0
  env -i PATH="$PATH" HOME="$HOME" TMPDIR="${TMPDIR:-/tmp}" NIXFLY_SERVICE="$pidfile" \
    sh -c 'eval "$(cat)"; exec setsid "$0" < /dev/null' "$program" <&3 3<&- >> "$log" 2>&1 &
  pid=$!
  # Until the child has called setsid it is not yet the leader of session $pid: wait for that (or its end).
  ticks=0
  until settled "$pid"; do
    if [ "$ticks" -ge $((start_seconds * 20)) ]; then
      kill -KILL "$pid" $(marked) 2> /dev/null || true # what its eval runs is marked too
      echo "$program did not get a session of its own within ${start_seconds}s: killed it" >&2
      exit 4
    fi
    sleep 0.05
    ticks=$((ticks + 1))
  done
  echo "$pid $(field "$pid" 22 || true)" > "$pidfile"
  echo "$pid"
  ;;
stop) # pidfile grace-seconds
  pidfile=$1 grace=$2
  load
  if [ -z "$(members)" ]; then
    rm -f "$pidfile"
    echo "not running"
    exit 0
  fi
  if [ -n "$sid" ]; then kill -TERM "-$sid" 2> /dev/null || true; fi
  kill -TERM $(outside) 2> /dev/null || true
  ticks=0
  while [ -n "$(members)" ] && [ "$ticks" -lt "$((grace * 10))" ]; do
    sleep 0.1
    ticks=$((ticks + 1))
  done
  left=$(members)
  if [ -n "$left" ]; then
    # The group first (a child started after the listing is in it), then whoever left the group.
    if [ -n "$sid" ]; then kill -KILL "-$sid" 2> /dev/null || true; fi
    kill -KILL $left 2> /dev/null || true
    echo "killed after ${grace}s:" $left
  else
    echo "stopped"
  fi
  rm -f "$pidfile"
  ;;
tail) # log lines
  if [ -r "$1" ]; then tail -n "$2" "$1"; fi
  ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac
"""


def _sh(host: Host, what: str, *args: str, stdin: str | None = None, mutates: bool = True) -> str:
    return host.script(what, SCRIPT, *args, stdin=stdin, mutates=mutates).stdout


def pid(host: Host, pidfile: PurePosixPath) -> int:
    """The running release's pid, or 0."""
    out = _sh(host, f"check {pidfile}", "pid", str(pidfile), mutates=False).strip()
    return int(out) if out.isdigit() else 0


def start(
    host: Host,
    pidfile: PurePosixPath,
    log: PurePosixPath,
    workdir: PurePosixPath,
    program: PurePosixPath,
    exports: str,
    start_seconds: int = START_SECONDS,
) -> int:
    args = [str(pidfile), str(log), str(workdir), str(program), str(start_seconds)]
    out = _sh(host, f"start {program}", "start", *args, stdin=exports)
    return int(out.strip()) if out.strip().isdigit() else 0


def stop(host: Host, pidfile: PurePosixPath, grace: float) -> str:
    # Whole seconds: the script counts tenths with shell arithmetic.
    seconds = str(max(1, round(grace)))
    return _sh(host, f"stop the process of {pidfile}", "stop", str(pidfile), seconds).strip()


def tail(host: Host, log: PurePosixPath, lines: int) -> str:
    return _sh(host, f"read {log}", "tail", str(log), str(lines), mutates=False)
