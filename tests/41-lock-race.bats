#!/usr/bin/env bats
# Real processes racing for the lock: on one machine, and two machines for
# the remote's refs/heimdal/lock.

load helper
load remote-lock

# Under make check VALGRIND=1 every process runs under memcheck, 100 times
# slower: the races keep their shape with fewer rounds there.
rounds() {
	if [ -n "${HEIMDAL_TEST_VALGRIND:-}" ]; then echo "$2"; else echo "$1"; fi
}

setup() {
	setup_scratch
	sleep 600 3>&- &
	HOLDER=$!
}

teardown() {
	kill "$HOLDER" 2>/dev/null || true
	stop_daemon
}

@test "20 processes x 20 rounds of run -- read-increment-write: exactly 400" {
	printf '{"lock_type": "Local", "retry": {"attempts": 1000, "delay_seconds": 0.01, "exponential_backoff": false}}\n' \
		>"$HEIMDAL_HOME/lock_config.json"
	counter="$BATS_TEST_TMPDIR/counter"
	echo 0 >"$counter"
	n=$(rounds 20 4)
	worker() {
		for _ in $(seq "$n"); do
			heimdal-lock run --op count --wait -- \
				sh -c 'n=$(cat "$1"); echo $((n + 1)) >"$1"' sh "$counter" || return 1
		done
	}
	pids=()
	for _ in $(seq "$n"); do
		worker 3>&- &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || fail "a worker failed"
	done
	[ "$(cat "$counter")" = $((n * n)) ] || fail "counter: $(cat "$counter"), expected $((n * n))"
	[ ! -e "$HEIMDAL_HOME/state.lock" ] || fail "lock left behind"
}

@test "two machines racing over git daemon: exactly one winner in each of 50 rounds" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	race_rounds "$(rounds 50 5)"
}

@test "two machines racing over a local-path remote: exactly one winner in each of 50 rounds" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	race_rounds "$(rounds 50 5)"
}

@test "two machines racing over a file:// remote: exactly one winner in each of 20 rounds" {
	setup_machines "file://$BATS_TEST_TMPDIR/remotes/origin.git"
	race_rounds "$(rounds 20 3)"
}
