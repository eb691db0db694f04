#!/usr/bin/env bats
# heimdal add and heimdal forget: start and stop tracking files of $HOME,
# on one machine and across two.

load helper
load helper-git

setup() {
	setup_scratch
	umask 022 # files as a user's usually are: readable, so not "secret"
	REMOTE=$(bare_remote)
	seed="$BATS_TEST_TMPDIR/seed"
	git init -q "$seed"
	printf 'one\n' >"$seed/.bashrc"
	git -C "$seed" add -A && git -C "$seed" commit -qm seed && git -C "$seed" push -q "$REMOTE" HEAD:main
	for m in a b; do
		git_machine "$m"
		as "$m" heimdal init --profile personal --repo "$REMOTE" >/dev/null
		as "$m" heimdal sync >/dev/null
	done
	A=$(mhome a)
	B=$(mhome b)
}

@test "add: --help; no path, a bad profile, both --profile and --shared: exit 2, nothing on stdout" {
	run --separate-stderr as a heimdal add --help
	expect_status 0
	[[ "$output" == "usage: heimdal add [--profile NAME | --shared] [--force] [--dry-run] PATH..."* ]] || fail
	run --separate-stderr as a heimdal add
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"name the file(s) to add"* ]] || fail "$stderr"
	run --separate-stderr as a heimdal add --profile ../x .bashrc
	expect_status 2
	[[ "$stderr" == *"--profile: not a profile name: '../x'"* ]] || fail "$stderr"
	run --separate-stderr as a heimdal add --profile w --shared .bashrc
	expect_status 2
	[[ "$stderr" == *"--profile and --shared exclude each other"* ]] || fail "$stderr"
}

@test "add refuses (exit 2, nothing changed) outside \$HOME, heimdal's own files, links, specials, ignored and secret-looking files" {
	printf 'k\n' >"$A/.npm_token"
	printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\n' >"$A/.mykey"
	printf 'p\n' >"$A/.pgpass" && chmod 600 "$A/.pgpass"
	ln -s /etc/hostname "$A/.link"
	mkfifo "$A/.fifo"
	printf '*.log\n' >"$A/.dotfiles/.heimdalignore"
	git -C "$A/.dotfiles" add .heimdalignore && git -C "$A/.dotfiles" commit -qm ignore
	printf 'l\n' >"$A/x.log"
	head=$(git -C "$A/.dotfiles" rev-parse HEAD)
	before=$(snapshot "$A/.heimdal")
	for p in /etc/passwd .heimdal/state.json .dotfiles/.bashrc .npm_token .mykey .pgpass .link .fifo x.log nothere; do
		run --separate-stderr as a heimdal add "$p"
		expect_status 2
		[ -z "$output" ] || fail "$p: stdout"
		[[ "$stderr" == "heimdal: error: $p: "* ]] || fail "$p: $stderr"
	done
	[[ "$(as a heimdal add .mykey 2>&1)" == *"looks secret: it holds a private key"* ]] || fail "key"
	[[ "$(as a heimdal add .pgpass 2>&1)" == *"looks secret: only you may read it (mode 0600)"* ]] || fail "mode"
	[[ "$(as a heimdal add x.log 2>&1)" == *".heimdalignore leaves it out"* ]] || fail "ignore"
	[ "$(git -C "$A/.dotfiles" rev-parse HEAD)" = "$head" ] || fail "committed"
	[ "$(snapshot "$A/.heimdal")" = "$before" ] || fail "state changed"
	# --force takes what only looked secret or ignored.
	run --separate-stderr as a heimdal add --force .pgpass x.log
	expect_status 0
}

