#!/usr/bin/env bash
# Install (or upgrade) the Roadwatch station server: Mosquitto with the Roadwatch ACL, password file and
# TLS listener, and the central aggregator (roadwatch-central) with its dashboard.
#
#   sudo scripts/install_station.sh --broker-name broker.example.org --add-node gate1 --add-node market2
#   sudo scripts/install_station.sh --upgrade                 # new version, same config, accounts and data
#   scripts/install_station.sh --dry-run                      # print what would be done, change nothing
#
# Broker files come from configs/mosquitto/ (mosquitto.conf -> /etc/mosquitto/conf.d/roadwatch.conf,
# acl -> /etc/mosquitto/roadwatch.acl); the password file /etc/mosquitto/roadwatch.passwd gets the
# `aggregator` user and one user per --add-node, each with a generated password that is stored root-only
# under /etc/roadwatch (central.env for the aggregator, nodes/NODE.mqtt-password to copy to the node).
# Without certificates, a private CA and a server certificate for --broker-name are made (ca.crt goes to
# the nodes). Re-running is safe: existing configs, passwords, certificates and data are kept.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/install_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/install_common.sh"

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --broker-name HOST  name the nodes use to reach the broker, for its TLS certificate (default: host name)
  --add-node NAME     create (if missing) the broker user of edge node NAME; repeatable
  --no-broker         install only the aggregator (the broker runs elsewhere)
  --wheels DIR        install Python packages from this folder only (no network)
  --upgrade           reinstall the package into the existing virtualenv and restart the aggregator
  --dry-run           print every action instead of doing it
  -h, --help          this text
EOF
}

BROKER_NAME="$(hostname -f 2>/dev/null || hostname)"
NODES=()
WITH_BROKER=1
WHEELS_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --broker-name) BROKER_NAME="${2:?--broker-name needs a host name}"; shift 2 ;;
    --add-node) NODES+=("${2:?--add-node needs a node id}"); shift 2 ;;
    --no-broker) WITH_BROKER=0; shift ;;
    --wheels) WHEELS_DIR="${2:?--wheels needs a folder}"; shift 2 ;;
    --upgrade) UPGRADE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
