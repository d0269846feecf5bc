#!/usr/bin/env bash
# The whole test suite: installs what is missing (scripts/setup.sh), builds with warnings as
# errors, then runs
#   1. under ASan+UBSan with clang (build-asan/): the parser's unit tests, every corpus line, a
#      bounded libFuzzer run of the parser and the journal codec, and the tests of the code
#      that owns memory across threads and processes: the store (its threads, new days written
#      behind, failed writes), the ingest journal, the gRPC server, the agent;
#   2. under ThreadSanitizer with clang (build-tsan/): the threaded store, journal, server and
#      agent tests (suppressions and why: scripts/tsan.supp);
#   3. every test of the Release build (build/), through ctest.
# Idempotent; exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build

ASAN_TESTS=(core_test core_header_test core_smtpd_test core_queue_test parser_fuzz
  parser_corpus_test journal_codec_fuzz store_test collector_journal_test collector_server_test
  agent_test agent_model_test agent_queue_reader_test)
TSAN_TESTS=(store_test collector_journal_test collector_server_test agent_test)
pattern() { local IFS='|'; echo "^($*)$"; }
# Sanitizer builds at -O1 with line tables only: half the build time of -O2 -g, the same checks,
# stack traces with file and line.
SANITIZER_FLAGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" -DMAILLENS_WERROR=ON)

echo "== sanitizer build (clang, ASan+UBSan): parser, store, journal, server and agent tests, fuzzing"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja "${SANITIZER_FLAGS[@]}" \
  -DMAILLENS_SANITIZE=ON -DMAILLENS_FUZZ=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target "${ASAN_TESTS[@]}"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -R "$(pattern "${ASAN_TESTS[@]}")"

echo "== sanitizer build (clang, ThreadSanitizer): threaded store, journal, server and agent tests"
CC=clang CXX=clang++ cmake -S . -B build-tsan -G Ninja "${SANITIZER_FLAGS[@]}" \
  -DMAILLENS_TSAN=ON >/dev/null
cmake --build build-tsan -j"$(nproc)" --target "${TSAN_TESTS[@]}"
# ignore_noninstrumented_modules: accesses made inside Debian's uninstrumented libraries (gRPC,
# libstdc++) are not recorded; TSan cannot see their synchronization (scripts/tsan.supp).
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 \
suppressions=$PWD/scripts/tsan.supp" \
  ctest --test-dir build-tsan --output-on-failure -j"$(nproc)" -R "$(pattern "${TSAN_TESTS[@]}")"

echo "== release build: the whole suite"
# One job more than cores: the real-Postfix tests spend most of their time waiting on Postfix.
ctest --test-dir build --output-on-failure -j"$(($(nproc) + 1))"
