#!/usr/bin/env bats
# heimdal state query: jq filters over the state, plain paths on the fast path.
# The command is jq 1.6 (options, output, jq's messages, exit statuses), checked
# byte for byte against the jq binary; heimdal's own messages and statuses stay
# for usage (2), an input it cannot open (3) and invalid JSON input (2).

load helper

setup() {
	setup_scratch
	cp "$FIXTURES/v2-spec.json" "$HEIMDAL_HOME/state.json"
}

# Every filter must print exactly what the jq binary prints for it.
same_as_jq() {
	local file=$1
	shift
	run --separate-stderr heimdal state query "$@" "$file"
	local ours=$output ours_status=$status
	run --separate-stderr jq "$@" "$file"
	[ "$ours_status" -eq "$status" ] || fail "status $ours_status vs jq's $status for: $*"
	[ "$ours" = "$output" ] || fail "output differs from jq for: $*" "ours: $ours" "jq: $output"
}

# jq_same ARG...: `heimdal state query ARG...` and `jq ARG...` (stdin from
# $JQ_IN, /dev/null by default) write the same bytes to stdout and to stderr
# and exit with the same status.
jq_same() {
	local d=$BATS_TEST_TMPDIR s1 s2
	heimdal state query "$@" <"${JQ_IN:-/dev/null}" >"$d/o1" 2>"$d/e1" && s1=0 || s1=$?
	jq "$@" <"${JQ_IN:-/dev/null}" >"$d/o2" 2>"$d/e2" && s2=0 || s2=$?
	[ "$s1" -eq "$s2" ] || fail "status $s1 vs jq's $s2 for: $*" "$(cat "$d/e1")"
	cmp -s "$d/o1" "$d/o2" ||
		fail "stdout differs from jq for: $*" "ours: $(cat -A "$d/o1")" "jq: $(cat -A "$d/o2")"
	cmp -s "$d/e1" "$d/e2" ||
		fail "stderr differs from jq for: $*" "ours: $(cat -A "$d/e1")" "jq: $(cat -A "$d/e2")"
}

# jq_status N ARG...: jq_same ARG..., and the status is N.
jq_status() {
	local want=$1
	shift
	jq_same "$@"
	heimdal state query "$@" <"${JQ_IN:-/dev/null}" >/dev/null 2>&1 && status=0 || status=$?
	expect_status "$want"
}

# refused NAME TEXT MESSAGE: querying .a in TEXT is an invalid-JSON error naming NAME.
refused() {
	printf "$2" >"$BATS_TEST_TMPDIR/$1"
	run --separate-stderr heimdal state query .a "$BATS_TEST_TMPDIR/$1"
	expect_status 2
	[ -z "$output" ] || fail "stdout: $output"
	[[ "$stderr" == *"$1: invalid JSON$3"* ]] || fail "stderr: $stderr"
}

@test "query: plain paths answer exactly as jq does" {
	for f in . .version .lineage .lineage.serial .lineage.machines .lineage.machines[0] \
		'.lineage.machines[-1]' '.lineage.machines[7]' '.checksums[".bashrc"]' \
		'.checksums.".vimrc"' '.["lineage"]["serial"]' '.history[0].machine_id' \
		.nosuch .nosuch.deeper '.machine."hostname"' '.checksums["a\"b"]'; do
		same_as_jq "$HEIMDAL_HOME/state.json" "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -c "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -r "$f"
	done
}

@test "query: general filters go through libjq with jq's output" {
	for f in '.checksums | keys' '.history | map(.serial) | add' \
		'.lineage | {id, serial}' '[.lineage.machines[] | ascii_upcase]' \
		'.checksums | to_entries[] | "\(.key)=\(.value)"' 'empty'; do
		same_as_jq "$HEIMDAL_HOME/state.json" "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -c "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -r "$f"
	done
}

@test "query over the local state by default" {
	run --separate-stderr heimdal state query .lineage.serial
	expect_status 0
	[ "$output" = 42 ]
	run --separate-stderr heimdal state query -r '.machine.hostname + "/" + .machine.os'
	expect_status 0
	[ "$output" = "macbook-pro/darwin" ]
}

