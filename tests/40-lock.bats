#!/usr/bin/env bats
# heimdal-lock: the local lock, its record, stale detection, run, and the
# porcelain's lock-info / unlock / guard.

load helper

setup() {
	setup_scratch
	# A live process that is not an ancestor of the commands under test: the
	# holder of locks taken "by someone else".
	sleep 600 3>&- &
	HOLDER=$!
	LOCK="$HEIMDAL_HOME/state.lock"
}

teardown() {
	kill "$HOLDER" 2>/dev/null || true
	[ -z "${BG:-}" ] || kill -9 "$BG" 2>/dev/null || true
}

config() {
	printf '%s\n' "$1" >"$HEIMDAL_HOME/lock_config.json"
}

@test "heimdal-lock --help prints usage to stdout; a bad flag or verb exits 2" {
	run --separate-stderr heimdal-lock --help
	expect_status 0
	[[ "$output" == "usage: heimdal-lock acquire --op OP"* ]] || fail "no usage"
	run --separate-stderr heimdal-lock acquire --bogus
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	run --separate-stderr heimdal-lock frobnicate
	expect_status 2
	[[ "$stderr" == *"unknown command 'frobnicate'"* ]] || fail "no message"
	run --separate-stderr heimdal-lock acquire
	expect_status 2
	[[ "$stderr" == *"--op is required"* ]] || fail "no message"
	run --separate-stderr heimdal-lock acquire --op x --pid abc
	expect_status 2
	[[ "$stderr" == *"--pid: expected an integer"* ]] || fail "no message"
}

@test "acquire writes and prints the spec's lock record" {
	run --separate-stderr heimdal-lock acquire --op apply --reason "Applying configuration" \
		--expected-duration 120 --pid "$HOLDER"
	expect_status 0
	expect_json '.id | startswith("lock-")'
	expect_json '.lock_type == "hybrid" and .operation == "apply"'
	expect_json ".machine.pid == $HOLDER and .machine.hostname == \"test-host\""
	expect_json ".machine.user == \"$USER\" and (.machine.id | length) == 36"
	expect_json '.created_at == "2024-01-15T10:30:00Z" and .expected_duration_seconds == 120'
	expect_json '.reason == "Applying configuration" and .state_serial == null'
	expect_json '.machine.pid_start > 0'
	[ "$(stat -c %a "$LOCK")" = 600 ] || fail "mode $(stat -c %a "$LOCK")"
	[ "$(jq -c 'del(.remote)' "$LOCK")" = "$(printf '%s' "$output" | jq -c 'del(.remote)')" ] ||
		fail "file and output differ"
}

@test "acquire records the state serial and defaults the duration to the timeout" {
	v2_state | jq '.lineage.serial = 42' >"$HEIMDAL_HOME/state.json"
	config '{"lock_type": "local", "timeout": 600}'
	run --separate-stderr heimdal-lock acquire --op sync --pid "$HOLDER"
	expect_status 0
	expect_json '.state_serial == null' # no --state: nothing is known of it
	heimdal-lock release <<<"$output"
	run --separate-stderr heimdal-lock acquire --op sync --pid "$HOLDER" --state "$HEIMDAL_HOME/state.json"
	expect_status 0
	expect_json '.state_serial == 42 and .expected_duration_seconds == 600'
	expect_json '.lock_type == "local" and .reason == "sync by heimdal"'
}

@test "a held lock: exit 4, nothing on stdout, the spec's message, lock unchanged" {
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal-lock acquire --op sync
	expect_status 4
	[ -z "$output" ] || fail "stdout not empty"
	id=$(jq -r .machine.id "$LOCK")
	expected="Error: State is currently locked

Operation: apply
Machine: test-host (${id:0:9}...)
User: $USER
PID: $HOLDER
Acquired: just now

This means another Heimdal operation is in progress."
	[ "$stderr" = "$expected" ] || fail "stderr: $stderr"
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ] || fail "files changed"
}

@test "release: only the matching id; the record on stdin works too" {
	lock=$(heimdal-lock acquire --op apply --pid "$HOLDER")
	run --separate-stderr heimdal-lock release --id lock-not-mine
	expect_status 4
	[[ "$stderr" == *"held by another operation (apply"*"not released"* ]] || fail "message"
	[ -f "$LOCK" ] || fail "lock removed by a foreign id"
	run --separate-stderr heimdal-lock release <<<"$lock"
	expect_status 0
	[ -z "$output" ] || fail "stdout not empty"
	[ ! -e "$LOCK" ] || fail "lock still there"
	run --separate-stderr heimdal-lock release --id whatever
	expect_status 0
	[[ "$stderr" == *"not locked; nothing to release"* ]] || fail "message"
	run --separate-stderr heimdal-lock release <<<'{"no": "id"}'
	expect_status 2
	[[ "$stderr" == *"<stdin>: .id"* ]] || fail "message"
}

