#!/usr/bin/env bats
# heimdal sync: pull, reconcile the state, apply, commit, push.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
}

@test "sync: the first sync shares the state; the repository carries it" {
	git_machine a
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[ "$output" = "OK Pushed to origin" ] || fail
	s="$(mhome a)/.heimdal/state.json"
	jq -e '.history[-1].operation == "sync" and .last_sync == "2024-01-15T10:30:00Z"' "$s"
	diff <(jq -S . "$s") <(remote_state "$REMOTE" | jq -S .)
	[ "$(git --git-dir="$REMOTE" log -1 --format=%s main)" = "heimdal: sync from a (serial $(jq .lineage.serial "$s"))" ]
}

@test "sync: nothing to do is one short line, and changes nothing" {
	joined a
	before=$(snapshot "$(mhome a)/.heimdal")
	head=$(git --git-dir="$REMOTE" rev-parse main)
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[ "$output" = "Already up to date." ] || fail
	[ -z "$stderr" ] || fail
	[ "$(snapshot "$(mhome a)/.heimdal")" = "$before" ]
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$head" ]
}

@test "sync: a machine behind takes the remote state without a new write" {
	joined a b
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[ "${lines[0]}" = "OK Git pull completed successfully!" ] || fail
	[ "${lines[1]}" = "OK State updated from the remote (serial $(jq .lineage.serial "$(mhome b)/.heimdal/state.json"))" ] || fail
	[ "${#lines[@]}" = 2 ] || fail
	diff <(shared_view a) <(shared_view b)
	run --separate-stderr as b heimdal sync --no-apply
	[ "$output" = "Already up to date." ] || fail
}

@test "sync: diverged states -> the spec's conflict listing and automatic merge" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	record b apply
	as a heimdal sync --no-apply >/dev/null
	LC_ALL=C.UTF-8 run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	[ "${lines[0]}" = "✓ Git pull completed successfully!" ] || fail
	[ "${lines[1]}" = "⚠️  State Conflicts Detected" ] || fail
	[ "${lines[2]}" = "1. 🔴 State diverged: local serial 6 vs remote serial 7 (common parent: 5)" ] || fail
	[[ "${lines[3]}" == "2. 🔴 Dotfiles path differs: "* ]] || fail
	[ "${lines[4]}" = "Attempting automatic merge..." ] || fail
	[ "${lines[5]}" = "✓ States merged successfully" ] || fail
	[ "${lines[6]}" = "  - Combined 2 machine(s)" ] || fail
	[ "${lines[7]}" = "  - Resolved 2 conflict(s)" ] || fail
	[ "${lines[8]}" = "✓ State conflicts resolved automatically" ] || fail
	[ "${lines[9]}" = "✓ Pushed to origin" ] || fail
	# The blank lines of the spec's layout (bats' lines drops them).
	[[ "$output" == *"Detected

1. "*"

Attempting"* ]] || fail
	# Both apply entries survive, the merge is recorded as a sync above them.
	jq -e '[.history[] | select(.operation == "apply")] | length == 2' "$(mhome b)/.heimdal/state.json"
	jq -e '.history[-1].operation == "sync" and .lineage.serial == 8' "$(mhome b)/.heimdal/state.json"
}

@test "sync: concurrent modification on two machines -> identical states, nothing lost" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	for i in 1 2; do record a apply; record b apply; done
	as a heimdal sync --no-apply >/dev/null
	as b heimdal sync --no-apply >/dev/null
	as a heimdal sync --no-apply >/dev/null
	run --separate-stderr as b heimdal sync --no-apply
	[ "$output" = "Already up to date." ] || fail
	diff <(shared_view a) <(shared_view b)
	s="$(mhome a)/.heimdal/state.json"
	# Every write of both machines is in the history, serials never go down.
	jq -e '[.history[] | select(.operation == "apply")] | length == 4' "$s"
	jq -e '[.history[].serial] as $s | $s == ($s | sort) and .lineage.serial == $s[-1]' "$s"
	# Each machine's own writes have strictly increasing serials.
	jq -e '.history | group_by(.machine_id) | all(map(.serial) | . as $m
		| [range(1; length)] | all($m[.] > $m[. - 1]))' "$s"
	jq -e '.lineage.machines | length == 2' "$s"
}