@test "query --arg binds variables" {
	run --separate-stderr heimdal state query -r --arg who john --arg n 2 '"\($who) has \($n)"'
	expect_status 0
	[ "$output" = "john has 2" ]
	run --separate-stderr heimdal state query -c --arg p .bashrc '.checksums | has($p)'
	expect_status 0
	[ "$output" = true ]
}

@test "query reads FILE or stdin" {
	run --separate-stderr heimdal state query .lineage.id "$FIXTURES/v2-spec.json"
	expect_status 0
	[ "$output" = '"lineage-abc123"' ]
	run --separate-stderr heimdal state query -c '.a' - <<<'{"a": [1, 2]}'
	expect_status 0
	[ "$output" = "[1,2]" ]
}

@test "query: a bad filter gives jq's compile error, exit 3, nothing on stdout" {
	run --separate-stderr heimdal state query '.a |||'
	expect_status 3
	[ -z "$output" ]
	[[ "$stderr" == "jq: error: syntax error"* ]]
	[[ "$stderr" == *"jq: 1 compile error" ]]
	jq_status 3 '.a |||' "$HEIMDAL_HOME/state.json"
	jq_status 3 -n '$nosuch'
	jq_status 3 -n 'nosuch(1)'
}

@test "query: a runtime error is jq's message with the input's line, exit 5" {
	run --separate-stderr heimdal state query '.version.x'
	expect_status 5
	[ -z "$output" ]
	[ "$stderr" = "jq: error (at $HEIMDAL_HOME/state.json:36): Cannot index number with string \"x\"" ]
	run --separate-stderr heimdal state query '.lineage.machines.x'
	expect_status 5
	[[ "$stderr" == *'Cannot index array with '*'"x"' ]]
	jq_status 5 '.version.x' "$HEIMDAL_HOME/state.json"
	jq_status 5 '.lineage.machines.x' "$HEIMDAL_HOME/state.json"
	jq_status 5 -n '{a: 1} | error'
	jq_status 5 -n 'error("boom")'
	jq_status 0 -n 'null | error'
	JQ_IN=$FIXTURES/v2-spec.json jq_status 5 '.checksums | .[0]' -
}

@test "query: a path through a string falls back to jq's error" {
	run --separate-stderr heimdal state query '.active_profile[0]'
	expect_status 5
	[[ "$stderr" == *"Cannot index string with number"* ]]
	jq_status 5 '.active_profile[0]' "$HEIMDAL_HOME/state.json"
}

@test "query: duplicate keys resolve as in jq (the last wins)" {
	printf '{"a": {"b": 1}, "a": {"c": 2}}' >"$BATS_TEST_TMPDIR/dup.json"
	same_as_jq "$BATS_TEST_TMPDIR/dup.json" .a.b
	same_as_jq "$BATS_TEST_TMPDIR/dup.json" .a.c
}

@test "query: escaped keys and unicode are found" {
	printf '{"k\\u00e9": 1, "\\"q\\"": 2, "caf\xc3\xa9": 3}' >"$BATS_TEST_TMPDIR/esc.json"
	same_as_jq "$BATS_TEST_TMPDIR/esc.json" '.["k\u00e9"]'
	same_as_jq "$BATS_TEST_TMPDIR/esc.json" '.["\"q\""]'
	same_as_jq "$BATS_TEST_TMPDIR/esc.json" '.["café"]'
}

@test "query: malformed input is an error even for a plain path" {
	refused bad.json '{"a": 1, "b": }' ''
	# jq prints what came before the bad document; heimdal names the file
	printf '{"a": 1}\n{"a": ' >"$BATS_TEST_TMPDIR/two.json"
	run --separate-stderr heimdal state query .a "$BATS_TEST_TMPDIR/two.json"
	expect_status 2
	[ "$output" = 1 ]
	[ "$stderr" = "heimdal: error: $BATS_TEST_TMPDIR/two.json: invalid JSON: Unfinished JSON term at EOF at line 2, column 6" ]
	run --separate-stderr heimdal state query -c . - <<<'1 2 ['
	expect_status 2
	[ "$output" = $'1\n2' ]
	[ "$stderr" = "heimdal: error: <stdin>: invalid JSON: Unfinished JSON term at EOF at line 2, column 0" ]
}

