#!/usr/bin/env bats
# heimdal resolve, heimdal status and apply PATH on one machine: the
# three-way decisions against the deployment record, seen from the CLI.
# (Stories across machines: 70-machines.bats.)

load helper

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
	DOT="$HOME/.dotfiles"
	mkdir -p "$DOT"
	printf 'a\nb\nc\nd\ne\n' >"$DOT/.bashrc"
	printf 'set number\n' >"$DOT/.vimrc"
	printf 'b\000in\n' >"$DOT/.blob"
	dotfiles_repo
	heimdal apply >/dev/null
}

# upstream FILE CONTENT: the repository's FILE changes (committed), as a pull brings it.
upstream() {
	printf "$2" >"$DOT/$1"
	git -C "$DOT" commit -qam "upstream $1"
}

@test "resolve: --help; no side, no path, two sides, an untracked path: exit 2, nothing changed" {
	run --separate-stderr heimdal resolve --help
	expect_status 0
	[[ "$output" == "usage: heimdal resolve (--merged | --ours | --theirs) PATH..."* ]] || fail "usage"
	before=$(snapshot "$HOME")
	run --separate-stderr heimdal resolve .bashrc
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"say which side to take: --merged, --ours or --theirs"* ]] || fail "$stderr"
	run --separate-stderr heimdal resolve --ours
	expect_status 2
	[[ "$stderr" == *"name the file(s) to settle"* ]] || fail "$stderr"
	run --separate-stderr heimdal resolve --ours --theirs .bashrc
	expect_status 2
	[[ "$stderr" == *"--merged, --ours and --theirs exclude each other"* ]] || fail "$stderr"
	run --separate-stderr heimdal resolve --theirs .nothere
	expect_status 2
	[ "$stderr" = "heimdal: error: .nothere: not a file the repository deploys" ] || fail "$stderr"
	run --separate-stderr heimdal resolve --theirs ../etc/passwd
	expect_status 2
	[[ "$stderr" == "heimdal: error: ../etc/passwd: not a path under \$HOME"* ]] || fail "$stderr"
	[ "$(snapshot "$HOME")" = "$before" ] || fail "something changed"
}

@test "apply merges a clean three-way edit, and leaves an overlapping one beside the file" {
	sed -i 's/^e$/E here/' "$HOME/.bashrc"
	upstream .bashrc 'A up\nb\nc\nd\ne\n'
	run --separate-stderr heimdal apply
	expect_status 0
	[[ "$output" == *"  merged    .bashrc (your edit and the upstream one; 'heimdal commit' shares it)"* ]] || fail
	[ "$(cat "$HOME/.bashrc")" = "$(printf 'A up\nb\nc\nd\nE here')" ] || fail "merged text"
	# The record's base is the repository's file: the edit here is drift, for commit.
	jq -e --arg s "$(sha256sum "$DOT/.bashrc" | cut -c1-64)" '.checksums[".bashrc"] == $s' "$HEIMDAL_HOME/state.json"
	jq -e --arg b "$(git -C "$DOT" rev-parse HEAD:.bashrc)" '.files[".bashrc"].blob == $b' "$HEIMDAL_HOME/deployed.json"
	run --separate-stderr heimdal state check-drift --json
	expect_status 1
	jq -e '[.modified[].path] == [".bashrc"]' <<<"$output"
	# The same line on both sides: the file stays, the merge goes beside it.
	sed -i 's/^b$/B here/' "$HOME/.bashrc"
	upstream .bashrc 'A up\nB up\nc\nd\ne\n'
	here=$(cat "$HOME/.bashrc")
	run --separate-stderr heimdal apply
	expect_status 1
	[[ "$output" == *"  conflict  .bashrc (changed here and upstream)"* ]] || fail
	[[ "$output" == *"  * .bashrc: both sides in $HOME/.bashrc.heimdal-merge"* ]] || fail
	[ "$(cat "$HOME/.bashrc")" = "$here" ] || fail "file changed"
	[ "$(stat -c %a "$HOME/.bashrc.heimdal-merge")" = 600 ] || fail "merge file mode"
	grep -qx '<<<<<<< here' "$HOME/.bashrc.heimdal-merge"
	grep -qx 'B here' "$HOME/.bashrc.heimdal-merge"
	grep -qx 'B up' "$HOME/.bashrc.heimdal-merge"
	grep -qx '>>>>>>> upstream' "$HOME/.bashrc.heimdal-merge"
}

