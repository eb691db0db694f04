#!/usr/bin/env bats
# heimdal init: clone the dotfiles repository, join its lineage or start one.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
	git_machine a
	git_machine b
}

@test "init: an empty remote -> a clone and a new lineage recorded as 'init'" {
	run --separate-stderr as a heimdal init --profile personal --repo "$REMOTE"
	expect_status 0
	[ "${lines[0]}" = "OK Cloned $REMOTE into $(mhome a)/.dotfiles" ] || fail
	[[ "${lines[1]}" == "OK Started lineage "*" as a (serial "*")" ]] || fail
	[ "${lines[2]}" = "OK State saved to $(mhome a)/.heimdal/state.json" ] || fail
	[ -d "$(mhome a)/.dotfiles/.git" ]
	s="$(mhome a)/.heimdal/state.json"
	[ "$(stat -c %a "$s")" = 600 ]
	jq -e --arg id "$(cat "$(mhome a)/.heimdal/machine-id")" --arg url "$REMOTE" --arg home "$(mhome a)" '
		.version == 2 and .active_profile == "personal" and .dotfiles_path == $home + "/.dotfiles"
		and .repo_url == $url and .machine.id == $id and .machine.hostname == "a"
		and .lineage.machines == [$id] and .history[-1].operation == "init"
		and .history[-1].serial == .lineage.serial' "$s"
	as a heimdal state version >/dev/null
}

@test "init: a second machine joins the lineage the repository carries" {
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	as a heimdal push >/dev/null
	run --separate-stderr as b heimdal init --profile personal --repo "$REMOTE"
	expect_status 0
	[[ "${lines[1]}" == "OK Joined lineage "*" as b (serial "*")" ]] || fail
	a="$(mhome a)/.heimdal/state.json" b="$(mhome b)/.heimdal/state.json"
	jq -e --slurpfile a "$a" --arg ida "$(cat "$(mhome a)/.heimdal/machine-id")" \
		--arg idb "$(cat "$(mhome b)/.heimdal/machine-id")" '
		.lineage.id == $a[0].lineage.id and .lineage.serial == $a[0].lineage.serial + 1
		and .lineage.parent_serial == $a[0].lineage.serial
		and .lineage.machines == [$ida, $idb] and .machine.id == $idb
		and (.history | length) == ($a[0].history | length) + 1
		and .history[-1].machine_id == $idb' "$b"
}

@test "init: two machines initialised on day one against an empty remote join one lineage" {
	# Both init before either syncs: each starts a lineage of its own.
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	as b heimdal init --profile work --repo "$REMOTE" --path "$(mhome b)/dots" >/dev/null
	a="$(mhome a)/.heimdal/state.json" b="$(mhome b)/.heimdal/state.json"
	[ "$(jq -r .lineage.id "$a")" != "$(jq -r .lineage.id "$b")" ]
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	# B holds nothing but its own init: it joins A's lineage, keeping its own facts.
	run --separate-stderr as b heimdal state check-conflicts
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	[[ "$output" != *"another lineage"* ]] || fail
	jq -e --slurpfile a "$a" --arg home "$(mhome b)" '.lineage.id == $a[0].lineage.id
		and .active_profile == "work" and .dotfiles_path == $home + "/dots"
		and .machine.hostname == "b"' "$b"
	# Joining is news: B is in the lineage, and the remote carries it.
	jq -e '.lineage.machines | length == 2' "$b"
	remote_state "$REMOTE" | jq -e '.lineage.machines | length == 2'
	# And they stay joined: both sync again without a word about lineages.
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	[ "$(jq -r .lineage.id "$a")" = "$(jq -r .lineage.id "$b")" ]
	[ "$(remote_state "$REMOTE" | jq -r .lineage.id)" = "$(jq -r .lineage.id "$a")" ]
}

@test "init: an existing clone with the same remote is used as it is" {
	as b git clone -q "$REMOTE" "$(mhome b)/.dotfiles" 2>/dev/null
	run --separate-stderr as b heimdal init --profile personal --repo "$REMOTE/"
	expect_status 0
	[ "${lines[0]}" = "Using the existing clone at $(mhome b)/.dotfiles" ] || fail
}

