#!/usr/bin/env bash
# Install (or upgrade) a Roadwatch edge node on Raspberry Pi OS, Debian or JetPack.
#
#   sudo scripts/install_edge.sh --node gate1 [--models-dir /media/usb/models] [--wheels DIR]
#   sudo scripts/install_edge.sh --node gate1 --upgrade      # new version, same config and data
#   scripts/install_edge.sh --node gate1 --dry-run           # print what would be done, change nothing
#
# Creates the system user `roadwatch`, the virtualenv /opt/roadwatch/venv with the edge runtime,
# /etc/roadwatch/edge/NODE.yaml (from a template, only if missing), /etc/roadwatch/NODE.env for secrets
# (only if missing), /var/lib/roadwatch/{models,edge} for data, and the unit roadwatch-edge@NODE.
# Re-running is safe: existing configs, secrets and data are never overwritten; --upgrade reinstalls
# the Python package into the existing virtualenv and refreshes the unit, then restarts the node.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/install_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/install_common.sh"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --node NAME        node id: the unit instance and the config name (default: short host name)
  --template FILE    config template for a new node (default: configs/edge.example.yaml, else configs/demo.yaml)
  --models-dir DIR   copy *.onnx (and their *.card.json) from DIR into /var/lib/roadwatch/models
  --wheels DIR       install Python packages from this folder only (no network)
  --upgrade          reinstall the package into the existing virtualenv and restart the node
  --dry-run          print every action instead of doing it
  -h, --help         this text
EOF
}

NODE="$(hostname -s 2>/dev/null || echo node)"
TEMPLATE=""
MODELS_DIR=""
WHEELS_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --node) NODE="${2:?--node needs a name}"; shift 2 ;;
    --template) TEMPLATE="${2:?--template needs a file}"; shift 2 ;;
    --models-dir) MODELS_DIR="${2:?--models-dir needs a folder}"; shift 2 ;;
    --wheels) WHEELS_DIR="${2:?--wheels needs a folder}"; shift 2 ;;
    --upgrade) UPGRADE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

