#!/usr/bin/env bats
# A compromised second machine or a hostile remote: what it pushes is data,
# never authority.  Each test has machine "a" (the victim) and an attacker
# who pushes whatever it likes to the shared remote with plain git.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
	seed="$BATS_TEST_TMPDIR/seed"
	git init -q "$seed"
	printf 'one\n' >"$seed/.bashrc"
	git -C "$seed" add -A && git -C "$seed" commit -qm seed && git -C "$seed" push -q "$REMOTE" HEAD:main
	git_machine a
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	as a heimdal sync >/dev/null
	mkdir -p "$(mhome a)/.ssh"
	printf 'PRIVATE KEY\n' >"$(mhome a)/.ssh/id_ed25519"
	chmod 600 "$(mhome a)/.ssh/id_ed25519"
	evil="$BATS_TEST_TMPDIR/evil"
	git clone -q "$REMOTE" "$evil"
}

# sync_evil: the attacker takes what the remote has (before changing its clone).
sync_evil() {
	git -C "$evil" pull -q --no-rebase origin main
}

# push_evil MSG: the attacker commits everything in its clone and pushes.
push_evil() {
	git -C "$evil" add -A && git -C "$evil" commit -qm "$1" && git -C "$evil" push -q origin HEAD:main
}

@test "a remote state naming ~/.ssh/id_ed25519 never makes commit or sync copy the key" {
	sum=$(printf 'x' | sha256sum | cut -c1-64)
	jq --arg s "$sum" '.checksums[".ssh/id_ed25519"] = $s | .lineage.serial += 5
		| .history += [{operation: "apply", timestamp: "2024-01-15T10:31:00Z", machine_id: "evil", user: "e", serial: .lineage.serial}]' \
		"$evil/.heimdal/state.json" >"$evil/s" && mv "$evil/s" "$evil/.heimdal/state.json"
	push_evil "state"
	as a heimdal sync >/dev/null
	run --separate-stderr as a heimdal state check-drift
	expect_status 0
	[[ "$output" != *id_ed25519* ]] || fail "the key is listed"
	printf 'two\n' >>"$(mhome a)/.bashrc"
	run --separate-stderr as a heimdal commit -m x
	expect_status 0
	[[ "$output" != *id_ed25519* ]] || fail "the key is accepted"
	as a heimdal sync >/dev/null
	! git --git-dir="$REMOTE" cat-file -e main:.ssh/id_ed25519 2>/dev/null || fail "the key was pushed"
	jq -e '.checksums | has(".ssh/id_ed25519") | not' "$(mhome a)/.heimdal/state.json"
}

@test "nothing in the repository or a profile deploys into \$HEIMDAL_HOME, .git or the repository itself" {
	mkdir -p "$evil/profiles/personal/.heimdal" "$evil/.dotfiles" "$evil/x/.git"
	printf '{"lock_type": "Disabled"}\n' >"$evil/profiles/personal/.heimdal/lock_config.json"
	printf 'evil\n' >"$evil/.dotfiles/planted"
	printf 'evil\n' >"$evil/x/.git/config"
	push_evil "plant"
	run --separate-stderr as a heimdal sync
	expect_status 0
	[ ! -e "$(mhome a)/.heimdal/lock_config.json" ] || fail "planted into HEIMDAL_HOME"
	[ ! -e "$(mhome a)/x/.git/config" ] || fail "planted a .git"
	[ "$(git -C "$(mhome a)/.dotfiles" show HEAD:.dotfiles/planted)" = evil ] || fail "not pulled at all"
	jq -e '.checksums | keys == [".bashrc"]' "$(mhome a)/.heimdal/state.json"
}

@test "a .heimdalignore that is a device, a FIFO or a symlink is refused, not read" {
	ln -s /dev/zero "$evil/.heimdalignore"
	push_evil "zero"
	run --separate-stderr timeout 20 env HOME="$(mhome a)" HEIMDAL_HOME="$(mhome a)/.heimdal" heimdal sync
	expect_status 0
	[[ "$stderr" == *".heimdalignore: Too many levels of symbolic links; ignored"* ]] || fail "$stderr"
}

