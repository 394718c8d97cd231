#!/bin/sh
# RUSTC_WRAPPER for the fuzz build (scripts/fuzz.sh): libFuzzer's coverage instrumentation,
# debug assertions and overflow checks go into dbhost and its fuzz targets only. Dependencies
# build as plain release code: they are not what is under test, their coverage would only
# distract the fuzzer, and instrumenting them makes the cold build much slower.
# The flags are cargo-fuzz's (without its AddressSanitizer: dbhost is safe Rust).
rustc=$1
shift
case "${CARGO_PKG_NAME:-}" in
  dbhost | dbhost-fuzz)
    case " $* " in
      *" --crate-name build_script_"*) ;;
      *)
        exec "$rustc" "$@" -Cpasses=sancov-module \
          -Cllvm-args=-sanitizer-coverage-level=4 \
          -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
          -Cllvm-args=-sanitizer-coverage-pc-table \
          -Cllvm-args=-sanitizer-coverage-trace-compares \
          --cfg fuzzing -Cdebug-assertions -Coverflow-checks
        ;;
    esac
    ;;
esac
exec "$rustc" "$@"
