#!/usr/bin/env bats
# The heimdal dispatcher: built-ins, exec path, git-style external commands.

load helper

@test "heimdal --help lists the commands on stdout, exit 0" {
	run --separate-stderr heimdal --help
	expect_status 0
	[[ "$output" == usage:\ heimdal* ]] || fail "no usage line"
	[[ "$output" == *"state "* ]] || fail "state not listed"
	[ -z "$stderr" ]
}

@test "heimdal --help and heimdal state --help list the same state commands, every one of them" {
	local sub top state
	run --separate-stderr heimdal --help
	expect_status 0
	top=$(sed -n '/^State commands/,/^$/p' <<<"$output" | awk 'NF && !/^State/ { print $1 }')
	run --separate-stderr heimdal state --help
	expect_status 0
	state=$(awk '/^  [a-z]/ { print $1 }' <<<"$output")
	[ "$top" = "$state" ] || fail "heimdal --help: $top; heimdal state --help: $state"
	for sub in version history migrate query check-drift check-conflicts resolve diff lock-info unlock; do
		grep -qx "$sub" <<<"$top" || fail "$sub missing"
		run heimdal state "$sub" --help
		expect_status 0
		[[ "$output" == *"heimdal state $sub"* ]] || fail "$sub --help: $output"
	done
}

@test "heimdal with no command prints usage on stderr, exit 2" {
	run --separate-stderr heimdal
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == usage:* ]]
}

