#!/bin/bash
# run.sh - run every test program of every build and print one summary.
#
# Usage: tests/run.sh BUILD_DIR [BUILD_DIR...]   (e.g. build build/san)
# Each tests/<level>/test_* program is a cmocka binary; its summary lines are
# read and added up. A program that dies without a summary counts as one
# failure. Levels bpf/, integration/ and systemd/ need root; without it they
# are counted as skipped (never as passed). A level with no test program fails
# the run; so does, when running as root, a level whose programs passed nothing
# and failed nothing (all skipped). systemd/ (Debian 12 booted in
# systemd-nspawn with the package of `make deb`) tests the package, not a build
# directory: it runs once, with the first build. The last line is
# "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
failed_programs=()
logdir=$(mktemp -d /tmp/bpfwrap-tests.XXXXXX)

# run_program - run one test binary, add its counts to the totals
run_program() {
	local prog=$1 label=$2 log
	log="$logdir/$(echo "$label" | tr '/ ' '__').log"
	local start=$SECONDS
	timeout --kill-after=10 1200 "$prog" >"$log" 2>&1
	local rc=$?
	local p f s
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\.$/\1/p' "$log" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:$/\1/p' "$log" | tail -1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:$/\1/p' "$log" | tail -1)
	p=${p:-0} f=${f:-0} s=${s:-0}
	if [ -z "$(grep -m1 '^\[==========\] .* test(s) run\.' "$log")" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
		f=$((f + 1))	# crashed, timed out or sanitizer error without a test failure
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	printf '%-52s %4d passed %3d failed %3d skipped  (%ds)\n' "$label" "$p" "$f" "$s" $((SECONDS - start))
	if [ "$f" -ne 0 ]; then
		failed_programs+=("$label")
		sed 's/^/    | /' "$log" | grep -vE '^\s+\| \[ (RUN|      OK) ' | tail -60
	fi
	grep -h '^\[  SKIPPED \] [a-z_]' "$log" | sed 's/^/    skipped: /' | sort -u | head -20
	grep -h '^# skip: ' "$log" | sed 's/^/    /' | sort -u | head -20
}

first_build=${1:-}	# the systemd level runs with this build only
# check_level - fail the run for a level that found no program, or (as root) skipped entirely
check_level() {
	local label=$1 found=$2 ran=$3 passed_here=$4 failed_here=$5 why
	if [ "$found" -eq 0 ]; then
		why="no test program found (not built?)"
	elif [ "$(id -u)" = 0 ] && [ "$ran" -gt 0 ] && [ "$passed_here" -eq 0 ] && [ "$failed_here" -eq 0 ]; then
		why="every test skipped (0 passed) although running as root"
	else
		return 0
	fi
	echo "$label: $why: counted as 1 failure"
	failed=$((failed + 1))
	failed_programs+=("$label")
}

for build in "$@"; do
	for level in unit bpf integration systemd; do
		[ "$level" = systemd ] && [ "$build" != "$first_build" ] && continue
		# the fuzzer first: its corpus feeds test_differential's fuzz-corpus case
		progs=()
		for prog in "$build"/tests/$level/test_*; do
			[[ $prog == */test_fuzz ]] && progs=("$prog" "${progs[@]}") || progs+=("$prog")
		done
		found=0 ran=0 passed_before=$passed failed_before=$failed
		for prog in "${progs[@]}"; do
			[ -x "$prog" ] || continue
			found=$((found + 1))
			label="$build/$level/$(basename "$prog")"
			if [ "$level" != unit ] && [ "$(id -u)" != 0 ]; then
				echo "$label: needs root, counted as 1 skipped"
				skipped=$((skipped + 1))
				continue
			fi
			BPFWRAP_BUILD=$build run_program "$prog" "$label"
			ran=$((ran + 1))
		done
		check_level "$build/$level" "$found" "$ran" $((passed - passed_before)) $((failed - failed_before))
	done
done

echo
if [ ${#failed_programs[@]} -ne 0 ]; then
	echo "failing programs: ${failed_programs[*]} (logs in $logdir)"
else
	rm -rf "$logdir"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
