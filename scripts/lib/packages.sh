# Sourced by scripts that need Debian packages: `ensure_packages
# COMMAND=PACKAGE ...` installs, in one apt-get run, the packages whose
# command is missing. A PATH=PACKAGE pair stands for a package without a
# command on PATH: it is installed when nothing exists at PATH, which may be
# a glob pattern (`/usr/lib/postgresql/*/bin/initdb`).
ensure_packages() {
  local missing=() pair want package
  for pair in "$@"; do
    want="${pair%%=*}" package="${pair#*=}"
    if [[ "$want" == /* ]]; then
      compgen -G "$want" >/dev/null || missing+=("$package")
    else
      command -v "$want" >/dev/null 2>&1 || missing+=("$package")
    fi
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  printf '\n==> installing Debian packages: %s\n' "${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
