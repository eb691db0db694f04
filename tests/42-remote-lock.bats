#!/usr/bin/env bats
# The hybrid lock on the remote: taking and releasing refs/heimdal/lock, a
# live and a stale holder elsewhere, an unreachable remote, signals, and the
# conflict check.

load helper
load helper-git
load remote-lock

setup() {
	setup_scratch
	sleep 600 3>&- &
	HOLDER=$!
}

teardown() {
	kill "$HOLDER" 2>/dev/null || true
	[ -z "${BG:-}" ] || kill -9 "$BG" 2>/dev/null || true
	stop_daemon
	stop_silent
}

@test "hybrid over git daemon: the remote holds the record while locked, nothing after" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	[ -z "$stderr" ] || fail "stderr: $stderr"
	expect_json ".lock_type == \"hybrid\" and .remote.url == \"git://127.0.0.1:$PORT/origin.git\""
	expect_json '.remote.ref == "refs/heimdal/lock" and .state_serial == 1'
	record=$output
	[ "$(git -C "$REMOTE" cat-file -p refs/heimdal/lock:lock.json | jq -c .)" = \
		"$(jq -c 'del(.remote)' <<<"$record")" ] || fail "the remote holds another record"
	[ "$(git -C "$REMOTE" rev-parse refs/heimdal/lock)" = "$(jq -r .remote.commit <<<"$record")" ] ||
		fail "commit differs"
	[ "$(git -C "$REMOTE" rev-list --count refs/heimdal/lock)" = 1 ] || fail "not a root commit"
	jq -e '.remote.commit' "$(lockfile a)" >/dev/null || fail "local record lacks the remote part"
	run --separate-stderr as a heimdal-lock release <<<"$record"
	expect_status 0
	[ "$(remote_lock_id)" = none ] || fail "remote lock left behind"
	[ ! -e "$(lockfile a)" ] || fail "local lock left behind"
}

@test "a live holder on another machine: exit 4 with its details, no local lock left" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER" >/dev/null
	run --separate-stderr env $(menv b) HEIMDAL_NOW=2024-01-15T10:32:00Z heimdal-lock acquire --state "$(mstate b)" --op sync
	expect_status 4
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "Error: State is currently locked

Operation: apply
Machine: a ($(head -c 9 "$BATS_TEST_TMPDIR/machines/a/home/.heimdal/machine-id")...)
User: $USER
PID: $HOLDER
Acquired: 2 minutes ago

This means another Heimdal operation is in progress."* ]] || fail "stderr: $stderr"
	[ ! -e "$(lockfile b)" ] || fail "b kept its local lock"
	[ "$(remote_lock_id)" = "$(jq -r .id "$(lockfile a)")" ] || fail "remote lock changed"
}

@test "a stale remote holder (timed out) is taken over; its late release leaves the new lock alone" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	a_lock=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	run --separate-stderr as b env HEIMDAL_NOW=2024-01-15T10:36:00Z \
		heimdal-lock -v acquire --state "$(mstate b)" -c --op sync --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"taking over the stale remote lock"*"360 seconds old (timeout 300 seconds)"* ]] ||
		fail "stderr: $stderr"
	b_lock=$output
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$b_lock")" ] || fail "not taken over"
	run --separate-stderr as a heimdal-lock release <<<"$a_lock"
	expect_status 0
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$b_lock")" ] || fail "a removed b's lock"
	run --separate-stderr as b heimdal-lock release <<<"$b_lock"
	expect_status 0
	[ "$(remote_lock_id)" = none ] || fail "remote lock left behind"
}

@test "a stale holder over a local-path remote is taken over too; a live one is not" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER" >/dev/null
	run --separate-stderr as b heimdal-lock acquire --state "$(mstate b)" --op sync --pid "$HOLDER"
	expect_status 4
	run --separate-stderr as b env HEIMDAL_NOW=2024-01-16T10:31:00Z heimdal-lock -v acquire --state "$(mstate b)" --op sync --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"machine a has not been seen for 24 hours"* ]] || fail "stderr: $stderr"
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$output")" ] || fail "not taken over"
}