@test "init: a clone of another repository, or a directory that is not one, is refused" {
	other=$(bare_remote other)
	as b git clone -q "$other" "$(mhome b)/.dotfiles" 2>/dev/null
	run --separate-stderr as b heimdal init --profile personal --repo "$REMOTE"
	expect_status 2
	[ -z "$output" ] || fail
	[[ "$stderr" == *"its remote 'origin' is $other, not $REMOTE (--repo)"* ]] || fail
	[ ! -e "$(mhome b)/.heimdal/state.json" ]
	mkdir -p "$(mhome a)/stuff" && touch "$(mhome a)/stuff/x"
	run --separate-stderr as a heimdal init --profile p --repo "$REMOTE" --path "$(mhome a)/stuff"
	expect_status 2
	[[ "$stderr" == *"stuff: exists and is not a git repository"* ]] || fail
	[ ! -e "$(mhome a)/.heimdal/state.json" ]
}

@test "init: re-running is refused without --force; --force keeps history and a backup" {
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	before=$(snapshot "$(mhome a)/.heimdal")
	run --separate-stderr as a heimdal init --profile work --repo "$REMOTE"
	expect_status 2
	[ -z "$output" ] || fail
	[[ "$stderr" == *"already initialized"*"use --force"* ]] || fail
	[ "$(snapshot "$(mhome a)/.heimdal")" = "$before" ]
	old="$BATS_TEST_TMPDIR/old.json"
	cp "$(mhome a)/.heimdal/state.json" "$old"
	run --separate-stderr as a heimdal init --force --profile work --repo "$REMOTE"
	expect_status 0
	[[ "$output" == *"OK Backup created: $(mhome a)/.heimdal/backups/state_init_"*".json"* ]] || fail
	cmp "$old" "$(mhome a)"/.heimdal/backups/state_init_*.json
	jq -e --slurpfile o "$old" '.active_profile == "work"
		and .lineage.id == $o[0].lineage.id and .lineage.serial == $o[0].lineage.serial + 1
		and .history[:-1] == $o[0].history' "$(mhome a)/.heimdal/state.json"
}

@test "init: --path, absolute or relative, is stored absolute; parents are made" {
	run --separate-stderr as a heimdal init --profile p --repo "$REMOTE" --path "$BATS_TEST_TMPDIR/df"
	expect_status 0
	jq -e --arg p "$BATS_TEST_TMPDIR/df" '.dotfiles_path == $p' "$(mhome a)/.heimdal/state.json"
	cd "$(mhome b)"
	run --separate-stderr as b heimdal init --profile p --repo "$REMOTE" --path src/dots
	expect_status 0
	jq -e --arg p "$(mhome b)/src/dots" '.dotfiles_path == $p' "$(mhome b)/.heimdal/state.json"
	[ -d "$(mhome b)/src/dots/.git" ]
}

@test "init: an unreachable remote -> the warning, exit 3, nothing left behind" {
	port=$(free_port)
	run --separate-stderr as a heimdal init --profile p --repo "git://127.0.0.1:$port/x.git"
	expect_status 3
	[[ "${stderr_lines[0]}" == "! Warning: Cannot reach remote repository: "* ]] || fail
	[[ "$stderr" == *"cannot clone git://127.0.0.1:$port/x.git"* ]] || fail
	[ ! -e "$(mhome a)/.dotfiles" ]
	[ -z "$(ls "$(mhome a)" | grep clone)" ]
	[ ! -e "$(mhome a)/.heimdal/state.json" ]
}