@test "query: empty input prints nothing and exits 0, as jq" {
	jq_status 0 . -
	jq_status 0 .a /dev/null
	jq_status 0 -e . /dev/null
	printf '\n  \n' >"$BATS_TEST_TMPDIR/blank.json"
	jq_status 0 .a "$BATS_TEST_TMPDIR/blank.json"
	jq_status 0 -c -s . "$BATS_TEST_TMPDIR/blank.json"
}

@test "query: a V1 state is migrated first; a V3 state refused" {
	install_state v1.json
	run --separate-stderr heimdal state query .lineage.serial
	expect_status 0
	[ "$output" = 1 ]
	jq -e '.version == 2' "$HEIMDAL_HOME/state.json"
	jq '.version = 3' "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state query .lineage.serial
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"written by a newer heimdal"* ]]
}

@test "query: usage errors" {
	run --separate-stderr heimdal state query
	expect_status 2
	[[ "$stderr" == *"usage: heimdal state query"* ]]
	run --separate-stderr heimdal state query --arg onlyname
	expect_status 2
	run --separate-stderr heimdal state query . a b
	expect_status 2
	run --separate-stderr heimdal state query . "$BATS_TEST_TMPDIR/missing.json"
	expect_status 3
	[[ "$stderr" == *"missing.json: No such file or directory" ]]
	run --separate-stderr heimdal state query . "$BATS_TEST_TMPDIR"
	expect_status 3
	[[ "$stderr" == *": Is a directory" ]]
	for args in '--indent 8 .' '--indent -2 .' '--indent' '--argjson x { .' '--argjson x' \
		'--arg a b' '--foo .' '-x .' '--tab=1 .' '--ar a b .' '-n -- . -c x'; do
		run --separate-stderr heimdal state query $args
		expect_status 2
		[ -z "$output" ] || fail "stdout for $args"
		[[ "$stderr" == *"usage: heimdal state query [OPTION]... FILTER [FILE|-]" ]] ||
			fail "stderr for $args"
	done
	run --separate-stderr heimdal state query --argjson x '{' .
	[ "$stderr" = "heimdal: error: --argjson x: invalid JSON text
usage: heimdal state query [OPTION]... FILTER [FILE|-]" ]
	run --separate-stderr heimdal state query -h
	expect_status 0
	[ "${lines[0]}" = "usage: heimdal state query [OPTION]... FILTER [FILE|-]" ]
}

@test "query --help, the man page and the completion list every jq 1.6 option" {
	local o help man comp
	help=$(heimdal state query --help)
	man=$(sed -n '/^\.B heimdal state query/,/^\.TP/p' "$BATS_TEST_DIRNAME/../man/heimdal.1" |
		sed 's/\\-/-/g')
	comp=$(grep '"state query")' "$BATS_TEST_DIRNAME/../share/completions/heimdal.bash")
	for o in compact-output raw-output join-output ascii-output sort-keys tab indent \
		color-output monochrome-output seq unbuffered null-input raw-input slurp stream \
		exit-status from-file arg argjson slurpfile rawfile argfile args jsonargs; do
		[[ "$help" == *" --$o"[\ =]* || "$help" == *" --$o"$'\n'* ]] || fail "--help lacks --$o"
		[[ " ${comp//\"/ } " == *" --$o "* ]] || fail "the completion lacks --$o"
	done
	for o in -c -r -j -a -S --tab --indent -C -M --seq --unbuffered -n -R -s --stream -e -f \
		--arg --argjson --slurpfile --rawfile --argfile --args --jsonargs -L; do
		grep -q -- "^\.BI\? $o\b" <<<"$man" || fail "heimdal.1 lacks $o"
	done
}

@test "query: input, inputs, debug and stderr read and write as jq, never crash" {
	printf '{"a": 1}\n{"a": [2, 3]}\n"x"\n' >"$BATS_TEST_TMPDIR/m.json"
	for f in input inputs 'first(inputs)' 'try input catch .' debug '.a|debug' \
		'[., input]' '[inputs]' 'input, input' 'stderr' '.a | stderr | debug' \
		'limit(1; inputs)' 'reduce inputs as $x (0; . + 1)'; do
		jq_same -c "$f" "$BATS_TEST_TMPDIR/m.json"
		jq_same "$f" "$BATS_TEST_TMPDIR/m.json"
		jq_same -n -c "$f" "$BATS_TEST_TMPDIR/m.json"
		JQ_IN=$BATS_TEST_TMPDIR/m.json jq_same -c "$f" -
		jq_same -c "$f" /dev/null
		jq_same -n "$f" -
	done
	jq_status 5 -c input "$BATS_TEST_TMPDIR/m.json"
	jq_status 0 -c 'first(inputs)' "$BATS_TEST_TMPDIR/m.json"
	jq_status 0 -n 'try input catch .' -
	run --separate-stderr heimdal state query -c '.a|debug' "$BATS_TEST_TMPDIR/m.json"
	expect_status 5
	[ "$output" = $'1\n[2,3]' ]
	[[ "$stderr" == '["DEBUG:",1]'$'\n''["DEBUG:",[2,3]]'$'\n''jq: error (at '* ]]
	# debug keeps the output's sorting, never its indentation
	jq_same -S --tab -n '{b: 1, a: [2]} | debug'
	jq_same --indent 5 -c '.lineage | debug | .serial' "$HEIMDAL_HOME/state.json"
}

@test "query: import and include search ~/.jq and -L as jq, with jq's compile error" {
	jq_status 3 -n 'import "foo" as f; .'
	jq_status 3 -n 'include "x"; .'
	jq_status 3 'import "foo" as f; .' "$HEIMDAL_HOME/state.json"
	jq_status 3 -n -L "$BATS_TEST_TMPDIR" 'include "x"; .'
	mkdir -p "$HOME/.jq" "$BATS_TEST_TMPDIR/lib"
	echo 'def hi: "hi from home";' >"$HOME/.jq/m.jq"
	echo 'def hi: "hi from lib";' >"$BATS_TEST_TMPDIR/lib/m.jq"
	jq_status 0 -n 'import "m" as m; m::hi'
	jq_status 0 -n 'include "m"; hi'
	jq_status 0 -n -L "$BATS_TEST_TMPDIR/lib" 'include "m"; hi'
	jq_status 0 -n "-L$BATS_TEST_TMPDIR/lib" -r 'import "m" as m; m::hi'
	jq_status 0 -n -c '[get_search_list[0]]'
	run --separate-stderr heimdal state query -n -r 'import "m" as m; m::hi'
	[ "$output" = "hi from home" ]
}

@test "query: halt and halt_error print and exit as jq" {
	for f in halt_error '"bye\n" | halt_error' '"bye" | halt_error(1)' '{a: 1} | halt_error' \
		'halt_error(0)' 'null | halt_error(2)' '1, halt, 2' '"x" | halt_error(14)' \
		'halt_error("x")' '[1] | halt_error(300)'; do
		jq_same -n "$f" -
		jq_same -n -e "$f"
		jq_same -c ".lineage | $f" "$HEIMDAL_HOME/state.json"
	done
	jq_status 5 -n '"oops\n" | halt_error'
	jq_status 1 -n '{a: 1} | halt_error(1)'
	jq_status 0 -n '1, halt'
	jq_status 14 -n '"x" | halt_error(14)'
	echo '1 2' >"$BATS_TEST_TMPDIR/in.json"
	jq_same -c '., halt' "$BATS_TEST_TMPDIR/in.json"
}

@test "query: output options -c -r -j -a -S --tab --indent as jq, in any order" {
	local st=$HEIMDAL_HOME/state.json
	for o in -c -r -j -a -S -s --tab '--indent 0' '--indent 1' '--indent 7' '--indent -1' \
		-cS '-c --tab' '--tab -c' '--indent 3 -c' '-c --indent 3' -rj -M; do
		for f in . .lineage '.checksums | keys[]' '.history[0].machine_id' '.nosuch' \
			'.machine.hostname, .lineage.serial' '{z: 1, a: {c: [], b: {}}}'; do
			# shellcheck disable=SC2086
			jq_same $o "$f" "$st"
			# shellcheck disable=SC2086
			jq_same "$f" $o "$st"
		done
	done
	jq_same -n -a '"\u00e9\u20ac\ud83d\ude00"'
	# jq 1.6 crashes on -r -a (a double free); heimdal prints the escaped string
	run --separate-stderr heimdal state query -n -r -a '"\u00e9"'
	expect_status 0
	[ "$output" = '"\u00e9"' ]
}

@test "query -e: the status comes from the last output, as jq" {
	local f
	for f in true 1 false null empty '1, false' 'false, 1' '1, null' '"x"' 'error("e")' \
		'halt' 'false | halt_error(0)'; do
		jq_same -n -e "$f"
		jq_same -n "$f" -
		jq_same -n -e -r "$f"
	done
	jq_status 1 -e -n false
	jq_status 1 -e -n 'null'
	jq_status 4 -e -n empty
	jq_status 0 -e -n '"x"'
	jq_status 5 -e -n 'error("e")'
	# over several inputs, the last one decides
	echo 'false 1' >"$BATS_TEST_TMPDIR/a.json"
	echo '1 false' >"$BATS_TEST_TMPDIR/b.json"
	echo '1 {}' >"$BATS_TEST_TMPDIR/c.json"
	JQ_IN=$BATS_TEST_TMPDIR/a.json jq_status 0 -e . -
	jq_status 1 -e . "$BATS_TEST_TMPDIR/b.json"
	jq_status 0 .a "$BATS_TEST_TMPDIR/c.json"
	# the fast path answers -e too
	jq_status 0 -e .lineage.serial "$HEIMDAL_HOME/state.json"
	jq_status 1 -e .nosuch "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state query -e .nosuch
	expect_status 1
	[ "$output" = null ]
}

@test "query -n, -s, options after the filter, -- and filters starting with -" {
	jq_same -n -c '[1, 2]'
	jq_same -c -s . "$HEIMDAL_HOME/state.json"
	echo '1 2 3' >"$BATS_TEST_TMPDIR/in.json"
	JQ_IN=$BATS_TEST_TMPDIR/in.json jq_same -c -s 'length' -
	jq_same .lineage -c "$HEIMDAL_HOME/state.json"
	jq_same .lineage "$HEIMDAL_HOME/state.json" -c
	jq_same -n '-1'
	jq_same -n -c '-.a?'
	jq_same -n '-1 + 3' -c
	run --separate-stderr heimdal state query -n -- -1
	expect_status 0
	[ "$output" = -1 ]
	run --separate-stderr heimdal state query -c -- '-.lineage.serial'
	expect_status 0
	[ "$output" = -42 ]
	run --separate-stderr heimdal state query -r -- .machine.hostname "$FIXTURES/v2-spec.json"
	expect_status 0
	[ "$output" = macbook-pro ]
	# -n does not read the local state; the program runs once, over null
	run --separate-stderr heimdal state query -n -c '[., $__loc__]'
	expect_status 0
	[ "$output" = '[null,{"file":"<top-level>","line":1}]' ]
}

@test "query --arg, --argjson and \$ARGS as jq: the first binding of a name wins" {
	jq_same -n --arg a 1 --arg a 2 '$a'
	jq_same -n -c --arg a 1 --argjson a 2 '[$a, $ARGS]'
	jq_same -n -c --argjson a '{"x": [1, null]}' --arg b 'two words' '$a, $b, $ARGS'
	jq_same -c '$ARGS' --arg x y "$HEIMDAL_HOME/state.json"
	jq_same -n -c '[$a, $b]' --argjson b 3 --arg a -5
	jq_same -n --arg -x v '$ARGS.named["-x"]'
	run --separate-stderr heimdal state query -n --arg a 1 --arg a 2 '$a'
	expect_status 0
	[ "$output" = '"1"' ]
}

@test "query: input_filename, input_line_number and \$__loc__ as jq 1.6" {
	printf '{"a": 1}\n\n{"a":\n2}\n' >"$BATS_TEST_TMPDIR/m.json"
	local f
	for f in input_filename input_line_number '$__loc__' \
		'[input_filename, input_line_number, .a]' '[inputs | input_line_number]' \
		'{a: $__loc__}' '.a | error'; do
		jq_same -c "$f" "$BATS_TEST_TMPDIR/m.json"
		JQ_IN=$BATS_TEST_TMPDIR/m.json jq_same -c "$f" -
		jq_same -n -c "$f" -
		jq_same -c "$f" "$HEIMDAL_HOME/state.json"
	done
	run --separate-stderr heimdal state query -r input_filename "$BATS_TEST_TMPDIR/m.json"
	expect_status 0
	[ "$output" = "$BATS_TEST_TMPDIR/m.json"$'\n'"$BATS_TEST_TMPDIR/m.json" ]
	run --separate-stderr heimdal state query -r input_filename
	expect_status 0
	[ "$output" = "$HEIMDAL_HOME/state.json" ]
}

@test "pipeline: heimdal-migrate | heimdal state query - | jq" {
	heimdal-migrate "$FIXTURES/v1.json" | heimdal state query -c '.lineage' - |
		jq -e '.serial == 1 and (.machines | length) == 1'
}

@test "query: an invalid escape after the answer is still a JSON error (fuzz regression)" {
	refused esc.json '{"a": 1, "b": ["x", "\\a"]}' ': Invalid escape'
}

@test "query: a lone surrogate escape anywhere is jq's JSON error; a paired one is read (fuzz regression)" {
	refused sur.json '{"a": 1, "b": "\\uDbcc"}' ': Invalid \uXXXX\uXXXX surrogate pair escape'
	printf '{"a": 1, "b": "\\ud83d\\ude00"}' >"$BATS_TEST_TMPDIR/pair.json"
	same_as_jq "$BATS_TEST_TMPDIR/pair.json" -c .b
}

@test "query prints byte for byte what jq prints: every control character, DEL, quotes, unicode" {
	python3 -c '
import json
s = "".join(chr(i) for i in range(0x80)) + "\u00e9\u20ac\U0001f600\"\\"
print(json.dumps({"a": s, s: [s, 1, 2.5, -0.0, 1e300, True, None], "plain": "abc"}))' \
		>"$BATS_TEST_TMPDIR/esc.json"
	run --separate-stderr heimdal state query -c . "$BATS_TEST_TMPDIR/esc.json"
	expect_status 0
	[ "$output" = "$(jq -c . "$BATS_TEST_TMPDIR/esc.json")" ] || fail "compact output differs"
	run --separate-stderr heimdal state query . "$BATS_TEST_TMPDIR/esc.json"
	expect_status 0
	[ "$output" = "$(jq . "$BATS_TEST_TMPDIR/esc.json")" ] || fail "pretty output differs"
}

# run_case DIR WANT ARG...: one line of the differential table, run in DIR by
# heimdal and by jq; prints what differs, nothing when they agree.  Leading
# NAME=VALUE arguments are the case's environment.  WANT is empty (all as
# jq), or the status heimdal keeps with its own message.
run_case() {
	local dir=$1 want=$2 d=$BATS_TEST_TMPDIR s1 s2 envs=()
	shift 2
	while [[ ${1:-} =~ ^[A-Z_]+= ]]; do
		envs+=("$1")
		shift
	done
	(cd "$dir" && env "${envs[@]}" heimdal state query "$@" <m.json >"$d/o1" 2>"$d/e1") &&
		s1=0 || s1=$?
	(cd "$dir" && env "${envs[@]}" jq "$@" <m.json >"$d/o2" 2>"$d/e2") && s2=0 || s2=$?
	cmp -s "$d/o1" "$d/o2" || echo "stdout: $(cat -A "$d/o1") | jq: $(cat -A "$d/o2")"
	if [ -z "$want" ]; then
		[ "$s1" -eq "$s2" ] || echo "status $s1, jq $s2"
		cmp -s "$d/e1" "$d/e2" || echo "stderr: $(cat -A "$d/e1") | jq: $(cat -A "$d/e2")"
	else
		[ "$s1" -eq "$want" ] || echo "status $s1, want $want"
		[[ "$(cat "$d/e1")" == "heimdal: error: "* ]] || echo "stderr: $(cat -A "$d/e1")"
	fi
}

@test "query: the differential table runs as jq 1.6, byte for byte and status for status" {
	local dir=$BATS_TEST_TMPDIR/q line want diff n=0 failed=()
	cp -R "$FIXTURES/query" "$dir"
	cp "$FIXTURES/v2-spec.json" "$dir/state.json"
	mkdir -p "$HOME/.jq"
	cp "$dir/mod.jq" "$HOME/.jq/"
	export TZ=EST5EDT,M3.2.0,M11.1.0 HM_Q='fixed value'
	unset JQ_COLORS
	while IFS= read -r line; do
		[[ -z "$line" || "$line" == \#* ]] && continue
		want=
		if [[ "$line" == !* ]]; then
			want=${line%% *}
			want=${want#!}
			line=${line#* }
		fi
		n=$((n + 1))
		eval "set -- $line"
		diff=$(run_case "$dir" "$want" "$@")
		[ -z "$diff" ] || failed+=("$line" "    $diff")
	done <"$FIXTURES/query/cases"
	[ "$n" -ge 150 ] || fail "only $n cases"
	[ ${#failed[@]} -eq 0 ] || fail "$((${#failed[@]} / 2)) of $n cases differ from jq:" "${failed[@]}"
}

@test "query --slurpfile, --rawfile, --argfile: a file it cannot read is exit 3, one not JSON exit 2, named" {
	local d=$BATS_TEST_TMPDIR
	printf '{"a": 1}\n{"a": ' >"$d/bad.json"
	run --separate-stderr heimdal state query -n --slurpfile s "$d/missing.json" '$s'
	expect_status 3
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: --slurpfile s: $d/missing.json: No such file or directory" ]
	run --separate-stderr heimdal state query -n --rawfile r "$d" '$r'
	expect_status 3
	[ "$stderr" = "heimdal: error: --rawfile r: $d: Is a directory" ]
	run --separate-stderr heimdal state query -n --slurpfile s "$d/bad.json" '$s'
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: --slurpfile s: $d/bad.json: invalid JSON: Unfinished JSON term at EOF at line 2, column 6" ]
	run --separate-stderr heimdal state query -n --argfile a "$d/bad.json" '$a'
	expect_status 2
	[[ "$stderr" == "heimdal: error: --argfile a: $d/bad.json: invalid JSON: "* ]]
	# the first binding of a name wins: the second file is never opened
	run --separate-stderr heimdal state query -n -c --arg s x --slurpfile s "$d/missing.json" '$s'
	expect_status 0
	[ "$output" = '"x"' ]
	# a FIFO (process substitution) is read once, as jq reads it
	run --separate-stderr heimdal state query -n -c --slurpfile s <(printf '1 2') --rawfile r <(printf 'raw') '[$s, $r]'
	expect_status 0
	[ "$output" = '[[1,2],"raw"]' ]
}

@test "query --args, --jsonargs: positional arguments as jq, after -- too; a bad JSON one is exit 2" {
	run --separate-stderr heimdal state query -n -c --args -- '-($ARGS.positional | length)' a -b
	expect_status 0
	[ "$output" = -2 ]
	jq_same -n -c --args ' -($ARGS.positional | length)' -- a -b
	# a FILE stands before --jsonargs: after it "-" would be a JSON text
	run --separate-stderr heimdal state query -c '[.lineage.serial, $ARGS.positional]' - --jsonargs 1 '[2]' <"$FIXTURES/v2-spec.json"
	expect_status 0
	[ "$output" = '[42,[1,[2]]]' ]
	# without FILE the local state is read, and every argument is positional
	run --separate-stderr heimdal state query -r --args '"\(.lineage.serial) \($ARGS.positional)"' a b
	expect_status 0
	[ "$output" = '42 ["a","b"]' ]
	# jq 1.6 aborts on an argument that is not JSON; heimdal names it
	run --separate-stderr heimdal state query -n --jsonargs '$ARGS' 1 '{'
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: --jsonargs: invalid JSON text '{'
usage: heimdal state query [OPTION]... FILTER [FILE|-]" ]
	# two files are still one too many
	run --separate-stderr heimdal state query . "$FIXTURES/v2-spec.json" "$FIXTURES/v1.json"
	expect_status 2
}

@test "query -R, --stream, --seq over the local state go through libjq as jq" {
	local st=$HEIMDAL_HOME/state.json
	run --separate-stderr heimdal state query -R -c 'select(test("serial"))'
	expect_status 0
	[ "$output" = "$(jq -R -c 'select(test("serial"))' "$st")" ]
	run --separate-stderr heimdal state query --stream -c 'select(.[0][0] == "lineage")'
	expect_status 0
	[ "$output" = "$(jq --stream -c 'select(.[0][0] == "lineage")' "$st")" ]
	# jq 1.6 reads --seq input only after an RS; the state has none
	jq_status 0 --seq .lineage.serial "$st"
	run --separate-stderr heimdal state query --seq .lineage.serial
	expect_status 0
	[ -z "$output" ]
	[[ "$stderr" == "ignoring parse error: Unfinished abandoned text at EOF"* ]]
	run --separate-stderr heimdal state query -n -c --seq '1, [2]'
	expect_status 0
	[ "$output" = $'\x1e1\n\x1e[2]' ]
	# the plain path on -R is not the fast path's answer but jq's
	jq_status 5 -R .lineage "$st"
}

@test "query --stream: input that is not JSON is refused whole, exit 2, where libjq 1.6 aborts (fuzz regression)" {
	local d=$BATS_TEST_TMPDIR
	printf '{"a": 1, "b", 2}' >"$d/crash.json"
	printf '{"a": [1]}\n{"a": ' >"$d/bad.json"
	run --separate-stderr heimdal state query --stream -c . "$d/crash.json"
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: $d/crash.json: invalid JSON: Objects must consist of key:value pairs at line 1, column 13" ]
	run --separate-stderr heimdal state query --stream -c . - <"$d/crash.json"
	expect_status 2
	[ "$stderr" = "heimdal: error: <stdin>: invalid JSON: Objects must consist of key:value pairs at line 1, column 13" ]
	run --separate-stderr heimdal state query --stream -n -c '[inputs]' <(printf '{"a":1,"b",}')
	expect_status 2
	[ -z "$output" ]
	# nothing is printed before the error, unlike jq's events up to it
	run --separate-stderr heimdal state query --stream -c . "$d/bad.json"
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: $d/bad.json: invalid JSON: Unfinished JSON term at EOF at line 2, column 6" ]
	# what was read whole is read again by jq's reader: stdin, a pipe, a file
	printf '{"a": [1, {"b": null}]}\n"x"\n' >"$d/ok.json"
	JQ_IN=$d/ok.json jq_status 0 --stream -c '[., input_filename, input_line_number]' -
	JQ_IN=$d/ok.json jq_status 0 --stream -c -n '[inputs]' /dev/stdin
	jq_status 0 --stream -c -s . "$d/ok.json"
	run --separate-stderr heimdal state query --stream -c '[., input_filename]' <(printf '[1]')
	expect_status 0
	[[ "$output" == '[[[0],1],"/dev/fd/'*'"]'$'\n''[[[0]],null]' ]] # jq 1.6's own null at EOF
}

@test "query --stream: a record separator outside --seq is refused, where libjq's streaming parser asserts (fuzz regression)" {
	local d=$BATS_TEST_TMPDIR
	printf '\036{"a": 1\000\000, "b"}\n\036[1]\n' >"$d/rs.json"
	run --separate-stderr heimdal state query --stream -c . "$d/rs.json"
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: $d/rs.json: invalid JSON: a record separator (RS) outside --seq" ]
	run --separate-stderr heimdal state query --stream -c . "$BATS_TEST_DIRNAME/fuzz/seeds/query_files/rs-outside-seq"
	expect_status 2
	[ -z "$output" ]
}

@test "query -n needs no state: it reads nothing unless the filter asks, as jq -n" {
	rm -f "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state query -n -c '{sum: (1 + 1)}'
	expect_status 0
	expect_json '. == {"sum": 2}'
	run --separate-stderr heimdal state query -n 'input'
	expect_status 5
	[ -z "$output" ] || fail "stdout: $output"
	run --separate-stderr heimdal state query '.'
	expect_status 3
	[[ "$stderr" == *"no state at $HEIMDAL_HOME/state.json (run 'heimdal init' first)" ]] || fail "$stderr"
}
