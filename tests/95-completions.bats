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
