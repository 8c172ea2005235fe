#!/bin/sh
# The libFuzzer targets of tests/fuzz (built as build/fuzz/fuzz_<target>).
#
#   fuzz.sh replay TARGET...     every file of tests/fuzz/corpus/<target>/
#                                once, no fuzzing; fails on a crash, a leak,
#                                undefined behaviour or a hang
#   fuzz.sh run SECONDS TARGET...  fuzz each target for SECONDS, new inputs
#                                into build/fuzz/corpus/<target>, crashes
#                                into build/fuzz/crashes/
#
# The output of each target goes to build/fuzz/<target>.log (a replay's
# to <target>.replay.log); only a summary, or a failure's report, is
# printed.
set -u
mode=$1
shift
mkdir -p build/fuzz/crashes
failed=
passed=0
nfailed=0

case $mode in
replay)
	for t in "$@"; do
		log=build/fuzz/$t.replay.log
		n=$(ls tests/fuzz/corpus/$t | wc -l)
		if ./build/fuzz/fuzz_$t -timeout=30 tests/fuzz/corpus/$t/* \
		    >$log 2>&1; then
			echo "fuzz_$t: $n inputs replayed"
			passed=$((passed + n))
		else
			echo "fuzz_$t: FAILED (all of it in $log) on"
			grep '^Running: ' $log | tail -1
			grep -v -e '^Running: ' -e '^Executed ' $log | tail -40
			failed="$failed $t"
			nfailed=$((nfailed + 1))
		fi
	done
	echo "fuzz replay: $passed passed, $nfailed failed"
	;;
run)
	secs=$1
	shift
	for t in "$@"; do
		log=build/fuzz/$t.log
		dict=
		[ -f tests/fuzz/$t.dict ] && dict=-dict=tests/fuzz/$t.dict
		mkdir -p build/fuzz/corpus/$t
		echo "fuzz_$t: ${secs}s..."
		# shellcheck disable=SC2086
		./build/fuzz/fuzz_$t -max_total_time="$secs" -timeout=30 \
		    -print_final_stats=1 $dict \
		    -artifact_prefix=build/fuzz/crashes/$t- \
		    build/fuzz/corpus/$t tests/fuzz/corpus/$t >$log 2>&1
		rc=$?
		stat() { sed -n "s/^stat::$1: *//p" $log; }
		echo "fuzz_$t: $(stat number_of_executed_units) runs," \
		    "$(stat average_exec_per_sec) exec/s," \
		    "$(ls build/fuzz/corpus/$t | wc -l) inputs in" \
		    "build/fuzz/corpus/$t, $(grep -o 'cov: [0-9]*' $log |
		    tail -1)"
		if [ $rc -ne 0 ]; then
			echo "fuzz_$t: FAILED (all of it in $log):"
			if grep -q -e '^==[0-9]*== *ERROR' -e 'runtime error' \
			    -e 'deadly signal' $log; then
				grep -A30 -e '^==[0-9]*== *ERROR' \
				    -e 'runtime error' -e 'deadly signal' $log |
				    head -60
			else
				tail -20 $log
			fi
			failed="$failed $t"
		fi
	done
	if [ -n "$failed" ]; then
		cat <<EOT

Crashes in build/fuzz/crashes/ (failed:$failed): <target>-crash-<sha1>,
-leak-, -timeout- or -oom-.  For each, after the fix:
  cp build/fuzz/crashes/<target>-crash-<sha1> \\
      tests/fuzz/corpus/<target>/crash-<what-it-was>
  ./build/fuzz/fuzz_<target> tests/fuzz/corpus/<target>/crash-<what-it-was>
  make test-fuzz
and commit it with the fix: make test replays it from then on.
EOT
	fi
	;;
*)
	echo "usage: fuzz.sh replay TARGET... | run SECONDS TARGET..." >&2
	exit 2
	;;
esac
[ -z "$failed" ]
