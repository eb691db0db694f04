#!/usr/bin/env bats
# heimdal diff (what changed here since deployed, or upstream) and heimdal
# doctor (is this machine fit to run heimdal), against a real bare remote.

load helper
load helper-git

setup() {
	setup_scratch
	# Real machines have real clocks: doctor compares this one with the remote's commits.
	unset HEIMDAL_NOW
	cd "$BATS_TEST_TMPDIR"
	REMOTE=$(bare_remote)
	seed="$BATS_TEST_TMPDIR/seed"
	git init -q "$seed"
	printf 'a\nb\nc\nd\ne\n' >"$seed/.bashrc"
	printf 'set number\n' >"$seed/.vimrc"
	printf 'b\000in\n' >"$seed/.blob"
	git -C "$seed" add -A
	git -C "$seed" commit -qm seed
	git -C "$seed" push -q "$REMOTE" HEAD:main
	heimdal init --profile personal --repo "$REMOTE" >/dev/null
	heimdal sync >/dev/null
	DOT="$HOME/.dotfiles"
}

# --- heimdal diff ------------------------------------------------------------

@test "diff: --help; a bad flag, a path outside \$HOME or not tracked: exit 2, nothing on stdout" {
	run --separate-stderr heimdal diff --help
	expect_status 0
	[[ "$output" == "usage: heimdal diff [--upstream] [--stat] [--color[=WHEN] | --no-color] [PATH...]"* ]] || fail "usage"
	[ -z "$stderr" ] || fail "stderr"
	run --separate-stderr heimdal diff --bogus
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"usage: heimdal diff"* ]] || fail "$stderr"
	run --separate-stderr heimdal diff /etc/passwd
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal: error: /etc/passwd: not a path under \$HOME (absolute path)" ] || fail "$stderr"
	run --separate-stderr heimdal diff .nothere
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal: error: .nothere: not a file heimdal tracks or deployed" ] || fail "$stderr"
	run heimdal help diff
	expect_status 0
	[[ "$output" == "usage: heimdal diff"* ]] || fail "help diff"
}

@test "diff: nothing changed: exit 0, no output; an edit here: the exact patch, exit 1" {
	run --separate-stderr heimdal diff
	expect_status 0
	[ -z "$output" ] || fail "output when nothing changed"
	printf 'a\nB here\nc\nd\ne\nf\n' >"$HOME/.bashrc"
	run --separate-stderr heimdal diff
	expect_status 1
	[ -z "$stderr" ] || fail "stderr"
	expected='diff --heimdal a/.bashrc b/.bashrc
--- a/.bashrc
+++ b/.bashrc
@@ -1,5 +1,6 @@
 a
-b
+B here
 c
 d
 e
+f'
	[ "$output" = "$expected" ] || fail "patch"
	# --stat, and the same through PATH (relative, ~/ or absolute under $HOME).
	run --separate-stderr heimdal diff --stat
	expect_status 1
	[ "$output" = "$(printf ' .bashrc | 3 ++-\n 1 file changed, 2 insertions(+), 1 deletion(-)')" ] || fail "stat"
	for p in .bashrc "~/.bashrc" "$HOME/.bashrc"; do
		run --separate-stderr heimdal diff "$p"
		expect_status 1
		[ "$output" = "$expected" ] || fail "diff $p"
	done
	run --separate-stderr heimdal diff .vimrc
	expect_status 0
	[ -z "$output" ] || fail "another path"
	# Nothing was written: the file here, the record and the state are as they were.
	[ "$(sed -n 2p "$HOME/.bashrc")" = "B here" ] || fail "file changed"
	run heimdal state check-drift
	expect_status 1
}