@test "commit never writes through a symlink the repository carries" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside"
	mkdir -p "$evil/.config"
	printf 'cfg\n' >"$evil/.config/app.conf"
	push_evil "app"
	as a heimdal sync >/dev/null
	# The attacker replaces the directory by a symlink to a place outside.
	sync_evil
	git -C "$evil" rm -rq .config
	ln -s "$outside" "$evil/.config"
	printf 'cfg\n' >"$outside/app.conf"
	push_evil "link"
	as a heimdal sync >/dev/null || true
	printf 'mine\n' >"$(mhome a)/.config/app.conf"
	run --separate-stderr as a heimdal commit -m x
	expect_status 0
	# What the repository carries now is a link, not a file to accept.
	[[ "$output" == "Nothing to commit"* ]] || fail
	[ "$(cat "$outside/app.conf")" = cfg ] || fail "written outside"
	[ "$(cat "$(mhome a)/.config/app.conf")" = mine ] || fail "the file here was touched"
}

@test "a file the other machine deletes is removed here only when this machine deployed it unchanged" {
	printf 'k\n' >"$evil/.profile"
	push_evil "profile"
	as a heimdal sync >/dev/null
	printf 'ssh-ed25519 AAAA me\n' >"$(mhome a)/.ssh/authorized_keys"
	sync_evil
	git -C "$evil" rm -q .profile
	git -C "$evil" commit -qm rm && git -C "$evil" push -q origin HEAD:main
	# And a state claiming this machine deployed authorized_keys.
	sum=$(sha256sum "$(mhome a)/.ssh/authorized_keys" | cut -c1-64)
	jq --arg s "$sum" '.checksums[".ssh/authorized_keys"] = $s' "$evil/.heimdal/state.json" >"$evil/s" &&
		mv "$evil/s" "$evil/.heimdal/state.json"
	push_evil "claim"
	run --separate-stderr as a heimdal sync
	expect_status 0
	[[ "$output" == *"  removed   .profile"* ]] || fail "deployed file not removed"
	[ -e "$(mhome a)/.ssh/authorized_keys" ] || fail "authorized_keys deleted"
}

@test "a remote state pushed at a serial near 2^53 is refused with a way out; push --force recovers the lineage" {
	jq '.lineage.serial = 9007199254740991' "$evil/.heimdal/state.json" >"$evil/s" &&
		mv "$evil/s" "$evil/.heimdal/state.json"
	push_evil "brick"
	run --separate-stderr as a heimdal sync
	expect_status 2
	[[ "$stderr" == *".lineage.serial: 9007199254740991 is past the largest serial"* ]] || fail "$stderr"
	[[ "$stderr" == *"'heimdal push --force' replaces it"* ]] || fail "no way out"
	run --separate-stderr as a heimdal push --force
	expect_status 0
	remote_state "$REMOTE" | jq -e '.lineage.serial < 4503599627370496'
	run --separate-stderr as a heimdal sync
	expect_status 0
}

@test "text from data is printed with control characters escaped: an error line cannot drive the terminal" {
	run --separate-stderr as a heimdal state query . "$(printf 'x\033]0;pwned\007\033[2J')"
	expect_status 3
	[[ "$stderr" != *$'\033'* && "$stderr" != *$'\007'* ]] || fail "raw control characters"
	[[ "$stderr" == *'x\x1b]0;pwned\x07\x1b[2J'* ]] || fail "$stderr"
}

@test "a directory swapped for a link out of \$HOME while apply runs never receives a write" {
	[ "$(uname -m)" = x86_64 ] || skip "the flipper calls renameat2 by its x86_64 number"
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside/app" "$evil/.config/app"
	printf 'v0\n' >"$evil/.config/app/x.conf"
	push_evil "app"
	as a heimdal sync >/dev/null
	ln -s "$outside" "$(mhome a)/.config-evil"
	# Swap ~/.config and the link as fast as possible, while apply writes into it.
	python3 - "$(mhome a)/.config" "$(mhome a)/.config-evil" <<-'PY' &
	import ctypes, sys
	libc = ctypes.CDLL(None, use_errno=True)
	a, b = sys.argv[1].encode(), sys.argv[2].encode()
	while True:
	    libc.syscall(316, -100, a, -100, b, 2)  # renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
	PY
	flipper=$!
	# With openat2, and as on a kernel without it (a walk that follows no link).
	for i in $(seq 40); do
		printf 'v%d\n' "$i" >"$(mhome a)/.dotfiles/.config/app/x.conf"
		as a heimdal apply >/dev/null 2>&1 || true
		printf 'w%d\n' "$i" >"$(mhome a)/.dotfiles/.config/app/x.conf"
		HEIMDAL_NO_OPENAT2=1 as a heimdal apply >/dev/null 2>&1 || true
	done
	kill "$flipper"
	wait "$flipper" 2>/dev/null || true
	[ -z "$(find "$outside" -type f)" ] || fail "written outside: $(find "$outside" -type f)"
}

