#!/usr/bin/env bats
# doc/ARCHITECTURE.md keeps up with the code (every command has its pipeline,
# every module and tool its line), and share/sizes measures what it says.

load helper

SRC="$BATS_TEST_DIRNAME/.."
DOC="$SRC/doc/ARCHITECTURE.md"

# The names listed under a heading of `heimdal --help` (up to the blank line).
help_names() {
	heimdal --help | awk -v h="$1" 'index($0, h) == 1 { on = 1; next } on && /^$/ { exit } on { print $1 }'
}

@test "every porcelain command has its pipeline in ARCHITECTURE.md" {
	for c in $(help_names "Commands:"); do
		case $c in help | version) continue ;; esac
		grep -q "\*\*$c\*\*" "$DOC" || fail "no pipeline for 'heimdal $c' in $DOC"
	done
}

@test "every state subcommand is in ARCHITECTURE.md's state table" {
	table=$(awk '/^\*\*state\*\*/ { on = 1; next } on && /^## / { exit } on && /^\| `/ { print }' "$DOC")
	[ -n "$table" ] || fail "no state table in $DOC"
	for c in $(help_names "State commands"); do
		grep -qE "\`$c[\` ]" <<<"$table" || fail "'heimdal state $c' is not in the state table"
	done
}

@test "every libcommon module and plumbing tool has its line in ARCHITECTURE.md" {
	for h in "$SRC"/libcommon/hm_*.h; do
		m=$(basename "$h" .h)
		grep -q "^| \`$m\` |" "$DOC" || fail "libcommon's $m is not in $DOC"
	done
	for t in "$SRC"/cmd/heimdal-*.c; do
		t=$(basename "$t" .c)
		grep -q "^| \`$t\` |" "$DOC" || fail "$t is not in $DOC"
	done
}

# A source tree of its own for share/sizes: TREE/share/sizes, cmd/, libcommon/.
sizes_tree() {
	TREE="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$TREE/share" "$TREE/cmd/heimdal" "$TREE/libcommon"
	cp "$SRC/share/sizes" "$TREE/share/sizes"
}

# body N: N lines of statements.
body() {
	for _ in $(seq "$1"); do printf '\tx++;\n'; done
}

@test "share/sizes lists the long tools and functions, longest first, with file, line and name" {
	sizes_tree
	{
		printf '/* a tool */\nstatic int x;\n'
		printf 'static int long_one(int a,\n\t\tint b);\n' # a prototype, not a definition
		printf '\nstatic int\nlong_one(int a,\n\t int b)\n{\n'
		body 85
		printf '\treturn a + b;\n}\n'
		printf '\nint\nmain(void)\n{\n'
		body 10
		printf '\treturn 0;\n}\n'
		body 300 | sed 's/^/\/\/ /'
	} >"$TREE/cmd/heimdal-big.c"
	printf 'int\nmain(void)\n{\n\treturn 0;\n}\n' >"$TREE/cmd/heimdal-small.c"
	{
		printf 'static void\nlonger(void)\n{\n'
		body 95
		printf '}\n'
		printf 'static void\njust_80(void)\n{\n'
		body 77
		printf '}\n'
	} >"$TREE/libcommon/hm_x.c"
	printf 'void\nshort_cmd(void)\n{\n}\n' >"$TREE/cmd/heimdal/cmd.c"
	big=$(wc -l <"$TREE/cmd/heimdal-big.c")

	run "$TREE/share/sizes"
	expect_status 0
	expected="tools over 400 lines:
  $(printf '%5d' "$big") cmd/heimdal-big.c
functions over 80 lines:
     98 libcommon/hm_x.c:2 longer
     90 cmd/heimdal-big.c:7 long_one"
	[ "$output" = "$expected" ] || fail "expected:" "$expected"

	# The thresholds are arguments: just_80 is 80 lines, over 79.
	run "$TREE/share/sizes" 1000 79
	expect_status 0
	expected="tools over 1000 lines:
  (none)
functions over 79 lines:
     98 libcommon/hm_x.c:2 longer
     90 cmd/heimdal-big.c:7 long_one
     80 libcommon/hm_x.c:101 just_80"
	[ "$output" = "$expected" ] || fail "expected:" "$expected"
}

@test "share/sizes finds every function definition of the real tree" {
	run "$SRC/share/sizes" 100000 0
	expect_status 0
	listed=$(grep -c '^ *[0-9]* [a-z].*:[0-9]* [A-Za-z_]' <<<"$output")
	defs=$(cat "$SRC"/cmd/*.c "$SRC"/cmd/heimdal/*.c "$SRC"/libcommon/*.c | grep -c '^{')
	[ "$listed" -eq "$defs" ] || fail "listed $listed functions, the tree has $defs"
	# Each one's line names it, and its last line closes it.
	while read -r len where name; do
		file=${where%%:*} line=${where##*:}
		sed -n "${line}p" "$SRC/$file" | grep -q "\b$name(" || fail "$where does not name $name"
		[ "$(sed -n "$((line + len - 1))p" "$SRC/$file")" = "}" ] || fail "$where: $name does not end at line $((line + len - 1))"
	done < <(sed -n '/^functions/,$p' <<<"$output" | tail -n +2)
}

@test "make sizes runs share/sizes" {
	run --separate-stderr make -s -C "$SRC" sizes
	expect_status 0
	[ "${lines[0]}" = "tools over 400 lines:" ]
	grep -qx "functions over 80 lines:" <<<"$output" || fail "no functions section"
}
