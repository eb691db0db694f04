#!/usr/bin/env bats
# heimdal pull / heimdal push: the dotfiles repository against its remote.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
	handmade a "$REMOTE"
	handmade b "$REMOTE"
}

@test "push: the first push creates the branch with the state in .heimdal/state.json" {
	run --separate-stderr as a heimdal push
	expect_status 0
	[[ "${lines[0]}" == "OK Committed the state ("*")" ]] || fail "line 0: ${lines[0]}"
	[[ "${lines[1]}" == "OK Pushed "*" to origin" ]] || fail "line 1: ${lines[1]}"
	remote_state "$REMOTE" | jq -S . >"$BATS_TEST_TMPDIR/pushed"
	jq -S . "$(mhome a)/.heimdal/state.json" | diff - "$BATS_TEST_TMPDIR/pushed"
	# The branch now tracks the remote, as after `git push -u`.
	[ "$(ingit a config branch.main.remote)" = origin ]
}

@test "push: nothing new says so and leaves the remote alone" {
	as a heimdal push >/dev/null
	before=$(git --git-dir="$REMOTE" rev-parse main)
	run --separate-stderr as a heimdal push
	expect_status 0
	[ "$output" = "Everything up-to-date" ] || fail
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$before" ]
}

@test "push: a changed state is committed and pushed; jq reads it back from the remote" {
	as a heimdal push >/dev/null
	jq '.lineage.serial = 7 | .lineage.parent_serial = 6' "$(mhome a)/.heimdal/state.json" \
		>"$BATS_TEST_TMPDIR/s" && cp "$BATS_TEST_TMPDIR/s" "$(mhome a)/.heimdal/state.json"
	run --separate-stderr as a heimdal push
	expect_status 0
	remote_state "$REMOTE" | jq -e '.lineage.serial == 7 and .version == 2'
	[ "$(git --git-dir="$REMOTE" log --format=%s -1 main)" = "heimdal: state serial 7 from a" ]
	[ "$(as a heimdal state query .lineage.serial)" = "$(remote_state "$REMOTE" | jq .lineage.serial)" ]
}

@test "pull: fast-forward brings the other machine's commits" {
	as a heimdal push >/dev/null
	commit_file a .bashrc 'alias ll="ls -l"'
	as a heimdal push >/dev/null
	run --separate-stderr as b heimdal pull
	expect_status 0
	[ "${lines[0]}" = "OK Git pull completed successfully!" ] || fail
	[[ "${lines[1]}" == "  Fast-forward "*..* ]] || fail
	[ "$(cat "$(mhome b)/.dotfiles/.bashrc")" = 'alias ll="ls -l"' ]
	[ "$(ingit b rev-parse HEAD)" = "$(git --git-dir="$REMOTE" rev-parse main)" ]
	[ -z "$(ingit b status --porcelain)" ]
}

@test "pull: nothing new is one line" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	run --separate-stderr as b heimdal pull
	expect_status 0
	[ "$output" = "Already up to date." ] || fail
	[ -z "$stderr" ] || fail
}

@test "pull: both sides moved -> a merge commit with both parents" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	commit_file a .bashrc from-a
	as a heimdal push >/dev/null
	commit_file b .vimrc from-b
	run --separate-stderr as b heimdal pull
	expect_status 0
	[ "${lines[0]}" = "OK Git pull completed successfully!" ] || fail
	[[ "${lines[1]}" == "  Merge commit "* ]] || fail
	[ "$(ingit b rev-list --parents -1 HEAD | wc -w)" = 3 ]
	[ "$(cat "$(mhome b)/.dotfiles/.bashrc")" = from-a ]
	[ "$(cat "$(mhome b)/.dotfiles/.vimrc")" = from-b ]
	[ -z "$(ingit b status --porcelain)" ]
}

@test "pull: a conflicted dotfile is left to the user, in git's conflicted state" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	commit_file a .bashrc from-a
	as a heimdal push >/dev/null
	commit_file b .bashrc from-b
	run --separate-stderr as b heimdal pull
	expect_status 1
	[ "$output" = "Merge conflicts detected in:
  - .bashrc

Please resolve conflicts manually and run 'heimdal sync' again" ] || fail
	# The dotfile is the user's; the state file was settled, not conflicted.
	[ "$(ingit b status --porcelain | grep -v '^[MA]  .heimdal/')" = "AA .bashrc" ]
	grep -q '^<<<<<<<' "$(mhome b)/.dotfiles/.bashrc"
	[ -e "$(mhome b)/.dotfiles/.git/MERGE_HEAD" ]
	# Until it is resolved, every remote command says so again.
	run --separate-stderr as b heimdal push
	expect_status 1
	[ "${lines[0]}" = "Merge conflicts detected in:" ] || fail
	# Resolved by hand: the next pull finishes the merge and goes on.
	printf 'both\n' >"$(mhome b)/.dotfiles/.bashrc"
	ingit b add .bashrc
	run --separate-stderr as b heimdal pull
	expect_status 0
	[ ! -e "$(mhome b)/.dotfiles/.git/MERGE_HEAD" ]
	[ "$(ingit b rev-list --parents -1 HEAD | wc -w)" = 3 ]
}