@test "a closed port: the spec's warning, and the lock is local only" {
	port=$(free_port)
	setup_machines "git://127.0.0.1:$port/origin.git"
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	[ "$stderr" = "! Warning: Cannot reach remote repository: connection refused
Proceeding with local-only lock.
Remember to sync when connection is restored." ] || fail "stderr: $stderr"
	expect_json '.remote == null and .lock_type == "hybrid"'
	[ -e "$(lockfile a)" ] || fail "no local lock"
	run --separate-stderr as a env LC_ALL=C.UTF-8 heimdal-lock run --state "$(mstate a)" --op x -- true
	expect_status 4
	as a heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	run --separate-stderr as a env LC_ALL=C.UTF-8 heimdal-lock run --state "$(mstate a)" --op x -- true
	expect_status 0
	[[ "$stderr" == "⚠️  Warning: Cannot reach remote repository: connection refused"* ]] ||
		fail "stderr: $stderr"
}

@test "a listener that never answers: the warning within remote_timeout" {
	start_silent
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	lock_config a '{"remote_timeout": 1}'
	run --separate-stderr timeout 20 env $(menv a) heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	[ "$stderr" = "! Warning: Cannot reach remote repository: timed out after 1 seconds
Proceeding with local-only lock.
Remember to sync when connection is restored." ] || fail "stderr: $stderr"
	expect_json '.remote == null'
	# Release does not touch the network when the remote was never taken.
	run --separate-stderr timeout 20 env $(menv a) heimdal-lock release <<<"$output"
	expect_status 0
	[ ! -e "$(lockfile a)" ] || fail "lock left behind"
}

@test "no repository or no origin: hybrid degrades to local with a debug message" {
	machine a
	v2_state | jq '.dotfiles_path = "/nonexistent/dotfiles"' >"$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.json"
	run --separate-stderr as a heimdal-lock -v acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"debug: /nonexistent/dotfiles: not a git repository"*"the lock is local only"* ]] ||
		fail "stderr: $stderr"
	as a heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	git init -q "$BATS_TEST_TMPDIR/plain"
	v2_state | jq --arg p "$BATS_TEST_TMPDIR/plain" '.dotfiles_path = $p' \
		>"$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.json"
	run --separate-stderr as a heimdal-lock -v acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"no remote 'origin': the lock is local only"* ]] || fail "stderr: $stderr"
}

@test "the porcelain guard takes and releases the remote lock (state migrate)" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	state="$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.json"
	jq --arg p "$BATS_TEST_TMPDIR/machines/a/dotfiles" '.dotfiles_path = $p' "$FIXTURES/v1.json" >"$state"
	run --separate-stderr as a heimdal --verbose state migrate --json
	expect_status 0
	expect_json '.migrated'
	[[ "$stderr" == *"took refs/heimdal/lock on git://127.0.0.1:$PORT/origin.git"*"released the state lock"* ]] ||
		fail "stderr: $stderr"
	[ "$(remote_lock_id)" = none ] || fail "remote lock left behind"
	[ ! -e "$(lockfile a)" ] || fail "local lock left behind"
	# Held by machine b: a's migrate is refused.
	jq --arg p "$BATS_TEST_TMPDIR/machines/a/dotfiles" '.dotfiles_path = $p' "$FIXTURES/v1.json" >"$state"
	as b heimdal-lock acquire --state "$(mstate b)" --op apply --pid "$HOLDER" >/dev/null
	before=$(snapshot "$BATS_TEST_TMPDIR/machines/a/home/.heimdal")
	run --separate-stderr as a heimdal state migrate
	expect_status 4
	[[ "$stderr" == "Error: State is currently locked"*"Machine: b ("* ]] || fail "stderr: $stderr"
	[ "$(snapshot "$BATS_TEST_TMPDIR/machines/a/home/.heimdal")" = "$before" ] || fail "files changed"
}

# A porcelain command blocked on a silent remote while holding the local lock.
interrupt_migrate() {
	local sig=$1
	start_silent
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	lock_config a '{"remote_timeout": 60}'
	# A V1 state: migrate has something to write, so it takes the lock.
	jq --arg p "$BATS_TEST_TMPDIR/machines/a/dotfiles" '.dotfiles_path = $p' "$FIXTURES/v1.json" \
		>"$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.json"
	# Background jobs of a script start with SIGINT ignored: give it back.
	# Not through `as`: $! must be heimdal itself, not a subshell.
	env $(menv a) env --default-signal=INT heimdal state migrate >/dev/null 2>&1 3>&- &
	BG=$!
	for _ in $(seq 200); do [ -e "$(lockfile a)" ] && break; sleep 0.05; done
	[ -e "$(lockfile a)" ] || fail "the lock was never taken"
	kill "-$sig" "$BG"
	status=0
	wait "$BG" || status=$?
	BG=
	[ ! -e "$(lockfile a)" ] || fail "lock left behind after SIG$sig"
}

@test "SIGTERM of a porcelain command holding the lock leaves no lock" {
	interrupt_migrate TERM
	[ "$status" = 143 ] || fail "status $status"
}