@test "sync: three machines converge" {
	joined a b c
	as a heimdal sync --no-apply >/dev/null
	as b heimdal sync --no-apply >/dev/null
	for m in a b c; do record "$m" apply; done
	for m in a b c a b; do as "$m" heimdal sync --no-apply >/dev/null; done
	diff <(shared_view a) <(shared_view b)
	diff <(shared_view a) <(shared_view c)
	jq -e '.lineage.machines | length == 3' "$(mhome c)/.heimdal/state.json"
	jq -e '[.history[] | select(.operation == "apply")] | length == 3' "$(mhome c)/.heimdal/state.json"
	for m in a b c; do
		run --separate-stderr as "$m" heimdal sync --no-apply
		[ "$output" = "Already up to date." ] || fail "$m"
	done
}

@test "sync: a conflicted dotfile stops with the spec's message, exit 1; resolved, sync goes on" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	commit_file a .bashrc from-a
	as a heimdal push >/dev/null
	commit_file b .bashrc from-b
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 1
	[ "$output" = "Merge conflicts detected in:
  - .bashrc

Please resolve conflicts manually and run 'heimdal sync' again" ] || fail
	# The dotfile is the user's to settle; the state file was merged, not conflicted.
	[ "$(ingit b status --porcelain | grep -v '^[MA]  .heimdal/')" = "AA .bashrc" ]
	! grep -q '^<<<<<<<' "$(mhome b)/.dotfiles/.heimdal/state.json"
	printf 'merged\n' >"$(mhome b)/.dotfiles/.bashrc"
	ingit b add .bashrc
	ingit b commit -q -m "Resolve .bashrc"
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	git --git-dir="$REMOTE" show main:.bashrc | grep -qx merged
}

@test "sync: push rejected, then sync, then push" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	as a heimdal push >/dev/null
	record b apply
	run --separate-stderr as b heimdal push
	expect_status 1
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	run --separate-stderr as b heimdal push
	expect_status 0
	[ "$output" = "Everything up-to-date" ] || fail
	remote_state "$REMOTE" | jq -e '[.history[] | select(.operation == "apply")] | length == 2'
}

@test "sync: offline warns and keeps the state in the clone; online again it reconciles" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	port=$(free_port)
	ingit a remote set-url origin "git://127.0.0.1:$port/origin.git"
	record a apply
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[[ "${stderr_lines[0]}" == "! Warning: Cannot reach remote repository: "* ]] || fail
	[[ "${lines[0]}" == "OK Committed the state locally ("*")" ]] || fail
	[ "${lines[1]}" = "Remember to sync when connection is restored." ] || fail
	# Meanwhile b changes the state online.
	record b apply
	as b heimdal sync --no-apply >/dev/null
	ingit a remote set-url origin "$REMOTE"
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[[ "$output" == *"State diverged"* ]] || fail
	as b heimdal sync --no-apply >/dev/null
	diff <(shared_view a) <(shared_view b)
	jq -e '[.history[] | select(.operation == "apply")] | length == 2' "$(mhome b)/.heimdal/state.json"
}

@test "sync: a remote of another lineage is not merged: manual steps, exit 1" {
	joined a
	git_machine b
	other=$(bare_remote other)
	REMOTE=$other joined b
	ingit a remote set-url origin "$other"
	before=$(snapshot "$(mhome a)/.heimdal")
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 1
	[[ "$output" == *"belongs to another lineage"* ]] || fail
	[[ "$output" == *"heimdal state resolve --use-remote"* ]] || fail
	[ "$(snapshot "$(mhome a)/.heimdal")" = "$before" ]
}

@test "sync: applies what was pulled" {
	joined a b
	as a heimdal sync >/dev/null
	commit_file a .bashrc 'export FROM=a'
	as a heimdal push >/dev/null
	run --separate-stderr as b heimdal sync
	expect_status 0
	[ "$(cat "$(mhome b)/.bashrc")" = 'export FROM=a' ]
	jq -e '.history | map(.operation) | index("apply") != null' "$(mhome b)/.heimdal/state.json"
}

