#!/usr/bin/env bats
# make demo: the README's first command tells the whole story and succeeds.

load helper

@test "the demo runs to the end: migration, two machines offline, the merge, drift, history" {
	command -v heimdal-lineage >/dev/null || skip "the two-machine tools are not built"
	export TMPDIR="$BATS_TEST_TMPDIR"
	run --separate-stderr "$BATS_TEST_DIRNAME/../share/demo"
	expect_status 0
	for want in "== Migrate it to V2" "Warning: Cannot reach remote repository" \
		"Proceeding with local-only lock." "State Conflicts Detected" \
		"State diverged: local serial" "States merged successfully" \
		"State conflicts resolved automatically" "Already up to date." \
		"Modified Files (1):" "Recent State Operations"; do
		[[ "$output" == *"$want"* ]] || fail "missing: $want"
	done
	# Its temporary directory is gone.
	[ -z "$(find "$BATS_TEST_TMPDIR" -maxdepth 1 -name 'heimdal-demo.*')" ] || fail "left behind"
}
