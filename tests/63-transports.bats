#!/usr/bin/env bats
# Every transport: a local path, file://, git:// (git daemon) and ssh (sshd),
# both ssh://host:port/path and scp-like user@host:path.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
	handmade a "$REMOTE"
	handmade b "$REMOTE"
	as a heimdal push >/dev/null
	as b heimdal pull >/dev/null
}

# round_trip URL: a pushes a dotfile over URL, b pulls it over URL.
round_trip() {
	ingit a remote set-url origin "$1"
	ingit b remote set-url origin "$1"
	commit_file a .bashrc "over $1"
	run --separate-stderr as a heimdal push
	expect_status 0
	[[ "$output" == "OK Pushed "* ]] || fail
	git --git-dir="$REMOTE" show main:.bashrc | grep -qxF "over $1"
	run --separate-stderr as b heimdal pull
	expect_status 0
	[ "${lines[0]}" = "OK Git pull completed successfully!" ] || fail
	[ "$(cat "$(mhome b)/.dotfiles/.bashrc")" = "over $1" ]
}

@test "transport: a local path" {
	round_trip "$REMOTE"
}

@test "transport: file://" {
	round_trip "file://$REMOTE"
}

@test "transport: git:// through git daemon" {
	git_daemon_start "$(dirname "$REMOTE")"
	round_trip "$GIT_DAEMON_URL/origin.git"
}

@test "transport: ssh://user@host:port/path with the key in ~/.ssh/id_ed25519" {
	sshd_start
	ssh_trust "$(mhome a)"
	ssh_trust "$(mhome b)"
	round_trip "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
}

@test "transport: ssh with a hashed known_hosts entry and the key from ssh-agent" {
	sshd_start
	ssh_trust "$(mhome a)"
	ssh_trust "$(mhome b)"
	ssh-keygen -q -H -f "$(mhome a)/.ssh/known_hosts" 2>/dev/null
	! grep -q 127.0.0.1 "$(mhome a)/.ssh/known_hosts"
	# a's key lives only in an agent.
	eval "$(ssh-agent -s)" >/dev/null
	echo "$SSH_AGENT_PID" >"$BATS_TEST_TMPDIR/servers/agent.pid"
	ssh-add -q "$(mhome a)/.ssh/id_ed25519"
	rm "$(mhome a)/.ssh/id_ed25519" "$(mhome a)/.ssh/id_ed25519.pub"
	round_trip "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
}

@test "transport: scp-like user@host:path (port 22 on a loopback address of its own)" {
	addr="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 2))"
	[ "$(id -u)" = 0 ] || skip "only root can listen on port 22"
	sshd_start "$addr" 22 2>/dev/null || skip "cannot listen on $addr:22 here"
	ssh_trust "$(mhome a)"
	ssh_trust "$(mhome b)"
	round_trip "$(id -un)@$addr:$REMOTE"
}

@test "ssh: an unknown host key is refused (exit 3), never taken for offline" {
	sshd_start
	ssh_trust "$(mhome a)"
	: >"$(mhome a)/.ssh/known_hosts"
	ingit a remote set-url origin "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[ -z "$output" ] || fail
	[[ "$stderr" == *"[127.0.0.1]:$SSHD_PORT: host key not in ~/.ssh/known_hosts"* ]] || fail
}

@test "ssh: a changed host key is refused" {
	sshd_start
	ssh_trust "$(mhome a)"
	ssh-keygen -q -t ed25519 -N '' -f "$BATS_TEST_TMPDIR/other"
	printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$BATS_TEST_TMPDIR/other.pub")" \
		>"$(mhome a)/.ssh/known_hosts"
	ingit a remote set-url origin "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
	commit_file a .bashrc x
	before=$(git --git-dir="$REMOTE" rev-parse main)
	run --separate-stderr as a heimdal push
	expect_status 3
	[[ "$stderr" == *"HOST KEY DOES NOT MATCH"* ]] || fail
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$before" ]
}

@test "ssh: no usable key is an error, not offline" {
	sshd_start
	ssh_trust "$(mhome a)"
	rm "$(mhome a)/.ssh/id_ed25519" "$(mhome a)/.ssh/id_ed25519.pub"
	ingit a remote set-url origin "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
	run --separate-stderr env -u SSH_AUTH_SOCK HOME="$(mhome a)" HEIMDAL_HOME="$(mhome a)/.heimdal" \
		heimdal pull
	[ "$status" -ne 0 ] || fail
	[[ "$output" != *"Git pull completed"* ]] || fail
}

@test "unknown host: offline warning, exit 0" {
	ingit a remote set-url origin "git://host.invalid/origin.git"
	run --separate-stderr as a heimdal pull
	expect_status 0
	[[ "${stderr_lines[0]}" == "! Warning: Cannot reach remote repository: "* ]] || fail
}