# pushed_by_a CONTENT: machines a and b joined and deployed, then a pushes a
# commit of .bashrc with CONTENT that b has not pulled.
pushed_by_a() {
	joined a b
	as b heimdal sync >/dev/null
	as a heimdal sync >/dev/null
	commit_file a .bashrc "$1"
	as a heimdal push >/dev/null
}

@test "sync: killed after its pull, before its apply: the next sync deploys what was pulled" {
	pushed_by_a 'export FROM=a'
	# What the killed sync left: HEAD moved by the pull, nothing deployed,
	# and pull.pending naming the commit whose files $HOME has.
	old=$(ingit b rev-parse HEAD)
	ingit b pull -q --ff-only
	printf '%s %s %s\n' "$old" "$old" "$(ingit b rev-parse HEAD)" >"$(mhome b)/.heimdal/pull.pending"
	[ ! -e "$(mhome b)/.bashrc" ]
	run --separate-stderr as b heimdal sync
	expect_status 0
	[ "$(cat "$(mhome b)/.bashrc")" = 'export FROM=a' ] || fail
	[ ! -e "$(mhome b)/.heimdal/pull.pending" ] || fail "pull.pending left"
	run --separate-stderr as b heimdal sync
	expect_status 0
	[ "$output" = "Already up to date." ] || fail
}

@test "sync: killed inside its checkout: the next sync undoes it, removes the dead holder's git locks, and syncs" {
	pushed_by_a "$(seq 1 2000)"
	d="$(mhome b)/.dotfiles"
	ingit b fetch -q
	old=$(ingit b rev-parse HEAD)
	target=$(ingit b rev-parse origin/main)
	# What a kill -9 inside libgit2's checkout leaves: the state lock of a
	# dead holder, half of the new file written in place, git's index.lock,
	# HEAD where it was, and pull.pending.
	sleep 60 &
	holder=$!
	as b heimdal-lock acquire --state "$(mstate b)" --no-conflict-check --op sync --pid "$holder" >/dev/null
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	git -C "$d" show origin/main:.bashrc | head -c 3000 >"$d/.bashrc"
	: >"$d/.git/index.lock"
	printf '%s %s %s\n' "$old" "$old" "$target" >"$(mhome b)/.heimdal/pull.pending"
	# A user's edit elsewhere in the clone is not the checkout's: it stays.
	echo "# mine" >"$d/README.local"
	run --separate-stderr as b heimdal sync
	expect_status 0
	[[ "$stderr" == *"removed 1 git lock file(s) left by a heimdal process that died"* ]] || fail
	[[ "$stderr" == *"undid a pull of ${target:0:7} that was cut short"* ]] || fail
	[ "$(ingit b rev-parse HEAD)" = "$target" ] || [ "$(ingit b rev-parse HEAD~1)" = "$target" ] || fail "HEAD"
	cmp "$d/.bashrc" <(seq 1 2000) || fail "the clone's .bashrc"
	cmp "$(mhome b)/.bashrc" <(seq 1 2000) || fail "the deployed .bashrc"
	[ ! -e "$d/.git/index.lock" ] || fail "index.lock left"
	[ "$(cat "$d/README.local")" = "# mine" ] || fail "the user's file"
	[ "$(ingit b status --porcelain)" = "?? README.local" ] || fail "status: $(ingit b status --porcelain)"
}

@test "sync: a file edited since a checkout was cut short is never overwritten" {
	pushed_by_a 'export FROM=a'
	d="$(mhome b)/.dotfiles"
	ingit b fetch -q
	printf '%s %s %s\n' "$(ingit b rev-parse HEAD)" "$(ingit b rev-parse HEAD)" \
		"$(ingit b rev-parse origin/main)" >"$(mhome b)/.heimdal/pull.pending"
	echo 'my own edit' >"$d/.bashrc"
	run --separate-stderr as b heimdal sync
	expect_status 3
	[[ "$stderr" == *"cannot fast-forward"*"(commit or stash local changes first)"* ]] || fail
	[ "$(cat "$d/.bashrc")" = 'my own edit' ] || fail
	# Moved out of the way, the next sync goes on.
	mv "$d/.bashrc" "$BATS_TEST_TMPDIR/mine"
	run --separate-stderr as b heimdal sync
	expect_status 0
	[ "$(cat "$(mhome b)/.bashrc")" = 'export FROM=a' ] || fail
}