@test "SIGINT of a porcelain command holding the lock leaves no lock" {
	interrupt_migrate INT
	[ "$status" = 130 ] || fail "status $status"
}

# remote_carries FILTER: machine b pushes its state, through the jq FILTER,
# as the remote's .heimdal/state.json; machine a fetches it and tracks it.
remote_carries() {
	local dot="$BATS_TEST_TMPDIR/machines/b/dotfiles" a="$BATS_TEST_TMPDIR/machines/a"
	mkdir -p "$dot/.heimdal"
	jq "$1" "$BATS_TEST_TMPDIR/machines/b/home/.heimdal/state.json" >"$dot/.heimdal/state.json"
	git -C "$dot" add .heimdal/state.json
	git -C "$dot" commit -qm state
	git -C "$dot" push -q origin HEAD:main
	git -C "$a/dotfiles" fetch -q origin
	git -C "$a/dotfiles" checkout -q -b main origin/main 2>/dev/null ||
		git -C "$a/dotfiles" branch -q -u origin/main
}

@test "state conflicts with the remote refuse the lock" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	# The remote carries a diverged state for this lineage.
	remote_carries '.lineage.serial = 5 | .lineage.parent_serial = 4 | .active_profile = "work"
		| .history = [{"operation": "apply", "timestamp": "2024-01-15T10:00:00Z",
		   "machine_id": "machine-b", "user": "u", "serial": 5}]'
	a="$BATS_TEST_TMPDIR/machines/a"
	jq '.lineage.serial = 5 | .lineage.parent_serial = 4
		| .history = [{"operation": "sync", "timestamp": "2024-01-15T10:05:00Z",
		   "machine_id": "machine-a", "user": "u", "serial": 5}]' \
		"$a/home/.heimdal/state.json" >"$a/state.new" && mv "$a/state.new" "$a/home/.heimdal/state.json"
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 1
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "Error: State conflicts detected"*"heimdal state resolve --merge"* ]] ||
		fail "stderr: $stderr"
	[ ! -e "$(lockfile a)" ] || fail "local lock kept"
	[ "$(remote_lock_id)" = none ] || fail "remote lock taken"
	# Only what another write would make worse is listed: not the profile.
	[[ "$stderr" == *"State diverged"* ]] || fail "no divergence listed"
	[[ "$stderr" != *"Active profile differs"* ]] || fail "per-machine difference listed"
	# An operation that settles conflicts takes the lock anyway: it says so
	# with --no-conflict-check (the operation's name says nothing here).
	for op in sync resolve; do
		run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op "$op" --pid "$HOLDER"
		expect_status 1
		run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --no-conflict-check --op "$op" --pid "$HOLDER"
		[ "$status" -eq 0 ] || fail "--op $op refused: $stderr"
		expect_json '.remote.ref == "refs/heimdal/lock"'
		[ "$(remote_lock_id)" = "$(jq -r .id <<<"$output")" ] || fail "remote not held"
		id=$(printf '%s' "$output" | jq -r .id)
		as a heimdal-lock release --id "$id"
	done
}

# diverge_a: the remote and machine a each carry a serial 5 of their own.
diverge_a() {
	remote_carries '.lineage.serial = 5 | .lineage.parent_serial = 4
		| .history = [{"operation": "apply", "timestamp": "2024-01-15T10:00:00Z",
		   "machine_id": "machine-b", "user": "u", "serial": 5}]'
	local s
	s=$(mstate a)
	jq '.lineage.serial = 5 | .lineage.parent_serial = 4
		| .history = [{"operation": "sync", "timestamp": "2024-01-15T10:05:00Z",
		   "machine_id": "machine-a", "user": "u", "serial": 5}]' "$s" >"$s.new" &&
		mv "$s.new" "$s" && chmod 600 "$s"
}

@test "the porcelain's hybrid lock compares the states first: apply is refused, state resolve is not" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	diverge_a
	before=$(cat "$(mstate a)")
	run --separate-stderr as a heimdal apply
	expect_status 1
	[ -z "$output" ] || fail "stdout: $output"
	[[ "$stderr" == *"Error: State conflicts detected"*"State diverged: local serial 5 vs remote serial 5"*"Run 'heimdal sync'"* ]] ||
		fail "stderr: $stderr"
	[ ! -e "$(lockfile a)" ] || fail "local lock kept"
	[ "$(remote_lock_id)" = none ] || fail "remote lock taken"
	[ "$(cat "$(mstate a)")" = "$before" ] || fail "the state changed"
	# Resolving is what settles them: its lock is taken without the comparison.
	run --separate-stderr as a heimdal state resolve --use-local
	expect_status 0
	[[ "$stderr" != *"State conflicts detected"* ]] || fail "resolve refused: $stderr"
	[ ! -e "$(lockfile a)" ] || fail "local lock kept"
	[ "$(remote_lock_id)" = none ] || fail "remote lock kept"
}

