#!/usr/bin/env bats
# Real processes racing for the lock: on one machine, and two machines for
# the remote's refs/heimdal/lock.

load helper
load remote-lock

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
	worker() {
		for _ in $(seq 20); do
			heimdal-lock run --op count --wait -- \
				sh -c 'n=$(cat "$1"); echo $((n + 1)) >"$1"' sh "$counter" || return 1
		done
	}
	pids=()
	for _ in $(seq 20); do
		worker 3>&- &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || fail "a worker failed"
	done
	[ "$(cat "$counter")" = 400 ] || fail "counter: $(cat "$counter")"
	[ ! -e "$HEIMDAL_HOME/state.lock" ] || fail "lock left behind"
}

@test "two machines racing over git daemon: exactly one winner in each of 50 rounds" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	race_rounds 50
}

@test "two machines racing over a local-path remote: exactly one winner in each of 50 rounds" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	race_rounds 50
}

@test "two machines racing over a file:// remote: exactly one winner in each of 20 rounds" {
	setup_machines "file://$BATS_TEST_TMPDIR/remotes/origin.git"
	race_rounds 20
}