@test "diff: a deleted file, a mode, a binary file; --upstream shows the repository's change" {
	rm "$HOME/.vimrc"
	chmod +x "$HOME/.bashrc"
	printf 'b\000out\n' >"$HOME/.blob"
	run --separate-stderr heimdal diff
	expect_status 1
	expected='diff --heimdal a/.bashrc b/.bashrc
old mode 100644
new mode 100755
diff --heimdal a/.blob b/.blob
Binary files a/.blob and b/.blob differ
diff --heimdal a/.vimrc b/.vimrc
deleted file mode 100644
--- a/.vimrc
+++ /dev/null
@@ -1 +0,0 @@
-set number'
	[ "$output" = "$expected" ] || fail "patch"
	run --separate-stderr heimdal diff --stat
	expect_status 1
	[ "$output" = "$(printf ' .bashrc | 0\n .blob   | Bin 5 -> 6 bytes\n .vimrc  | 1 -\n 3 files changed, 1 deletion(-)')" ] || fail "stat"
	# Upstream: nothing yet; then a commit in the repository that apply has not deployed.
	run --separate-stderr heimdal diff --upstream
	expect_status 0
	[ -z "$output" ] || fail "upstream output"
	printf 'set number\nsyntax on\n' >"$DOT/.vimrc"
	printf 'new\n' >"$DOT/.inputrc"
	git -C "$DOT" add -A && git -C "$DOT" commit -qm upstream
	run --separate-stderr heimdal diff --upstream
	expect_status 1
	expected='diff --heimdal a/.inputrc b/.inputrc
new file mode 100644
--- /dev/null
+++ b/.inputrc
@@ -0,0 +1 @@
+new
diff --heimdal a/.vimrc b/.vimrc
--- a/.vimrc
+++ b/.vimrc
@@ -1 +1,2 @@
 set number
+syntax on'
	[ "$output" = "$expected" ] || fail "upstream patch"
	# A file the repository has but this machine never deployed is no change here.
	run --separate-stderr heimdal diff .inputrc
	expect_status 0
	[ -z "$output" ] || fail ".inputrc is not here"
}

@test "diff: a symlink in \$HOME is reported with its target, never followed" {
	printf 'secret-outside-home\n' >"$BATS_TEST_TMPDIR/outside"
	rm "$HOME/.vimrc"
	ln -s "$BATS_TEST_TMPDIR/outside" "$HOME/.vimrc"
	run --separate-stderr heimdal diff
	expect_status 1
	[ "$output" = "$(printf 'diff --heimdal a/.vimrc b/.vimrc\nb/.vimrc: a symbolic link to %s, not followed' "$BATS_TEST_TMPDIR/outside")" ] || fail "link"
	[[ "$output" != *secret-outside-home* ]] || fail "read through the link"
	# A directory that leads out of $HOME is not read either.
	mkdir -p "$DOT/.config/app" "$BATS_TEST_TMPDIR/elsewhere/app"
	printf 'x\n' >"$DOT/.config/app/rc"
	git -C "$DOT" add -A && git -C "$DOT" commit -qm config
	printf 'secret-through-dir\n' >"$BATS_TEST_TMPDIR/elsewhere/app/rc"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$HOME/.config"
	run --separate-stderr heimdal diff .config
	expect_status 1
	[ "$output" = "$(printf 'diff --heimdal a/.config/app/rc b/.config/app/rc\nb/.config/app/rc: its directory resolves outside $HOME, not read')" ] || fail "dir link"
}

@test "diff: colour only when asked or on a terminal, never with NO_COLOR; the pager on a terminal" {
	printf 'a\nB\nc\nd\ne\n' >"$HOME/.bashrc"
	run --separate-stderr heimdal diff
	[[ "$output" != *$'\033'* ]] || fail "colour in a pipe"
	run --separate-stderr heimdal diff --color
	expect_status 1
	[[ "$output" == *$'\033[31m-b\033[m'* && "$output" == *$'\033[32m+B\033[m'* ]] || fail "no colour"
	run --separate-stderr heimdal diff --color --no-color
	[[ "$output" != *$'\033'* ]] || fail "--no-color"
	command -v script >/dev/null || skip "script(1) is not installed"
	# On a terminal: the pager gets the patch (NO_COLOR set: no colour).
	run script -qec "HEIMDAL_PAGER='sed s/^/paged:/' heimdal diff" /dev/null
	[[ "$output" == *"paged:diff --heimdal a/.bashrc b/.bashrc"* ]] || fail "no pager"
	[[ "$output" != *$'\033['* ]] || fail "colour with NO_COLOR"
	run env -u NO_COLOR script -qec "HEIMDAL_PAGER=cat heimdal diff" /dev/null
	[[ "$output" == *$'\033[31m-b\033[m'* ]] || fail "no colour on a terminal"
}