@test "no tool reads the state behind its caller: heimdal-lock without --state is local only, heimdal-rlock locks the repository it is given" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	# a's own state names its clone of origin; a second remote, other.git,
	# has a clone that no state names.
	other=$(bare_remote other)
	git clone -q "$other" "$BATS_TEST_TMPDIR/other" 2>/dev/null
	run --separate-stderr as a heimdal-lock -v acquire -c --op apply --pid "$HOLDER"
	expect_status 0
	expect_json '.lock_type == "hybrid" and .remote == null and .state_serial == null'
	[[ "$stderr" == *"no --state names a dotfiles repository: the lock is local only"* ]] ||
		fail "stderr: $stderr"
	[ "$(remote_lock_id)" = none ] || fail "origin locked without --state"
	rec=$output
	run --separate-stderr as a heimdal-rlock acquire -c --repository "$BATS_TEST_TMPDIR/other" <<<"$rec"
	expect_status 0
	expect_json ".remote.url == \"$other\" and .remote.repository == \"$BATS_TEST_TMPDIR/other\""
	[ "$(remote_lock_id)" = none ] || fail "the state's repository was locked instead"
	[ "$(git -C "$other" cat-file -p refs/heimdal/lock:lock.json | jq -r .id)" = "$(jq -r .id <<<"$rec")" ] ||
		fail "other.git does not hold the lock"
	jq .remote <<<"$output" | as a heimdal-rlock release -c | jq -e '.result == "released"'
	as a heimdal-lock release <<<"$rec"
}

@test "heimdal-rlock --state: an invalid state is exit 2 naming the file, nothing pushed" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	remote_carries '.active_profile = "work"'
	lock_config a '{"lock_type": "Local"}'
	rec=$(as a heimdal-lock acquire -c --op apply --pid "$HOLDER")
	bad="$BATS_TEST_TMPDIR/bad.json"
	jq '.lineage.serial = "five"' "$(mstate a)" >"$bad"
	run --separate-stderr as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$bad" <<<"$rec"
	expect_status 2
	[ -z "$output" ] || fail "stdout: $output"
	[[ "$stderr" == "heimdal-rlock: error: $bad: .lineage.serial: "* ]] || fail "stderr: $stderr"
	[ "$(remote_lock_id)" = none ] || fail "pushed"
}

@test "per-machine differences with the remote (profile, path) do not refuse the lock" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	remote_carries '.active_profile = "work" | .dotfiles_path = "/elsewhere/.dotfiles"'
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	expect_json '.operation == "apply" and .remote != null'
	[ "$(remote_lock_id)" = "$(printf '%s' "$output" | jq -r .id)" ] || fail "remote lock not ours"
}

@test "heimdal-rlock: --help, bad input exits 2 with nothing on stdout" {
	run --separate-stderr heimdal-rlock --help
	expect_status 0
	[[ "$output" == "usage: heimdal-rlock acquire"* ]] || fail "no usage"
	run --separate-stderr heimdal-rlock acquire <<<'{}'
	expect_status 2
	[ "$(head -n 1 <<<"$stderr")" = "heimdal-rlock: error: acquire: --repository DIR is required" ] || fail "$stderr"
	[[ "$(tail -n 1 <<<"$stderr")" == "usage: heimdal-rlock"* ]] || fail "$stderr"
	run --separate-stderr heimdal-rlock release --repository . <<<'{}'
	expect_status 2
	[ "$(head -n 1 <<<"$stderr")" = "heimdal-rlock: error: release: --repository is not taken (the remote object names it)" ] || fail "$stderr"
	[[ "$(tail -n 1 <<<"$stderr")" == "usage: heimdal-rlock"* ]] || fail "$stderr"
	run --separate-stderr heimdal-rlock recover --repository . --state x
	expect_status 2
	[ "$(head -n 1 <<<"$stderr")" = "heimdal-rlock: error: recover: --state is taken by acquire only" ] || fail "$stderr"
	[[ "$(tail -n 1 <<<"$stderr")" == "usage: heimdal-rlock"* ]] || fail "$stderr"
	run --separate-stderr heimdal-rlock acquire --repository . <<<'[1]'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"<stdin>: expected a lock record, got array"* ]] || fail "$stderr"
	run --separate-stderr heimdal-rlock acquire --repository . <<<'{"operation": "x"}'
	expect_status 2
	[[ "$stderr" == *"<stdin>: .id: expected a lock id (lock-<uuid v4>)"* ]] || fail "$stderr"
	run --separate-stderr heimdal-rlock release <<<'{"url": "x"}'
	expect_status 2
	[[ "$stderr" == *".repository, .commit: expected the lock record's \"remote\" object"* ]] ||
		fail "$stderr"
	run --separate-stderr heimdal-rlock frob
	expect_status 2
}

