#!/usr/bin/env bash
# link_test.sh -- the command line is a thin client: `maillens` links the store (for --data)
# and a gRPC client (for --server), never the collector's server, its journal, spdlog or
# prometheus-cpp; the agent never links the store. Checked on the built programs: their shared
# libraries (ldd) and the symbols they define (nm), so a new dependency through any library
# target fails here. And the folders keep their direction in the source: nothing in cli/,
# store/, report/, agent/ or core/ includes a collector/ header, and the store's library
# (its tests may check the report over it) none of cli/ or report/.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail

BIN=${MAILLENS_BIN_DIR:-$(cd "$(dirname "$0")/../build/bin" && pwd)}
fail() { echo "link_test: $*" >&2; exit 1; }

# forbid PROGRAM WHAT PATTERN...: no shared library or defined symbol of PROGRAM matches.
forbid() {
  local program=$1 what=$2
  shift 2
  local libs syms
  libs=$(ldd "$BIN/$program" | awk '{print $1}')
  syms=$(nm -C --defined-only "$BIN/$program" 2>/dev/null | awk '{$1=""; $2=""; print}')
  [[ -n $syms ]] || fail "$program: nm found no symbols (stripped?): the check would be vacuous"
  for pattern in "$@"; do
    if grep -E -- "$pattern" <<<"$libs" >/dev/null; then
      fail "$program links $what: $(grep -E -- "$pattern" <<<"$libs" | head -3 | tr '\n' ' ')"
    fi
    if grep -E -- "$pattern" <<<"$syms" >/dev/null; then
      fail "$program holds $what: $(grep -E -- "$pattern" <<<"$syms" | head -3 | tr '\n' ' ')"
    fi
  done
  echo "ok: $program without $what"
}

# The patterns must match where the code is linked: the collector itself holds all of them.
# (Output taken whole: grep -q stopping early would fail nm with SIGPIPE under pipefail.)
require() {
  local program=$1 pattern=$2 found
  found=$(nm -C --defined-only "$BIN/$program"; ldd "$BIN/$program")
  grep -qE -- "$pattern" <<<"$found" ||
    fail "$program has no '$pattern': the pattern would prove nothing"
}
for pattern in 'libspdlog' 'libprometheus-cpp' 'maillens::collector::CollectorServer' \
  'maillens::collector::IngestJournal' 'maillens::collector::StatusServiceImpl'; do
  require maillens-collector "$pattern"
done

forbid maillens "the server, spdlog or prometheus-cpp" 'libspdlog' 'libprometheus-cpp' \
  'maillens::collector::CollectorServer' 'maillens::collector::IngestJournal' \
  'maillens::collector::StatusServiceImpl'
forbid maillens-agent "the store" 'maillens::store::Store::' 'libsqlite3'

SRC=${MAILLENS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
# no_include FOLDER PREFIX [--library]: no file under FOLDER (with --library: no file but
# the *_test.cc) includes "PREFIX...".
no_include() {
  local folder=$1 prefix=$2 found
  [[ -d $SRC/$folder ]] || fail "no folder $SRC/$folder: the check would be vacuous"
  found=$(grep -rn --include='*.h' --include='*.cc' "#include \"$prefix" "$SRC/$folder" || true)
  [[ ${3:-} == --library ]] && found=$(grep -v '_test\.cc:' <<<"$found" || true)
  [[ -z $found ]] || fail "$folder/ includes $prefix: $(head -3 <<<"$found")"
  echo "ok: nothing in $folder/ includes $prefix"
}
# The pattern finds what it should: the collector includes the store.
grep -rq --include='*.cc' '#include "store/' "$SRC/collector" ||
  fail "collector/ includes no store/ header: the include check would prove nothing"
for folder in cli store report agent core; do no_include "$folder" collector/; done
for prefix in cli/ report/; do no_include store "$prefix" --library; done
echo "link_test: the command line and the agent link only what they use"
