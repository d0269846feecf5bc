#!/usr/bin/env bash
# package_test.sh -- builds the .deb with cpack from the configured build directory and checks
# it: the control fields (runtime dependencies found by dpkg-shlibdeps), the conffiles, the
# maintainer scripts and the file layout (dpkg-deb -I/-c/-e). As root, it then installs the
# package for real with `apt-get install ./maillens_*.deb` inside a throwaway overlay of this
# machine's root file system (a private mount namespace; nothing reaches the real system),
# checks the system user, the directories and their owners, starts the installed collector and
# agent as user maillens with the shipped configuration, and purges the package again.
# The installed units are checked offline with `systemd-analyze verify`. Not covered: starting
# them under systemd (not the init in this sandbox; the test runs their command lines by hand)
# and a fresh machine without the libraries installed (apt resolves the Depends against this
# machine's package cache).
# Env: MAILLENS_BUILD_DIR (build), MAILLENS_SOURCE_DIR (.), PACKAGE_TEST_KEEP=1.
set -euo pipefail

SRC=${MAILLENS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=$(cd "${MAILLENS_BUILD_DIR:-$SRC/build}" && pwd)
FAILED=0
say() { echo "package_test: $*" >&2; }
fail() {
  say "FAIL: $*"
  FAILED=1
}

for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { say "$tool is missing (cmake, dpkg-dev)"; exit 1; }
done
[[ -f $BUILD/CPackConfig.cmake ]] || { say "$BUILD is not configured (no CPackConfig.cmake)"; exit 1; }
for p in maillens maillens-collector maillens-agent; do
  [[ -x $BUILD/bin/$p ]] || { say "no $BUILD/bin/$p: build it first"; exit 1; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/maillens-package.XXXXXX")
cleanup() {
  if [[ $FAILED != 0 || ${PACKAGE_TEST_KEEP:-0} == 1 ]]; then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
(cd "$W" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$W/out" >"$W/cpack.log" 2>&1) ||
  { cat "$W/cpack.log"; exit 1; }
debs=("$W"/out/maillens_*.deb)
[[ ${#debs[@]} == 1 && -f ${debs[0]} ]] || { say "cpack made no single maillens_*.deb"; ls "$W/out"; exit 1; }
deb=${debs[0]}
say "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# ---------------------------------------------------------------- control
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == maillens ]] || fail "Package is '$(field Package)'"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] || fail "Architecture is '$(field Architecture)'"
depends=$(field Depends)
say "Depends: $depends"
# Debian 12 names (libspdlog1.10 Provides libspdlog1.10-fmt9, which dpkg-shlibdeps writes).
for pkg in adduser libgrpc++1.51 libgrpc29 libprotobuf32 libsqlite3-0 libabsl20220623 \
  libspdlog1.10-fmt9 zlib1g libc6; do
  tr ',' '\n' <<<"$depends" | sed -E 's/^ *//; s/ .*//' | grep -qxF -- "$pkg" ||
    fail "Depends lacks $pkg"
done

dpkg-deb -e "$deb" "$W/control"
printf '/etc/maillens/collector.conf\n/etc/maillens/agent.conf\n' >"$W/want-conffiles"
diff -u "$W/want-conffiles" <(sort -r "$W/control/conffiles" | uniq) ||
  fail "conffiles differ from collector.conf + agent.conf"
for s in postinst prerm postrm; do
  [[ -x $W/control/$s ]] || fail "maintainer script $s missing or not executable"
  sh -n "$W/control/$s" || fail "maintainer script $s has a syntax error"
done

# ---------------------------------------------------------------- layout
dpkg-deb -c "$deb" | awk '{ print $1, $2, $6 }' >"$W/contents"
want_files=(
  "-rwxr-xr-x root/root ./usr/bin/maillens"
  "-rwxr-xr-x root/root ./usr/sbin/maillens-collector"
  "-rwxr-xr-x root/root ./usr/sbin/maillens-agent"
  "-rw-r--r-- root/root ./etc/maillens/collector.conf"
  "-rw-r--r-- root/root ./etc/maillens/agent.conf"
  "-rw-r--r-- root/root ./lib/systemd/system/maillens-collector.service"
  "-rw-r--r-- root/root ./lib/systemd/system/maillens-agent.service"
  "-rwxr-xr-x root/root ./usr/share/maillens/make-certs.sh"
  "-rw-r--r-- root/root ./usr/share/doc/maillens/INSTALL.md"
  "-rw-r--r-- root/root ./usr/share/doc/maillens/copyright"
  "-rw-r--r-- root/root ./usr/share/doc/maillens/examples/collector.conf.example"
  "-rw-r--r-- root/root ./usr/share/doc/maillens/examples/agent.conf.example"
)
for f in "${want_files[@]}"; do grep -qxF -- "$f" "$W/contents" || fail "layout: missing '$f'"; done
# Nothing outside /usr, /etc, /lib; nothing under /usr/local.
bad=$(awk '$1 !~ /^d/ { print $3 }' "$W/contents" | grep -vE '^\./(usr|etc|lib)/' || true)
[[ -z $bad ]] || fail "files outside /usr, /etc, /lib: $bad"
! grep -q '\./usr/local/' "$W/contents" || fail "files under /usr/local"

# ---------------------------------------------------------------- install for real, in an overlay
if [[ $(id -u) != 0 ]]; then
  say "not root: the apt-get install in an overlay is not run (NOT TESTED)"
elif ! command -v apt-get >/dev/null; then
  say "no apt-get: the install is not run (NOT TESTED)"
else
  deb_name=$(basename "$deb")
  cat >"$W/in-root.sh" <<'EOF'
set -eu
export DEBIAN_FRONTEND=noninteractive
cd /pkgtest
step() { echo "in-root: $*"; }
fail() { echo "in-root: FAIL: $*"; status=1; }
status=0
step "apt-get install ./$DEB"
apt-get install -y "./$DEB" >apt.log 2>&1 || { cat apt.log; exit 1; }
getent passwd maillens >/dev/null || fail "no user maillens"
[ "$(stat -c '%U:%G %a' /var/lib/maillens)" = "maillens:maillens 750" ] ||
  fail "/var/lib/maillens is $(stat -c '%U:%G %a' /var/lib/maillens)"
[ "$(stat -c '%U:%G %a' /var/lib/maillens-agent)" = "maillens:maillens 750" ] ||
  fail "/var/lib/maillens-agent is $(stat -c '%U:%G %a' /var/lib/maillens-agent)"
[ "$(stat -c '%U:%G %a' /etc/maillens/collector.conf)" = "root:maillens 640" ] ||
  fail "/etc/maillens/collector.conf is $(stat -c '%U:%G %a' /etc/maillens/collector.conf)"
dpkg-query -W -f='${Conffiles}\n' maillens | grep -q '/etc/maillens/collector.conf' ||
  fail "dpkg does not list collector.conf as a conffile"
/usr/bin/maillens version >/dev/null || fail "maillens version fails (missing library?)"
# systemd is not the init here, but systemd-analyze reads the installed units offline.
if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify the installed units"
  if ! systemd-analyze verify /lib/systemd/system/maillens-collector.service \
      /lib/systemd/system/maillens-agent.service >verify.log 2>&1 || [ -s verify.log ]; then
    fail "systemd-analyze verify: $(cat verify.log)"
  fi
fi
# The command lines of the units, by hand (no systemd here), as user maillens and group adm.
step "maillens-collector and maillens-agent as user maillens with the shipped configuration"
setpriv --reuid=maillens --regid=maillens --init-groups \
  /usr/sbin/maillens-collector --config /etc/maillens/collector.conf >collector.log 2>&1 &
cpid=$!
# The agent's host defaults to the first label of the machine's name; the line must be its.
mkdir -p /var/log
printf '%s %s postfix/qmgr[1]: 1A2B3C4D5E: from=<a@example.org>, size=1, nrcpt=1 (queue active)\n' \
  "$(date '+%b %d %H:%M:%S')" "$(hostname | cut -d. -f1)" >/var/log/mail.log
chown root:adm /var/log/mail.log && chmod 640 /var/log/mail.log
setpriv --reuid=maillens --regid=maillens --groups=adm \
  /usr/sbin/maillens-agent --config /etc/maillens/agent.conf >agent.log 2>&1 &
apid=$!
found=0
for i in $(seq 100); do
  if setpriv --reuid=maillens --regid=maillens --init-groups \
       /usr/bin/maillens --data /var/lib/maillens search qid:1A2B3C4D5E --lines 2>/dev/null | grep -q 1A2B3C4D5E; then
    found=1; break
  fi
  sleep 0.1
done
[ $found = 1 ] || { fail "the agent's line did not reach the collector's store"; cat collector.log agent.log; }
kill -TERM $apid $cpid; wait $apid $cpid || true
step "apt-get purge maillens"
apt-get purge -y maillens >>apt.log 2>&1 || { cat apt.log; exit 1; }
[ ! -e /usr/sbin/maillens-collector ] || fail "purge left /usr/sbin/maillens-collector"
[ ! -e /etc/maillens/collector.conf ] || fail "purge left /etc/maillens/collector.conf"
[ ! -e /var/lib/maillens-agent ] || fail "purge left /var/lib/maillens-agent"
exit $status
EOF
  # A private mount namespace; / as the read-only lower layer of an overlay whose upper layer
  # is a tmpfs: the install writes only there, and everything vanishes with the namespace.
  if unshare --mount --propagation private bash -c '
      set -e
      W=$1
      mkdir -p "$W/ovl"
      mount -t tmpfs tmpfs "$W/ovl"
      mkdir -p "$W/ovl/u" "$W/ovl/w" "$W/ovl/m"
      mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ovl/u,workdir=$W/ovl/w" "$W/ovl/m"
      for d in proc dev sys; do mount --rbind "/$d" "$W/ovl/m/$d"; done
      mount -t tmpfs tmpfs "$W/ovl/m/run"
      mkdir -p "$W/ovl/m/pkgtest"
      cp "$W/out/$2" "$W/in-root.sh" "$W/ovl/m/pkgtest/"
      chroot "$W/ovl/m" env DEB="$2" sh /pkgtest/in-root.sh' _ "$W" "$deb_name" >"$W/in-root.log" 2>&1; then
    sed 's/^/  /' "$W/in-root.log" >&2
  else
    sed 's/^/  /' "$W/in-root.log" >&2
    fail "installing, running or purging the package in the overlay failed"
  fi
fi

if ((FAILED)); then exit 1; fi
say "PASS"