@test "heimdal-rlock in a pipeline: a Local record's remote half taken and given back by hand" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	lock_config a '{"lock_type": "Local"}'
	record=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	jq -e '.lock_type == "local" and .remote == null' <<<"$record" >/dev/null || fail "$record"
	[ "$(remote_lock_id)" = none ] || fail "Local took the remote"
	run --separate-stderr as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$(mstate a)" -c <<<"$record"
	expect_status 0
	expect_json ".remote.url == \"git://127.0.0.1:$PORT/origin.git\" and (.remote.commit | length) == 40"
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$record")" ] || fail "not taken"
	taken=$output
	lock_config b '{"lock_type": "Local"}'
	b_record=$(as b heimdal-lock acquire --state "$(mstate b)" -c --op sync --pid "$HOLDER")
	run --separate-stderr as b heimdal-rlock acquire --repository "$(mdotfiles b)" --state "$(mstate b)" -c <<<"$b_record"
	expect_status 4
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "Error: State is currently locked"*"Machine: a ("* ]] || fail "$stderr"
	run --separate-stderr as a bash -c 'jq .remote | heimdal-rlock release -c' <<<"$taken"
	expect_status 0
	[ "$output" = '{"released":true,"result":"released"}' ] || fail "output: $output"
	[ "$(remote_lock_id)" = none ] || fail "not released"
}

@test "SIGTERM while a porcelain command holds the local and the remote lock releases both" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	jq --arg p "$BATS_TEST_TMPDIR/machines/a/dotfiles" '.dotfiles_path = $p' "$FIXTURES/v1.json" \
		>"$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.json"
	# Hold migrate inside its work: the exec path's heimdal-migrate only
	# waits (its caller is killed meanwhile, so the real one is never needed).
	slow="$BATS_TEST_TMPDIR/slow"
	mkdir -p "$slow"
	printf '#!/bin/sh\ntouch "%s/started"\nfor i in $(seq 200); do [ -e "%s/go" ] && exit 3; sleep 0.05; done\nexit 3\n' \
		"$slow" "$slow" >"$slow/heimdal-migrate"
	chmod +x "$slow/heimdal-migrate"
	env $(menv a) HEIMDAL_EXEC_PATH="$slow" heimdal state migrate >/dev/null 2>&1 3>&- &
	BG=$!
	for _ in $(seq 200); do [ -e "$slow/started" ] && break; sleep 0.05; done
	[ -e "$slow/started" ] || fail "migrate never ran"
	[ "$(remote_lock_id)" = "$(jq -r .id "$(lockfile a)")" ] || fail "remote not locked"
	kill -TERM "$BG"
	status=0
	wait "$BG" || status=$?
	BG=
	touch "$slow/go"
	[ "$status" = 143 ] || fail "status $status"
	[ ! -e "$(lockfile a)" ] || fail "local lock left behind"
	[ "$(remote_lock_id)" = none ] || fail "remote lock left behind"
}

# --- a dead holder of this machine, clocks, shared homes, bad records --------

# push_lock_json JSON [DATE]: a hostile machine puts a commit holding lock.json
# = JSON on the remote's refs/heimdal/lock, stamped DATE (default: the pinned now).
push_lock_json() {
	local d="$BATS_TEST_TMPDIR/hostile" blob tree commit
	rm -rf "$d"
	git init -q "$d"
	blob=$(printf '%s' "$1" | git -C "$d" hash-object -w --stdin)
	tree=$(printf '100644 blob %s\tlock.json\n' "$blob" | git -C "$d" mktree)
	commit=$(GIT_AUTHOR_NAME=mallory GIT_AUTHOR_EMAIL=m@evil.invalid \
		GIT_AUTHOR_DATE="${2:-2024-01-15T10:30:00Z}" GIT_COMMITTER_DATE="${2:-2024-01-15T10:30:00Z}" \
		git -C "$d" commit-tree -m lock "$tree")
	git -C "$d" push -q -f "$REMOTE" "$commit:refs/heimdal/lock"
}

