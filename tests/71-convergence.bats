#!/usr/bin/env bats
# Three machines converge (issue 12): tests/convergence runs a seeded random
# story of edits, commits, syncs, applies and offline spells, then checks that
# every machine holds the remote tip, no committed edit was lost, no drift is
# left and the published serials increase.  `make soak SEEDS=N` runs many seeds.

load helper
load helper-git

setup() {
	setup_scratch
}

converges() {
	run "$BATS_TEST_DIRNAME/convergence" "$1"
	expect_status 0
	[[ "$output" == "convergence: seed $1: ok "* ]] || fail "no ok line"
}

@test "convergence: seed 1" {
	converges 1
}

@test "convergence: seed 2" {
	converges 2
}

@test "convergence: seed 3" {
	converges 3
}
