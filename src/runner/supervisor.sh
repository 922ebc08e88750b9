# Lifeline attempt supervisor. Usage: sh supervisor.sh RUN_DIR ARGV0 [ARGS...]
# Records who runs, runs the plan argv in its own session, and writes the exit record.
# Plain sh on purpose: every attempt pays for this process, and sh starts ~25x faster than node.
# Files, one line each:
#   supervisor  "PID STARTTIME BOOTID"   this process
#   process     "PID STARTTIME BOOTID"   the plan process (its session and group id = PID)
#   exit        "RC SIGNAL"              SIGNAL is e.g. SIGTERM when RC is 128+N, else "-"; the
#                                        time of the exit is the record's mtime
# Lean on purpose: each external command is a fork+exec that every attempt pays. The identities
# are written in place by one printf (a shell builtin: one write(2) of a short line); readers
# take a record only when it ends with its "\n", so a half-written one reads as none. Only the
# exit record goes through temp file + fsync + rename + dir fsync: it is the outcome that must
# survive a crash. An identity is worthless after a crash anyway (the boot id changes). The
# time comes from the file's mtime rather than from a `date` process.
# If the plan's identity cannot be recorded the plan is not started: exit record rc 125 and
# no `process` file. The supervisor exits 0 once the exit record is durable, else 125.
set -f
# Every file this creates (records, stdout, stderr, and what the plan creates unless it sets its own
# umask) is owner-only: the output is unmasked (docs/security.md).
umask 077
dir=$1
shift

# The plan gets the caller's PATH untouched; our own tools come from fixed system dirs.
had_path=${PATH+1}
plan_path=${PATH-}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
setsid_bin=setsid
for d in /usr/bin /bin /usr/sbin /sbin /usr/local/bin; do
  if [ -x "$d/setsid" ]; then setsid_bin=$d/setsid; break; fi
done
read -r boot </proc/sys/kernel/random/boot_id || exit 125

# start_of PID: sets $start to field 22 of /proc/PID/stat. comm (field 2) may hold spaces
# and parentheses, so split only what follows the last ')': state is then $1, field 22 ${20}.
start_of() {
  IFS= read -r line <"/proc/$1/stat" || return 1
  set -- ${line##*)}
  start=${20}
  [ -n "$start" ]
}

# put NAME TEXT: write $dir/NAME in place (readers need the final "\n"). put_durable: atomically
# replace it by rename, fsyncing the file before and the dir after.
put() {
  printf '%s\n' "$2" >"$dir/$1"
}
put_durable() {
  printf '%s\n' "$2" >"$dir/.$1.tmp" && sync -- "$dir/.$1.tmp" && mv -f -- "$dir/.$1.tmp" "$dir/$1" &&
    sync -- "$dir"
}

start_of $$ && put supervisor "$$ $start $boot" || exit 125

# A foreground subshell, not `&`: a background job of a non-interactive sh starts with
# SIGINT and SIGQUIT ignored, and the plan would inherit that. The subshell records its own
# identity (/proc/self in a builtin's redirect is the subshell itself), then execs setsid,
# which does not fork because the subshell is not a group leader. So the recorded pid is the
# plan's pid and its session/group id, and signalling that group never hits the supervisor.
(
  IFS= read -r line </proc/self/stat || exit 125
  pid=${line%% *}
  start_of "$pid" && put process "$pid $start $boot" || exit 125
  if [ "$had_path" ]; then PATH=$plan_path; else unset PATH; fi
  exec "$setsid_bin" "$@" </dev/null >"$dir/stdout" 2>"$dir/stderr"
)
rc=$?

# The shell reports death by signal N as 128+N; a plan that exits 128+N itself looks the same.
sig=-
if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then
  n=$((rc - 128))
  case $n in
    1) sig=SIGHUP ;; 2) sig=SIGINT ;; 3) sig=SIGQUIT ;; 4) sig=SIGILL ;; 6) sig=SIGABRT ;;
    7) sig=SIGBUS ;; 8) sig=SIGFPE ;; 9) sig=SIGKILL ;; 10) sig=SIGUSR1 ;; 11) sig=SIGSEGV ;;
    12) sig=SIGUSR2 ;; 13) sig=SIGPIPE ;; 14) sig=SIGALRM ;; 15) sig=SIGTERM ;; 24) sig=SIGXCPU ;;
    25) sig=SIGXFSZ ;; *) sig=$n ;;
  esac
fi
put_durable exit "$rc $sig" || exit 125
exit 0