@test "init: usage errors name the flag, exit 2, nothing written" {
	run --separate-stderr as a heimdal init --repo "$REMOTE"
	expect_status 2
	[ -z "$output" ] || fail
	[[ "$stderr" == *"--profile is required"* ]] || fail
	run --separate-stderr as a heimdal init --profile p
	expect_status 2
	[[ "$stderr" == *"--repo is required"* ]] || fail
	run --separate-stderr as a heimdal init --profile p --repo "$REMOTE" --bogus
	expect_status 2
	[[ "$stderr" == *"unknown option '--bogus'"* ]] || fail
	run --separate-stderr as a heimdal init --profile
	expect_status 2
	[[ "$stderr" == *"--profile: requires a value"* ]] || fail
	run as a heimdal init --help
	expect_status 0
	[ "$output" = "usage: heimdal init --profile NAME --repo URL [--path DIR] [--force] [--empty]" ] || fail
	[ ! -e "$(mhome a)/.dotfiles" ] && [ ! -e "$(mhome a)/.heimdal/state.json" ]
}

@test "init: the new state composes with the plumbing (lineage compare against the repo's)" {
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	as a heimdal push >/dev/null
	remote_state "$REMOTE" >"$BATS_TEST_TMPDIR/r.json"
	run heimdal-lineage compare --local "$(mhome a)/.heimdal/state.json" --remote "$BATS_TEST_TMPDIR/r.json"
	expect_status 0
	expect_json '.relation == "equal"'
}

@test "init: a remote whose HEAD names a branch it does not have: the clone takes its only branch, never an empty start" {
	git -C "$REMOTE" symbolic-ref HEAD refs/heads/trunk
	seed="$BATS_TEST_TMPDIR/seed"
	git init -q "$seed" && printf 'hi\n' >"$seed/.bashrc"
	git -C "$seed" add -A && git -C "$seed" commit -qm seed && git -C "$seed" push -q "$REMOTE" HEAD:work
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	as a heimdal sync >/dev/null
	[ "$(git -C "$(mhome a)/.dotfiles" rev-parse --abbrev-ref HEAD)" = work ] || fail "not on the remote's branch"
	[ "$(cat "$(mhome a)/.bashrc")" = hi ] || fail "not deployed"
	# The second machine joins the lineage the first pushed to that branch.
	run --separate-stderr as b heimdal init --profile personal --repo "$REMOTE"
	expect_status 0
	[[ "$output" == *"Joined lineage"* ]] || fail "$output"
	# With several branches and none of them main or master, it says what to do.
	git -C "$seed" push -q "$REMOTE" HEAD:other
	git_machine c
	run --separate-stderr as c heimdal init --profile personal --repo "$REMOTE"
	expect_status 3
	[[ "$stderr" == *"its HEAD names no branch it has, and it has several"* ]] || fail "$stderr"
	[ ! -e "$(mhome c)/.dotfiles" ] || fail "a clone was left"
}

@test "a remote lock against a local path that is gone says so, never 'unsupported URL protocol'" {
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	mv "$REMOTE" "$REMOTE.moved"
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply -c
	expect_status 0
	[[ "$stderr" == *"$REMOTE: no such repository: the path does not exist; the remote lock is not taken"* ]] || fail "$stderr"
	[[ "$stderr" != *"unsupported URL protocol"* ]] || fail "$stderr"
	as a heimdal-lock release <<<"$output"
}

@test "init writes the state under the lock: refused (exit 4) while another operation holds it, nothing cloned" {
	mkdir -p "$(mhome a)/.heimdal"
	sleep 600 3>&- &
	holder=$!
	lock=$(as a heimdal-lock acquire -c --op apply --pid "$holder")
	run --separate-stderr as a heimdal init --profile personal --repo "$REMOTE"
	expect_status 4
	[[ "$stderr" == "Error: State is currently locked"*"Operation: apply"* ]] || fail "stderr: $stderr"
	[ ! -e "$(mhome a)/.heimdal/state.json" ] || fail "state written"
	[ ! -e "$(mhome a)/.dotfiles" ] || fail "cloned"
	as a heimdal-lock release <<<"$lock"
	kill "$holder"
	run --separate-stderr as a heimdal init --profile personal --repo "$REMOTE"
	expect_status 0
	[ ! -e "$(mhome a)/.heimdal/state.lock" ] || fail "init left its lock"
}
