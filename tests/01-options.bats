#!/usr/bin/env bats
# Options across the family: one error format, -v everywhere, one meaning per
# letter (heimdal(7), OPTION LETTERS), flags a command does not take refused.

load helper

MAN="$BATS_TEST_DIRNAME/../man"

TOOLS="heimdal-conflicts heimdal-drift heimdal-lineage heimdal-merge heimdal-migrate"
PORCELAIN="apply commit init pull push sync resolve status diff doctor add forget"
STATE="version history migrate check-drift check-conflicts resolve diff lock-info unlock"

# expect_usage_error LINE PREFIX: the last `run --separate-stderr` exited 2,
# printed nothing, and said LINE then one usage line starting with PREFIX.
expect_usage_error() {
	expect_status 2
	[ -z "$output" ] || fail "stdout: $output"
	[ "$(wc -l <<<"$stderr")" -eq 2 ] || fail "not two lines: $stderr"
	[ "$(head -n 1 <<<"$stderr")" = "$1" ] || fail "first line: $stderr"
	[[ "$(tail -n 1 <<<"$stderr")" == "usage: $2"* ]] || fail "usage line: $stderr"
}

@test "an unknown option: the same two lines from every binary and every command" {
	for t in $TOOLS; do
		run --separate-stderr "$t" --bogus
		expect_usage_error "$t: error: unknown option '--bogus'" "$t"
	done
	for v in acquire release info unlock run; do
		run --separate-stderr heimdal-lock "$v" --bogus
		expect_usage_error "heimdal-lock: error: unknown option '--bogus'" "heimdal-lock $v"
	done
	run --separate-stderr heimdal-rlock acquire --bogus
	expect_usage_error "heimdal-rlock: error: unknown option '--bogus'" "heimdal-rlock"
	for c in $PORCELAIN; do
		run --separate-stderr heimdal "$c" --bogus
		expect_usage_error "heimdal: error: unknown option '--bogus'" "heimdal $c"
	done
	for s in $STATE; do
		run --separate-stderr heimdal state "$s" --bogus
		expect_usage_error "heimdal: error: unknown option '--bogus'" "heimdal state $s"
	done
}

@test "a missing value, a value given to a flag that takes none, a short option: the same format" {
	run --separate-stderr heimdal commit -m
	expect_usage_error "heimdal: error: -m: requires a value" "heimdal commit"
	run --separate-stderr heimdal-lock acquire --op
	expect_usage_error "heimdal-lock: error: --op: requires a value" "heimdal-lock acquire"
	run --separate-stderr heimdal-migrate --compact=yes
	expect_usage_error "heimdal-migrate: error: --compact: takes no value" "heimdal-migrate"
	run --separate-stderr heimdal status -x
	expect_usage_error "heimdal: error: unknown option '-x'" "heimdal status"
	run --separate-stderr heimdal sync -x
	expect_usage_error "heimdal: error: unknown option '-x'" "heimdal sync"
}

@test "-v and --verbose are taken by every binary" {
	for t in $TOOLS heimdal-lock heimdal-rlock; do
		for v in -v --verbose; do
			run --separate-stderr "$t" "$v" --help
			expect_status 0
			[[ "$output" == "usage: $t"* ]] || fail "$t $v --help: $output"
		done
	done
	run --separate-stderr heimdal-migrate -v "$FIXTURES/v1.json"
	expect_status 0
	expect_json '.version == 2'
	run --separate-stderr heimdal-rlock -v --help
	expect_status 0
}

# The "-X, --name" pairs a --help lists, one "X name" a line.
pairs() { sed -n 's/^ *-\([a-zA-Z]\), --\([a-z][a-z-]*\).*/\1 \2/p'; }

@test "one meaning per letter: every -X, --name in every --help is heimdal(7)'s" {
	local table all
	table=$(sed -n 's/^\.BR \\-\([a-zA-Z]\) ", " \\-\\-\([a-z\\-]*\)$/\1 \2/p' "$MAN/heimdal.7" | sed 's/\\-/-/g')
	[ "$(wc -l <<<"$table")" -ge 10 ] || fail "no table in heimdal.7: $table"
	all=$(
		for t in $TOOLS heimdal-lock heimdal-rlock; do "$t" --help; done | pairs
		for c in $PORCELAIN; do heimdal "$c" --help; done | pairs
		for s in $STATE; do heimdal state "$s" --help; done | pairs
	)
	while read -r letter name; do
		grep -qx "$letter $name" <<<"$table" || fail "-$letter, --$name is not heimdal(7)'s"
	done < <(sort -u <<<"$all")
	# One name per letter across everything.
	dup=$(sort -u <<<"$all" | awk '{ print $1 }' | uniq -d)
	[ -z "$dup" ] || fail "letters with two meanings: $dup"
}