for node in "${NODES[@]}"; do
  if ! [[ "$node" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || [ "$node" = alerts ] || [ "$node" = aggregator ]; then
    die "node id '$node': use letters, digits, '-' or '_' (and not 'alerts' or 'aggregator')"
  fi
done
export WHEELS_DIR

MQ_DIR="/etc/mosquitto"
MQ_CONF="$MQ_DIR/conf.d/roadwatch.conf"
MQ_ACL="$MQ_DIR/roadwatch.acl"
MQ_PASSWD="$MQ_DIR/roadwatch.passwd"
MQ_CERTS="$MQ_DIR/certs"
CA_DIR="$ETC_DIR/ca"
AGGREGATOR_USER="aggregator"  # the ACL's reader of every node (configs/mosquitto/acl)
PASSWORD_VAR="ROADWATCH_CENTRAL_MQTT_PASSWORD"  # named by mqtt.password in configs/central.example.yaml
MQ_CHANGED=0

new_password() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }

# Add USER with PASSWORD to the broker's password file without putting the password on a command line:
# mosquitto_passwd -U hashes a "user:password" file in place.
add_broker_user() {  # add_broker_user USER PASSWORD
  local file="$ROOT$MQ_PASSWD"
  WROTE=0
  if [ -f "$file" ] && grep -q "^$1:" "$file"; then
    say "ok: broker user $1 exists"
    return 0
  fi
  WROTE=1
  MQ_CHANGED=1
  if [ "$DRY_RUN" = 1 ]; then
    say "would: add broker user $1 to $MQ_PASSWD (salted hash via mosquitto_passwd -U)"
    return 0
  fi
  local tmp
  tmp="$(mktemp)"
  printf '%s:%s\n' "$1" "$2" >"$tmp"
  mosquitto_passwd -U "$tmp"
  act install -m 0600 -o mosquitto -g mosquitto /dev/null "$file.new"
  { [ -f "$file" ] && cat "$file"; cat "$tmp"; } >"$file.new"
  rm -f "$tmp"
  act mv "$file.new" "$file"
}

# The aggregator's broker password: the one already in central.env, or a new one written there.
aggregator_password() {
  local env_file="$ROOT$ETC_DIR/central.env" value=""
  if [ -f "$env_file" ]; then
    value="$(sed -n "s/^$PASSWORD_VAR=//p" "$env_file" | tail -n 1)"
  fi
  printf '%s' "${value:-$(new_password)}"
}

make_certificates() {
  if [ -f "$ROOT$MQ_CERTS/server.crt" ] && [ -f "$ROOT$MQ_CERTS/server.key" ]; then
    say "ok: broker certificate in $MQ_CERTS"
    return
  fi
  MQ_CHANGED=1
  ensure_dir "$CA_DIR" 0700 root:root
  local ca="$ROOT$CA_DIR"
  if [ ! -f "$ca/ca.key" ]; then
    act openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=Roadwatch CA" \
      -keyout "$ca/ca.key" -out "$ca/ca.crt"
  fi
  act openssl req -newkey rsa:2048 -nodes -subj "/CN=$BROKER_NAME" -keyout "$ca/server.key" -out "$ca/server.csr"
  if [ "$DRY_RUN" = 1 ]; then
    say "would: sign $ca/server.crt for DNS:$BROKER_NAME with the Roadwatch CA (825 days)"
  else
    printf 'subjectAltName=DNS:%s\n' "$BROKER_NAME" >"$ca/server.ext"
    act openssl x509 -req -in "$ca/server.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
      -days 825 -out "$ca/server.crt" -extfile "$ca/server.ext"
  fi
  ensure_dir "$MQ_CERTS" 0755 root:root
  act install -m 0644 -o root -g root "$ca/ca.crt" "$ca/server.crt" "$ROOT$MQ_CERTS/"
  act install -m 0600 -o mosquitto -g mosquitto "$ca/server.key" "$ROOT$MQ_CERTS/server.key"
  say "note: give the nodes $CA_DIR/ca.crt (mqtt.tls.ca_file); they connect to $BROKER_NAME:8883"
}

[ "$DRY_RUN" = 1 ] && say "dry run: nothing will be changed"
need_root
say "== Roadwatch station$([ "$UPGRADE" = 1 ] && echo ' (upgrade)')"
detect_platform

say "-- system packages"
APT_NEEDED=()
check_python
if [ "$WITH_BROKER" = 1 ]; then
  need_package mosquitto mosquitto
  need_package mosquitto_sub mosquitto-clients
  need_package openssl openssl
fi
apt_install

say "-- user and directories"
ensure_user
ensure_dir "$OPT_DIR" 0755 root:root
ensure_dir "$ETC_DIR" 0750 "root:$SERVICE_GROUP"
ensure_dir "$DATA_DIR" 0750 "$SERVICE_USER:$SERVICE_GROUP"
ensure_dir "$DATA_DIR/central" 0750 "$SERVICE_USER:$SERVICE_GROUP"

say "-- python environment"
install_venv central

say "-- aggregator configuration"
CONFIG="$ETC_DIR/central.yaml"
install_config_once "$REPO_DIR/configs/central.example.yaml" "$CONFIG" 0640 "root:$SERVICE_GROUP" \
  "s/^\(  username:\) central\$/\1 $AGGREGATOR_USER/"
if [ "$WROTE" = 1 ]; then
  say "note: edit $CONFIG (accounts, forwarding, http), then: systemctl restart roadwatch-central"
fi
AGG_PASSWORD="$(aggregator_password)"
ensure_env_file "$ETC_DIR/central.env" \
  "# Secrets of roadwatch-central, read by systemd; central.yaml names them ({env: ...})." \
  "$PASSWORD_VAR=$AGG_PASSWORD" \
  "# Webhook signing keys named in central.yaml (forwarding.webhooks.*.secret), e.g.:" \
  "#ROADWATCH_WEBHOOK_SECRET="

if [ "$WITH_BROKER" = 1 ]; then
  say "-- broker"
  ensure_dir "$MQ_DIR/conf.d" 0755 root:root
  # Debian's own mosquitto.conf already sets persistence_location, and Mosquitto refuses a second one.
  conf_src="$REPO_DIR/configs/mosquitto/mosquitto.conf"
  if grep -qs '^persistence_location' "$ROOT$MQ_DIR/mosquitto.conf" && grep -q '^persistence_location' "$conf_src"; then
    conf_tmp="$(mktemp)"
    grep -v '^persistence_location' "$conf_src" >"$conf_tmp"
    conf_src="$conf_tmp"
  fi
  install_file "$conf_src" "$MQ_CONF" 0644 root:root
  [ "$WROTE" = 0 ] || MQ_CHANGED=1
  [ -z "${conf_tmp:-}" ] || rm -f "$conf_tmp"
  install_file "$REPO_DIR/configs/mosquitto/acl" "$MQ_ACL" 0644 root:root
  [ "$WROTE" = 0 ] || MQ_CHANGED=1
  add_broker_user "$AGGREGATOR_USER" "$AGG_PASSWORD"
  ensure_dir "$ETC_DIR/nodes" 0700 root:root
  for node in "${NODES[@]}"; do
    secret="$ETC_DIR/nodes/$node.mqtt-password"
    if [ -f "$ROOT$secret" ]; then password="$(cat "$ROOT$secret")"; else password="$(new_password)"; fi
    add_broker_user "$node" "$password"
    if [ "$WROTE" = 1 ]; then
      ensure_env_file "$secret" "$password"
      say "note: node $node: copy $secret to the node, e.g. as ROADWATCH_MQTT_PASSWORD in /etc/roadwatch/$node.env"
    fi
  done
  make_certificates
  if [ "$MQ_CHANGED" = 1 ]; then
    if systemd_running; then
      act systemctl enable mosquitto
      act systemctl restart mosquitto
    else
      say "note: systemd is not running here; restart mosquitto yourself"
    fi
  else
    say "ok: broker unchanged"
  fi
fi

say "-- systemd"
ensure_dir "$UNIT_DIR" 0755 root:root
install_file "$REPO_DIR/systemd/roadwatch-central.service" "$UNIT_DIR/roadwatch-central.service" 0644 root:root
[ "$WROTE" = 0 ] || daemon_reload
enable_and_start roadwatch-central.service "$ETC_DIR/central.env" "$VENV_DIR/bin/roadwatch-central" check "$CONFIG"

say "== done. Logs: journalctl -u roadwatch-central -f    Broker: journalctl -u mosquitto -f"
