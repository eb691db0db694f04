#!/usr/bin/env bats
# Shell completions: every command, subcommand and flag is offered.

load helper

COMP="$BATS_TEST_DIRNAME/../share/completions"

# complete WORDS...: what bash completion offers for the last word.
complete_words() {
	bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		case $1 in heimdal) _heimdal ;; *) _heimdal_plumbing ;; esac
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$COMP/heimdal.bash" "$@"
}

flags() { sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z-]*[a-z]' | sort -u; }

@test "bash: top-level commands, plumbing tools and global flags" {
	run complete_words heimdal ""
	for c in state apply commit init pull push sync resolve status diff doctor add forget help version migrate lineage conflicts merge drift lock; do
		grep -qx "$c" <<<"$output" || fail "command $c not offered"
	done
	run complete_words heimdal --
	for f in --verbose --exec-path --version --help; do grep -qx -- "$f" <<<"$output" || fail "$f"; done
}

@test "bash: every porcelain flag in --help is offered" {
	for c in apply commit init pull push sync resolve status diff doctor add forget; do
		run complete_words heimdal "$c" --
		offered=$output
		for f in $(heimdal "$c" --help | flags); do
			grep -qx -- "$f" <<<"$offered" || fail "heimdal $c: $f not offered"
		done
	done
}

@test "bash: every state subcommand and its flags are offered" {
	run complete_words heimdal state ""
	subs=$output
	for s in $(heimdal state --help | awk '/^  [a-z]/ { print $1 }'); do
		grep -qx "$s" <<<"$subs" || fail "state $s not offered"
		run complete_words heimdal state "$s" --
		offered=$output
		for f in $(heimdal state "$s" --help 2>&1 | flags); do
			grep -qx -- "$f" <<<"$offered" || fail "state $s: $f not offered"
		done
	done
}

@test "bash: every plumbing tool's subcommands and flags, by name and through heimdal" {
	for b in "$(dirname "$(command -v heimdal)")"/heimdal-*; do
		t=${b##*/heimdal-}
		help=$("heimdal-$t" --help)
		subs=$(sed -n 's/^ *\(usage: \)\{0,1\}heimdal-'"$t"' \([a-z][a-z-]*\).*/\2/p' <<<"$help" | sort -u)
		if [ -n "$subs" ]; then
			run complete_words "heimdal-$t" ""
			for s in $subs; do grep -qx "$s" <<<"$output" || fail "heimdal-$t: $s not offered"; done
			all=""
			for s in $subs; do
				run complete_words "heimdal-$t" "$s" --
				all="$all
$output"
			done
		else
			run complete_words "heimdal-$t" --
			all=$output
			run complete_words heimdal "$t" --
			[ "$output" = "$all" ] || fail "heimdal $t offers differently from heimdal-$t"
		fi
		for f in $(flags <<<"$help"); do
			grep -qx -- "$f" <<<"$all" || fail "heimdal-$t: $f not offered"
		done
	done
}

@test "bash: flag values: merge strategies, files after --remote" {
	run complete_words heimdal-merge --strategy u
	[ "$output" = "use-local
use-remote" ]
	touch "$BATS_TEST_TMPDIR/remote-state.json"
	cd "$BATS_TEST_TMPDIR"
	run complete_words heimdal state resolve --remote remote-
	[ "$output" = "remote-state.json" ]
}

@test "zsh: the completion loads and offers the same words" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	run zsh -fc "
		autoload -U compinit && compinit -u
		source '$COMP/_heimdal'
		setopt ksharrays  # as bashcompinit's _bash_complete runs it
		COMP_WORDS=(heimdal state ''); COMP_CWORD=2
		_heimdal; print -l -- \${COMPREPLY[@]}"
	expect_status 0
	grep -qx check-conflicts <<<"$output"
}

# bash_complete LINE: what bash offers with the cursor at the end of LINE,
# driven as bash drives it: COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT
# set, the function `complete -F` registered for the command looked up with
# `complete -p`, and called with the command, the word and the previous word.
bash_complete() {
	bash -c '
		source "$1"
		line=$2
		read -ra COMP_WORDS <<<"$line"
		[[ $line != *" " ]] || COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$line
		COMP_POINT=${#line}
		spec=$(complete -p "${COMP_WORDS[0]}") || exit 1
		fn=${spec#*-F }
		fn=${fn%% *}
		COMPREPLY=()
		"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$COMP/heimdal.bash" "$1"
}

@test "bash (complete -F): heimdal help offers the plumbing too, and state's commands after state" {
	run bash_complete "heimdal help "
	expect_status 0
	for c in state apply sync help migrate lineage conflicts merge drift lock rlock; do
		grep -qx "$c" <<<"$output" || fail "help: $c not offered: $output"
	done
	run bash_complete "heimdal help l"
	[ "$output" = "lineage
lock" ] || fail "$output"
	run bash_complete "heimdal help state ver"
	[ "$output" = "version" ] || fail "$output"
	run bash_complete "heimdal help lock "
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "acquire info release run unlock " ] || fail "$output"
}

@test "bash (complete -F): -p completes profiles only where it is --profile" {
	mkdir -p "$HOME/.dotfiles/profiles/work" "$HOME/.dotfiles/profiles/home"
	run bash_complete "heimdal apply -p w"
	[ "$output" = "work" ] || fail "apply: $output"
	run bash_complete "heimdal add --profile "
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "home work " ] || fail "add: $output"
	run bash_complete "heimdal lock acquire -p "
	[ -z "$output" ] || fail "lock acquire -p: $output"
	run bash_complete "heimdal-lock acquire -p w"
	[ -z "$output" ] || fail "heimdal-lock acquire -p: $output"
}

@test "bash (complete -F): the command after heimdal-lock run -- is offered once" {
	mkdir -p "$BATS_TEST_TMPDIR/bin1" "$BATS_TEST_TMPDIR/bin2"
	for d in bin1 bin2; do
		printf '#!/bin/sh\n' >"$BATS_TEST_TMPDIR/$d/hmtestcmd"
		chmod +x "$BATS_TEST_TMPDIR/$d/hmtestcmd"
	done
	PATH="$BATS_TEST_TMPDIR/bin1:$BATS_TEST_TMPDIR/bin2:$PATH" run bash_complete "heimdal-lock run --op x -- hmtestc"
	[ "$output" = "hmtestcmd" ] || fail "$output"
	run bash_complete "heimdal lock run --op x -- ech"
	[ "$output" = "echo" ] || fail "$output"
}

@test "bash (complete -F): -c and --long where they are taken" {
	run bash_complete "heimdal state history --l"
	[ "$output" = "--limit
--long" ] || fail "$output"
	run bash_complete "heimdal status --c"
	[ "$output" = "--compact" ] || fail "$output"
}
