#!/usr/bin/env bash
# The whole test suite: installs what is missing (scripts/setup.sh), builds, then runs
#   1. under ASan+UBSan with clang (build-asan/): the parser's unit tests, every corpus line and
#      a bounded libFuzzer run, and the store's tests (store_test: its threads, new days
#      written behind, failed writes; about 80 s more to build);
#   2. every test of the Release build (build/), through ctest.
# Idempotent; exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build

echo "== sanitizer build (clang, ASan+UBSan): parser and store tests, fuzzing"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMAILLENS_SANITIZE=ON -DMAILLENS_FUZZ=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target core_test core_header_test core_smtpd_test \
  core_queue_test parser_fuzz parser_corpus_test journal_codec_fuzz store_test
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" \
  -R '^(core_test|core_header_test|core_smtpd_test|core_queue_test|parser_fuzz|parser_corpus_test|journal_codec_fuzz|store_test)$'

echo "== release build: the whole suite"
ctest --test-dir build --output-on-failure -j"$(nproc)"
