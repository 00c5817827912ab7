# Sourced by scripts that run long steps: `step NAME` starts a step and
# prints it with the time since the script began; when the next step
# starts (or the script ends), the previous one's duration is printed.
# Times come from bash's SECONDS: nothing is measured by sleeping.

_steps_began=$SECONDS
_step_began=$SECONDS
_step_name=""

# 75 -> 1m15s
_steps_clock() {
  printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

_steps_close() {
  [ -n "$_step_name" ] || return 0
  printf '==> %s: done in %s\n' "$_step_name" "$(_steps_clock $((SECONDS - _step_began)))"
  _step_name=""
}

step() {
  _steps_close
  _step_name="$*"
  _step_began=$SECONDS
  printf '\n==> [%s] %s\n' "$(_steps_clock $((SECONDS - _steps_began)))" "$*"
}

# At the end, successful or not: the last step's duration and the total.
_steps_end() {
  local status=$?
  _steps_close
  printf '==> %s after %s\n' "$([ "$status" -eq 0 ] && echo finished || echo "failed (exit $status)")" \
    "$(_steps_clock $((SECONDS - _steps_began)))"
}
trap _steps_end EXIT
