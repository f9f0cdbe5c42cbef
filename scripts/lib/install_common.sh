# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source this file
# Shared steps of scripts/install_edge.sh and scripts/install_station.sh (sourced, not run).
#
# Every step looks at the machine first and only acts when something is missing or different, so a re-run
# (or `--upgrade`) changes nothing that is already right and never touches data or an existing config.
# With DRY_RUN=1 each action is printed as "would: ..." and nothing is changed; "ok: ..." lines say what
# is already in place. ROADWATCH_ROOT prefixes every path (an image being built, or the tests).

ROOT="${ROADWATCH_ROOT:-}"
DRY_RUN="${DRY_RUN:-0}"
UPGRADE="${UPGRADE:-0}"
SERVICE_USER="${ROADWATCH_SERVICE_USER:-roadwatch}"  # overridable for tests only: the units name roadwatch
SERVICE_GROUP="${ROADWATCH_SERVICE_GROUP:-$SERVICE_USER}"
OPT_DIR="/opt/roadwatch"
VENV_DIR="$OPT_DIR/venv"
ETC_DIR="/etc/roadwatch"
DATA_DIR="/var/lib/roadwatch"
UNIT_DIR="/etc/systemd/system"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MIN_PYTHON="3.10"

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

CHANGED=0  # set by every action: a re-run that finds nothing to do does not restart the services

# Run a command, or print it in dry-run mode.
act() {
  CHANGED=1
  if [ "$DRY_RUN" = 1 ]; then
    local quoted
    quoted="$(printf '%q ' "$@")"
    say "would: ${quoted% }"
  else
    say "+ $*"
    "$@"
  fi
}

need_root() {
  if [ "$DRY_RUN" != 1 ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0 ...), or with --dry-run to see what would be done"
  fi
}

detect_platform() {
  local os="unknown"
  if [ -r /etc/nv_tegra_release ]; then
    os="jetpack"
  elif [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    os="$(. /etc/os-release && printf '%s' "${ID:-unknown}")"
  fi
  PLATFORM="$os"
  say "platform: $PLATFORM ($(uname -m))"
  case "$PLATFORM" in
    debian|raspbian|ubuntu|jetpack) ;;
    *) warn "untested platform '$PLATFORM': the steps assume Debian (apt, systemd)" ;;
  esac
}

check_python() {
  command -v python3 >/dev/null 2>&1 || { APT_NEEDED+=(python3); return; }
  if ! python3 -c "import sys; sys.exit(sys.version_info < (${MIN_PYTHON/./, }))"; then
    die "python3 is $(python3 -V 2>&1); Roadwatch needs Python >= $MIN_PYTHON (Debian 12, Raspberry Pi OS bookworm, JetPack 6)"
  fi
  python3 -c "import ensurepip, venv" 2>/dev/null || APT_NEEDED+=(python3-venv)
}

