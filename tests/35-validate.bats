#!/usr/bin/env bats
# Every document the tools read is held to its schema's rules, every tool
# checks what it writes, outputs never replace what they do not own, and
# failures say their real cause.

load helper
load states

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
}

# expect_refused: status 2, nothing on stdout.
expect_refused() {
	expect_status 2
	[ -z "$output" ] || fail "stdout: $output"
}

@test "invalid UTF-8 is refused by every reader, never rewritten to U+FFFD" {
	st 1 0 > s.json
	# A lone continuation byte, an overlong '/', a surrogate, a truncated sequence.
	for bytes in '\x80' '\xc0\xaf' '\xed\xa0\x80' '\xe2\x82'; do
		jq -c . s.json | sed "s/\"john\"/\"jo$bytes\"/" > bad.json
		run --separate-stderr heimdal-lineage bump --op x bad.json
		expect_refused
		[[ "$stderr" == "heimdal-lineage: error: bad.json: invalid JSON: invalid UTF-8 (byte 0x"*", column "* ]] ||
			fail "bump: $bytes"
		run --separate-stderr heimdal-migrate bad.json
		expect_refused
		run --separate-stderr heimdal-merge --strategy merge --local s.json --remote bad.json
		expect_refused
		[[ "$stderr" == "heimdal-merge: error: bad.json: invalid JSON: invalid UTF-8"* ]] || fail "merge: $bytes"
		run --separate-stderr heimdal-conflicts --local bad.json --remote s.json
		expect_refused
		pair s.json s.json | jq -c . | sed "s/\"john\"/\"jo$bytes\"/" > badpair.json
		run --separate-stderr heimdal-lineage compare < badpair.json
		expect_refused
		[[ "$stderr" == "heimdal-lineage: error: <stdin>: invalid JSON: invalid UTF-8"* ]] || fail "compare: $bytes"
	done
	# The porcelain's readers too: state query (its fast path) and state version.
	cp bad.json "$HEIMDAL_HOME/state.json"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state query .version
	expect_refused
	[[ "$stderr" == *"invalid UTF-8"* ]] || fail "query"
	run --separate-stderr heimdal state version
	expect_refused
	[[ "$stderr" == *"invalid UTF-8"* ]] || fail "version"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
	# Valid UTF-8 of every length goes through as it is.
	jq '.machine.user = "jöhn €𝄞"' s.json > ok.json
	run --separate-stderr heimdal-lineage bump --op x ok.json
	expect_status 0
	expect_json '.machine.user == "jöhn €𝄞"'
}

@test "a V2 state without its version is refused, not taken for V1 and re-migrated; V1 still migrates" {
	st 5 4 '.history = [h(5; "m1")]' | jq 'del(.version)' > nov.json
	want="<stdin>: .version: missing, but the document has .machine: a V2 state without its version, not a V1 state"
	run --separate-stderr heimdal-migrate - < nov.json
	expect_refused
	[ "$stderr" = "heimdal-migrate: error: $want" ] || fail "migrate"
	run --separate-stderr heimdal-lineage bump --op x < nov.json
	expect_refused
	[ "$stderr" = "heimdal-lineage: error: $want" ] || fail "bump"
	# The porcelain migrates V1 states on read: this one stays as it is, no backup.
	cp nov.json "$HEIMDAL_HOME/state.json"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state version
	expect_refused
	[[ "$stderr" == *".version: missing, but the document has .machine"* ]] || fail "porcelain"
	[ "$before" = "$(snapshot "$HEIMDAL_HOME")" ] || fail "files changed"
	[ ! -d "$HEIMDAL_HOME/backups" ] || fail "backed up as a V1 state"
	# A real V1 state is migrated.
	run --separate-stderr heimdal-migrate --machine-id m1 --lineage-id l1 "$FIXTURES/v1.json"
	expect_status 0
	expect_json '.version == 2 and .lineage.id == "l1"'
}

