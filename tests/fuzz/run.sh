#!/bin/bash
# run.sh - build (if needed) and run the policy parser fuzzer for a bounded time.
#
# Usage: tests/fuzz/run.sh [BUILD_DIR [SECONDS]]     (defaults: build 60)
#
# Builds BUILD_DIR/tests/fuzz/fuzz_parse (clang, libFuzzer + ASan/UBSan) and
# BUILD_DIR/tests/diff/tool_gen, makes a seed corpus from tool_gen's random
# policies (allow text, NUL, deny text) plus BUILD_DIR/tests/fuzz/corpus (kept
# between runs), and fuzzes for SECONDS. Every finding (crash, sanitizer
# report, leak, timeout, out of memory) is copied to
# BUILD_DIR/tests/fuzz/artifacts/ (emptied at the start); exit status 1 then,
# 2 if the build failed, 0 if nothing was found.
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
seconds=${2:-60}
fuzzer=$build/tests/fuzz/fuzz_parse
gen=$build/tests/diff/tool_gen
artifacts=$build/tests/fuzz/artifacts
corpus=$build/tests/fuzz/corpus

san=
case "$build" in */san) san=SAN=1 ;; esac	# the same flags `make SAN=1` uses there
if ! make --no-print-directory $san BUILD="$build" "$fuzzer" "$gen"; then
	echo "fuzz: build failed" >&2
	exit 2
fi

work=$(mktemp -d /tmp/bpfwrap-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$artifacts"
mkdir -p "$artifacts" "$corpus" "$work/seeds" "$work/gen"

# seed corpus: allow text, a NUL byte, deny text
for seed in $(seq 1 64); do
	"$gen" "$seed" "$work/gen" 0 || exit 2
	{ cat "$work/gen/hosts.allow"; printf '\0'; cat "$work/gen/hosts.deny"; } >"$work/seeds/gen-$seed"
done

# the fuzzer writes new inputs into the first corpus directory (kept)
timeout --kill-after=10 $((seconds + 120)) "$fuzzer" \
	-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
	-artifact_prefix="$work/" -print_final_stats=1 \
	"$corpus" "$work/seeds" </dev/null
rc=$?

found=0
for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
	[ -e "$f" ] || continue
	cp "$f" "$artifacts/"
	found=$((found + 1))
done
if [ "$found" -gt 0 ] || [ "$rc" -ne 0 ]; then
	echo "fuzz: $found finding(s), fuzzer exit status $rc; inputs in $artifacts" >&2
	exit 1
fi
echo "fuzz: no findings in ${seconds}s"
exit 0