@test "resolve --merged takes the edited merge (backup kept), refuses one with markers" {
	sed -i 's/^a$/A here/' "$HOME/.bashrc"
	upstream .bashrc 'A up\nb\nc\nd\ne\n'
	heimdal apply >/dev/null || true
	here=$(cat "$HOME/.bashrc")
	run --separate-stderr heimdal resolve --merged .bashrc
	expect_status 1
	[[ "$stderr" == *".bashrc.heimdal-merge: still has conflict markers"* ]] || fail "$stderr"
	[ "$(cat "$HOME/.bashrc")" = "$here" ] || fail "file changed"
	printf 'A both\nb\nc\nd\ne\n' >"$HOME/.bashrc.heimdal-merge"
	run --separate-stderr heimdal resolve --merged "$HOME/.bashrc"
	expect_status 0
	[ "$(cat "$HOME/.bashrc")" = "$(printf 'A both\nb\nc\nd\ne')" ] || fail "not taken"
	[ ! -e "$HOME/.bashrc.heimdal-merge" ] || fail "merge file left"
	backup=$(find "$HEIMDAL_HOME/backups/files" -path '*/.bashrc')
	[ "$(cat "$backup")" = "$here" ] || fail "no backup of this machine's file"
	jq -e '.history[-1].operation == "resolve"' "$HEIMDAL_HOME/state.json"
	# Settled: apply has nothing left to say; commit carries the merge up.
	run --separate-stderr heimdal apply
	expect_status 0
	run --separate-stderr heimdal commit -m merged
	expect_status 0
	[ "$(git -C "$DOT" show HEAD:.bashrc)" = "$(printf 'A both\nb\nc\nd\ne')" ] || fail "not committed"
	run --separate-stderr heimdal state check-drift
	expect_status 0
}

@test "resolve --ours keeps this machine's file for commit; --theirs takes upstream; a binary file has no merge" {
	printf '\000here\n' >"$HOME/.blob"
	upstream .blob '\000up\n'
	run --separate-stderr heimdal apply
	expect_status 1
	[[ "$output" == *"  * .blob: cannot be merged line by line; take a side"* ]] || fail
	[ ! -e "$HOME/.blob.heimdal-merge" ] || fail "markers in a binary file"
	run --separate-stderr heimdal resolve --ours .blob
	expect_status 0
	cmp "$HOME/.blob" <(printf '\000here\n') || fail "ours not kept"
	run --separate-stderr heimdal commit -m ours
	expect_status 0
	cmp <(git -C "$DOT" show HEAD:.blob) <(printf '\000here\n') || fail "ours not committed"
	# --theirs, with a backup of the file here.
	printf 'mine\n' >"$HOME/.vimrc"
	upstream .vimrc 'set nonumber\n'
	heimdal apply >/dev/null || true
	run --separate-stderr heimdal resolve --theirs .vimrc
	expect_status 0
	[[ "$output" == *"  replaced  .vimrc (backup: $HEIMDAL_HOME/backups/files/"* ]] || fail
	[ "$(cat "$HOME/.vimrc")" = "set nonumber" ] || fail "theirs not taken"
	run --separate-stderr heimdal state check-drift
	expect_status 0
}

@test "apply PATH: only those files; an update keeps a file's tighter mode" {
	chmod 600 "$HOME/.bashrc"
	upstream .bashrc 'x\n'
	upstream .vimrc 'set nonumber\n'
	run --separate-stderr heimdal apply .bashrc
	expect_status 0
	[[ "$output" == *"  updated   .bashrc"* && "$output" != *".vimrc"* ]] || fail
	[ "$(cat "$HOME/.bashrc")" = x ] && [ "$(cat "$HOME/.vimrc")" = "set number" ] || fail "wrong files"
	[ "$(stat -c %a "$HOME/.bashrc")" = 600 ] || fail "mode loosened"
	run --separate-stderr heimdal apply
	expect_status 0
	[ "$(cat "$HOME/.vimrc")" = "set nonumber" ] || fail "the rest not applied"
}

@test "status: --help, a bad flag exit 2; text and --json answer what apply would do, through jq" {
	run --separate-stderr heimdal status --help
	expect_status 0
	[[ "$output" == "usage: heimdal status [--json | -c]"* ]] || fail
	run --separate-stderr heimdal status --bogus
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	sed -i 's/^e$/E here/' "$HOME/.bashrc"
	upstream .vimrc 'set nonumber\n'
	before=$(snapshot "$HOME")
	run --separate-stderr heimdal status
	expect_status 0
	[ "$output" = "On test-host (profile personal), serial $(jq .lineage.serial "$HEIMDAL_HOME/state.json")
No remote-tracking branch yet: 'heimdal sync' shares this machine's state

Changed here ('heimdal commit' shares them):
  .bashrc

Changed upstream ('heimdal apply' or 'heimdal sync' deploys them):
  .vimrc" ] || fail
	[ "$(snapshot "$HOME")" = "$before" ] || fail "status wrote"
	run bash -c 'heimdal status --json | jq -c "[.files.changed_here, .files.changed_upstream, [.plan[] | .action]]"'
	expect_status 0
	[ "$output" = '[[".bashrc"],[".vimrc"],["changed_here","update"]]' ] || fail
}