@test "diff in a pipeline: the patch reversed with patch(1) restores what was deployed" {
	printf 'a\nb changed\nc\nd\ne\nmore\n' >"$HOME/.bashrc"
	printf 'set nonumber\n' >"$HOME/.vimrc"
	heimdal diff | (cd "$HOME" && patch -s -p1 -R)
	run --separate-stderr heimdal diff
	expect_status 0
	[ -z "$output" ] || fail "still different"
	run heimdal state check-drift
	expect_status 0
}

@test "diff: two machines; B sees A's edit with --upstream after pull, and nothing after sync" {
	for m in a b; do
		git_machine "$m"
		as "$m" heimdal init --profile personal --repo "$REMOTE" >/dev/null
		as "$m" heimdal sync >/dev/null
	done
	printf 'a\nb\nc from a\nd\ne\n' >"$(mhome a)/.bashrc"
	run --separate-stderr as a heimdal diff
	expect_status 1
	as a heimdal commit -m "c on a" >/dev/null
	as a heimdal sync >/dev/null
	run --separate-stderr as a heimdal diff
	expect_status 0
	as b heimdal pull >/dev/null
	run --separate-stderr as b heimdal diff --upstream
	expect_status 1
	[ "$output" = 'diff --heimdal a/.bashrc b/.bashrc
--- a/.bashrc
+++ b/.bashrc
@@ -1,5 +1,5 @@
 a
 b
-c
+c from a
 d
 e' ] || fail "upstream on b"
	# Nothing changed on b itself.
	run --separate-stderr as b heimdal diff
	expect_status 0
	as b heimdal sync >/dev/null
	run --separate-stderr as b heimdal diff
	expect_status 0
	[ -z "$output" ] || fail "diff after sync"
	run --separate-stderr as b heimdal diff --upstream
	expect_status 0
	[ "$(sed -n 3p "$(mhome b)/.bashrc")" = "c from a" ] || fail "not deployed on b"
}

# --- heimdal doctor ----------------------------------------------------------

@test "doctor: --help; a bad flag or an argument: exit 2, nothing on stdout" {
	run --separate-stderr heimdal doctor --help
	expect_status 0
	[[ "$output" == "usage: heimdal doctor [--json | -c]"* ]] || fail "usage"
	run --separate-stderr heimdal doctor --bogus
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"usage: heimdal doctor [--json | -c]"* ]] || fail "$stderr"
	run --separate-stderr heimdal doctor extra
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "heimdal: error: unexpected argument 'extra'"* ]] || fail "$stderr"
}

