#!/usr/bin/env bats
# The JSON Schemas in share/schema describe what the tools really print.

load helper

SCHEMAS="$BATS_TEST_DIRNAME/../share/schema"
validate() { "$BATS_TEST_DIRNAME/validate-schema" "$SCHEMAS/$1.schema.json" "${2:-}"; }

@test "every schema is itself a valid JSON Schema" {
	for s in "$SCHEMAS"/*.schema.json; do
		jq -e '."$schema" and .title' "$s" >/dev/null || fail "$s"
		"$BATS_TEST_DIRNAME/validate-schema" "$s" --self || fail "$s is not a valid schema"
	done
}

@test "the fixtures validate: v1 as state V1, the spec's sample as state V2" {
	validate state-v1 "$FIXTURES/v1.json"
	validate state-v2 "$FIXTURES/v2-spec.json"
}

@test "heimdal-migrate's output validates as state V2" {
	heimdal-migrate "$FIXTURES/v1.json" >"$BATS_TEST_TMPDIR/v2.json"
	validate state-v2 "$BATS_TEST_TMPDIR/v2.json"
}

@test "the V2 schema rejects what the validator rejects" {
	for filter in '.lineage.serial = "42"' '.checksums["../x"] = "5d41402abc4b2a76b9719d911017c592"' \
		'.checksums["/etc/passwd"] = "5d41402abc4b2a76b9719d911017c592"' '.checksums.a = "XYZ"' \
		'del(.machine)' '.version = 3' '.history[0].timestamp = "yesterday"'; do
		jq "$filter" "$FIXTURES/v2-spec.json" >"$BATS_TEST_TMPDIR/bad.json"
		run validate state-v2 "$BATS_TEST_TMPDIR/bad.json"
		[ "$status" -eq 1 ] || fail "schema accepted: $filter"
		cp "$BATS_TEST_TMPDIR/bad.json" "$HEIMDAL_HOME/state.json"
		run heimdal state version
		[ "$status" -eq 2 ] || fail "validator accepted: $filter"
	done
}