@test "no key or string holds a control character, in members no rule names too" {
	st 1 0 '.history = [h(1; "m1")]' > s.json
	check() { # FILTER EXPECTED-MESSAGE
		jq "$1" s.json > bad.json
		run --separate-stderr heimdal-lineage bump --op x < bad.json
		expect_refused
		[ "$stderr" = "heimdal-lineage: error: <stdin>: $2" ] || fail "$1"
	}
	check '.extra = {"a\u001bb": 1}' '.extra["a\u001bb"]: control character in key'
	check '.extra = ["ok", {"k": "x\ny"}]' '.extra[1].k: control character in string'
	check '.lineage.note = "\u0000"' '.lineage.note: NUL character in string'
	check '.history[0].note = "\u007f"' '.history[0].note: control character in string'
	check '.["bad\nkey"] = 1' '["bad\nkey"]: control character in key'
	check '.machine.extra = "\u001b[31m"' '.machine.extra: control character in string'
	# In a pair, the side is named.
	jq '.extra = "\u001b"' s.json > r.json
	run --separate-stderr heimdal-merge --strategy merge --local s.json --remote r.json
	expect_refused
	[ "$stderr" = "heimdal-merge: error: r.json: .extra: control character in string" ] || fail "merge"
	# A tab is a control character too (the schema's \u0000-\u001f).
	jq '.extra = {"k": "a\tb"}' s.json > tab.json
	run --separate-stderr heimdal-lineage bump --op x < tab.json
	expect_refused
	[ "$stderr" = "heimdal-lineage: error: <stdin>: .extra.k: control character in string" ] || fail "tab"
}

@test "more than 50 history entries are refused wherever a state is read" {
	st 51 50 '.history = [range(1; 52) | h(.; "m1")]' > big.json
	st 50 49 '.history = [range(1; 51) | h(.; "m1")]' > ok.json
	run --separate-stderr heimdal-merge --strategy merge --local ok.json --remote big.json
	expect_refused
	[ "$stderr" = "heimdal-merge: error: big.json: .history: 51 entries, at most 50 (the newest) are kept" ] ||
		fail "message"
	run --separate-stderr heimdal-conflicts --local big.json --remote ok.json
	expect_refused
	run --separate-stderr heimdal-lineage bump --op x ok.json
	expect_status 0
	expect_json '(.history | length) == 50'
}

@test "members the schemas close: a pair and a lock record with another member are refused" {
	st 1 0 > s.json
	pair s.json s.json | jq '.extra = 1' > p.json
	run --separate-stderr heimdal-lineage compare < p.json
	expect_refused
	[ "$stderr" = 'heimdal-lineage: error: <stdin>: .["extra"]: not a member of a pair (local, remote, base)' ] ||
		fail "pair"
	run --separate-stderr heimdal-merge --strategy merge < p.json
	expect_refused
	# The state itself is open (heimdal.7: a tool given other keys keeps them).
	jq '.mine = {"a": 1}' s.json > open.json
	run --separate-stderr heimdal-lineage bump --op x open.json
	expect_status 0
	expect_json '.mine == {"a": 1}'
	lock=$(heimdal-lock acquire --op x -c)
	run --separate-stderr heimdal-lock release <<<"$(jq -c '.machine.extra = 1' <<<"$lock")"
	expect_refused
	[ "$stderr" = 'heimdal-lock: error: <stdin>: .machine.extra: not a member of a lock record' ] || fail "lock: $stderr"
	run --separate-stderr heimdal-lock release <<<"$(jq -c '.holder = "me"' <<<"$lock")"
	expect_refused
	[ -f "$HEIMDAL_HOME/state.lock" ] || fail "released by a record that is not one"
	run --separate-stderr heimdal-lock release <<<"$lock"
	expect_status 0
}

@test "timestamps are real calendar dates; RFC 3339 forms with fractions and offsets pass" {
	st 1 0 > s.json
	for bad in 2024-02-30T10:30:00Z 2023-02-29T10:30:00Z 2024-04-31T10:30:00Z 2024-13-01T10:30:00Z \
		2024-00-10T10:30:00Z 2024-01-15T24:00:00Z 2024-01-15T10:60:00Z 2024-1-15T10:30:00Z \
		2024-01-15t10:30:00Z 2024-01-15T10:30:00.Z 2024-01-15T10:30:00+0100 2024-01-15T10:30:00; do
		jq --arg t "$bad" '.last_sync = $t' s.json > bad.json
		run --separate-stderr heimdal-lineage bump --op x < bad.json
		expect_refused
		[ "$stderr" = "heimdal-lineage: error: <stdin>: .last_sync: not an RFC 3339 timestamp: '$bad'" ] ||
			fail "$bad"
	done
	for good in 2024-02-29T10:30:00Z 2000-02-29T00:00:00Z 2024-12-31T23:59:60Z \
		2024-01-15T10:30:00.123456789Z 2024-01-15T11:30:00.5+01:00 2024-01-15T10:30:00z; do
		jq --arg t "$good" '.last_sync = $t' s.json > good.json
		run --separate-stderr heimdal-lineage bump --op x < good.json
		expect_status 0
		expect_json ".last_sync == \"$good\""
	done
}