@test "heimdal --version and heimdal version print the version" {
	run heimdal --version
	expect_status 0
	[[ "$output" =~ ^heimdal\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "bad version line"
	run heimdal version
	expect_status 0
	[[ "$output" =~ ^heimdal\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "an unknown command is refused with git's wording, exit 2" {
	run --separate-stderr heimdal xyzzy
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: 'xyzzy' is not a heimdal command. See 'heimdal --help'." ]
}

@test "a mistyped command gets git's 'most similar' suggestions (prefixes, then Damerau-Levenshtein)" {
	run --separate-stderr heimdal stat
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: 'stat' is not a heimdal command. See 'heimdal --help'.

The most similar commands are
	state
	status" ] || fail "$stderr"
	run --separate-stderr heimdal comit
	expect_status 2
	[ "$stderr" = "heimdal: 'comit' is not a heimdal command. See 'heimdal --help'.

The most similar command is
	commit" ] || fail "$stderr"
	# The plumbing is suggested as well: a transposition costs nothing.
	run --separate-stderr heimdal mrege
	expect_status 2
	[[ "$stderr" == *"The most similar command is"$'\n\t'"merge" ]] || fail "$stderr"
	run --separate-stderr heimdal state verison
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: 'state verison' is not a heimdal command. See 'heimdal state --help'.

The most similar command is
	state version" ] || fail "$stderr"
}

@test "an unknown option is refused with one error line and one usage line, exit 2" {
	run --separate-stderr heimdal --bogus
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: unknown option '--bogus'
usage: heimdal [-v | --verbose] [--exec-path] [--version] [--help] <command> [<args>]" ] || fail "$stderr"
}

@test "heimdal help help, and heimdal help state X shows that state command's help" {
	run --separate-stderr heimdal help help
	expect_status 0
	[[ "$output" == "usage: heimdal help [<command> [<subcommand>]]"* ]] || fail "$output"
	[ -z "$stderr" ]
	run --separate-stderr heimdal help state version
	expect_status 0
	[ "$output" = "usage: heimdal state version [--json | -c]" ] || fail "$output"
	run --separate-stderr heimdal state help history
	expect_status 0
	[[ "$output" == "usage: heimdal state history"* ]] || fail "$output"
	run --separate-stderr heimdal help state verison
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"	state version" ]] || fail "$stderr"
	run --separate-stderr heimdal help xyzzy
	expect_status 2
	[ "$stderr" = "heimdal: 'xyzzy' is not a heimdal command. See 'heimdal --help'." ]
}

@test "an extension without a shebang runs with /bin/sh, as execvp runs it" {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	printf 'echo "plain script: $*"\nexit 7\n' >"$BATS_TEST_TMPDIR/bin/heimdal-plain"
	chmod +x "$BATS_TEST_TMPDIR/bin/heimdal-plain"
	PATH="$PATH:$BATS_TEST_TMPDIR/bin" run --separate-stderr heimdal plain a "b c"
	expect_status 7
	[ "$output" = "plain script: a b c" ] || fail "$output / $stderr"
	PATH="$PATH:$BATS_TEST_TMPDIR/bin" run --separate-stderr heimdal help plain
	expect_status 7
	[ "$output" = "plain script: --help" ]
}

@test "--exec-path prints the directory of the running binary, or HEIMDAL_EXEC_PATH" {
	run heimdal --exec-path
	expect_status 0
	[ "$output" = "$(dirname "$(command -v heimdal)")" ]
	HEIMDAL_EXEC_PATH=/opt/heimdal-tools run heimdal --exec-path
	[ "$output" = "/opt/heimdal-tools" ]
}

@test "a user's own heimdal-foo on PATH runs as 'heimdal foo' with its arguments" {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/heimdal-foo" <<-'EOS'
	#!/bin/sh
	echo "foo called with: $*"
	EOS
	chmod +x "$BATS_TEST_TMPDIR/bin/heimdal-foo"
	PATH="$PATH:$BATS_TEST_TMPDIR/bin" run heimdal foo a "b c"
	expect_status 0
	[ "$output" = "foo called with: a b c" ]
}

@test "the child's exit status passes through unchanged" {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\nexit 42\n' >"$BATS_TEST_TMPDIR/bin/heimdal-fortytwo"
	chmod +x "$BATS_TEST_TMPDIR/bin/heimdal-fortytwo"
	PATH="$PATH:$BATS_TEST_TMPDIR/bin" run heimdal fortytwo
	expect_status 42
}

@test "HEIMDAL_EXEC_PATH is searched before the binary's own directory" {
	mkdir -p "$BATS_TEST_TMPDIR/exec"
	printf '#!/bin/sh\necho shadowed migrate\n' >"$BATS_TEST_TMPDIR/exec/heimdal-migrate"
	chmod +x "$BATS_TEST_TMPDIR/exec/heimdal-migrate"
	HEIMDAL_EXEC_PATH="$BATS_TEST_TMPDIR/exec" run heimdal migrate
	expect_status 0
	[ "$output" = "shadowed migrate" ]
}

@test "heimdal migrate runs the plumbing heimdal-migrate" {
	run --separate-stderr heimdal migrate "$FIXTURES/v1.json"
	expect_status 0
	expect_json '.version == 2 and .lineage.serial == 1'
}

@test "heimdal help state shows the state usage; heimdal help migrate the tool's" {
	run heimdal help state
	expect_status 0
	[[ "$output" == "usage: heimdal state"* ]]
	run heimdal help migrate
	expect_status 0
	[[ "$output" == "usage: heimdal-migrate"* ]]
}

@test "--verbose adds debug lines on stderr and is inherited by the tools" {
	install_state v1.json
	run --separate-stderr heimdal --verbose state migrate
	expect_status 0
	[[ "$stderr" == *"heimdal: debug: running"*"heimdal-migrate"* ]] || fail "no debug line"
}

@test "-v/--verbose is taken before or after the command name, and by the state subcommands" {
	for args in "state migrate -v" "state migrate --verbose" "state -v migrate" "-v state migrate"; do
		install_state v1.json
		# shellcheck disable=SC2086
		run --separate-stderr heimdal $args
		expect_status 0
		[[ "$stderr" == *"heimdal: debug: running"*"heimdal-migrate"* ]] || fail "$args: $stderr"
	done
}