@test "pull: the state file is merged three-way, never left with conflict markers" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	# Both machines record operations on top of the same state and commit it.
	jq '.lineage.machines += ["m-a"] | .last_apply = "2024-01-15T11:00:00Z"' \
		"$(mhome a)/.heimdal/state.json" >"$BATS_TEST_TMPDIR/s" &&
		cp "$BATS_TEST_TMPDIR/s" "$(mhome a)/.heimdal/state.json"
	as a heimdal push >/dev/null
	jq '.lineage.machines += ["m-b"] | .last_sync = "2024-01-15T12:00:00Z"' \
		"$(mhome b)/.heimdal/state.json" >"$BATS_TEST_TMPDIR/s" &&
		cp "$BATS_TEST_TMPDIR/s" "$(mhome b)/.heimdal/state.json"
	run --separate-stderr as b heimdal push
	expect_status 1
	run --separate-stderr as b heimdal pull
	expect_status 0
	! grep -q '^<<<<<<<' "$(mhome b)/.dotfiles/.heimdal/state.json"
	jq -e '(.lineage.machines | index("m-a") and index("m-b"))
	       and .last_sync == "2024-01-15T12:00:00Z"' "$(mhome b)/.dotfiles/.heimdal/state.json"
	# The merge commit publishes a new state, above both parents' serials,
	# and it is this machine's state now.
	s=$(ingit b show HEAD:.heimdal/state.json | jq .lineage.serial)
	for p in 1 2; do
		[ "$s" -gt "$(ingit b show "HEAD^$p:.heimdal/state.json" | jq .lineage.serial)" ] || fail "parent $p"
	done
	[ "$(jq .lineage.serial "$(mhome b)/.heimdal/state.json")" = "$s" ] || fail "local state not merged"
	[ -z "$(ingit b status --porcelain)" ]
	run --separate-stderr as b heimdal push
	expect_status 0
}

@test "push: rejected when the remote moved; sync then push succeeds" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	commit_file a .bashrc from-a
	as a heimdal push >/dev/null
	commit_file b .vimrc from-b
	before=$(git --git-dir="$REMOTE" rev-parse main)
	run --separate-stderr as b heimdal push
	expect_status 1
	[[ "$output" != *Pushed* ]] || fail "reported a push"
	[[ "$stderr" == *"heimdal: error: push rejected: "* ]] || fail
	[[ "$stderr" == *"run 'heimdal sync'"* ]] || fail
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$before" ]
	as b heimdal pull >/dev/null
	run --separate-stderr as b heimdal push
	expect_status 0
	git --git-dir="$REMOTE" show main:.bashrc | grep -qx from-a
	git --git-dir="$REMOTE" show main:.vimrc | grep -qx from-b
}

@test "push: takes no remote lock while nobody holds one; a live holder on another machine refuses it" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	commit_file b .vimrc from-b
	run --separate-stderr as b heimdal --verbose push
	expect_status 0
	[[ "$output" == *"Pushed"* ]] || fail
	[[ "$stderr" != *"heimdal-rlock"* ]] || fail "the remote lock was taken"
	# Machine a holds the hybrid lock, the remote's refs/heimdal/lock too.
	sleep 60 &
	holder=$!
	id=$(as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$holder" | jq -r .id)
	git --git-dir="$REMOTE" rev-parse -q --verify refs/heimdal/lock >/dev/null || fail "no remote lock"
	commit_file b .zshrc from-b
	printf '{"retry": {"attempts": 0}}\n' >"$(mhome b)/.heimdal/lock_config.json"
	before=$(git --git-dir="$REMOTE" rev-parse main)
	run --separate-stderr as b heimdal push
	expect_status 4
	[[ "$stderr" == *"State is currently locked"* ]] || fail
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$before" ] || fail "pushed anyway"
	[ ! -e "$(mhome b)/.heimdal/state.lock" ] || fail "b's local lock left"
	# With lock_type Local, b coordinates with nobody: the remote's lock is not its concern.
	printf '{"lock_type": "Local"}\n' >"$(mhome b)/.heimdal/lock_config.json"
	run --separate-stderr as b heimdal --verbose push
	expect_status 0
	[[ "$stderr" != *"held on the remote"* ]] || fail "Local looked at the remote lock"
	git --git-dir="$REMOTE" show main:.zshrc | grep -qx from-b || fail "not pushed"
	commit_file b .zshrc from-b-again
	printf '{"retry": {"attempts": 0}}\n' >"$(mhome b)/.heimdal/lock_config.json"
	as a heimdal-lock release --id "$id"
	kill "$holder"
	run --separate-stderr as b heimdal push
	expect_status 0
	git --git-dir="$REMOTE" show main:.zshrc | grep -qx from-b-again
	! git --git-dir="$REMOTE" rev-parse -q --verify refs/heimdal/lock >/dev/null || fail "remote lock left"
}

