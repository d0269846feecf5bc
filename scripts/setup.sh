#!/usr/bin/env bash
# Installs every Debian package maillens needs to build, test and run its demo, then configures
# and builds (warnings are errors). Idempotent: packages already installed are not touched; a
# second run only rebuilds what changed. Usage: scripts/setup.sh [BUILD_DIR]   (default: build, Release)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3 libabsl-dev libspdlog-dev zlib1g-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # the programs' flags and --help (CLI11, header-only)
  libcli11-dev
  # Prometheus metrics of agent and collector (collector/metrics.h, agent/metrics.h)
  prometheus-cpp-dev
  clang libclang-rt-14-dev
  tzdata pflogsumm openssl chromium
  # tests/postfix_e2e_test.sh and tests/package_test.sh: jq reads the CLI's JSON, dpkg-dev's
  # dpkg-shlibdeps finds the .deb's dependencies, iproute2 (ss) and util-linux (unshare,
  # nsenter, setpriv) run ../shared/postfix-lab/lab.sh and the install check
  jq dpkg-dev iproute2 util-linux
)
# The real-Postfix lab (the list lab.sh installs itself). Postfix conflicts with every other
# MTA, so with another one installed (exim4 on a standard Debian) they are left out unless
# MAILLENS_REPLACE_MTA=1; postfix_e2e_test then fails saying so.
LAB_PACKAGES=(postfix swaks libnet-ssleay-perl dovecot-core dovecot-lmtpd)
mta=$(dpkg-query -S /usr/sbin/sendmail 2>/dev/null | grep -v '^diversion' | cut -d: -f1 | head -1 || true)
if [[ -z $mta || $mta == postfix || ${MAILLENS_REPLACE_MTA:-0} == 1 ]]; then
  PACKAGES+=("${LAB_PACKAGES[@]}")
else
  echo "setup: $mta is installed; not installing postfix (set MAILLENS_REPLACE_MTA=1 to replace it)"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # No system Postfix: with "No configuration" the postinst writes no main.cf, so neither the
  # init script nor postfix.service starts one listening on port 25 of every interface (the lab
  # runs its own instances in a namespace).
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  dovecot_before=0
  [[ -s /run/dovecot/master.pid ]] && dovecot_before=1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # dovecot-core's postinst starts the system Dovecot (IMAP/POP3 on all interfaces) unless a
  # policy-rc.d forbids it; stop it again if this script caused it.
  if [[ $dovecot_before == 0 && -s /run/dovecot/master.pid ]]; then
    if [[ -d /run/systemd/system ]]; then
      $SUDO systemctl stop dovecot.service dovecot.socket || true
    else
      $SUDO /usr/sbin/dovecot stop || true
    fi
  fi
fi

BUILD_DIR=${1:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAILLENS_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