@test "merge: the most recent is the instant, fractions of a second and offsets included" {
	e() { printf '{"operation":"apply","timestamp":"%s","machine_id":"%s","user":"john","serial":41}' "$1" "$2"; }
	st 41 40 ".history = [$(e 2024-01-15T10:30:00.5Z A), $(e 2024-01-15T11:30:00.25+01:00 C)]" > l.json
	st 41 40 ".history = [$(e 2024-01-15T10:30:00Z B)]" > r.json
	run --separate-stderr heimdal-merge --strategy merge --local l.json --remote r.json
	expect_status 0
	expect_json '[.history[].machine_id] == ["B", "C", "A"]'
}

@test "bump and lock acquire refuse to record a hostname, user or reason the next tool would refuse" {
	st 1 0 > s.json
	run --separate-stderr env HEIMDAL_HOSTNAME=$'host\nforged' heimdal-lineage bump --op x s.json
	expect_refused
	[ "$stderr" = "heimdal-lineage: error: HEIMDAL_HOSTNAME: 'host\\x0aforged' holds a control character" ] ||
		fail "bump"
	run --separate-stderr env USER=$'me\e[2J' heimdal-lineage bump --op x s.json
	expect_refused
	[ "$stderr" = "heimdal-lineage: error: USER: 'me\\x1b[2J' holds a control character" ] || fail "user"
	run --separate-stderr env HEIMDAL_HOSTNAME=$'h\e]0;x\a' heimdal-lock acquire --op x
	expect_refused
	[ "$stderr" = "heimdal-lock: error: HEIMDAL_HOSTNAME: 'h\\x1b]0;x\\x07' holds a control character" ] ||
		fail "lock hostname"
	run --separate-stderr heimdal-lock acquire --op x --reason $'two\nlines'
	expect_refused
	[ "$stderr" = "heimdal-lock: error: --reason: 'two\\x0alines' holds a control character" ] || fail "reason"
	run --separate-stderr heimdal-lock run --op x --reason $'\e' -- true
	expect_refused
	[ ! -e "$HEIMDAL_HOME/state.lock" ] || fail "a lock was written"
	# What they do write, the next tool reads.
	heimdal-lineage bump --op x s.json | heimdal-lineage bump --op y >/dev/null
}

@test "merge keeps every member of either side: the remote's too, the local value on a conflict" {
	st 41 40 '.history = [h(41; "A")] | .local_only = 1 | .both = "L" | .lineage.note = "l"' > l.json
	st 42 40 '.history = [h(42; "B")] | .remote_only = {"k": [1]} | .both = "R" | .lineage.note = "r"
		| .lineage.rnote = "r" | .machine.id = "B"' > r.json
	st 40 39 '.history = []' > b.json
	for base in "" "--base b.json"; do
		run --separate-stderr heimdal-merge --strategy merge --local l.json --remote r.json $base
		expect_status 0
		expect_json '.local_only == 1 and .remote_only == {"k": [1]} and .both == "L"'
		expect_json '.lineage.note == "l" and .lineage.rnote == "r" and .lineage.serial == 42'
		expect_json '.machine.id != "B"'
	done
	# Per-machine facts stay this machine's: a remote-only last_apply is not adopted.
	jq 'del(.last_apply)' l.json > l2.json
	run --separate-stderr heimdal-merge --strategy merge --local l2.json --remote r.json
	expect_status 0
	expect_json 'has("last_apply") | not'
}