@test "acquire in a pipeline: the script holds the lock, jq reads it, release takes it back" {
	run bash -c 'lock=$(heimdal-lock acquire -c --op pipeline) &&
		heimdal-lock info -c | jq -e --argjson l "$lock" ".id == \$l.id and .mine and .holder_alive" &&
		printf "%s" "$lock" | heimdal-lock release &&
		heimdal-lock info | jq -e ".locked == false"'
	expect_status 0
	[ ! -e "$LOCK" ] || fail "lock left behind"
}

@test "info: free, then held by another live process" {
	run --separate-stderr heimdal-lock info -c
	expect_status 0
	[ "$output" = '{"locked":false}' ] || fail "output"
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	run --separate-stderr env HEIMDAL_NOW=2024-01-15T10:40:00Z heimdal-lock info
	expect_status 0
	expect_json '.locked and (.stale | not) and .stale_reason == null and .holder_alive'
	expect_json '.age_seconds == 600 and (.mine | not) and .operation == "apply"'
}

@test "kill -9 of a holder: the next acquire breaks the stale lock" {
	sleep 600 3>&- &
	victim=$!
	heimdal-lock acquire --op apply --pid "$victim" >/dev/null
	kill -9 "$victim"
	wait "$victim" 2>/dev/null || true
	run --separate-stderr heimdal-lock info
	expect_json ".stale and .holder_alive == false and .stale_reason == \"process $victim is not running\""
	run --separate-stderr heimdal-lock -v acquire --op sync --pid "$HOLDER"
	expect_status 0
	expect_json '.operation == "sync"'
	[[ "$stderr" == *"breaking stale lock"*"process $victim is not running"* ]] || fail "$stderr"
}

@test "a reused pid (start time differs) is stale" {
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	# The same pid, but the recorded start time is not this process's.
	jq '.machine.pid_start -= 1' "$LOCK" >"$LOCK.new" && mv "$LOCK.new" "$LOCK"
	run --separate-stderr heimdal-lock info
	expect_json ".stale and .stale_reason == \"process $HOLDER is not running (its pid was reused)\""
	run --separate-stderr heimdal-lock acquire --op sync --pid "$HOLDER"
	expect_status 0
}

@test "a live local holder is never broken into, whatever its age" {
	config '{"timeout": 1}'
	heimdal-lock acquire --op apply --pid "$HOLDER" --expected-duration 1 >/dev/null
	run --separate-stderr env HEIMDAL_NOW=2024-03-15T10:30:00Z heimdal-lock acquire --op sync
	expect_status 4
	run --separate-stderr env HEIMDAL_NOW=2024-03-15T10:30:00Z heimdal-lock info
	expect_json '(.stale | not) and .age_seconds > 86400'
}

@test "detect_stale: false never breaks a lock, even a dead one" {
	config '{"detect_stale": false}'
	sleep 600 3>&- &
	victim=$!
	heimdal-lock acquire --op apply --pid "$victim" >/dev/null
	kill -9 "$victim"
	wait "$victim" 2>/dev/null || true
	run --separate-stderr heimdal-lock acquire --op sync
	expect_status 4
	run --separate-stderr heimdal-lock info
	expect_json '(.stale | not) and .holder_alive == false'
}

@test "a holder on another machine is stale after the timeout, or after 24 hours" {
	heimdal-lock acquire --op apply --pid "$HOLDER" --expected-duration 900 >/dev/null
	jq '.machine.id = "other-machine" | .machine.hostname = "laptop"' "$LOCK" >"$LOCK.new" &&
		mv "$LOCK.new" "$LOCK"
	# 10 minutes: within the expected duration (900 s > timeout 300 s).
	run --separate-stderr env HEIMDAL_NOW=2024-01-15T10:40:00Z heimdal-lock info
	expect_json '(.stale | not) and .holder_alive == null'
	run --separate-stderr env HEIMDAL_NOW=2024-01-15T10:46:00Z heimdal-lock info
	expect_json '.stale and .stale_reason == "lock is 960 seconds old (timeout 900 seconds)"'
	run --separate-stderr env HEIMDAL_NOW=2024-01-16T10:31:00Z heimdal-lock info
	expect_json '.stale and .stale_reason == "machine laptop has not been seen for 24 hours"'
	run --separate-stderr env HEIMDAL_NOW=2024-01-15T10:46:00Z heimdal-lock acquire --op sync --pid "$HOLDER"
	expect_status 0
	expect_json '.machine.id != "other-machine"'
}