# The node id names the unit instance, the config file and the MQTT user (see configs/mosquitto/acl).
if ! [[ "$NODE" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || [ "$NODE" = alerts ]; then
  die "node id '$NODE': use letters, digits, '-' or '_' (and not 'alerts')"
fi
if [ -z "$TEMPLATE" ]; then
  TEMPLATE="$REPO_DIR/configs/edge.example.yaml"
  [ -f "$TEMPLATE" ] || TEMPLATE="$REPO_DIR/configs/demo.yaml"
fi
[ -f "$TEMPLATE" ] || die "config template $TEMPLATE not found"
if [ -n "$MODELS_DIR" ] && [ ! -d "$MODELS_DIR" ]; then die "models folder $MODELS_DIR not found"; fi
export WHEELS_DIR

[ "$DRY_RUN" = 1 ] && say "dry run: nothing will be changed"
need_root
say "== Roadwatch edge node '$NODE'$([ "$UPGRADE" = 1 ] && echo ' (upgrade)')"
detect_platform

say "-- system packages"
APT_NEEDED=()
check_python
need_package update-ca-certificates ca-certificates
apt_install

say "-- user and directories"
ensure_user
ensure_dir "$OPT_DIR" 0755 root:root
ensure_dir "$ETC_DIR" 0750 "root:$SERVICE_GROUP"
ensure_dir "$ETC_DIR/edge" 0750 "root:$SERVICE_GROUP"
ensure_dir "$DATA_DIR" 0750 "$SERVICE_USER:$SERVICE_GROUP"
ensure_dir "$DATA_DIR/models" 0750 "$SERVICE_USER:$SERVICE_GROUP"
ensure_dir "$DATA_DIR/edge" 0750 "$SERVICE_USER:$SERVICE_GROUP"

say "-- python environment"
install_venv edge
if [ "$PLATFORM" = jetpack ]; then
  say "note: JetPack: for the GPU, install NVIDIA's onnxruntime-gpu wheel into $VENV_DIR and set"
  say "      model.providers: [CUDAExecutionProvider, CPUExecutionProvider] in the node config"
fi

say "-- models"
if [ -n "$MODELS_DIR" ]; then
  shopt -s nullglob
  for model in "$MODELS_DIR"/*.onnx "$MODELS_DIR"/*.card.json; do
    install_file "$model" "$DATA_DIR/models/$(basename "$model")" 0640 "root:$SERVICE_GROUP"
  done
  shopt -u nullglob
fi
if ! compgen -G "$ROOT$DATA_DIR/models/*.onnx" >/dev/null && [ -z "$MODELS_DIR" ]; then
  warn "no model in $DATA_DIR/models yet: copy one there (see models/README.md) or pass --models-dir"
fi

say "-- signing key"
# The node signs every event with its own Ed25519 key (docs/central.md, "Signed events"). The file is
# created empty with its final owner and mode before openssl writes the key into it, so the private key
# is never readable by anyone but the service user.
KEY="$ETC_DIR/edge/$NODE.key"
if [ -s "$ROOT$KEY" ]; then
  say "ok: $KEY exists (kept)"
elif command -v openssl >/dev/null 2>&1; then
  act install -m 0400 -o "$SERVICE_USER" -g "$SERVICE_GROUP" /dev/null "$ROOT$KEY"
  act openssl genpkey -algorithm ed25519 -out "$ROOT$KEY"
else
  warn "openssl is missing: no signing key made (apt-get install openssl, then run this again)"
fi

say "-- configuration"
CONFIG="$ETC_DIR/edge/$NODE.yaml"
SED="s/^node_id:.*/node_id: $NODE/"
if [ -s "$ROOT$KEY" ] || { [ "$DRY_RUN" = 1 ] && command -v openssl >/dev/null 2>&1; }; then
  SED="$SED;/^mqtt:/a\\  signing_key_file: $KEY"  # a new node signs from its first start
fi
install_config_once "$TEMPLATE" "$CONFIG" 0640 "root:$SERVICE_GROUP" "$SED"
if [ "$WROTE" = 1 ]; then
  say "note: edit $CONFIG (cameras, lines, zones, broker), then: systemctl restart roadwatch-edge@$NODE"
fi
ensure_env_file "$ETC_DIR/$NODE.env" \
  "# Secrets of edge node $NODE, read by systemd (roadwatch-edge@$NODE) and never by the YAML itself." \
  "# The config names them, e.g. mqtt.password: {env: ROADWATCH_MQTT_PASSWORD}" \
  "#ROADWATCH_MQTT_PASSWORD="

if [ "$DRY_RUN" != 1 ] && [ -s "$ROOT$KEY" ]; then
  PUB="$(openssl pkey -in "$ROOT$KEY" -pubout -outform DER | tail -c 32 | base64)"
  if grep -q "^  signing_key_file: $KEY\$" "$ROOT$CONFIG"; then
    say "ok: $CONFIG signs events with $KEY"
  else
    say "note: set mqtt.signing_key_file: $KEY in $CONFIG"
  fi
  say "note: register the node's public key at the station (then restart roadwatch-central):"
  say "note:   central.yaml signatures.keys.$NODE: $PUB"
fi

say "-- systemd"
ensure_dir "$UNIT_DIR" 0755 root:root
install_file "$REPO_DIR/systemd/roadwatch-edge@.service" "$UNIT_DIR/roadwatch-edge@.service" 0644 root:root
[ "$WROTE" = 0 ] || daemon_reload
enable_and_start "roadwatch-edge@$NODE.service" "$ETC_DIR/$NODE.env" "$VENV_DIR/bin/roadwatch-edge" check "$CONFIG"

say "== done. Logs: journalctl -u roadwatch-edge@$NODE -f    Status: systemctl status roadwatch-edge@$NODE"
