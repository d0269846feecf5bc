#!/usr/bin/env bash
# make-certs.sh -- a site CA, the collector's server certificate, one client certificate and one
# token per agent, and reader tokens for the `maillens --server` CLI. openssl(1) only.
#
# Usage:
#   deploy/make-certs.sh [-o DIR] [-n NAME[,NAME|IP...]] [-a HOST]... [-r READER]... [-d DAYS]
#
#   -o DIR     output directory (default ./maillens-pki); created mode 700
#   -n NAMES   the collector's DNS names and IP addresses, comma-separated; all go into the
#              certificate's subjectAltName, the first is its CN (default: this host's FQDN)
#   -a HOST    an agent host, as its maillog names it (Postfix logs the first label of
#              myhostname: "dmz", "mx"); repeat for each host
#   -r READER  a label for a reader token (the query side: `maillens --server`); repeat
#   -d DAYS    validity of new certificates (default 825)
#
# Run it again to add agents or readers: an existing CA, collector certificate, agent
# certificate or token is kept, never replaced (delete a file to have it made again).
#
# Output (what goes where):
#   ca.pem                   site CA certificate   -> every agent (tls_ca), the collector
#                                                     (tls_client_ca), CLI users (--tls-ca)
#   ca.key                   site CA key           -> nowhere; keep it offline
#   collector.pem/.key       server certificate    -> collector: tls_cert, tls_key
#   agent.tokens             "HOST TOKEN" lines    -> collector: agent_tokens_file (mode 600)
#   reader.tokens            "NAME TOKEN" lines    -> collector: reader_tokens_file (mode 600)
#   agents/HOST.pem/.key     client certificate    -> agent on HOST: tls_cert, tls_key
#   agents/HOST.token        that agent's token    -> agent on HOST: token_file
#   readers/NAME.token       a reader's token      -> `maillens --server ... --token-file`
#   readers/NAME.pem/.key    a reader's client     -> `maillens --server ... --tls-cert/--tls-key`
#                            certificate              (needed when the collector sets tls_client_ca)
set -euo pipefail
umask 077

out=./maillens-pki
names=$(hostname -f 2>/dev/null || hostname)
days=825
agents=()
readers=()

# The comment above as the usage: on stdout with exit 0 when asked for (-h, --help), on stderr
# with exit 2 after a wrong argument.
usage() {
  local code=${1:-2}
  if ((code == 0)); then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print } /^set -euo/ { exit }' "$0"
  else
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print } /^set -euo/ { exit }' "$0" >&2
  fi
  exit "$code"
}
die() {
  echo "make-certs: $*" >&2
  exit 1
}

[[ ${1:-} == --help ]] && usage 0
while getopts "o:n:a:r:d:h" opt; do
  case $opt in
    o) out=$OPTARG ;;
    n) names=$OPTARG ;;
    a) agents+=("$OPTARG") ;;
    r) readers+=("$OPTARG") ;;
    d) days=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
(($# == 0)) || usage
command -v openssl >/dev/null || die "openssl(1) is not installed (apt-get install openssl)"
[[ $days =~ ^[0-9]+$ ]] || die "-d wants a number of days, not '$days'"

# A name goes into a token file as the first word of a line and into a file name.
valid_label() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; }
for h in "${agents[@]}" "${readers[@]}"; do
  valid_label "$h" || die "'$h' is not a host name or label"
done

mkdir -p "$out/agents" "$out/readers"
chmod 700 "$out"
cd "$out"

# EC P-256 keys: small, fast, and understood by every gRPC TLS stack.
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

if [[ ! -s ca.pem ]]; then
  openssl req -x509 "${newkey[@]}" -keyout ca.key -out ca.pem -days $((days * 2)) \
    -subj "/O=maillens/CN=maillens site CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "make-certs: made the site CA: $out/ca.pem (keep $out/ca.key offline)"
fi
[[ -s ca.key ]] || die "$out/ca.pem exists but ca.key does not: cannot sign new certificates"

# sign NAME SUBJECT EXTFILE: NAME.key + NAME.pem signed by the site CA.
sign() {
  local name=$1 subject=$2 ext=$3
  openssl req "${newkey[@]}" -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
    -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

if [[ ! -s collector.pem ]]; then
  san=""
  IFS=, read -r -a list <<<"$names"
  for n in "${list[@]}"; do
    n=${n// /}
    [[ -n $n ]] || continue
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
  done
  [[ -n $san ]] || die "-n names no collector name"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
    "${san%,}" >collector.ext
  sign collector "/O=maillens/CN=${list[0]}" collector.ext
  echo "make-certs: made the collector certificate for ${san%,}"
fi

token() { openssl rand -hex 32; }

# add_token FILE LABEL TOKENFILE: one "LABEL TOKEN" line per label, kept if already there.
add_token() {
  local file=$1 label=$2 tokfile=$3
  touch "$file"
  if ! awk -v l="$label" '$1 == l { found = 1 } END { exit !found }' "$file"; then
    [[ -s $tokfile ]] || token >"$tokfile"
    printf '%s %s\n' "$label" "$(cat "$tokfile")" >>"$file"
  fi
  chmod 600 "$file" "$tokfile" 2>/dev/null || true
}

for h in "${agents[@]}"; do
  if [[ ! -s agents/$h.pem ]]; then
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"agents/$h.ext"
    sign "agents/$h" "/O=maillens/CN=$h" "agents/$h.ext"
    echo "make-certs: made the client certificate of agent $h"
  fi
  add_token agent.tokens "$h" "agents/$h.token"
done
for r in "${readers[@]}"; do
  # With tls_client_ca set (mutual TLS) the CLI must present a certificate as well.
  if [[ ! -s readers/$r.pem ]]; then
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"readers/$r.ext"
    sign "readers/$r" "/O=maillens/CN=$r" "readers/$r.ext"
    echo "make-certs: made the client certificate of reader $r"
  fi
  add_token reader.tokens "$r" "readers/$r.token"
done
touch agent.tokens reader.tokens
rm -f ca.srl
chmod 644 ca.pem collector.pem agents/*.pem readers/*.pem 2>/dev/null || true  # certificates are public
echo "make-certs: $out: $(wc -l <agent.tokens) agent token(s), $(wc -l <reader.tokens) reader token(s)"