@test "a holder of this machine killed -9 with refs/heimdal/lock taken: the next sync, a no-op, clears it" {
	start_daemon
	path=$(bare_remote origin)
	REMOTE="git://127.0.0.1:$PORT/origin.git"
	joined a b
	as a heimdal sync --no-apply >/dev/null
	# heimdal-lock run --state "$(mstate a)" records itself as the holder; its command kills it.
	run --separate-stderr as a heimdal-lock run --state "$(mstate a)" --op sync -- sh -c 'kill -9 $PPID; sleep 5'
	[ "$status" -eq 137 ] || fail "the holder was not killed"
	REMOTE=$path
	dead=$(jq -r .id "$(lockfile a)")
	[ "$(remote_lock_id)" = "$dead" ] || fail "the remote does not hold the dead lock"
	# Every other machine is locked out by a process nobody there can check.
	run --separate-stderr as b heimdal-lock acquire --state "$(mstate b)" --op apply --pid "$HOLDER"
	expect_status 4
	# The dead holder's machine syncs: nothing to do, and the remote is cleared.
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[[ "$output" == *"Already up to date."* ]] || fail "not a no-op sync"
	[[ "$stderr" == *"removed refs/heimdal/lock from git://127.0.0.1:$PORT/origin.git: lock $dead of this machine, whose process "*" died while holding it"* ]] ||
		fail "stderr: $stderr"
	[ "$(remote_lock_id)" = none ] || fail "the dead lock is still on the remote"
	[ ! -e "$(lockfile a)" ] || fail "local lock left"
	run --separate-stderr as b heimdal-lock acquire --state "$(mstate b)" -c --op apply --pid "$HOLDER"
	expect_status 0
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$output")" ] || fail "b does not hold the remote"
}

@test "heimdal-rlock recover removes only this host's dead lock: a live one, another host's stay" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	lock_config a '{"lock_type": "Local"}'
	# A live holder of this machine: kept.
	rec=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	taken=$(as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$(mstate a)" -c <<<"$rec")
	run --separate-stderr as a heimdal-rlock recover --repository "$(mdotfiles a)" -c
	expect_status 0
	expect_json ".recovered == false and .holder.id == \"$(jq -r .id <<<"$rec")\""
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$rec")" ] || fail "a live lock was removed"
	# The same lock judged from another host with the same machine id: kept.
	run --separate-stderr as a env HEIMDAL_HOSTNAME=other-host heimdal-rlock recover --repository "$(mdotfiles a)" -c
	expect_status 0
	expect_json '.recovered == false'
	as a heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	jq .remote <<<"$taken" | as a heimdal-rlock release >/dev/null
	# A dead holder of this machine: removed.
	sleep 600 3>&- &
	victim=$!
	rec=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$victim")
	as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$(mstate a)" -c <<<"$rec" >/dev/null
	kill -9 "$victim"
	wait "$victim" 2>/dev/null || true
	run --separate-stderr as a env HEIMDAL_HOSTNAME=other-host heimdal-rlock recover --repository "$(mdotfiles a)" -c
	expect_json '.recovered == false'
	run --separate-stderr as a heimdal-rlock recover --repository "$(mdotfiles a)" -c
	expect_status 0
	expect_json ".recovered == true and .holder.machine.pid == $victim"
	[ "$(remote_lock_id)" = none ] || fail "not removed"
	run --separate-stderr as a heimdal-rlock recover --repository "$(mdotfiles a)" -c
	expect_json '.recovered == false and .holder == null'
}

@test "a lock stamped days ahead by a machine with a fast clock is stale; a few minutes ahead is held" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	# b's clock is three days fast; its holder is alive.
	as b env HEIMDAL_NOW=2024-01-18T10:30:00Z heimdal-lock acquire --state "$(mstate b)" --op sync --pid "$HOLDER" >/dev/null
	run --separate-stderr as a heimdal-lock -v acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"lock is stamped 259200 seconds ahead of this clock, more than the timeout (300 seconds): the clock of b is wrong"* ]] ||
		fail "stderr: $stderr"
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$output")" ] || fail "not taken over"
	as a heimdal-lock release <<<"$output"
	as b heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	# Two minutes ahead, within the timeout: held (until its stamp is 300 s old).
	as b env HEIMDAL_NOW=2024-01-15T10:32:00Z heimdal-lock acquire --state "$(mstate b)" --op sync --pid "$HOLDER" >/dev/null
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 4
	[[ "$stderr" == *"Acquired: 120 seconds ahead of this clock"* ]] || fail "stderr: $stderr"
	run --separate-stderr as a env HEIMDAL_NOW=2024-01-15T10:37:01Z heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
}