@test "sync: with nothing to do it leaves the remote's lock alone; with something to write it takes it" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	# Machine a holds the hybrid lock (the remote's refs/heimdal/lock too).
	sleep 60 &
	holder=$!
	id=$(as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$holder" | jq -r .id)
	[ "$(git --git-dir="$REMOTE" cat-file -p refs/heimdal/lock:lock.json | jq -r .id)" = "$id" ] ||
		fail "machine a does not hold the remote lock"
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	[ "$output" = "Already up to date." ] || fail
	# Something to share: b needs the remote lock, held by a live operation.
	record b apply
	printf '{"retry": {"attempts": 0}}\n' >"$(mhome b)/.heimdal/lock_config.json"
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 4
	[[ "$stderr" == *"State is currently locked"* ]] || fail
	[ ! -e "$(mhome b)/.heimdal/state.lock" ] || fail "b's local lock left"
	as a heimdal-lock release --id "$id"
	kill "$holder"
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	[[ "$output" == *"Pushed to origin"* ]] || fail
	! git --git-dir="$REMOTE" rev-parse -q --verify refs/heimdal/lock >/dev/null || fail "remote lock left"
}

@test "sync: usage" {
	git_machine a
	run --separate-stderr as a heimdal sync --bogus
	expect_status 2
	[ -z "$output" ] || fail
	[[ "$stderr" == *"unknown option '--bogus'"* ]] || fail
	run as a heimdal sync --help
	expect_status 0
	[ "$output" = "usage: heimdal sync [--no-apply]" ] || fail
	run --separate-stderr as a heimdal sync
	expect_status 3
	[[ "$stderr" == *"run 'heimdal init' first"* ]] || fail
}

@test "sync: two machines syncing at the same moment over git daemon both land" {
	git_daemon_start "$(dirname "$REMOTE")"
	joined a b
	for m in a b; do ingit "$m" remote set-url origin "$GIT_DAEMON_URL/origin.git"; done
	as a heimdal sync --no-apply >/dev/null
	record a apply
	record b apply
	# Real processes racing: one push wins, the other is rejected and goes round again.
	as a heimdal sync --no-apply >"$BATS_TEST_TMPDIR/a.out" 2>&1 &
	pa=$!
	as b heimdal sync --no-apply >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
	pb=$!
	wait "$pa" || fail "a: $(cat "$BATS_TEST_TMPDIR/a.out")"
	wait "$pb" || fail "b: $(cat "$BATS_TEST_TMPDIR/b.out")"
	as a heimdal sync --no-apply >/dev/null
	as b heimdal sync --no-apply >/dev/null
	diff <(shared_view a) <(shared_view b)
	jq -e '[.history[] | select(.operation == "apply")] | length == 2' "$(mhome a)/.heimdal/state.json"
	remote_state "$REMOTE" | jq -e '[.history[] | select(.operation == "apply")] | length == 2'
}

@test "a state whose dotfiles_path is ~/.dotfiles is read the same everywhere: check-conflicts, state diff and the remote lock" {
	joined a b
	s="$(mhome a)/.heimdal/state.json"
	jq '.dotfiles_path = "~/.dotfiles"' "$s" >"$s.new" && mv "$s.new" "$s" && chmod 600 "$s"
	run --separate-stderr as a heimdal state check-conflicts
	expect_status 0
	run --separate-stderr as a heimdal state diff
	[ "$status" -le 1 ] || fail "state diff: $status $stderr"
	# The hybrid lock finds the repository and takes the remote half.
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply -c
	expect_status 0
	[ "$(jq -r '.remote.url // empty' <<<"$output")" = "$REMOTE" ] || fail "remote lock not taken: $output $stderr"
	as a heimdal-lock release <<<"$output"
}
