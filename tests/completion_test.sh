#!/usr/bin/env bash
# completion_test.sh -- `eval "$(maillens completion bash)"` in a real interactive bash (on a
# terminal from script(1), with bash's own COMP_WORDBREAKS, which splits words at ':'): typing
# `maillens search status:bou<TAB>` must give status:bounced, and kind: and field names
# complete the same way. What readline made of each line is read back with `history 1`.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail
BIN=${MAILLENS_BIN_DIR:-$(cd "$(dirname "$0")/../build/bin" && pwd)}
fail() { echo "completion_test: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN/maillens" completion bash >"$work/maillens.bash"
# MAILLENS_COMPLETION_EDIT: a sed expression applied to the script (to check this test fails).
if [[ -n ${MAILLENS_COMPLETION_EDIT:-} ]]; then sed -i "$MAILLENS_COMPLETION_EDIT" "$work/maillens.bash"; fi

# typed (TAB as \t) -> what the line must read after completion
declare -A CASES=(
  ['maillens search status:bou\t']='maillens search status:bounced '
  ['maillens search kind:postscreen_pa\t']='maillens search kind:postscreen_pass '
  ['maillens search from:a to:b stat\t']='maillens search from:a to:b status:'
  ['maillens search --oldest\t']='maillens search --oldest-first '
  ['maillens tr\t']='maillens trace '
)
# Each line runs after completion (against a data directory that does not exist).
input="source '$work/maillens.bash'; PATH='$BIN':\$PATH; export MAILLENS_DATA='$work/none'\n"
for typed in "${!CASES[@]}"; do input+="${typed} >/dev/null 2>&1\n"; done
input+="history\nexit\n"
out=$(printf "$input" | HISTFILE=/dev/null script -q -c "bash --norc -i" /dev/null 2>&1 | tr -d '\r')
for typed in "${!CASES[@]}"; do
  want="${CASES[$typed]}"
  grep -aqF -- "$want" <<<"$(grep -a '^ *[0-9]\+  maillens' <<<"$out" | sed 's/^ *[0-9]*  //')" ||
    fail "typed '${typed//\\t/<TAB>}', the line did not become '$want':"$'\n'"$(grep -a '^ *[0-9]\+  maillens' <<<"$out")"
  echo "ok: ${typed//\\t/<TAB>} -> $want"
done