@test "doctor: a healthy machine, line by line, exit 0" {
	serial=$(jq .lineage.serial "$HEIMDAL_HOME/state.json")
	head=$(git -C "$DOT" rev-parse --short=7 HEAD)
	run --separate-stderr heimdal doctor
	expect_status 0
	[ -z "$stderr" ] || fail "stderr: $stderr"
	[ "${#lines[@]}" -eq 11 ] || fail "line count"
	[ "${lines[0]}" = "OK tools: 7 plumbing tools found; exec path $(heimdal --exec-path)" ] || fail "tools"
	[[ "${lines[1]}" =~ ^"OK libraries: libgit2 "[0-9]+\.[0-9]+\.[0-9]+" (".*"), OpenSSL ".*", libjq" ]] || fail "libraries"
	[ "${lines[2]}" = "OK heimdal_home: $HEIMDAL_HOME 0700, its files 0600" ] || fail "home"
	[ "${lines[3]}" = "OK state: version 2, serial $serial, profile personal" ] || fail "state"
	[ "${lines[4]}" = "OK lock_config: absent, defaults: hybrid, timeout 300s, remote_timeout 30s, stale detection on" ] || fail "config"
	[ "${lines[5]}" = "OK lock: free" ] || fail "lock"
	[ "${lines[6]}" = "OK repository: $DOT on main at $head, clean" ] || fail "repository"
	[ "${lines[7]}" = "OK remote: $REMOTE answered; main at $head" ] || fail "remote"
	[ "${lines[8]}" = "OK remote_lock: refs/heimdal/lock is free" ] || fail "remote_lock"
	[[ "${lines[9]}" == "OK clock: the remote's last commit was made "*" ago ("*", as the remote answered)" ||
		"${lines[9]}" == "OK clock: the remote's last commit was made just now ("* ]] || fail "clock"
	[ "${lines[10]}" = "OK drift: 3 file(s) checked, none changed" ] || fail "drift"
	# UTF-8: the check marks.
	run env LC_ALL=C.UTF-8 heimdal doctor
	expect_status 0
	[[ "${lines[0]}" == "✓ tools: "* ]] || fail "utf-8 mark"
}

@test "doctor --json | jq: names and statuses; drift, a loose mode and a skewed clock are warnings" {
	heimdal doctor --json | jq -e '.ok == true and ([.checks[] | .name] ==
		["tools", "libraries", "heimdal_home", "state", "lock_config", "lock", "repository",
		 "remote", "remote_lock", "clock", "drift"]) and all(.checks[]; .status == "ok")'
	printf 'changed\n' >>"$HOME/.vimrc"
	chmod 644 "$HEIMDAL_HOME/state.json"
	run --separate-stderr env HEIMDAL_NOW=2001-01-01T00:00:00Z heimdal doctor --json
	expect_status 0
	expect_json '.ok == true'
	expect_json '.checks[] | select(.name == "drift") | .status == "warn" and (.detail | startswith("1 of 3 file(s) changed or missing here"))'
	expect_json ".checks[] | select(.name == \"heimdal_home\") | .status == \"warn\" and .detail == \"readable by others: state.json is mode 0644 (chmod 600 $HEIMDAL_HOME/state.json)\""
	expect_json '.checks[] | select(.name == "clock") | .status == "warn" and (.detail | test("ahead of this clock"))'
	run --separate-stderr heimdal doctor
	expect_status 0
	[[ "$output" == *"! drift: 1 of 3 file(s) changed or missing here since deployed ('heimdal diff' shows them, 'heimdal commit' shares them)"* ]] || fail "drift line"
}

@test "doctor: the remote reachable (disk, git daemon), a closed port (warn, exit 0), an error (fail, exit 1)" {
	git_daemon_start "$BATS_TEST_TMPDIR/remotes"
	git -C "$DOT" remote set-url origin "$GIT_DAEMON_URL/origin.git"
	run --separate-stderr heimdal doctor --json
	expect_status 0
	expect_json ".checks[] | select(.name == \"remote\") | .status == \"ok\" and (.detail | startswith(\"$GIT_DAEMON_URL/origin.git answered; main at \"))"
	port=$(free_port)
	git -C "$DOT" remote set-url origin "git://127.0.0.1:$port/origin.git"
	run --separate-stderr heimdal doctor
	expect_status 0
	[[ "$output" == *"! remote: git://127.0.0.1:$port/origin.git unreachable: "* ]] || fail "closed port"
	[[ "$output" == *"! remote_lock: unknown: the remote did not answer"* ]] || fail "remote_lock"
	[[ "$output" == *"OK clock: the remote's last commit was made "*"as last fetched)"* ]] || fail "clock as fetched"
	git -C "$DOT" remote set-url origin "$BATS_TEST_TMPDIR/remotes/gone.git"
	run --separate-stderr heimdal doctor --json
	expect_status 1
	expect_json ".ok == false and (.checks[] | select(.name == \"remote\") | .status == \"fail\" and .detail == \"$BATS_TEST_TMPDIR/remotes/gone.git: no such repository: the path does not exist\")"
}