@test "a corrupt lock file: exit 2 with the hint, never deleted; unlock --force removes it" {
	# This machine's id and the guard file exist from an earlier lock.
	heimdal-lock run --op first -- true
	install_state
	printf '{"id": "lock-1", "operation": ' >"$LOCK"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal-lock acquire --op apply
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[ "$stderr" = "Error: Failed to read lock file: invalid JSON
  $LOCK
If no heimdal operation is running, remove it with 'heimdal state unlock --force'." ] ||
		fail "stderr: $stderr"
	for cmd in info "release --id lock-1"; do
		run --separate-stderr heimdal-lock $cmd
		expect_status 2
		[[ "$stderr" == *"Failed to read lock file: invalid JSON"* ]] || fail "$cmd: $stderr"
	done
	run --separate-stderr heimdal state migrate
	expect_status 2
	[[ "$stderr" == *"Failed to read lock file: invalid JSON"* ]] || fail "migrate: $stderr"
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ] || fail "files changed"
	run --separate-stderr heimdal-lock unlock --force --id lock-1
	expect_status 4
	[ -f "$LOCK" ] || fail "removed despite --id"
	run --separate-stderr heimdal-lock unlock --force
	expect_status 0
	expect_json '.corrupt and (.text | startswith("{\"id\": \"lock-1\""))'
	[ ! -e "$LOCK" ] || fail "still there"
}

@test "a record with a missing field is corrupt too, naming the field" {
	lock=$(heimdal-lock acquire --op apply --pid "$HOLDER")
	jq 'del(.machine.pid)' <<<"$lock" >"$LOCK"
	run --separate-stderr heimdal-lock acquire --op apply
	expect_status 2
	[[ "$stderr" == "Error: Failed to read lock file: invalid lock record: .machine.pid: expected a positive integer"* ]] ||
		fail "stderr: $stderr"
	# Read as strictly as written: what lock.schema.json refuses is refused here too.
	for f in '.id = "lock-1"|.id' '.extra = 1|.extra' '.machine.hostname = "a\u001bb"|.machine.hostname' \
		'.state_serial = -1|.state_serial'; do
		jq "${f%|*}" <<<"$lock" >"$LOCK"
		run --separate-stderr heimdal-lock info
		expect_status 2
		[[ "$stderr" == "Error: Failed to read lock file: invalid lock record: ${f##*|}"* ]] ||
			fail "$f: $stderr"
	done
}

@test "unlock: refused without --force; with --id only that lock; prints what it removed" {
	lock=$(heimdal-lock acquire -c --op apply --pid "$HOLDER")
	run --separate-stderr heimdal-lock unlock
	expect_status 2
	[[ "$stderr" == *"refusing without --force"* ]] || fail "$stderr"
	run --separate-stderr heimdal-lock unlock --force --id lock-other
	expect_status 4
	[ -f "$LOCK" ] || fail "removed"
	run --separate-stderr heimdal-lock unlock --force --id "$(jq -r .id <<<"$lock")"
	expect_status 0
	expect_json ".id == $(jq .id <<<"$lock") and .operation == \"apply\""
	run --separate-stderr heimdal-lock unlock --force
	expect_status 0
	[ "$output" = null ] || fail "output: $output"
}

@test "lock_config.json: invalid values exit 2 naming the field; lock_type is case-insensitive" {
	config '{"lock_type": "Remote"}'
	run --separate-stderr heimdal-lock acquire --op apply
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"lock_config.json: .lock_type: expected \"Hybrid\", \"Local\" or \"Disabled\""* ]] ||
		fail "$stderr"
	[ ! -e "$LOCK" ] || fail "lock written"
	config '{"retry": {"attempts": "many"}}'
	run --separate-stderr heimdal-lock acquire --op apply
	expect_status 2
	[[ "$stderr" == *".retry.attempts: expected a number, got string"* ]] || fail "$stderr"
	config '{"lock_type": "LOCAL"}'
	run --separate-stderr heimdal-lock acquire --op apply --pid "$HOLDER"
	expect_status 0
	expect_json '.lock_type == "local"'
}