# apt-get install the packages in APT_NEEDED (filled by the callers' checks).
apt_install() {
  if [ ${#APT_NEEDED[@]} -eq 0 ]; then
    say "ok: system packages present"
    return
  fi
  act env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  act env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_NEEDED[@]}"
}

need_package() {  # need_package COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || APT_NEEDED+=("$2")
}

ensure_user() {
  if getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
    say "ok: user $SERVICE_USER exists"
    return
  fi
  # A system account without login or home directory of its own: the units run as it.
  act useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "Roadwatch services" "$SERVICE_USER"
}

ensure_dir() {  # ensure_dir PATH MODE OWNER[:GROUP]
  local path="$ROOT$1"
  if [ -d "$path" ]; then
    say "ok: $1"
    return
  fi
  act install -d -m "$2" -o "${3%%:*}" -g "${3##*:}" "$path"
}

# The helpers below set WROTE=1 when they (would) write, and always return 0: a status used as "changed"
# would put callers in an `if`/`||` context, where bash ignores `set -e` and a failed step would go unseen.
WROTE=0

# Copy SRC to DEST when DEST is missing or different; keep a dated copy of a replaced file.
install_file() {  # install_file SRC DEST MODE OWNER:GROUP
  local src="$1" dest="$ROOT$2"
  WROTE=0
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    say "ok: $2 up to date"
    return 0
  fi
  WROTE=1
  if [ -f "$dest" ]; then
    act cp -p "$dest" "$dest.bak-$(date +%Y%m%d%H%M%S)"
  fi
  act install -m "$3" -o "${4%%:*}" -g "${4##*:}" "$src" "$dest"
}

# Install SRC as DEST only when DEST does not exist: configs belong to the technician once installed.
install_config_once() {  # install_config_once SRC DEST MODE OWNER:GROUP [sed-expression]
  local src="$1" dest="$ROOT$2"
  WROTE=0
  if [ -e "$dest" ]; then
    say "ok: keeping existing $2"
    return 0
  fi
  WROTE=1
  if [ -n "${5:-}" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      say "would: install $src as $2 (mode $3, owner $4) with sed '$5'"
    else
      local tmp
      tmp="$(mktemp)"
      sed "$5" "$src" >"$tmp"
      act install -m "$3" -o "${4%%:*}" -g "${4##*:}" "$tmp" "$dest"
      rm -f "$tmp"
    fi
  else
    act install -m "$3" -o "${4%%:*}" -g "${4##*:}" "$src" "$dest"
  fi
}

# A root-only environment file for secrets (systemd reads it before dropping privileges).
ensure_env_file() {  # ensure_env_file DEST "LINE" ...
  local name="$1" dest="$ROOT$1"
  shift
  WROTE=0
  if [ -e "$dest" ]; then
    say "ok: keeping existing $name"
    return 0
  fi
  WROTE=1
  CHANGED=1
  if [ "$DRY_RUN" = 1 ]; then
    say "would: write $name (mode 0600, root) with ${#} line(s)"
    return 0
  fi
  say "+ write $name (mode 0600)"
  (umask 077 && printf '%s\n' "$@" >"$dest")
}

# The virtualenv under /opt/roadwatch with the project and the EXTRA dependency group.
install_venv() {  # install_venv EXTRA
  local extra="$1" pip_args=(--quiet --disable-pip-version-check)
  if [ -n "${WHEELS_DIR:-}" ]; then
    pip_args+=(--no-index --find-links "$WHEELS_DIR")  # offline: a folder of wheels (pip download ...)
  fi
  if [ -x "$ROOT$VENV_DIR/bin/python" ]; then
    if [ "$UPGRADE" != 1 ]; then
      say "ok: $VENV_DIR exists (use --upgrade to install this version into it)"
      return
    fi
  else
    act python3 -m venv "$ROOT$VENV_DIR"
  fi
  act "$ROOT$VENV_DIR/bin/python" -m pip install "${pip_args[@]}" --upgrade pip
  # Not editable: the checkout may be deleted after the install.
  act "$ROOT$VENV_DIR/bin/python" -m pip install "${pip_args[@]}" --upgrade "${REPO_DIR}[$extra]"
  if [ -f "$REPO_DIR/README.md" ]; then
    install_file "$REPO_DIR/README.md" "$OPT_DIR/README.md" 0644 root:root
  fi
}

systemd_running() {
  # ROADWATCH_ASSUME_SYSTEMD=1 shows the systemd steps of a dry run on a machine without systemd (tests).
  [ "${ROADWATCH_ASSUME_SYSTEMD:-0}" = 1 ] || { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }
}

daemon_reload() {
  if systemd_running; then
    act systemctl daemon-reload
  else
    say "note: systemd is not running here; skipping daemon-reload"
  fi
}

# Enable a unit; (re)start it when its config check passes, else say how to finish. The check runs as the
# service user with the unit's environment file, so secrets named in the config resolve as in the service.
enable_and_start() {  # enable_and_start UNIT ENV-FILE CHECK-COMMAND...
  local unit="$1" env_file="$ROOT$2"
  shift 2
  if ! systemd_running; then
    say "note: systemd is not running here; enable later with: systemctl enable --now $unit"
    return
  fi
  if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
    say "ok: $unit enabled"
  else
    act systemctl enable "$unit"
  fi
  if [ "$CHANGED" = 0 ] && systemctl is-active --quiet "$unit" 2>/dev/null; then
    say "ok: $unit running, nothing changed"
    return
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "would: check the config ($*) and (re)start $unit if it passes"
    return
  fi
  if (if [ -f "$env_file" ]; then set -a; . "$env_file"; set +a; fi; runuser -u "$SERVICE_USER" -- "$@"); then
    act systemctl restart "$unit"
  else
    warn "config check failed: edit it, then run: systemctl restart $unit"
  fi
}