# hollow_start: a server that answers every git:// request with a bare
# flush-pkt (no branch, no capabilities) and closes.  Sets HOLLOW_PORT.
hollow_start() {
	HOLLOW_PORT=$(free_port)
	mkdir -p "$BATS_TEST_TMPDIR/servers"
	python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(b"0000"); c.close()
' "$HOLLOW_PORT" &
	echo $! >"$BATS_TEST_TMPDIR/servers/hollow.pid"
	wait_port "$HOLLOW_PORT"
}

@test "init: a server answering 'no branches' without a git server's capabilities is an error, not an empty repository" {
	hollow_start
	git_machine b
	run --separate-stderr as b heimdal init --profile personal --repo "git://127.0.0.1:$HOLLOW_PORT/dotfiles.git"
	expect_status 3
	[ -z "$output" ] || fail "stdout: $output"
	[[ "$stderr" == *"lists no branch and sends no capabilities"*"nothing cloned"*"--empty"* ]] || fail "message: $stderr"
	[ ! -e "$(mhome b)/.heimdal/state.json" ] || fail "a lineage was started"
	[ ! -e "$(mhome b)/.dotfiles" ] || fail "a clone was left"
	# git daemon before 2.41 answers an empty repository the same way: --empty
	# says it is known to be new, and only then is a lineage started.
	mkdir -p "$BATS_TEST_TMPDIR/served" && git init -q --bare "$BATS_TEST_TMPDIR/served/empty.git"
	git_daemon_start "$BATS_TEST_TMPDIR/served"
	run --separate-stderr as b heimdal init --profile personal --repo "$GIT_DAEMON_URL/empty.git" --empty
	expect_status 0
	[[ "$output" == *"Started lineage"* ]] || fail "$output"
	# A local empty repository is verifiably empty: no flag needed.
	git_machine c
	git init -q --bare "$BATS_TEST_TMPDIR/local-empty.git"
	run --separate-stderr as c heimdal init --profile personal --repo "$BATS_TEST_TMPDIR/local-empty.git"
	expect_status 0
}

@test "a newline from data cannot forge a line of its own; a message's own lines stay" {
	run --separate-stderr heimdal-lineage bump --op "$(printf 'a\nheimdal: all good')" </dev/null
	expect_status 2
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "split: $stderr"
	[[ "$stderr" == *"'a\x0aheimdal: all good'"* ]] || fail "$stderr"
	run --separate-stderr heimdal init --profile p
	expect_status 2
	[ "$stderr" = "heimdal: error: --repo is required
usage: heimdal init --profile NAME --repo URL [--path DIR] [--force] [--empty]" ] || fail "$stderr"
}

@test "a repository whose .heimdal is a symlink out of it: commit and sync never write through it" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside"
	sync_evil
	git -C "$evil" rm -rq .heimdal
	ln -s "$outside" "$evil/.heimdal"
	push_evil "link .heimdal"
	run --separate-stderr as a heimdal sync
	expect_status 3
	[[ "$stderr" == *".dotfiles/.heimdal/state.json: a symlink on its way; not written through it"* ]] || fail "$stderr"
	[ -z "$(ls -A "$outside")" ] || fail "sync wrote outside: $(ls -A "$outside")"
	printf 'mine\n' >>"$(mhome a)/.bashrc"
	run --separate-stderr as a heimdal commit -m x
	expect_status 3
	[[ "$stderr" == *".dotfiles/.heimdal/state.json: a symlink on its way; not written through it"* ]] || fail "$stderr"
	[ -z "$(ls -A "$outside")" ] || fail "commit wrote outside: $(ls -A "$outside")"
}
