#!/usr/bin/env bats
# heimdal-migrate (plumbing) and heimdal state migrate (porcelain).

load helper

@test "heimdal-migrate --help prints usage on stdout, exit 0" {
	run --separate-stderr heimdal-migrate --help
	expect_status 0
	[[ "$output" == "usage: heimdal-migrate"* ]]
	[ -z "$stderr" ]
}

@test "heimdal-migrate: a bad flag is a usage error, exit 2" {
	run --separate-stderr heimdal-migrate --frobnicate
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"usage: heimdal-migrate"* ]]
}

@test "heimdal-migrate turns the V1 fixture into the spec's V2 layout" {
	run --separate-stderr heimdal-migrate < "$FIXTURES/v1.json"
	expect_status 0
	expect_json '.version == 2'
	expect_json '.active_profile == "personal" and .dotfiles_path == "/Users/john/.dotfiles"'
	expect_json '.repo_url == "git@github.com:john/dotfiles.git"'
	expect_json '.last_sync == "2024-01-15T10:30:00Z" and .last_apply == "2024-01-15T10:35:00Z"'
	expect_json '.machine | keys_unsorted == ["id","hostname","os","arch","user"]'
	expect_json '.machine.hostname == "test-host" and .machine.os == "linux"'
	expect_json '.lineage.serial == 1 and .lineage.parent_serial == 0'
	expect_json '.lineage.id | startswith("lineage-")'
	expect_json '.lineage.machines == [.machine.id]'
	expect_json '.history == [] and .checksums == {}'
	expect_json 'keys_unsorted == ["version","active_profile","dotfiles_path","repo_url","last_sync","last_apply","machine","heimdal_version","lineage","history","checksums"]'
}

@test "heimdal-migrate uses the machine id stored in HEIMDAL_HOME, generated once" {
	run heimdal-migrate "$FIXTURES/v1.json"
	expect_status 0
	id=$(printf '%s' "$output" | jq -r .machine.id)
	[[ "$id" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] || fail "not a v4 uuid: $id"
	[ "$(cat "$HEIMDAL_HOME/machine-id")" = "$id" ]
	run heimdal-migrate "$FIXTURES/v1.json"
	[ "$(printf '%s' "$output" | jq -r .machine.id)" = "$id" ]
}

@test "heimdal-migrate passes a V2 state through unchanged" {
	run --separate-stderr heimdal-migrate -c "$FIXTURES/v2-spec.json"
	expect_status 0
	[ "$output" = "$(jq -c . "$FIXTURES/v2-spec.json")" ]
}

@test "heimdal-migrate refuses a state written by a newer heimdal, exit 2" {
	run --separate-stderr heimdal-migrate <<<'{"version": 3, "active_profile": "x"}'
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal-migrate: error: <stdin>: state version 3 was written by a newer heimdal (this one reads up to 2)" ]
}

@test "heimdal-migrate names a missing V1 field, exit 2" {
	run --separate-stderr heimdal-migrate <<<'{"active_profile": "personal", "repo_url": "x"}'
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal-migrate: error: <stdin>: .dotfiles_path: missing" ]
}

@test "heimdal-migrate names a mistyped V1 field, exit 2" {
	run --separate-stderr heimdal-migrate <<<'{"active_profile": 7, "dotfiles_path": "/d", "repo_url": "x"}'
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal-migrate: error: <stdin>: .active_profile: expected a string, got number" ]
}

@test "heimdal-migrate: truncated JSON says where, exit 2" {
	run --separate-stderr heimdal-migrate <<<'{"active_profile": "personal",'
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == "heimdal-migrate: error: <stdin>: invalid JSON: "*"line 2"* ]] || fail "no position"
}

@test "heimdal-migrate: empty stdin, exit 2" {
	run --separate-stderr heimdal-migrate </dev/null
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal-migrate: error: <stdin>: invalid JSON: empty input" ]
}

@test "heimdal-migrate: two documents, exit 2" {
	run --separate-stderr heimdal-migrate <<<'{} {}'
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"invalid JSON"* ]]
}

@test "heimdal-migrate: a non-object state, exit 2" {
	run --separate-stderr heimdal-migrate <<<'[1,2]'
	expect_status 2
	[ "$stderr" = "heimdal-migrate: error: <stdin>: .: expected an object, got array" ]
}

@test "heimdal-migrate: an unreadable file is an environment error, exit 3" {
	run --separate-stderr heimdal-migrate "$BATS_TEST_TMPDIR/nope.json"
	expect_status 3
	[ -z "$output" ]
	[[ "$stderr" == *"nope.json: No such file or directory" ]]
}

@test "pipeline: heimdal-migrate < v1 | jq -e, and its output is accepted back" {
	heimdal-migrate < "$FIXTURES/v1.json" | jq -e '.version == 2 and (.history | length) == 0'
	heimdal-migrate < "$FIXTURES/v1.json" | heimdal-migrate -c | jq -e '.lineage.serial == 1'
}