@test "a local lock stamped days ahead by another host is stale; heimdal-lock info says why" {
	machine a
	as a heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	l="$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.lock"
	jq '.machine.hostname = "fast-host" | .created_at = "2024-01-20T10:30:00Z"' "$l" >"$l.new" && mv "$l.new" "$l"
	run --separate-stderr as a heimdal-lock info
	expect_status 0
	expect_json '.stale == true and (.stale_reason | test("stamped 432000 seconds ahead.*clock of fast-host is wrong"))'
}

@test "an NFS home shared by two hosts: a live lock of the other host is never broken by pid or boot id" {
	# One HOME, one machine-id, two hostnames.
	machine a
	as a env HEIMDAL_HOSTNAME=host1 heimdal-lock acquire --op apply --pid "$HOLDER" >/dev/null
	l="$BATS_TEST_TMPDIR/machines/a/home/.heimdal/state.lock"
	# host1 has its own boot id, and its pids mean nothing on host2.
	jq '.machine.boot_id = "00000000-1111-2222-3333-444444444444" | .machine.pid = 4000000' "$l" >"$l.new" &&
		mv "$l.new" "$l"
	run --separate-stderr as a env HEIMDAL_HOSTNAME=host2 heimdal-lock acquire --op sync --pid "$HOLDER"
	expect_status 4
	[[ "$stderr" == "Error: State is currently locked"*"Machine: host1 ("* ]] || fail "stderr: $stderr"
	run --separate-stderr as a env HEIMDAL_HOSTNAME=host2 heimdal-lock info
	expect_json '.stale == false and .holder_alive == null'
	# After the timeout it is stale like any other machine's.
	run --separate-stderr as a env HEIMDAL_HOSTNAME=host2 HEIMDAL_NOW=2024-01-15T10:36:00Z \
		heimdal-lock -v acquire --op sync --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"360 seconds old (timeout 300 seconds)"* ]] || fail "stderr: $stderr"
}

@test "an NFS home: the remote lock of the other host is judged by its age, not this host's boot id" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	lock_config a '{"lock_type": "Local"}'
	rec=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	# b shares a's machine id (the same HEIMDAL_HOME contents) under another hostname.
	cp "$BATS_TEST_TMPDIR/machines/a/home/.heimdal/machine-id" "$BATS_TEST_TMPDIR/machines/b/home/.heimdal/machine-id"
	# a's record as its own kernel would stamp it: another boot id, a pid b does not have.
	rec=$(jq -c '.machine.boot_id = "00000000-1111-2222-3333-444444444444" | .machine.pid = 4000000' <<<"$rec")
	as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$(mstate a)" -c <<<"$rec" >/dev/null
	run --separate-stderr as b heimdal-lock acquire --state "$(mstate a)" --op sync --pid "$HOLDER"
	expect_status 4
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$rec")" ] || fail "a live lock was broken"
}

@test "heimdal-rlock acquire refuses an invalid record: exit 2 naming the field, nothing pushed" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	run --separate-stderr as a bash -c 'printf '"'"'{"id":""}'"'"' | heimdal-rlock acquire --repository "$1"' sh "$(mdotfiles a)"
	expect_status 2
	[ -z "$output" ] || fail "stdout: $output"
	[ "$stderr" = "heimdal-rlock: error: <stdin>: .id: expected a lock id (lock-<uuid v4>)" ] || fail "stderr: $stderr"
	[ "$(remote_lock_id)" = none ] || fail "pushed"
	lock_config a '{"lock_type": "Local"}'
	rec=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	for f in '.machine.pid = 0|.machine.pid' '.operation = "a\u001bb"|.operation' \
		'.reason = "x\ny"|.reason' '.created_at = "yesterday"|.created_at' '.extra = 1|.extra' \
		'.machine.hostname = ""|.machine.hostname' '.state_serial = -1|.state_serial' \
		'.lock_type = "remote"|.lock_type' 'del(.expected_duration_seconds)|.expected_duration_seconds'; do
		filter=${f%|*} field=${f##*|}
		run --separate-stderr as a bash -c "jq -c '$filter' | heimdal-rlock acquire --repository \"\$1\"" sh "$(mdotfiles a)" <<<"$rec"
		[ "$status" -eq 2 ] || fail "$filter: status $status"
		[ -z "$output" ] || fail "$filter: stdout"
		[[ "$stderr" == "heimdal-rlock: error: <stdin>: $field: "* ]] || fail "$filter: $stderr"
	done
	[ "$(remote_lock_id)" = none ] || fail "pushed"
}

