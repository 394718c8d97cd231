# Sourced by every vm-tests job (run.sh) inside the guest. Bash.
# Results go to $VMTEST_OUT (the harness's out share):
#   checks.jsonl  one {"name","ok","detail"} per `check`; the harness fails the scenario on any
#                 ok=false, and on a job that exits non-zero.
# Markers for host-side actions go to /dev/ttyS1 as "VMTEST-MARK <name>" (see harness.py).

: "${VMTEST_OUT:?}"

_json_str() { # VAR STRING: VAR = STRING as a JSON string, in bash: python3 would cost a second
  # or two per call under TCG, and even a `tr` or a $(...) fork per check ~0.1 s.
  # Keeps printable ASCII, tab, newline and carriage return (other bytes dropped, so the line is
  # valid JSON and valid UTF-8 whatever a command printed).
  local LC_ALL=C s=$2
  s=${s//[^[:print:]$'\t\n\r']/}
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf -v "$1" '"%s"' "$s"
}

# check NAME COMMAND...: run COMMAND, record pass/fail with its (truncated) output. A scenario
# that proves several claims sets VMTEST_CLAIM=<claim> before each claim's checks: their names
# then start with "[<claim>] ".
check() {
  local name=${VMTEST_CLAIM:+[$VMTEST_CLAIM] }$1; shift
  local outp rc
  outp=$("$@" 2>&1); rc=$?
  local ok=true; [ $rc -eq 0 ] || ok=false
  local jname jdetail
  _json_str jname "$name"
  _json_str jdetail "rc=$rc ${outp:0:2000}"
  printf '{"name":%s,"ok":%s,"detail":%s}\n' "$jname" "$ok" "$jdetail" >>"$VMTEST_OUT/checks.jsonl"
  if [ $ok = true ]; then echo "CHECK ok   $name"; else echo "CHECK FAIL $name: rc=$rc ${outp:0:500}"; fi
  return 0
}

# mark NAME: tell the harness we reached a point (it may hot-add a disk, power off hard, ...).
mark() { echo "VMTEST-MARK $1" >/dev/ttyS1; echo "mark $1"; }

# wait_until SECONDS COMMAND...: poll COMMAND every second until it succeeds; 1 on timeout.
wait_until() {
  local limit=$1; shift
  local i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -ge "$limit" ] && return 1; sleep 1
  done
}

# next_boot reboot|none|poweroff: what the runner does after this job.
next_boot() { echo "$1" >"$VMTEST_OUT/next"; }

# save NAME FILE...: copy files into the results.
save() { local d="$VMTEST_OUT/$1"; shift; mkdir -p "$d"; cp -a "$@" "$d/" 2>/dev/null || true; }

# fault_on SERIAL write|read: from now on every write (write-zeroes, trim) or every read of the
# data disk with that serial fails (a Disk(fault=...) served through nbdkit's error filter, see
# harness.py); fault_off SERIAL [write|read] ends it.
fault_on() { : >"/run/vmtest/out/faults/$1.$2"; }
fault_off() {
  if [ $# -ge 2 ]; then rm -f "/run/vmtest/out/faults/$1.$2"; else rm -f "/run/vmtest/out/faults/$1".*; fi
}

# held FILE [SECONDS] [PID]: wait (bounded, default 600 s) until a dbhost run with
# DBHOST_FAULT=hold@POINT and DBHOST_FAULT_MARK=FILE holds at its point; `rm FILE` lets it go on.
# With PID (that dbhost's), stop waiting as soon as it has exited without reaching the point.
held() {
  local i=0
  until [ -e "$1" ]; do
    [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && { echo "process $3 exited before holding at $1"; return 1; }
    i=$((i + 1)); [ $i -ge "${2:-600}" ] && { echo "no hold at $1 within ${2:-600} s"; return 1; }
    sleep 1
  done
}