@test "doctor: a lock held here and on the remote, then stale once its holder dies" {
	sleep 600 &
	holder=$!
	heimdal-lock acquire --op apply --pid "$holder" --state "$HEIMDAL_HOME/state.json" >/dev/null
	run --separate-stderr heimdal doctor
	expect_status 0
	[[ "$output" == *"! lock: held by a running apply (pid $holder on test-host, "* ]] || fail "held"
	[[ "$output" == *"! remote_lock: refs/heimdal/lock is held on the remote (commit "* ]] || fail "remote held"
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	run --separate-stderr heimdal doctor --json
	expect_status 0
	expect_json ".checks[] | select(.name == \"lock\") | .status == \"warn\" and (.detail | startswith(\"stale: process $holder is not running (apply by pid $holder\"))"
	heimdal state unlock --force >/dev/null
	run --separate-stderr heimdal doctor --json
	expect_json '.checks[] | select(.name == "lock" or .name == "remote_lock") | .status == "ok"'
}

@test "doctor: what fails: no state, an invalid lock_config, a missing repository, an unfinished merge" {
	printf '{"lock_type": "Sometimes"}\n' >"$HEIMDAL_HOME/lock_config.json"
	run --separate-stderr heimdal doctor
	expect_status 1
	[[ "$output" == *"X lock_config: $HEIMDAL_HOME/lock_config.json: .lock_type: expected \"Hybrid\", \"Local\" or \"Disabled\""* ]] || fail "config"
	[[ "$output" == *"X lock: not checked: lock_config.json is invalid"* ]] || fail "lock"
	[ -z "$stderr" ] || fail "stderr: $stderr"
	rm "$HEIMDAL_HOME/lock_config.json"
	mv "$DOT" "$DOT.away"
	run --separate-stderr heimdal doctor --json
	expect_status 1
	expect_json '.checks[] | select(.name == "repository") | .status == "fail"'
	expect_json '.checks[] | select(.name == "remote") | .status == "fail" and .detail == "not checked: no repository"'
	mv "$DOT.away" "$DOT"
	# An unfinished merge in the dotfiles repository.
	git -C "$DOT" checkout -q -b side
	printf 'side\n' >"$DOT/.vimrc" && git -C "$DOT" commit -qam side
	git -C "$DOT" checkout -q main
	printf 'main\n' >"$DOT/.vimrc" && git -C "$DOT" commit -qam main
	git -C "$DOT" merge -q side >/dev/null 2>&1 || true
	run --separate-stderr heimdal doctor
	expect_status 1
	[[ "$output" == *"X repository: $DOT: a merge is unfinished, 1 path(s) conflicted (.vimrc); settle them and run 'heimdal sync'"* ]] || fail "merge"
	git -C "$DOT" merge --abort
	rm "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal doctor --json
	expect_status 1
	expect_json ".ok == false and (.checks[] | select(.name == \"state\") | .detail == \"$HEIMDAL_HOME/state.json does not exist; run 'heimdal init'\")"
}

@test "diff --color=WHEN: always, never and auto; anything else exit 2 naming the flag" {
	git_machine a
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	as a heimdal sync >/dev/null
	printf 'two\n' >>"$(mhome a)/.bashrc"
	run --separate-stderr as a heimdal diff --color=always
	expect_status 1
	[[ "$output" == *$'\033['* ]] || fail "no colour"
	for w in never auto; do
		run --separate-stderr as a heimdal diff --color="$w"
		expect_status 1
		[[ "$output" != *$'\033['* ]] || fail "$w: coloured in a pipe"
	done
	run --separate-stderr as a heimdal diff --color=sometimes
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal: error: --color: 'sometimes' is not always, never or auto" ] || fail "$stderr"
}