@test "--wait is bounded: retries adding up to more than 10 minutes are refused, naming .retry" {
	config '{"retry": {"attempts": 1000, "delay_seconds": 3600, "exponential_backoff": false}}'
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal-lock acquire --op apply --pid "$HOLDER" --wait
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lock: error: $HEIMDAL_HOME/lock_config.json: .retry: 1000 attempts 3600 seconds apart wait more than 600 seconds in all; at most 600 seconds (10 minutes) are allowed: lower .retry.attempts or .retry.delay_seconds" ] ||
		fail "stderr: $stderr"
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ] || fail "files changed"
	# Backoff doubles each wait: 10 attempts from 1 s is 1023 s.
	config '{"retry": {"attempts": 10, "delay_seconds": 1}}'
	run --separate-stderr heimdal-lock acquire --op apply --pid "$HOLDER"
	expect_status 2
	[[ "$stderr" == *".retry: 10 attempts starting 1 seconds apart wait more than 600 seconds"* ]] || fail "stderr: $stderr"
	# The porcelain refuses it the same way.
	run --separate-stderr heimdal state lock-info
	expect_status 2
	[[ "$stderr" == *"lock_config.json: .retry: "* ]] || fail "stderr: $stderr"
	# 600 s in all is the most: 9 attempts from 1 s (511 s) and 10 x 60 s pass.
	config '{"retry": {"attempts": 9, "delay_seconds": 1}}'
	run --separate-stderr heimdal-lock acquire -c --op apply --pid "$HOLDER"
	expect_status 0
	heimdal-lock release <<<"$output"
	config '{"retry": {"attempts": 10, "delay_seconds": 60, "exponential_backoff": false}}'
	run --separate-stderr heimdal-lock acquire --op apply --pid "$HOLDER"
	expect_status 0
}

@test "acquire never writes a record the next reader refuses: a reason or op with control characters" {
	run --separate-stderr heimdal-lock acquire --op apply --reason $'two\nlines' --pid "$HOLDER"
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lock: error: --reason: 'two\x0alines' holds a control character" ] ||
		fail "stderr: $stderr"
	[ ! -e "$LOCK" ] || fail "lock written"
	run --separate-stderr heimdal-lock acquire --op $'a\eb' --pid "$HOLDER"
	expect_status 2
	[[ "$stderr" == "heimdal-lock: error: --op: not an operation name: 'a\x1bb'"* ]] || fail "stderr: $stderr"
	[ ! -e "$LOCK" ] || fail "lock written"
}

@test "the spec's lock_config example is valid" {
	cp "$BATS_TEST_DIRNAME/../share/lock_config.example.json" "$HEIMDAL_HOME/lock_config.json"
	run --separate-stderr heimdal-lock acquire --op apply --pid "$HOLDER"
	expect_status 0
	expect_json '.lock_type == "hybrid" and .expected_duration_seconds == 600'
}

@test "Disabled: the warning, nothing written, commands run unlocked" {
	config '{"lock_type": "Disabled"}'
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null 2>&1 || true
	run --separate-stderr heimdal-lock acquire --op apply
	expect_status 0
	[ "$stderr" = "! Warning: State locking is disabled!" ] || fail "stderr: $stderr"
	expect_json '.lock_type == "disabled"'
	[ ! -e "$LOCK" ] || fail "lock written"
	run --separate-stderr env LC_ALL=C.UTF-8 heimdal-lock run --op x -- true
	expect_status 0
	[ "$stderr" = "⚠️  Warning: State locking is disabled!" ] || fail "stderr: $stderr"
}

@test "--wait retries as configured until the holder releases" {
	config '{"retry": {"attempts": 50, "delay_seconds": 0.05, "exponential_backoff": false}}'
	lock=$(heimdal-lock acquire -c --op apply --pid "$HOLDER")
	(sleep 0.5 && heimdal-lock release <<<"$lock") 3>&- &
	releaser=$!
	run --separate-stderr heimdal-lock acquire --op sync --pid "$HOLDER" --wait
	expect_status 0
	expect_json '.operation == "sync"'
	wait "$releaser"
	config '{"retry": {"attempts": 2, "delay_seconds": 0.01, "exponential_backoff": true}}'
	run --separate-stderr heimdal-lock -v acquire --op again --wait
	expect_status 4
	[ "$(grep -c 'retrying in' <<<"$stderr")" = 2 ] || fail "$stderr"
	[[ "$stderr" == *"retrying in 0.01 s"*"retrying in 0.02 s"*"State is currently locked"* ]] ||
		fail "$stderr"
}