@test "an unreadable record on refs/heimdal/lock is reported as such, held until the timeout, never 'unreachable'" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	push_lock_json '{"id":""}' 2024-01-15T10:28:00Z
	commit=$(git -C "$REMOTE" rev-parse refs/heimdal/lock)
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 4
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" != *"Cannot reach"* ]] || fail "taken for unreachable: $stderr"
	[ "$stderr" = "Error: State is currently locked

refs/heimdal/lock on git://127.0.0.1:$PORT/origin.git holds an unreadable lock record:
  commit ${commit:0:12} by mallory <m@evil.invalid>, 2 minutes ago
  .id: expected a lock id (lock-<uuid v4>)

It counts as held until it is older than the timeout (300 seconds).  If no
heimdal operation holds it, remove it: git push origin :refs/heimdal/lock" ] || fail "stderr: $stderr"
	[ ! -e "$(lockfile a)" ] || fail "local lock kept"
	# Not JSON at all, or no lock.json: the same.
	push_lock_json 'garbage' 2024-01-15T10:29:00Z
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 4
	[[ "$stderr" == *"holds an unreadable lock record:"* ]] || fail "stderr: $stderr"
	# Older than the timeout: taken over, with a warning naming it.
	run --separate-stderr as a env HEIMDAL_NOW=2024-01-15T10:40:00Z heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER"
	expect_status 0
	[[ "$stderr" == *"warning: refs/heimdal/lock holds an unreadable lock record (commit "*" by mallory <m@evil.invalid>: "*"); taken over: lock is 660 seconds old (timeout 300 seconds)"* ]] ||
		fail "stderr: $stderr"
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$output")" ] || fail "not taken over"
}

@test "heimdal-rlock release says what happened: released, not held, held by another" {
	start_daemon
	setup_machines "git://127.0.0.1:$PORT/origin.git"
	lock_config a '{"lock_type": "Local"}'
	lock_config b '{"lock_type": "Local"}'
	rec=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$(mstate a)" -c <<<"$rec" | jq -c .remote >"$BATS_TEST_TMPDIR/a.remote"
	run --separate-stderr as a heimdal-rlock release -c "$BATS_TEST_TMPDIR/a.remote"
	expect_status 0
	[ "$output" = '{"released":true,"result":"released"}' ] || fail "output: $output"
	# Again: nothing is held any more.
	run --separate-stderr as a heimdal-rlock release -c "$BATS_TEST_TMPDIR/a.remote"
	expect_status 1
	[ "$output" = '{"released":false,"result":"not_held"}' ] || fail "output: $output"
	# b holds it now: a's stale release leaves it, and says whose it is.
	brec=$(as b heimdal-lock acquire --state "$(mstate b)" -c --op sync --pid "$HOLDER")
	as b heimdal-rlock acquire --repository "$(mdotfiles b)" --state "$(mstate b)" -c <<<"$brec" >/dev/null
	run --separate-stderr as a heimdal-rlock release -c "$BATS_TEST_TMPDIR/a.remote"
	expect_status 4
	expect_json ".released == false and .result == \"held_by_other\" and .commit == \"$(git -C "$REMOTE" rev-parse refs/heimdal/lock)\""
	[ "$(remote_lock_id)" = "$(jq -r .id <<<"$brec")" ] || fail "b's lock was removed"
	# A commit that is not one: exit 2.
	run --separate-stderr as a bash -c "jq -c '.commit = \"xyz\"' '$BATS_TEST_TMPDIR/a.remote' | heimdal-rlock release"
	expect_status 2
	[[ "$stderr" == *".commit: expected a commit id"* ]] || fail "stderr: $stderr"
}

@test "the guard file of a path remote is never world-writable" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	umask 000
	rm -f "$REMOTE/heimdal-lock.guard"
	as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER" >/dev/null
	[ "$(stat -c %a "$REMOTE/heimdal-lock.guard")" = 644 ] || fail "mode $(stat -c %a "$REMOTE/heimdal-lock.guard")"
	as a heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	umask 077
	rm -f "$REMOTE/heimdal-lock.guard"
	as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER" >/dev/null
	[ "$(stat -c %a "$REMOTE/heimdal-lock.guard")" = 600 ] || fail "mode $(stat -c %a "$REMOTE/heimdal-lock.guard")"
	# A link planted in its place is not followed.
	as a heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	rm -f "$REMOTE/heimdal-lock.guard"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$REMOTE/heimdal-lock.guard"
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	[ ! -e "$BATS_TEST_TMPDIR/elsewhere" ] || fail "the link was followed"
}