@test "state migrate: the spec's output, a backup of the V1 bytes, an atomic 0600 V2 state" {
	install_state v1.json
	run --separate-stderr heimdal state migrate
	expect_status 0
	backup="$HEIMDAL_HOME/backups/state_v1_20240115_103000.json"
	[ "$output" = "Migrating state from V1 to V2...
OK Backup created: $backup
OK State migrated successfully
OK New state saved

Migration Summary:
  - Added machine metadata
  - Initialized state lineage (serial: 1)
  - Created empty operation history
  - Initialized file checksums" ] || fail "output differs"
	cmp "$backup" "$FIXTURES/v1.json"
	jq -e '.version == 2' "$HEIMDAL_HOME/state.json"
	[ "$(stat -c %a "$HEIMDAL_HOME/state.json")" = 600 ]
	[ "$(stat -c %a "$backup")" = 600 ]
	[ -z "$(ls "$HEIMDAL_HOME" | grep tmp)" ]
}

@test "state migrate in a UTF-8 locale uses the spec's check marks" {
	install_state v1.json
	LC_ALL=C.UTF-8 run heimdal state migrate
	expect_status 0
	[[ "$output" == *"✓ State migrated successfully"* ]]
}

@test "state migrate --no-backup keeps no backup" {
	install_state v1.json
	run heimdal state migrate --no-backup
	expect_status 0
	[[ "$output" != *"Backup created"* ]]
	[ ! -e "$HEIMDAL_HOME/backups" ] || [ -z "$(ls "$HEIMDAL_HOME/backups")" ]
}

@test "state migrate twice in one second keeps both backups" {
	install_state v1.json
	heimdal state migrate >/dev/null
	install_state v1.json
	heimdal state migrate >/dev/null
	[ -e "$HEIMDAL_HOME/backups/state_v1_20240115_103000.json" ]
	[ -e "$HEIMDAL_HOME/backups/state_v1_20240115_103000_1.json" ]
}

@test "state migrate --json reports what it did" {
	install_state v1.json
	run --separate-stderr heimdal state migrate --json
	expect_status 0
	expect_json '.migrated == true and .from == 1 and .to == 2'
	expect_json '.backup | endswith("backups/state_v1_20240115_103000.json")'
}

@test "state migrate on a V2 state changes nothing" {
	v2_state > "$HEIMDAL_HOME/state.json"
	before=$(snapshot "$HEIMDAL_HOME")
	run heimdal state migrate
	expect_status 0
	[ "$output" = "State is already at version 2; nothing to migrate." ]
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ]
}

@test "state migrate on a broken V1 state: exit 2, the field named, nothing changed" {
	printf '{"active_profile": "personal", "dotfiles_path": 5, "repo_url": "x"}\n' >"$HEIMDAL_HOME/state.json"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state migrate
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal: error: $HEIMDAL_HOME/state.json: .dotfiles_path: expected a string, got number" ]
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ]
}

@test "state migrate without a state: exit 3 pointing at init" {
	run --separate-stderr heimdal state migrate
	expect_status 3
	[ -z "$output" ]
	[[ "$stderr" == *"no state at $HEIMDAL_HOME/state.json (run 'heimdal init' first)" ]]
}

@test "any porcelain command migrates a V1 state automatically, with a backup" {
	install_state v1.json
	run --separate-stderr heimdal state version
	expect_status 0
	[[ "$stderr" == *"is a V1 state; migrating it to V2"* ]]
	[[ "$output" == "State Version: 2"* ]]
	[ -e "$HEIMDAL_HOME/backups/state_v1_20240115_103000.json" ]
	jq -e '.version == 2' "$HEIMDAL_HOME/state.json"
}

@test "heimdal-migrate: a NUL byte in the input is refused with its position (fuzz regression)" {
	printf '{"active_profile": "p",\n \000"dotfiles_path": "/d", "repo_url": "x"}' >"$BATS_TEST_TMPDIR/nul.json"
	run --separate-stderr heimdal-migrate "$BATS_TEST_TMPDIR/nul.json"
	expect_status 2
	[ -z "$output" ]
	[ "$stderr" = "heimdal-migrate: error: $BATS_TEST_TMPDIR/nul.json: invalid JSON: NUL byte at line 2, column 1" ]
}

@test "the automatic V1 migration is a write: under the lock, refused (exit 4) while another operation holds it" {
	install_state v1.json
	before=$(cat "$HEIMDAL_HOME/state.json")
	sleep 600 3>&- &
	holder=$!
	lock=$(heimdal-lock acquire -c --op apply --pid "$holder")
	run --separate-stderr heimdal state version
	expect_status 4
	[ -z "$output" ] || fail "stdout: $output"
	[[ "$stderr" == "Error: State is currently locked"*"Operation: apply"* ]] || fail "stderr: $stderr"
	[ "$(cat "$HEIMDAL_HOME/state.json")" = "$before" ] || fail "migrated without the lock"
	[ ! -d "$HEIMDAL_HOME/backups" ] || fail "a backup was written"
	heimdal-lock release <<<"$lock"
	kill "$holder"
	run --separate-stderr heimdal state version
	expect_status 0
	jq -e '.version == 2' "$HEIMDAL_HOME/state.json" >/dev/null || fail "not migrated"
	[ ! -e "$HEIMDAL_HOME/state.lock" ] || fail "the migration's lock was left"
}

@test "under heimdal-lock run the V1 migration uses the lock the run holds" {
	install_state v1.json
	run --separate-stderr heimdal-lock run --op batch -- heimdal state version
	expect_status 0
	jq -e '.version == 2' "$HEIMDAL_HOME/state.json" >/dev/null || fail "not migrated"
}
