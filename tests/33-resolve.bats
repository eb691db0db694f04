#!/usr/bin/env bats
# heimdal state check-conflicts / resolve / diff: against a file, and against
# the remote state in a real git repository (bare, and over git daemon).

load helper
load states

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
	DOT="$HOME/.dotfiles"
}

teardown() {
	if [ -f "$BATS_TEST_TMPDIR/daemon.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/daemon.pid")" 2>/dev/null || true
	fi
}

# The local state: FILTER applied to a 42-from-41 state whose dotfiles_path is $DOT.
local_state() {
	st 42 41 "$1" | jq --arg p "$DOT" '.dotfiles_path = $p' > "$HEIMDAL_HOME/state.json"
	chmod 600 "$HEIMDAL_HOME/state.json"
}

# The spec's conflict: 42 vs 42 from 41, profiles personal vs work.
spec_pair() {
	local_state '.history = [h(41; "m1"), h(42; "A")]'
	st 42 41 '.history = [h(41; "m1"), h(42; "B")] | .active_profile = "work"' |
		jq --arg p "$DOT" '.dotfiles_path = $p' > remote.json
}

SPEC_LISTING='! State Conflicts Detected

1. [HIGH] State diverged: local serial 42 vs remote serial 42 (common parent: 41)
2. [MEDIUM] Active profile differs: local '"'personal'"' vs remote '"'work'"'

Resolution options:
  1. Use local state:  heimdal state resolve --use-local
  2. Use remote state: heimdal state resolve --use-remote
  3. Merge states:     heimdal state resolve --merge
  4. Manual edit:      heimdal state resolve --manual'

@test "check-conflicts --remote: the spec's listing, exit 1" {
	spec_pair
	run --separate-stderr heimdal state check-conflicts --remote remote.json
	expect_status 1
	[ "$output" = "$SPEC_LISTING" ] || fail "listing differs"
}

@test "check-conflicts: the spec's emoji in a UTF-8 locale" {
	spec_pair
	LC_ALL=C.UTF-8 run --separate-stderr heimdal state check-conflicts --remote remote.json
	expect_status 1
	[ "${lines[0]}" = "⚠️  State Conflicts Detected" ] || fail "header"
	[ "${lines[1]}" = "1. 🔴 State diverged: local serial 42 vs remote serial 42 (common parent: 41)" ] || fail "line 1"
	[ "${lines[2]}" = "2. 🟡 Active profile differs: local 'personal' vs remote 'work'" ] || fail "line 2"
	local_state '.history = [h(42; "A")]'
	st 42 41 '.history = [h(42; "A")]' | jq --arg p "$DOT" '.dotfiles_path = $p' > same.json
	LC_ALL=C.UTF-8 run heimdal state check-conflicts --remote same.json
	expect_status 0
	[ "$output" = "✓ No conflicts detected" ] || fail "clean"
}

@test "check-conflicts --json is heimdal-conflicts' document; clean is exit 0" {
	spec_pair
	run --separate-stderr heimdal state check-conflicts --remote remote.json --json
	expect_status 1
	expect_json '.relation == "diverged" and ([.conflicts[].type] == ["serial_divergence", "profile_mismatch"])'
	cp "$HEIMDAL_HOME/state.json" same.json
	run --separate-stderr heimdal state check-conflicts --remote same.json
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail "clean"
}

@test "check-conflicts: machines in step on their own profile and path have no conflict, exit 0" {
	local_state '.history = [h(41; "m1"), h(42; "A")]'
	# Another machine, same state, its own profile, path and files.
	st 42 41 '.history = [h(41; "m1"), h(42; "A")] | .active_profile = "work"
		| .dotfiles_path = "/home/b/.dotfiles" | .checksums = {".zshrc": sum(3)}' > other.json
	run --separate-stderr heimdal state check-conflicts --remote other.json
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail "listing"
	# Nothing to resolve, so nothing is written, however often it is asked.
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state resolve --merge --remote other.json
	expect_status 0
	[ "$output" = "OK No conflicts detected; nothing to resolve" ] || fail "resolve"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
	# The other machine simply ahead: still none.
	st 43 42 '.history = [h(41; "m1"), h(42; "A"), h(43; "B")] | .active_profile = "work"
		| .dotfiles_path = "/home/b/.dotfiles"' > ahead.json
	run --separate-stderr heimdal state check-conflicts --remote ahead.json --json
	expect_status 0
	expect_json '.relation == "behind" and .conflicts == []'
}