@test "run holds the lock while CMD runs and exits with its status" {
	run --separate-stderr heimdal-lock run --op test -- sh -c 'heimdal-lock info -c; exit 7'
	expect_status 7
	expect_json '.locked and .operation == "test" and .mine'
	[ ! -e "$LOCK" ] || fail "lock left behind"
	run -127 --separate-stderr heimdal-lock run --op test -- no-such-command-here
	expect_status 127
	[ ! -e "$LOCK" ] || fail "lock left behind"
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	run --separate-stderr heimdal-lock run --op test -- touch "$BATS_TEST_TMPDIR/ran"
	expect_status 4
	[ ! -e "$BATS_TEST_TMPDIR/ran" ] || fail "CMD ran without the lock"
	run --separate-stderr heimdal-lock run --op test
	expect_status 2
}

@test "run passes signals to CMD and releases; kill -9 of run takes CMD down too" {
	heimdal-lock run --op test -- sleep 600 3>&- &
	BG=$!
	for _ in $(seq 100); do pgrep -P "$BG" sleep >/dev/null && break; sleep 0.05; done
	[ -e "$LOCK" ] || fail "no lock"
	kill -TERM "$BG"
	status=0
	wait "$BG" || status=$?
	[ "$status" = 143 ] || fail "status $status"
	[ ! -e "$LOCK" ] || fail "lock left behind"
	heimdal-lock run --op test -- sleep 600 3>&- &
	BG=$!
	for _ in $(seq 100); do pgrep -P "$BG" sleep >/dev/null && break; sleep 0.05; done
	child=$(pgrep -P "$BG" sleep)
	kill -9 "$BG"
	wait "$BG" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "$child" 2>/dev/null || fail "CMD outlived run"
	# The record's holder is dead: stale, and broken by the next acquire.
	run --separate-stderr heimdal-lock acquire --op next --pid "$HOLDER"
	expect_status 0
}

@test "state lock-info: not locked, the spec's block, stale and own locks" {
	run --separate-stderr heimdal state lock-info
	expect_status 0
	[ "$output" = "State is not locked" ] || fail "output"
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	id=$(jq -r .machine.id "$LOCK")
	run --separate-stderr env HEIMDAL_NOW=2024-01-15T10:32:00Z heimdal state lock-info
	expect_status 0
	[ "$output" = "State Lock Information:
  Operation: apply
  Machine: test-host (${id:0:9}...)
  User: $USER
  PID: $HOLDER
  Acquired: 2 minutes ago
  Lock ID: $(jq -r .id "$LOCK")" ] || fail "output"
	run --separate-stderr heimdal state lock-info --json
	expect_json '.locked and .operation == "apply"'
	kill -9 "$HOLDER"
	wait "$HOLDER" 2>/dev/null || true
	run --separate-stderr heimdal state lock-info
	[[ "$output" == *"  Stale: yes, process $HOLDER is not running
  Remove it with: heimdal state unlock --force" ]] || fail "output"
	heimdal-lock unlock --force >/dev/null
	run --separate-stderr heimdal-lock run --op mine -- heimdal state lock-info
	[[ "$output" == *"  Held by: this process" ]] || fail "output"
}

@test "state unlock: refused without --force, removes with it" {
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	run --separate-stderr heimdal state unlock
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"refusing to remove the lock without --force"* ]] || fail "$stderr"
	[ -f "$LOCK" ] || fail "removed"
	id=$(jq -r .id "$LOCK")
	run --separate-stderr heimdal state unlock --force
	expect_status 0
	[ "$output" = "OK Lock removed: $id (apply, pid $HOLDER)" ] || fail "output: $output"
	[ ! -e "$LOCK" ] || fail "still there"
	run --separate-stderr heimdal state unlock --force
	expect_status 0
	[ "$output" = "State is not locked" ] || fail "output: $output"
}

@test "state migrate takes the lock: refused while held, state unchanged; released after" {
	install_state
	heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state migrate
	expect_status 4
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "Error: State is currently locked"*"Operation: apply"* ]] || fail "$stderr"
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ] || fail "files changed"
	heimdal-lock unlock --force >/dev/null
	run --separate-stderr heimdal --verbose state migrate --json
	expect_status 0
	expect_json '.migrated'
	[[ "$stderr" == *"locked the state for migrate"*"released the state lock"* ]] || fail "$stderr"
	[ ! -e "$LOCK" ] || fail "lock left behind"
}

@test "state migrate under heimdal-lock run: the ancestor's lock is used, not taken again" {
	install_state
	run --separate-stderr heimdal-lock run --op batch -- heimdal --verbose state migrate --json
	expect_status 0
	expect_json '.migrated'
	[[ "$stderr" == *"an ancestor: proceeding"* ]] || fail "$stderr"
	[ ! -e "$LOCK" ] || fail "lock left behind"
}