@test "merge --report: written into a device, a FIFO or a pipe as it is; links followed; regular files replaced" {
	st 42 41 '.history = [h(42; "A")]' > l.json
	st 43 41 '.history = [h(43; "B")]' > r.json
	m() { heimdal-merge --strategy merge --local l.json --remote r.json -c "$@"; }
	# A device stays the device.  As root, a node of our own: a tool that
	# replaced it must not take the machine's /dev/null with it.
	dev=/dev/null
	if [ "$(id -u)" = 0 ]; then
		dev=$PWD/null
		mknod -m 666 "$dev" c 1 3
	fi
	run --separate-stderr m --report "$dev"
	expect_status 0
	[ -c "$dev" ] || fail "$dev replaced"
	# A FIFO: its reader gets the report, the FIFO stays.
	mkfifo fifo
	timeout 10 cat fifo > got.json &
	reader=$!
	run --separate-stderr m --report fifo
	expect_status 0
	wait "$reader" || fail "the reader got nothing"
	[ -p fifo ] || fail "FIFO replaced"
	jq -e '.strategy == "merge" and .relation == "diverged"' got.json
	# A pipe behind /dev/fd/N, as >(jq .) gives.
	run bash -c 'heimdal-merge --strategy merge --local l.json --remote r.json --report /dev/fd/3 3>&1 >/dev/null | jq -r .strategy'
	expect_status 0
	[ "$output" = merge ] || fail "pipe"
	# A symlink is followed: the file it names gets the report, the link stays.
	echo old > target.json
	chmod 640 target.json
	ln -s target.json link.json
	run --separate-stderr m --report link.json
	expect_status 0
	[ -L link.json ] || fail "link replaced"
	jq -e '.strategy == "merge"' target.json
	[ "$(stat -c %a target.json)" = 640 ] || fail "mode changed"
	ln -s new.json dangling.json
	run --separate-stderr m --report dangling.json
	expect_status 0
	[ -L dangling.json ] && jq -e '.strategy == "merge"' new.json
	# A directory is an error, exit 3, nothing on stdout.
	mkdir dir
	run --separate-stderr m --report dir
	expect_status 3
	[ -z "$output" ] || fail "stdout"
}

@test "a write error on stdout is exit 3 with a message, from every binary, --help included" {
	st 1 0 > s.json
	for t in heimdal heimdal-migrate heimdal-lineage heimdal-conflicts heimdal-merge heimdal-drift \
		heimdal-lock heimdal-rlock; do
		run --separate-stderr "$t" --help
		expect_status 0
		run --separate-stderr bash -c "$t --help >/dev/full"
		expect_status 3
		[ "$stderr" = "$t: error: stdout: No space left on device" ] || fail "$t --help"
	done
	run --separate-stderr bash -c 'heimdal version >/dev/full'
	expect_status 3
	run --separate-stderr bash -c 'heimdal-conflicts --local s.json --remote s.json >/dev/full'
	expect_status 3
	[ "$stderr" = "heimdal-conflicts: error: stdout: No space left on device" ] || fail "conflicts"
	# A reader that went away is no error of ours.
	run bash -c 'heimdal-lineage --help | true'
	expect_status 0
}

@test "a base of another lineage is set aside with a warning" {
	st 42 41 '.history = [h(42; "A")]' > l.json
	st 43 41 '.history = [h(43; "B")]' > r.json
	st 41 40 '.lineage.id = "other-lineage" | .history = [h(41; "A")]' > b.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json --base b.json -c
	expect_status 1
	[ "$stderr" = "heimdal-lineage: warning: b.json: the base is of lineage 'other-lineage', neither the local ('lineage-abc123') nor the remote's ('lineage-abc123'): compared without a base" ] ||
		fail "warning"
	[ "$output" = "$(heimdal-lineage compare --local l.json --remote r.json -c)" ] || fail "not as without a base"
	run --separate-stderr heimdal-merge --strategy merge < <(pair l.json r.json b.json)
	expect_status 0
	[[ "$stderr" == "heimdal-merge: warning: <stdin>: the base is of lineage 'other-lineage'"* ]] || fail "merge"
}

@test "errors say their real cause: HEIMDAL_HOME a file, a newer state's unreadable serial" {
	st 1 0 > s.json
	: > notadir
	run --separate-stderr env HEIMDAL_HOME="$PWD/notadir" heimdal-lineage bump --op x s.json
	expect_status 3
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lineage: error: $PWD/notadir/machine-id: Not a directory" ] || fail "ENOTDIR"
	# A state of a newer version is compared leniently, but never as "serial 0".
	jq '.version = 3 | .lineage.serial = "soon"' s.json > v3.json
	run --separate-stderr heimdal-conflicts --local s.json --remote v3.json
	expect_refused
	[ "$stderr" = "heimdal-conflicts: error: v3.json: .lineage.serial: not a serial, in a state of version 3 (this heimdal reads up to 2): cannot compare" ] ||
		fail "serial"
	jq '.version = 3' s.json > v3ok.json
	run --separate-stderr heimdal-conflicts --local s.json --remote v3ok.json
	expect_status 1
	expect_json '.remote_serial == 1 and any(.conflicts[]; .type == "version_mismatch")'
}