@test "push --force after resolve --use-local: only the state is replaced, on top of the remote's tip" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	# The spec's scenario 2: both machines write the state; a pushes a
	# dotfile and its state, b has a dotfile commit of its own.
	record a apply
	commit_file a .bashrc from-a
	as a heimdal push >/dev/null
	theirs=$(git --git-dir="$REMOTE" rev-parse main)
	rserial=$(remote_state "$REMOTE" | jq .lineage.serial)
	record b apply
	record b apply
	commit_file b .vimrc from-b
	run --separate-stderr as b heimdal state resolve --use-local
	expect_status 0
	[ "${lines[1]}" = "OK Local state kept" ] || fail
	run --separate-stderr as b heimdal push --force
	expect_status 0
	[[ "$output" == *"OK Pushed "*" to origin: the remote's state replaced, its commits kept" ]] || fail
	# Nothing of a's is dropped: its commit is still on the branch, its file there.
	git --git-dir="$REMOTE" merge-base --is-ancestor "$theirs" main || fail "a's commit dropped"
	git --git-dir="$REMOTE" show main:.bashrc | grep -qx from-a || fail ".bashrc lost"
	git --git-dir="$REMOTE" show main:.vimrc | grep -qx from-b || fail ".vimrc not pushed"
	# The state is b's, with a serial above the one it replaces.
	diff <(remote_state "$REMOTE" | jq -S 'del(.machine)') \
		<(jq -S 'del(.machine)' "$(mhome b)/.heimdal/state.json") || fail "not b's state"
	remote_state "$REMOTE" | jq -e --argjson r "$rserial" '.lineage.serial > $r and .history[-1].operation == "resolve"'
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$(ingit b rev-parse HEAD)" ]
	# a then syncs without a conflict, and keeps what it had.
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[[ "$output" != *"Conflicts"* ]] || fail "a saw conflicts"
	ingit a show HEAD:.bashrc | grep -qx from-a
}

@test "push --force with nothing of its own: one new commit on the remote's tip, the remote's files kept" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	commit_file a .bashrc unseen
	as a heimdal push >/dev/null
	tip=$(git --git-dir="$REMOTE" rev-parse main)
	jq '.last_apply = "2024-01-15T11:00:00Z"' "$(mhome b)/.heimdal/state.json" >"$BATS_TEST_TMPDIR/s" &&
		cp "$BATS_TEST_TMPDIR/s" "$(mhome b)/.heimdal/state.json"
	run --separate-stderr as b heimdal push --force
	expect_status 0
	[ "${lines[0]}" = "OK Took the remote's commits (fast-forward to ${tip:0:7})" ] || fail
	[[ "${lines[1]}" == "OK Committed the state on top of the remote's tip ("*")" ]] || fail
	[ "$(git --git-dir="$REMOTE" rev-parse main~1)" = "$tip" ] || fail "not one commit on the tip"
	[ "$(git --git-dir="$REMOTE" diff --name-only main~1 main | grep -v '^.heimdal/machines/')" = .heimdal/state.json ] || fail
	git --git-dir="$REMOTE" show main:.bashrc | grep -qx unseen
	remote_state "$REMOTE" | jq -e '.last_apply == "2024-01-15T11:00:00Z"'
	# Pushed nothing new the second time.
	run --separate-stderr as b heimdal push --force
	expect_status 0
	[ "$output" = "Everything up-to-date" ] || fail
}

@test "offline: a closed port warns, the local part proceeds, exit 0; online again it pushes" {
	as a heimdal push >/dev/null
	port=$(free_port)
	ingit a remote set-url origin "git://127.0.0.1:$port/origin.git"
	commit_file a .bashrc offline-edit
	run --separate-stderr as a heimdal pull
	expect_status 0
	[[ "${stderr_lines[0]}" == "! Warning: Cannot reach remote repository: "*"refused"* ]] || fail
	jq '.last_apply = "2024-01-15T11:00:00Z"' "$(mhome a)/.heimdal/state.json" >"$BATS_TEST_TMPDIR/s" &&
		cp "$BATS_TEST_TMPDIR/s" "$(mhome a)/.heimdal/state.json"
	run --separate-stderr as a heimdal push
	expect_status 0
	[[ "${stderr_lines[0]}" == "! Warning: Cannot reach remote repository: "* ]] || fail
	[[ "$output" == *"committed locally"* ]] || fail
	ingit a show HEAD:.heimdal/state.json | jq -e '.last_apply == "2024-01-15T11:00:00Z"'
	ingit a remote set-url origin "$REMOTE"
	run --separate-stderr as a heimdal push
	expect_status 0
	git --git-dir="$REMOTE" show main:.heimdal/state.json | jq -e '.last_apply == "2024-01-15T11:00:00Z"'
	git --git-dir="$REMOTE" show main:.bashrc | grep -qx offline-edit
}