@test "add copies, records and commits; --dry-run changes nothing; the edits then travel with commit" {
	mkdir -p "$A/.config/nvim"
	printf 'x\n' >"$A/.config/nvim/init.lua"
	printf '#!/bin/sh\n' >"$A/.config/nvim/hook" && chmod 755 "$A/.config/nvim/hook"
	printf 'set -g mouse on\n' >"$A/.tmux.conf"
	ln -s /etc/hostname "$A/.config/nvim/link"
	head=$(git -C "$A/.dotfiles" rev-parse HEAD)
	run --separate-stderr as a heimdal add --dry-run .tmux.conf .config/nvim
	[ "$stderr" = "heimdal: warning: .config/nvim/link: a symlink; not added" ] || fail "$stderr"
	expect_status 0
	[ "$output" = "  would add .config/nvim/hook -> .config/nvim/hook
  would add .config/nvim/init.lua -> .config/nvim/init.lua
  would add .tmux.conf -> .tmux.conf" ] || fail
	[ "$(git -C "$A/.dotfiles" rev-parse HEAD)" = "$head" ] || fail "dry run committed"
	run --separate-stderr as a heimdal add .tmux.conf .config/nvim
	expect_status 0
	[[ "$output" == *"  added     .tmux.conf -> .tmux.conf"* ]] || fail
	[[ "$output" == *"'heimdal sync' shares them with your other machines" ]] || fail
	[ "$(git -C "$A/.dotfiles" show HEAD:.tmux.conf)" = "set -g mouse on" ] || fail "not committed"
	[ "$(git -C "$A/.dotfiles" ls-tree HEAD .config/nvim/hook | cut -c1-6)" = 100755 ] || fail "mode"
	jq -e '.checksums | has(".tmux.conf") and has(".config/nvim/hook")' "$A/.heimdal/state.json"
	jq -e '.history[-1].operation == "add"' "$A/.heimdal/state.json"
	run --separate-stderr as a heimdal state check-drift
	expect_status 0
	# Recorded as deployed: an edit is drift, and commit carries it (after a
	# sync: b's first sync moved the remote on, which the hybrid lock checks).
	as a heimdal sync >/dev/null
	printf 'set -g mouse off\n' >"$A/.tmux.conf"
	run --separate-stderr as a heimdal commit -m off
	expect_status 0
	[ "$(git -C "$A/.dotfiles" show HEAD:.tmux.conf)" = "set -g mouse off" ] || fail "edit not committed"
	# --profile: into the profile's overlay.
	as a heimdal sync >/dev/null
	printf 'w\n' >"$A/.work"
	run --separate-stderr as a heimdal add --profile personal .work
	expect_status 0
	git -C "$A/.dotfiles" cat-file -e HEAD:profiles/personal/.work
}

@test "add on A, sync on A and B: B has the file and no drift; forget on A, sync both: both keep it, the repository does not" {
	printf 'set -g mouse on\n' >"$A/.tmux.conf"
	as a heimdal add .tmux.conf >/dev/null
	as a heimdal sync >/dev/null
	run --separate-stderr as b heimdal sync
	expect_status 0
	[ "$(cat "$B/.tmux.conf")" = "set -g mouse on" ] || fail "not on B"
	run --separate-stderr as b heimdal state check-drift
	expect_status 0
	# forget needs --yes without a terminal.
	run --separate-stderr as a heimdal forget .tmux.conf </dev/null
	expect_status 2
	[[ "$stderr" == *"pass --yes"* ]] || fail "$stderr"
	run --separate-stderr as a heimdal forget --yes .tmux.conf
	expect_status 0
	[[ "$output" == "  forgotten .tmux.conf (left in \$HOME)"* ]] || fail
	as a heimdal sync >/dev/null
	run --separate-stderr as b heimdal sync
	expect_status 0
	[[ "$output" == *"  untracked .tmux.conf (no longer tracked; left in \$HOME)"* ]] || fail
	[ "$(cat "$A/.tmux.conf")" = "set -g mouse on" ] && [ "$(cat "$B/.tmux.conf")" = "set -g mouse on" ] || fail "a copy was removed"
	! git --git-dir="$REMOTE" cat-file -e main:.tmux.conf 2>/dev/null || fail "still tracked"
	for m in a b; do
		jq -e '.checksums | has(".tmux.conf") | not' "$(mhome $m)/.heimdal/state.json" || fail "$m still records it"
		run --separate-stderr as "$m" heimdal state check-drift
		expect_status 0
	done
	# Added again, it is tracked again (and no longer listed as forgotten).
	as a heimdal sync >/dev/null
	run --separate-stderr as a heimdal add .tmux.conf
	expect_status 0
	! grep -qx .tmux.conf "$A/.dotfiles/.heimdal/forgotten" || fail "still forgotten"
	run --separate-stderr as a heimdal forget --yes .nothere
	expect_status 2
	[[ "$stderr" == *".nothere: not a file the repository tracks"* ]] || fail "$stderr"
}

@test "add and forget in a pipeline: the state through jq" {
	printf 'a\n' >"$A/.inputrc"
	as a heimdal add .inputrc >/dev/null
	out=$(as a heimdal state query -c . | jq -c '[.history[-1].operation, (.checksums | keys)]')
	[ "$out" = '["add",[".bashrc",".inputrc"]]' ] || fail "$out"
	# Another machine synced meanwhile: the hybrid lock wants a sync first.
	as a heimdal sync >/dev/null
	as a heimdal forget --yes .inputrc >/dev/null
	as a heimdal state query -c . | jq -e '.history[-1].operation == "forget" and (.checksums | keys) == [".bashrc"]'
}