@test "resolve --merge: the spec's output; serial bumped; backup kept" {
	local_state '.history = [h(41; "m1"), h(42; "A")] | .lineage.machines = ["A", "B"] | .checksums[".bashrc"] = sum(1)'
	st 43 42 '.history = [h(41; "m1"), h(42; "B"), h(43; "C")] | .lineage.machines = ["B", "C"] | .checksums[".bashrc"] = sum(2)' |
		jq --arg p "$DOT" '.dotfiles_path = $p' > remote.json
	cp "$HEIMDAL_HOME/state.json" before.json
	run --separate-stderr heimdal state resolve --merge --remote remote.json
	expect_status 0
	backup=$(ls "$HEIMDAL_HOME"/backups/state_*.json)
	[ "$output" = "OK Backup created: $backup
OK States merged successfully
  - Combined 3 machine(s)
  - Resolved 2 conflict(s)
OK New state saved (serial 44)" ] || fail "output"
	cmp before.json "$backup" || fail "backup is not the old state"
	jq -e '.lineage.serial == 44 and .lineage.parent_serial == 43
		and .history[-1].operation == "resolve" and .history[-1].hostname == "test-host"
		and ([.history[].serial] == [41, 42, 42, 43, 44])
		and .checksums[".bashrc"] == ("0" * 31 + "1")
		and (.lineage.machines[:3] == ["A", "B", "C"])' "$HEIMDAL_HOME/state.json"
	[ "$(stat -c %a "$HEIMDAL_HOME/state.json")" = 600 ] || fail "mode"
	# Afterwards the local state is ahead of the remote: nothing to resolve.
	run heimdal state check-conflicts --remote remote.json
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail "still conflicting"
	# Equal states are left alone: no new serial for nothing.
	cp "$HEIMDAL_HOME/state.json" same.json
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state resolve --merge --remote same.json
	expect_status 0
	[ "$output" = "OK No conflicts detected; nothing to resolve" ] || fail "equal"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
}

@test "resolve --merge in a UTF-8 locale prints the spec's check marks" {
	spec_pair
	LC_ALL=C.UTF-8 run --separate-stderr heimdal state resolve --merge --remote remote.json
	expect_status 0
	[ "${lines[1]}" = "✓ States merged successfully" ] || fail "merged line"
	[ "${lines[2]}" = "  - Combined 3 machine(s)" ] || fail "machines line"
	[ "${lines[3]}" = "  - Resolved 2 conflict(s)" ] || fail "conflicts line"
}

@test "resolve --use-remote: the remote's shared facts, this machine's own kept, local backed up" {
	spec_pair
	# The remote machine has its own path, repository URL, times and files.
	jq '.dotfiles_path = "/home/b/.dotfiles" | .repo_url = "ssh://b/dotfiles.git"
		| .last_apply = "2024-01-14T09:00:00Z" | .last_sync = "2024-01-14T09:00:00Z"
		| .checksums = {".zshrc": ("0" * 31 + "9")}
		| .machine = {id: "B", hostname: "b", os: "linux", arch: "x86_64", user: "bob"}' \
		remote.json > r.json && mv r.json remote.json
	cp "$HEIMDAL_HOME/state.json" before.json
	run --separate-stderr heimdal state resolve --use-remote --remote remote.json
	expect_status 0
	[ "${lines[1]}" = "OK Remote state applied" ] || fail "output"
	[ "${lines[3]}" = "OK New state saved (serial 43)" ] || fail "serial line"
	cmp before.json "$HEIMDAL_HOME"/backups/state_*.json || fail "backup"
	# Shared facts from the remote; every per-machine fact as this machine had it.
	jq -e --slurpfile b before.json '.lineage.serial == 43 and .lineage.parent_serial == 42
		and ([.history[].machine_id][:2] == ["m1", "B"]) and .history[-1].operation == "resolve"
		and .active_profile == "personal" and .dotfiles_path == $b[0].dotfiles_path
		and .repo_url == $b[0].repo_url and .machine == $b[0].machine
		and .last_apply == $b[0].last_apply and .last_sync == $b[0].last_sync
		and .checksums == $b[0].checksums' "$HEIMDAL_HOME/state.json"
}

@test "resolve: the resolved serial is above both sides, whichever is higher" {
	# Local 42 against a remote that went on to 45: --use-local must not
	# publish 43, a serial the remote already gave other content.
	local_state '.history = [h(41; "m1"), h(42; "A")]'
	cp "$HEIMDAL_HOME/state.json" local.json
	st 45 44 '.history = [h(41; "m1"), h(42; "B"), h(43; "B"), h(44; "B"), h(45; "B")]' |
		jq --arg p "$DOT" '.dotfiles_path = $p' > high.json
	run --separate-stderr heimdal state resolve --use-local --remote high.json
	expect_status 0
	[ "${lines[-1]}" = "OK New state saved (serial 46)" ] || fail "use-local line"
	jq -e '.lineage.serial == 46 and .lineage.parent_serial == 42
		and ([.history[].serial] == [41, 42, 46]) and .active_profile == "personal"' \
		"$HEIMDAL_HOME/state.json"
	# The other way round: this machine at 45, the remote behind at 42.
	cp high.json "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state resolve --use-remote --remote local.json
	expect_status 0
	[ "${lines[-1]}" = "OK New state saved (serial 46)" ] || fail "use-remote line"
	jq -e '.lineage.serial == 46 and ([.history[].serial] == [41, 42, 46])' "$HEIMDAL_HOME/state.json"
	cp high.json "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state resolve --merge --remote local.json
	expect_status 0
	[ "${lines[-1]}" = "OK New state saved (serial 46)" ] || fail "merge line"
}

@test "resolve --use-local over a diverged remote keeps the remote in backups/" {
	spec_pair
	run --separate-stderr heimdal state resolve --use-local --remote remote.json
	expect_status 0
	[ "${lines[1]}" = "OK Local state kept" ] || fail "output"
	jq -e '.active_profile == "work"' "$HEIMDAL_HOME"/backups/state_remote_*.json
	jq -e '.active_profile == "personal" and .lineage.serial == 43 and .lineage.parent_serial == 42
		and ([.history[].machine_id][:2] == ["m1", "A"])' "$HEIMDAL_HOME/state.json"
}

@test "resolve --manual writes state.remote.json and prints the spec's steps" {
	spec_pair
	cp "$HEIMDAL_HOME/state.json" before.json
	run --separate-stderr heimdal state resolve --manual --remote remote.json
	expect_status 0
	[ "$output" = "OK Remote state written to $HEIMDAL_HOME/state.remote.json

Steps:
1. Edit: \`vim $HEIMDAL_HOME/state.json\`
2. Validate: \`heimdal state version\`
3. Commit: \`heimdal commit -m \"Fix state conflicts\"\`
4. Push: \`heimdal push\`" ] || fail "output"
	cmp before.json "$HEIMDAL_HOME/state.json" || fail "state changed"
	jq -e '.active_profile == "work"' "$HEIMDAL_HOME/state.remote.json"
}

@test "resolve: no strategy, two strategies, a bad remote file: exit 2, nothing changed" {
	spec_pair
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state resolve --remote remote.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "heimdal: error: choose a resolution: --use-local, --use-remote, --merge or --manual"* ]] || fail "message"
	run --separate-stderr heimdal state resolve --merge --use-local --remote remote.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--merge and --use-local: choose one"* ]] || fail "message"
	jq '.lineage.serial = "x"' remote.json > bad.json
	run --separate-stderr heimdal state resolve --use-remote --remote bad.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	# The user's file is named, not the plumbing's <stdin>.
	[ "$stderr" = "heimdal: error: --remote: bad.json: .lineage.serial: expected a non-negative integer, got string" ] ||
		fail "message"
	for cmd in check-conflicts diff; do
		run --separate-stderr heimdal state $cmd --remote bad.json
		expect_status 2
		[ -z "$output" ] || fail "$cmd: stdout"
		[ "$stderr" = "heimdal: error: --remote: bad.json: .lineage.serial: expected a non-negative integer, got string" ] ||
			fail "$cmd: message"
	done
	echo '{' > trunc.json
	run --separate-stderr heimdal state resolve --merge --remote trunc.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "heimdal: error: --remote: trunc.json: invalid JSON"* ]] || fail "message"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
}

@test "diff --remote: text and --json" {
	spec_pair
	run --separate-stderr heimdal state diff --remote remote.json
	expect_status 1
	[ "$output" = 'State differences: local serial 42 vs remote serial 42 (diverged)

  .active_profile
    local:  "personal"
    remote: "work"
  .history
    only local:  {"operation":"apply","timestamp":"2024-01-15T10:42:00Z","machine_id":"A","user":"john","serial":42}
    only remote: {"operation":"apply","timestamp":"2024-01-15T10:42:00Z","machine_id":"B","user":"john","serial":42}

2 field(s) differ.' ] || fail "text"
	run --separate-stderr heimdal state diff --remote remote.json --json
	expect_status 1
	expect_json '[.differences[].field] == [".active_profile", ".history"]'
	cp "$HEIMDAL_HOME/state.json" same.json
	run heimdal state diff --remote same.json
	expect_status 0
	[ "$output" = "OK No differences between local and remote state" ] || fail "clean"
}

# A dotfiles repository at $DOT whose upstream is the bare remote (or URL),
# holding the local state at .heimdal/state.json.
git_setup() {
	local url=${1:-$(bare_remote)}
	git clone -q "$url" "$DOT" 2>/dev/null
	mkdir -p "$DOT/.heimdal"
	cp "$HEIMDAL_HOME/state.json" "$DOT/.heimdal/state.json"
	git -C "$DOT" add .heimdal/state.json
	git -C "$DOT" commit -qm "state"
	git -C "$DOT" push -q -u origin main 2>/dev/null
	REMOTE_URL=$url
}

# Another machine pushes its own state: FILTER applied to the shared state.
other_machine_pushes() {
	git clone -q "$REMOTE_URL" other 2>/dev/null
	jq "$JQ_DEFS $1" other/.heimdal/state.json > other/.heimdal/new.json
	mv other/.heimdal/new.json other/.heimdal/state.json
	git -C other commit -qam "other machine"
	git -C other push -q origin main 2>/dev/null
}

@test "git: the remote state is fetched from the upstream; base is the merge base" {
	local_state '.history = [h(41; "m1"), h(42; "m1")] | .checksums = {a: sum(1), b: sum(2)}'
	git_setup
	other_machine_pushes '.lineage.serial = 43 | .lineage.parent_serial = 42 | .history += [h(43; "B")] | .checksums.b = sum(22)'
	local_state '.history = [h(41; "m1"), h(42; "m1"), h(43; "A")] | .lineage.serial = 43 | .lineage.parent_serial = 42
		| .checksums = {a: sum(11), b: sum(2)}'
	# Not fetched yet: only the fetch can make it known.
	[ "$(git -C "$DOT" rev-parse origin/main)" = "$(git -C "$DOT" rev-parse HEAD)" ]
	run --separate-stderr heimdal state check-conflicts
	expect_status 1
	[ "${lines[1]}" = "1. [HIGH] State diverged: local serial 43 vs remote serial 43 (common parent: 42)" ] || fail "listing"
	# Three-way: each side changed another file, so no drift is reported.
	[ "${#lines[@]}" -eq 7 ] || fail "expected one conflict"
	run --separate-stderr heimdal state resolve --merge
	expect_status 0
	[ "${lines[3]}" = "  - Resolved 1 conflict(s)" ] || fail "resolved"
	# The checksums are this machine's deployment record: never another's.
	jq -e '.checksums == {a: ("0" * 30 + "11"), b: ("0" * 31 + "2")} and .lineage.serial == 44' "$HEIMDAL_HOME/state.json"
}

@test "git: idle here while another machine ran more than 50 operations: behind, no conflict" {
	local_state '.history = [range(1; 43) | h(.; "m1")]'
	git_setup
	other_machine_pushes '.lineage.serial = 142 | .lineage.parent_serial = 141
		| .history = [range(93; 143) | h(.; "B")] | .active_profile = "work"'
	run --separate-stderr heimdal state check-conflicts --json
	expect_status 0
	expect_json '. == {relation: "behind", local_serial: 42, remote_serial: 142, common_parent: 42, conflicts: []}'
	run --separate-stderr heimdal state check-conflicts
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail
}

@test "git: the same file changed on both sides is file drift" {
	local_state '.history = [h(42; "m1")] | .checksums = {a: sum(1)}'
	git_setup
	other_machine_pushes '.lineage.serial = 43 | .history += [h(43; "B")] | .checksums.a = sum(22)'
	local_state '.history = [h(42; "m1"), h(43; "A")] | .lineage.serial = 43 | .checksums = {a: sum(11)}'
	run --separate-stderr heimdal state check-conflicts --json
	expect_status 1
	expect_json '[.conflicts[].type] == ["serial_divergence", "file_drift"]'
	expect_json '.conflicts[1] | .path == "a" and .base == ("0" * 31 + "1")'
}

@test "git: unreachable remote: the spec's warning, then the last fetched state" {
	local_state '.history = [h(42; "m1")]'
	git_setup
	other_machine_pushes '.lineage.serial = 43 | .history += [h(43; "B")] | .active_profile = "work"'
	git -C "$DOT" fetch -q origin
	# This machine wrote too: the states diverged, and the profiles are listed.
	local_state '.history = [h(42; "m1"), h(43; "A")] | .lineage.serial = 43'
	port=$(free_port)
	git -C "$DOT" remote set-url origin "git://127.0.0.1:$port/origin.git"
	run --separate-stderr heimdal state check-conflicts
	expect_status 1
	[[ "$stderr" == "! Warning: Cannot reach remote repository: "* ]] || fail "warning"
	[[ "$stderr" == *"Comparing with the last fetched remote state (origin/main)."* ]] || fail "fallback note"
	[ "${lines[1]}" = "1. [HIGH] State diverged: local serial 43 vs remote serial 43 (common parent: 42)" ] || fail "listing"
	[ "${lines[2]}" = "2. [MEDIUM] Active profile differs: local 'personal' vs remote 'work'" ] || fail "listing"
}

@test "git: over git daemon on 127.0.0.1" {
	command -v git-daemon >/dev/null || [ -x "$(git --exec-path)/git-daemon" ] || skip "git daemon not installed"
	remote=$(bare_remote)
	touch "$remote/git-daemon-export-ok"
	git -C "$remote" config daemon.receivepack true
	port=$(free_port)
	git daemon --reuseaddr --listen=127.0.0.1 --port="$port" --base-path="$BATS_TEST_TMPDIR/remotes" \
		--enable=receive-pack --pid-file="$BATS_TEST_TMPDIR/daemon.pid" --detach "$BATS_TEST_TMPDIR/remotes"
	for _ in $(seq 50); do
		git ls-remote "git://127.0.0.1:$port/origin.git" >/dev/null 2>&1 && break
		sleep 0.1
	done
	local_state '.history = [h(42; "m1")]'
	git_setup "git://127.0.0.1:$port/origin.git"
	other_machine_pushes '.lineage.serial = 43 | .history += [h(43; "B")]'
	run --separate-stderr heimdal state check-conflicts
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail "clean"
	run --separate-stderr heimdal state diff --json
	expect_status 1
	expect_json '.relation == "behind" and .remote_serial == 43'
	run --separate-stderr heimdal state resolve --use-remote
	expect_status 0
	jq -e '.lineage.serial == 44 and ([.history[].machine_id][:2] == ["m1", "B"])' "$HEIMDAL_HOME/state.json"
}

@test "git: no upstream branch is an environment error, exit 3" {
	local_state ''
	git init -q "$DOT"
	run --separate-stderr heimdal state check-conflicts
	expect_status 3
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"has no upstream branch"* ]] || fail "message"
}

@test "git: an upstream without a state yet has nothing to conflict with" {
	local_state '.history = [h(42; "m1")]'
	remote=$(bare_remote)
	git clone -q "$remote" "$DOT" 2>/dev/null
	echo x > "$DOT/.bashrc"
	git -C "$DOT" add .bashrc
	git -C "$DOT" commit -qm "dotfiles"
	git -C "$DOT" push -q -u origin main 2>/dev/null
	run --separate-stderr heimdal state check-conflicts
	expect_status 0
	[ "$output" = "OK No conflicts detected" ] || fail "output"
	[[ "$stderr" == *"no remote state at origin/main:.heimdal/state.json yet"* ]] || fail "note"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state resolve --merge
	expect_status 3
	[ -z "$output" ] || fail "stdout"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
}

@test "resolve --merge of unrelated lineages: exit 1, state unchanged, other ways named" {
	local_state '.history = [h(42; "A")]'
	st 42 41 '.lineage.id = "lineage-zzz"' > remote.json
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state resolve --merge --remote remote.json
	expect_status 1
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"cannot merge states of different lineages"* ]] || fail "merge message"
	[[ "$stderr" == *"use --use-local, --use-remote or --manual"* ]] || fail "hint"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
}