@test "a repository gone is an error (exit 3, the reason), never offline: local path and file://" {
	as a heimdal push >/dev/null
	gone="$BATS_TEST_TMPDIR/remotes/gone.git"
	ingit a remote set-url origin "$gone"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[[ "$output" != *"Cannot reach"* ]] || fail "taken for offline"
	[[ "$stderr" == *"heimdal: error: $gone: no such repository: the path does not exist"* ]] || fail
	[[ "$stderr" != *"unsupported URL protocol"* ]] || fail
	run --separate-stderr as a heimdal push
	expect_status 3
	[[ "$output" != *"Cannot reach"* && "$output" != *"when the connection is restored"* ]] || fail
	[[ "$stderr" == *"heimdal: error: $gone: no such repository: the path does not exist"* ]] || fail
	ingit a remote set-url origin "file://$gone"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[[ "$output" != *"Cannot reach"* ]] || fail "taken for offline"
	[[ "$stderr" == *"heimdal: error: fetch from 'origin' failed: failed to resolve path '$gone': No such file or directory"* ]] || fail
	run --separate-stderr as a heimdal push
	expect_status 3
	[[ "$stderr" == *"failed to resolve path '$gone'"* ]] || fail
	# A path that is there but holds no repository says so too.
	ingit a remote set-url origin "$BATS_TEST_TMPDIR"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[[ "$stderr" == *"could not find repository"* ]] || fail
}

@test "offline: a silent server is cut off after remote_timeout" {
	as a heimdal push >/dev/null
	silent_start
	ingit a remote set-url origin "git://127.0.0.1:$SILENT_PORT/origin.git"
	printf '{"remote_timeout": 1}\n' >"$(mhome a)/.heimdal/lock_config.json"
	start=$SECONDS
	run --separate-stderr as a heimdal pull
	expect_status 0
	[ "${stderr_lines[0]}" = "! Warning: Cannot reach remote repository: timed out after 1 seconds" ] || fail
	[ $((SECONDS - start)) -lt 10 ] || fail "took $((SECONDS - start)) s"
}

@test "pull/push: bad flags are usage errors, a missing state an environment error" {
	run --separate-stderr as a heimdal push --bogus
	expect_status 2
	[ -z "$output" ] || fail
	[[ "$stderr" == *"unknown option '--bogus'"* ]] || fail
	run --separate-stderr as a heimdal pull extra
	expect_status 2
	[[ "$stderr" == *"unexpected argument 'extra'"* ]] || fail
	run as a heimdal push --help
	expect_status 0
	[ "$output" = "usage: heimdal push [--force]" ] || fail
	rm "$(mhome a)/.heimdal/state.json"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[ -z "$output" ] || fail
	[[ "$stderr" == *"run 'heimdal init' first"* ]] || fail
}

@test "pull: a missing dotfiles repository is an environment error" {
	rm -rf "$(mhome a)/.dotfiles"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[ -z "$output" ] || fail
	[[ "$stderr" == *"not a git repository"* ]] || fail
}

@test "pull: into a clone made while the remote was empty (unborn branch)" {
	empty=$(bare_remote empty)
	handmade c "$empty"
	handmade d "$empty"
	ingit c rev-parse --verify -q HEAD && fail "c has a HEAD"
	as c heimdal push >/dev/null
	run --separate-stderr as d heimdal pull
	expect_status 0
	[ "${lines[0]}" = "OK Git pull completed successfully!" ] || fail
	[ "$(ingit d rev-parse HEAD)" = "$(git --git-dir="$empty" rev-parse main)" ]
	[ -e "$(mhome d)/.dotfiles/.heimdal/state.json" ]
}

@test "pull: a local file the pull would overwrite is refused, and kept" {
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
	commit_file a .bashrc from-a
	as a heimdal push >/dev/null
	commit_file b .bashrc base-b
	ingit b reset -q --hard HEAD~1
	printf 'my edit\n' >"$(mhome b)/.dotfiles/.bashrc"
	run --separate-stderr as b heimdal pull
	expect_status 3
	[[ "$stderr" == *"commit or stash local changes first"* ]] || fail
	[ "$(cat "$(mhome b)/.dotfiles/.bashrc")" = "my edit" ]
}