@test "-r is state query's raw output only; the letters jq owns are refused elsewhere" {
	v2_state >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state query -r .active_profile
	expect_status 0
	[ "$output" = "personal" ] || fail "$output"
	run --separate-stderr heimdal-drift -r "$HOME"
	expect_usage_error "heimdal-drift: error: unknown option '-r'" "heimdal-drift"
	for l in a j; do
		run --separate-stderr heimdal-drift "-$l" 2
		expect_usage_error "heimdal-drift: error: unknown option '-$l'" "heimdal-drift"
	done
	run --separate-stderr heimdal-lock acquire --op apply -r why
	expect_usage_error "heimdal-lock: error: unknown option '-r'" "heimdal-lock acquire"
	run --separate-stderr heimdal-lock acquire --op apply -p 1
	expect_usage_error "heimdal-lock: error: unknown option '-p'" "heimdal-lock acquire"
	run --separate-stderr heimdal-merge -s merge
	expect_usage_error "heimdal-merge: error: unknown option '-s'" "heimdal-merge"
	run --separate-stderr heimdal state check-drift -a
	expect_usage_error "heimdal: error: unknown option '-a'" "heimdal state check-drift"
	for l in n s; do
		run --separate-stderr heimdal add "-$l" .bashrc
		expect_usage_error "heimdal: error: unknown option '-$l'" "heimdal add"
	done
	run --separate-stderr heimdal apply -n
	expect_usage_error "heimdal: error: unknown option '-n'" "heimdal apply"
	for l in m o t; do
		run --separate-stderr heimdal resolve "-$l" .bashrc
		expect_usage_error "heimdal: error: unknown option '-$l'" "heimdal resolve"
	done
	[ ! -e "$HEIMDAL_HOME/state.lock" ]
}

@test "-c wherever --json is: the same document, compact" {
	v2_state >"$HEIMDAL_HOME/state.json"
	for s in version history lock-info; do
		heimdal state "$s" --help | grep -q -- '--json | -c' || fail "state $s --help: no -c"
		run --separate-stderr heimdal state "$s" -c
		expect_status 0
		[ "$(wc -l <<<"$output")" -eq 1 ] || fail "state $s -c: $output"
		[ "$output" = "$(heimdal state "$s" --json | jq -c .)" ] || fail "state $s -c differs"
	done
	run --separate-stderr heimdal state migrate -c
	expect_status 0
	[ "$output" = '{"migrated":false,"version":2}' ] || fail "$output"
	for c in "status" "doctor" "state check-drift" "state check-conflicts" "state diff" "state unlock"; do
		# shellcheck disable=SC2086
		heimdal $c --help | grep -q -- '--json | -c' || fail "$c --help: no -c"
	done
}

@test "heimdal-lock refuses the flags a command does not take, and takes nothing" {
	run --separate-stderr heimdal-lock info --op x
	expect_usage_error "heimdal-lock: error: info does not take --op" "heimdal-lock info"
	run --separate-stderr heimdal-lock acquire --op apply --id lock-x
	expect_usage_error "heimdal-lock: error: acquire does not take --id" "heimdal-lock acquire"
	run --separate-stderr heimdal-lock info --wait
	expect_usage_error "heimdal-lock: error: info does not take --wait" "heimdal-lock info"
	run --separate-stderr heimdal-lock release --force
	expect_usage_error "heimdal-lock: error: release does not take --force" "heimdal-lock release"
	run --separate-stderr heimdal-lock run --op apply --pid 1 -- true
	expect_usage_error "heimdal-lock: error: run does not take --pid" "heimdal-lock run"
	[ ! -e "$HEIMDAL_HOME/state.lock" ]
}

@test "--op is one word for heimdal-lock as for heimdal-lineage" {
	v2_state >"$BATS_TEST_TMPDIR/s.json"
	for op in "a b" "" "$(printf 'a\tb')"; do
		run --separate-stderr heimdal-lock acquire --op "$op"
		expect_usage_error "heimdal-lock: error: --op: not an operation name: '$op'" "heimdal-lock acquire"
		run --separate-stderr heimdal-lineage bump --op "$op" "$BATS_TEST_TMPDIR/s.json"
		expect_status 2
		[ "$stderr" = "heimdal-lineage: error: --op: not an operation name: '$op'" ] || fail "$stderr"
	done
	[ ! -e "$HEIMDAL_HOME/state.lock" ]
	run --separate-stderr heimdal-lineage bump -o apply "$BATS_TEST_TMPDIR/s.json"
	expect_status 0
	expect_json '.history[-1].operation == "apply"'
}

@test "two inputs read from '-' are refused, naming both flags" {
	v2_state >"$BATS_TEST_TMPDIR/s.json"
	for t in heimdal-conflicts heimdal-merge "heimdal-lineage compare"; do
		extra=
		[ "$t" != heimdal-merge ] || extra="--strategy merge"
		# shellcheck disable=SC2086
		run --separate-stderr $t $extra --local - --remote - <"$BATS_TEST_TMPDIR/s.json"
		expect_status 2
		[ -z "$output" ]
		[ "$stderr" = "${t%% *}: error: --local and --remote both read stdin; give one of them a file" ] ||
			fail "$t: $stderr"
		# shellcheck disable=SC2086
		run --separate-stderr $t $extra --local "$BATS_TEST_TMPDIR/s.json" --remote - --base - <"$BATS_TEST_TMPDIR/s.json"
		expect_status 2
		[ "$stderr" = "${t%% *}: error: --remote and --base both read stdin; give one of them a file" ] ||
			fail "$t: $stderr"
	done
}