@test "git daemon: a repository it does not serve is an error with the server's words, exit 3" {
	git_daemon_start "$(dirname "$REMOTE")"
	ingit a remote set-url origin "$GIT_DAEMON_URL/gone.git"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[[ "$output" != *"Cannot reach"* ]] || fail "taken for offline"
	[[ "$stderr" == *"heimdal: error: fetch from 'origin' failed: remote error: access denied or repository not exported: /gone.git"* ]] || fail
	run --separate-stderr as a heimdal push
	expect_status 3
	[[ "$output" != *"Cannot reach"* ]] || fail "taken for offline"
	[[ "$stderr" == *"remote error: access denied or repository not exported: /gone.git"* ]] || fail
	# init: the same answer, and nothing left behind.
	git_machine c
	run --separate-stderr as c heimdal init --profile p --repo "$GIT_DAEMON_URL/gone.git"
	expect_status 3
	[[ "$output" != *"Cannot reach"* ]] || fail "taken for offline"
	[[ "$stderr" == *"access denied or repository not exported: /gone.git"* ]] || fail
	[ ! -e "$(mhome c)/.dotfiles" ] && [ ! -e "$(mhome c)/.heimdal/state.json" ]
	# A local path that does not exist: said so, not "unsupported URL protocol".
	run --separate-stderr as c heimdal init --profile p --repo "$BATS_TEST_TMPDIR/gone.git"
	expect_status 3
	[[ "$stderr" == *"heimdal: error: $BATS_TEST_TMPDIR/gone.git: no such repository: the path does not exist"* ]] || fail
	[ ! -e "$(mhome c)/.dotfiles" ]
}

@test "init clones over every network transport" {
	git_daemon_start "$(dirname "$REMOTE")"
	sshd_start
	git_machine c
	git_machine d
	ssh_trust "$(mhome d)"
	run --separate-stderr as c heimdal init --profile work --repo "$GIT_DAEMON_URL/origin.git"
	expect_status 0
	[ -e "$(mhome c)/.dotfiles/.heimdal/state.json" ]
	run --separate-stderr as d heimdal init --profile work \
		--repo "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
	expect_status 0
	[ -e "$(mhome d)/.dotfiles/.heimdal/state.json" ]
	ingit d remote get-url origin | grep -q '^ssh://'
}

@test "push --force over git daemon: an unseen push is kept, only the state replaced" {
	git_daemon_start "$(dirname "$REMOTE")"
	url="$GIT_DAEMON_URL/origin.git"
	ingit a remote set-url origin "$url"
	ingit b remote set-url origin "$url"
	commit_file b .vimrc from-b
	commit_file a .bashrc unseen
	as a heimdal push >/dev/null
	unseen=$(git --git-dir="$REMOTE" rev-parse main)
	run --separate-stderr as b heimdal push --force
	expect_status 0
	git --git-dir="$REMOTE" merge-base --is-ancestor "$unseen" main || fail "dropped"
	git --git-dir="$REMOTE" show main:.bashrc | grep -qx unseen
	git --git-dir="$REMOTE" show main:.vimrc | grep -qx from-b
	[ "$(git --git-dir="$REMOTE" rev-parse main)" = "$(ingit b rev-parse HEAD)" ]
	diff <(remote_state "$REMOTE" | jq -S 'del(.machine)') \
		<(jq -S 'del(.machine)' "$(mhome b)/.heimdal/state.json")
}

@test "ssh: known_hosts wildcard and negated patterns; a @revoked key is refused" {
	sshd_start
	ssh_trust "$(mhome a)"
	key=$(cut -d' ' -f1,2 "$BATS_TEST_TMPDIR/servers/host_ed25519.pub")
	url="ssh://$(id -un)@127.0.0.1:$SSHD_PORT$REMOTE"
	ingit a remote set-url origin "$url"
	printf '# comment\n[127.0.0.?]:*,!example.invalid %s\n' "$key" >"$(mhome a)/.ssh/known_hosts"
	run --separate-stderr as a heimdal pull
	expect_status 0
	printf '[127.0.0.?]:*,![127.0.0.1]:%s %s\n' "$SSHD_PORT" "$key" >"$(mhome a)/.ssh/known_hosts"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[[ "$stderr" == *"host key not in ~/.ssh/known_hosts"* ]] || fail
	printf '[127.0.0.1]:%s %s\n@revoked * %s\n' "$SSHD_PORT" "$key" "$key" >"$(mhome a)/.ssh/known_hosts"
	run --separate-stderr as a heimdal pull
	expect_status 3
	[[ "$stderr" == *"HOST KEY DOES NOT MATCH"* ]] || fail
}
