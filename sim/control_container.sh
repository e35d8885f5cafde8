# The simulated control container, sourced before a document's script runs for one host.
# `apiclient`, `sleep` and the kernel's boot id are answered by the simulated host over a loopback
# socket; everything else (jq, printf, test, ...) is the real thing.
__sim_call() {
  local rc olen elen out='' err=''
  exec 7<>/dev/tcp/127.0.0.1/"$UPDRAFT_SIM_PORT" || return 99
  printf '%d\0' "$(($# + 1))" >&7
  printf '%s\0' "$UPDRAFT_SIM_HOST" "$@" >&7
  read -r rc olen elen <&7
  if [ "$olen" -gt 0 ]; then IFS= read -r -d '' -N "$olen" out <&7; fi
  if [ "$elen" -gt 0 ]; then IFS= read -r -d '' -N "$elen" err <&7; fi
  exec 7<&-
  printf '%s' "$out"
  printf '%s' "$err" >&2
  return "$rc"
}
apiclient() { __sim_call apiclient "$@"; }
sleep() { __sim_call sleep "$@"; }
cat() {
  if [ "$#" -eq 1 ] && [ "$1" = /proc/sys/kernel/random/boot_id ]; then __sim_call boot-id; else command cat "$@"; fi
}
# coreutils `timeout`, on the host's virtual clock: the real one bounds the real run, and the host's cursor
# tells whether the command outlived its limit (then it was stopped there and the exit status is 124).
timeout() {
  local limit=$1 rc=0
  shift
  __sim_call timeout-start "$limit"
  command timeout "$limit" "$@" || rc=$?
  __sim_call timeout-end "$rc"
}
# jq answers through the simulation, which runs the real jq once per distinct arguments and input; a
# program that could read the clock, the environment or a file runs here every time.
jq() {
  local input='' arg
  IFS= read -r -d '' input || true
  for arg in "$@"; do
    case $arg in *now* | *env* | *ENV* | *input_filename* | -f | --from-file | --rawfile | --slurpfile | -L*)
      printf '%s' "$input" | command jq "$@"
      return
      ;;
    esac
    if [ -f "$arg" ]; then
      printf '%s' "$input" | command jq "$@"
      return
    fi
  done
  __sim_call jq "$input" "$@"
}
