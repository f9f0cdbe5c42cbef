#!/usr/bin/env bash
# Installs the Debian packages that the demo and the tests use, when they are missing:
# mosquitto (broker), ffmpeg and rtsp-server-perl (RTSP test server), chromium (dashboard browser test),
# systemd (only for `systemd-analyze verify` on the units; nothing is started), postgresql (the central
# store tests start a private server on loopback; the distribution's own cluster is not used).
# `install_system_deps.sh demo` installs only what the demo needs (mosquitto).
# Idempotent; does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
if [ "${1:-all}" != "demo" ]; then
  command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
  command -v rtsp-server-perl >/dev/null 2>&1 || need+=(rtsp-server-perl)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "missing packages ${need[*]} and not root: install them with apt-get" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
