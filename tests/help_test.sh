#!/usr/bin/env bash
# help_test.sh -- every program and every subcommand answers --help (and -h) with its usage on
# stdout and exit 0, without a data directory, a collector or a configuration file, and before
# any other check of its arguments. The commands are read from the programs' own usage (the
# command list of `maillens --help`, the subcommands of `archive` and `hosts`), so a command
# added there is checked here without editing this test.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail

BIN=${MAILLENS_BIN_DIR:-$(cd "$(dirname "$0")/../build/bin" && pwd)}
ML="$BIN/maillens"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "help_test: $*" >&2; exit 1; }

# check NAME WANT CMD...: CMD exits 0 and prints WANT (a usage line) on stdout.
check() {
  local name=$1 want=$2
  shift 2
  local out rc=0
  out=$("$@" 2>"$work/err") || rc=$?
  ((rc == 0)) || fail "$name: exit $rc: $(cat "$work/err")"
  grep -qiF -- "$want" <<<"$out" || fail "$name: no '$want' on stdout: $out"
  echo "ok: $name"
}

for program in maillens-agent maillens-collector; do
  for flag in --help -h; do
    check "$program $flag" "--config" "$BIN/$program" "$flag"
  done
done
check "maillens-simulate --help" "usage" "$BIN/maillens-simulate" --help

check "maillens --help" "usage: maillens" "$ML" --help
commands=$("$ML" --help | sed -n '/^commands:/,$p' | sed -n 's/^  \([a-z]\+\).*/\1/p')
n=$(wc -w <<<"$commands")
((n >= 14)) || fail "only $n commands in maillens --help: $commands"
# Without data, and with a collector that is not there: help needs neither.
for cmd in $commands; do
  for flag in --help -h; do
    check "maillens $cmd $flag" "usage" "$ML" --data "$work/none" "$cmd" "$flag"
  done
  check "maillens --server $cmd --help" "usage" "$ML" --server 127.0.0.1:1 "$cmd" --help
done
for group in archive hosts; do
  subs=$("$ML" "$group" --help |
    sed -n "s/^.*maillens \[--data DIR[^]]*\] $group \[\?\([a-z]\+\).*/\1/p" | sort -u)
  [[ $(wc -w <<<"$subs") -ge 2 ]] || fail "no subcommands in maillens $group --help: $subs"
  for sub in $subs; do
    check "maillens $group $sub --help" "usage" "$ML" --data "$work/none" "$group" "$sub" --help
  done
done
# help's topics: `help TOPIC --help` is the topic's guide, not the list of commands.
topics=$("$ML" help | sed -n '/topics:$/,/^[^ ]/p' | sed -n 's/^  \([a-z]\+\) .*/\1/p')
[[ $(wc -w <<<"$topics") -ge 3 ]] || fail "no topics in maillens help: $topics"
for topic in $topics; do
  check "maillens help $topic --help" "maillens $topic" "$ML" help "$topic" --help
  grep -qF -- "commands:" <<<"$("$ML" help "$topic" --help)" &&
    fail "maillens help $topic --help printed the command list"
done
SRC=${MAILLENS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
for flag in --help -h; do
  check "make-certs.sh $flag" "make-certs.sh" bash "$SRC/deploy/make-certs.sh" "$flag"
done
# A usage error still fails (exit 2), so the checks above are not vacuous.
if "$ML" search --no-such-flag >/dev/null 2>&1; then fail "an unknown flag was accepted"; fi
if "$BIN/maillens-agent" --no-such-flag >/dev/null 2>&1; then fail "agent accepted an unknown flag"; fi
rc=0
"$BIN/maillens-collector" >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "maillens-collector without --config: exit $rc, not 2"
echo "help_test: every program and subcommand answers --help"
