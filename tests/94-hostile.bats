#!/usr/bin/env bats
# Hostile input: every malformed or malicious state is a clear error (exit 2)
# or a safe skip; nothing is written, nothing crashes, memory stays bounded.

load helper

# Run a command on a hostile state both as the local state and on stdin.
hostile() {
	local file=$1
	cp "$file" "$HEIMDAL_HOME/state.json"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state version
	[ "$status" -eq 2 ] || fail "state version: status $status"
	[ -z "$output" ] || fail "state version printed on stdout"
	[[ "$stderr" == "heimdal: error: "* ]] || fail "no error line: $stderr"
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ] || fail "HEIMDAL_HOME changed"
	run --separate-stderr heimdal-migrate <"$file"
	[ "$status" -eq 2 ] || fail "heimdal-migrate: status $status"
	[ -z "$output" ] || fail "heimdal-migrate printed on stdout"
}

spec() { jq "$1" "$FIXTURES/v2-spec.json" >"$BATS_TEST_TMPDIR/h.json"; }

@test "checksum keys that escape HOME are refused" {
	for key in '../../x' '/etc/passwd' 'a/../../b' 'a/./b' 'a//b' '.' '' 'dir/'; do
		spec ".checksums[\"$key\"] = \"5d41402abc4b2a76b9719d911017c592\""
		hostile "$BATS_TEST_TMPDIR/h.json"
		[[ "$stderr" == *"unsafe path"* ]] || fail "$key: $stderr"
	done
}

@test "control characters and newlines in names, profiles and keys are refused" {
	for filter in '.active_profile = "work\nrm -rf"' '.machine.hostname = "a\u001b[31mred"' \
		'.checksums["a\nb"] = "5d41402abc4b2a76b9719d911017c592"' '.history[0].operation = "x\u0007"' \
		'.lineage.machines[0] = "m\r"' '.active_profile = ".."'; do
		spec "$filter"
		hostile "$BATS_TEST_TMPDIR/h.json"
	done
}

@test "absurd serials are refused: 1e400, negative, fractional, beyond 2^53, strings" {
	for v in 1e400 -1 -1e400 41.5 '"42"' null true '[]'; do
		sed "s/\"serial\": 42,/\"serial\": $v,/" "$FIXTURES/v2-spec.json" >"$BATS_TEST_TMPDIR/h.json"
		hostile "$BATS_TEST_TMPDIR/h.json"
		[[ "$stderr" == *".lineage.serial: expected a non-negative integer"* ]] || fail "$v: $stderr"
	done
	# Near or beyond 2^53: no write could ever follow such a state.
	for v in 9007199254740993 9007199254740991 4503599627370497; do
		sed "s/\"serial\": 42,/\"serial\": $v,/" "$FIXTURES/v2-spec.json" >"$BATS_TEST_TMPDIR/h.json"
		hostile "$BATS_TEST_TMPDIR/h.json"
		[[ "$stderr" == *".lineage.serial: "*" is past the largest serial, 4503599627370496"* ]] || fail "$v: $stderr"
	done
}

@test "100k-deep nesting is refused without a crash" {
	{ printf '{"active_profile": '; head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; printf '}'; } >"$BATS_TEST_TMPDIR/h.json"
	hostile "$BATS_TEST_TMPDIR/h.json"
	[[ "$stderr" == *"invalid JSON"* ]]
	run --separate-stderr heimdal state query .a "$BATS_TEST_TMPDIR/h.json"
	expect_status 2
	[ -z "$output" ]
}

@test "invalid UTF-8 in strings never crashes, is refused and never reaches stdout" {
	printf '{"active_profile": "p\xff\xfe", "dotfiles_path": "/d\xc3", "repo_url": "x"}' >"$BATS_TEST_TMPDIR/u.json"
	run --separate-stderr heimdal-migrate "$BATS_TEST_TMPDIR/u.json"
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	# Not rewritten to U+FFFD (libjq's way): the document says what its bytes say, or nothing.
	[ "$stderr" = "heimdal-migrate: error: $BATS_TEST_TMPDIR/u.json: invalid JSON: invalid UTF-8 (byte 0xff) at line 1, column 21" ] ||
		fail "message"
}

@test "a NUL inside the state and a truncated multi-megabyte claim are clear errors" {
	printf '{"version": 2, "active_profile": "p\0"}' >"$BATS_TEST_TMPDIR/h.json"
	hostile "$BATS_TEST_TMPDIR/h.json"
	[[ "$stderr" == *"NUL byte"* ]]
	{ printf '{"version": 2, "checksums": {"'; head -c 3000000 /dev/zero | tr '\0' 'a'; } >"$BATS_TEST_TMPDIR/h.json"
	hostile "$BATS_TEST_TMPDIR/h.json"
	[[ "$stderr" == *"invalid JSON"* ]]
}

@test "memory stays bounded on a large hostile document" {
	[ "${SANITIZE:-}" != 1 ] || skip "ASan reserves more address space than ulimit -v allows"
	{ printf '['; for i in $(seq 1 2000); do printf '"%s",' "$(head -c 500 /dev/zero | tr '\0' x)"; done; printf '1]'; } >"$BATS_TEST_TMPDIR/big.json"
	cp "$BATS_TEST_TMPDIR/big.json" "$HEIMDAL_HOME/state.json"
	run --separate-stderr bash -c 'ulimit -v 262144; heimdal state version'
	expect_status 2
	[[ "$stderr" == *".: expected an object, got array"* ]]
}

@test "a state that is a symlink to a file outside is read, never written through" {
	cp "$FIXTURES/v1.json" "$BATS_TEST_TMPDIR/outside.json"
	ln -s "$BATS_TEST_TMPDIR/outside.json" "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state migrate
	expect_status 0
	# The V2 state replaced the link; the file it pointed to is untouched.
	[ ! -L "$HEIMDAL_HOME/state.json" ]
	cmp "$BATS_TEST_TMPDIR/outside.json" "$FIXTURES/v1.json"
}
