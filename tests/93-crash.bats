#!/usr/bin/env bats
# Crash suite: kill -9 at random moments; afterwards every file is old or new,
# never partial, and the next command works by itself.

load helper

# Start "$@" in the background, kill -9 it after 0-9.9 ms, reap it.
kill_at_random() {
	"$@" >/dev/null 2>&1 &
	local pid=$!
	sleep "0.00$((RANDOM % 10))$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

@test "kill -9 during state migrate, 200 times: the state is V1 or V2, never partial" {
	killed_v1=0 killed_v2=0
	for i in $(seq 1 200); do
		install_state v1.json
		kill_at_random heimdal state migrate
		# Whatever moment it died, the file is one of the two whole states.
		heimdal-migrate "$HEIMDAL_HOME/state.json" >/dev/null ||
			fail "iteration $i: state is neither V1 nor V2: $(head -c 200 "$HEIMDAL_HOME/state.json")"
		if jq -e 'has("version")' "$HEIMDAL_HOME/state.json" >/dev/null; then
			killed_v2=$((killed_v2 + 1))
		else
			killed_v1=$((killed_v1 + 1))
		fi
		# The next command recovers by itself.
		run --separate-stderr heimdal state version
		[ "$status" -eq 0 ] || fail "iteration $i: state version failed: $stderr"
	done
	# Temporaries left by a killed writer are never taken for the state.
	for t in "$HEIMDAL_HOME"/state.json.tmp.*; do
		[ -e "$t" ] || continue
		[ "$(jq -r .version "$HEIMDAL_HOME/state.json")" = 2 ]
	done
	echo "# died before the rename: $killed_v1, after: $killed_v2" >&3
}

@test "kill -9 while two processes create the machine id: one id, never empty" {
	for i in $(seq 1 50); do
		rm -f "$HEIMDAL_HOME/machine-id"
		kill_at_random heimdal-migrate "$FIXTURES/v1.json"
		heimdal-migrate "$FIXTURES/v1.json" >"$BATS_TEST_TMPDIR/a.json" &
		heimdal-migrate "$FIXTURES/v1.json" >"$BATS_TEST_TMPDIR/b.json"
		wait
		id=$(cat "$HEIMDAL_HOME/machine-id")
		[ -n "$id" ]
		[ "$(jq -r .machine.id "$BATS_TEST_TMPDIR/a.json")" = "$id" ]
		[ "$(jq -r .machine.id "$BATS_TEST_TMPDIR/b.json")" = "$id" ]
	done
}
