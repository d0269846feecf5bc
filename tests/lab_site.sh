# lab_site.sh -- sourced by the tests that run maillens against real Postfix
# (postfix_e2e_test.sh, queue_view_test.sh): the checks before a run, the work directory and
# its cleanup, and a site of ../shared/postfix-lab/lab.sh's three Postfix instances with a
# collector and one agent per instance over mutual TLS and tokens.
#
# Before sourcing, set SAY (the prefix of messages) and KEEP (keep the work directory when 1).
# Sets SRC BIN SHARED LAB_SH W LAB_DIR ST DATA PIDS INSTANCES HOSTNAME_OF IP_OF FQDN_OF, and
# FAILED=0; after lab_site_start_collector, port.

SRC=${MAILLENS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BIN=$(cd "${MAILLENS_BIN_DIR:-$SRC/build/bin}" && pwd)
SHARED=${MAILLENS_SHARED_DIR:-$SRC/../shared}
LAB_SH=$SHARED/postfix-lab/lab.sh

INSTANCES=(dmz internal ext)
declare -A HOSTNAME_OF=([dmz]=dmz [internal]=mx [ext]=mta)
declare -A IP_OF=([dmz]=127.0.0.2 [internal]=127.0.0.3 [ext]=127.0.0.4)
declare -A FQDN_OF=([dmz]=dmz.example.test [internal]=mx.example.test [ext]=mta.partner.test)

say() { echo "$SAY: $*" >&2; }
FAILED=0
fail() {
  say "FAIL: $*"
  FAILED=1
}

# Exit 77 (skipped) when not root; 1 when something the run needs is missing.
lab_site_preflight() {
  if [[ $(id -u) != 0 ]]; then
    say "SKIP: needs root (lab.sh creates namespaces and starts Postfix)"
    exit 77
  fi
  [[ -x $LAB_SH ]] || { say "no lab script at $LAB_SH"; exit 1; }
  local p
  for p in maillens maillens-collector maillens-agent; do
    [[ -x $BIN/$p ]] || { say "no $BIN/$p: build first"; exit 1; }
  done
  command -v jq >/dev/null || { say "jq is not installed (scripts/setup.sh installs it)"; exit 1; }
}

# The work directory W (an existing one when given), with a trap that stops the programs,
# brings the lab down and removes W unless the run failed or KEEP=1.
lab_site_workdir() {
  W=${1:-$(mktemp -d "${TMPDIR:-/tmp}/maillens-$SAY.XXXXXX")}
  chmod 755 "$W" # Postfix's unprivileged daemons must reach the lab's queue directories below it
  export LAB_DIR=$W/lab
  ST=$LAB_DIR/state
  DATA=$W/data
  PIDS=()
  trap lab_site_cleanup EXIT
}

lab_site_cleanup() {
  local rc=$? p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$LAB_SH" down >/dev/null 2>&1 || true
  if [[ $rc != 0 || $FAILED != 0 || ${KEEP:-0} == 1 ]]; then
    say "work directory kept: $W (collector.log, agent-*.log, lab/state/logs)"
    for p in "$W"/collector.log "$W"/agent-*.log; do
      [[ -f $p ]] && { echo "--- tail $p"; tail -n 15 "$p"; }
    done
  else
    rm -rf "$W"
  fi
}

# The lab up, a site CA with certificates and tokens for the three agents and a reader named
# $1, and the collector listening on a free loopback port ($port) with mutual TLS.
lab_site_start_collector() {
  say "lab up in $LAB_DIR"
  "$LAB_SH" up >"$W/lab-up.log" 2>&1 || { cat "$W/lab-up.log"; exit 1; }
  "$SRC/deploy/make-certs.sh" -o "$W/pki" -n localhost,127.0.0.1 -a dmz -a mx -a mta -r "$1" \
    >"$W/make-certs.log"
  port=""
  local candidate
  for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if [[ -z $(ss -Hltn "sport = :$candidate") ]]; then port=$candidate; break; fi
  done
  [[ -n $port ]] || { say "no free port"; exit 1; }
  cat >"$W/collector.conf" <<EOF
listen = 127.0.0.1:$port
data_dir = $DATA
tls_cert = $W/pki/collector.pem
tls_key = $W/pki/collector.key
tls_client_ca = $W/pki/ca.pem
agent_tokens_file = $W/pki/agent.tokens
reader_tokens_file = $W/pki/reader.tokens
EOF
  "$BIN/maillens-collector" --config "$W/collector.conf" >"$W/collector.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    [[ -n $(ss -Hltn "sport = :$port") ]] && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$W/collector.log"; exit 1; }
    sleep 0.1
  done
  [[ -n $(ss -Hltn "sport = :$port") ]] || { say "collector does not listen on :$port"; exit 1; }
}

# Writes the agent configuration of lab instance $1 (to $W/agent-HOST.conf); extra lines
# follow on standard input.
lab_site_agent_conf() {
  local i=$1 h=${HOSTNAME_OF[$1]}
  {
    cat <<EOF
collector = 127.0.0.1:$port
host = $h
role = $i
addresses = ${IP_OF[$i]}
aliases = ${FQDN_OF[$i]}
files = $ST/logs/$i.maillog
state_dir = $W/agent-$h
start_at = beginning
batch_wait_ms = 100
token_file = $W/pki/agents/$h.token
tls_ca = $W/pki/ca.pem
tls_cert = $W/pki/agents/$h.pem
tls_key = $W/pki/agents/$h.key
EOF
    cat
  } >"$W/agent-$h.conf"
}
