#!/usr/bin/env bats
# heimdal-drift (plumbing) and `heimdal state check-drift` (porcelain).

load helper

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
}

sha() { printf %s "$1" | sha256sum | cut -c1-64; }
md5() { printf %s "$1" | md5sum | cut -c1-32; }

# with_sums JSON: a V2 state on stdout whose checksums are JSON.
with_sums() {
	v2_state | jq --argjson c "$1" '.checksums = $c'
}

# A local state with those checksums, for the porcelain.
local_state() {
	with_sums "$1" >"$HEIMDAL_HOME/state.json"
	chmod 600 "$HEIMDAL_HOME/state.json"
}

@test "heimdal-drift --help prints usage on stdout; a bad flag exits 2 with nothing on stdout" {
	run --separate-stderr heimdal-drift --help
	expect_status 0
	[[ "$output" == usage:\ heimdal-drift* ]] || fail "no usage"
	run --separate-stderr heimdal-drift --bogus
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[[ "$stderr" == *"usage: heimdal-drift"* ]] || fail "no usage on stderr"
	run --separate-stderr heimdal-drift --jobs 0 </dev/null
	expect_status 2
	[[ "$stderr" == *"--jobs"* ]] || fail "flag not named"
}

@test "the spec's MD5 checksums: clean files exit 0, a modified one exits 1 with both digests" {
	printf hello >"$HOME/.bashrc"
	printf test >"$HOME/.vimrc"
	with_sums '{".bashrc":"5d41402abc4b2a76b9719d911017c592",".vimrc":"098f6bcd4621d373cade4e832627b4f6"}' >s.json
	run --separate-stderr heimdal-drift <s.json
	expect_status 0
	expect_json '.checked == 2 and .modified == [] and .missing == [] and .errors == []'
	expect_json 'has("clean") | not'
	printf 'hello world' >"$HOME/.bashrc"
	run --separate-stderr heimdal-drift <s.json
	expect_status 1
	expect_json '.modified == [{"path": ".bashrc", "expected": "5d41402abc4b2a76b9719d911017c592", "actual": "5eb63bbbe01eeed093cb22bb8f5acdc3"}]'
}

@test "SHA-256: modified, missing and (--all) clean, each sorted by path" {
	mkdir -p "$HOME/.config/git"
	printf a >"$HOME/.zshrc"
	printf b >"$HOME/.config/git/config"
	printf changed >"$HOME/.aliases"
	printf changed >"$HOME/.profile"
	sums=$(jq -n --arg a "$(sha a)" --arg b "$(sha b)" --arg c "$(sha c)" \
		'{".zshrc": $a, ".config/git/config": $b, ".profile": $c, ".aliases": $c, ".gone": $a, ".also-gone": $a}')
	with_sums "$sums" >s.json
	run --separate-stderr heimdal-drift --all --root "$HOME" s.json
	expect_status 1
	expect_json '.root == env.HOME and .checked == 6'
	expect_json '[.modified[].path] == [".aliases", ".profile"]'
	expect_json '.modified[0].actual == "'"$(sha changed)"'"'
	expect_json '.missing == [".also-gone", ".gone"]'
	expect_json '.clean == [".config/git/config", ".zshrc"]'
}

@test "a checksum that is neither SHA-256 nor MD5 exits 2 naming the key; bad JSON names stdin" {
	with_sums '{".bashrc":"5D41402ABC4B2A76B9719D911017C592"}' >s.json
	run --separate-stderr heimdal-drift <s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[[ "$stderr" == *'.checksums[".bashrc"]'* ]] || fail "key not named"
	run --separate-stderr heimdal-drift <<<'{"checksums": {'
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[[ "$stderr" == *"<stdin>"* ]] || fail "source not named"
	run --separate-stderr heimdal-drift <<<'{"checksums": []}'
	expect_status 2
	[[ "$stderr" == *".checksums: expected an object"* ]] || fail "field not named"
}

@test "hostile keys are error entries and are never opened (a FIFO would block); links inside are followed" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside/dir" "$HOME/sub"
	mkfifo "$outside/fifo" "$outside/dir/f"
	ln -s "$outside/fifo" "$HOME/.evil"
	ln -s "$outside/dir" "$HOME/.linkdir"
	printf hello >"$HOME/.real"
	ln -s .real "$HOME/.inside"
	mkdir -p "$HOME/.dotfiles/sub"
	printf hello >"$HOME/.dotfiles/sub/vimrc"
	ln -s "$HOME/.dotfiles/sub/vimrc" "$HOME/.absolute"
	ln -s "$HOME/.dotfiles/sub" "$HOME/.absdir"
	rel=$(realpath --relative-to="$HOME/sub" "$outside/fifo")
	sums=$(jq -n --arg h "$(md5 hello)" --arg f "$outside/fifo" --arg r "sub/$rel" \
		'{"../../etc/passwd": $h, ($f): $h, ($r): $h, ".evil": $h, ".linkdir/f": $h, ".inside": $h,
		  ".absolute": $h, ".absdir/vimrc": $h}')
	with_sums "$sums" >s.json
	run --separate-stderr timeout 20 heimdal-drift --all s.json
	expect_status 1
	expect_json '.clean == [".absdir/vimrc", ".absolute", ".inside"] and .modified == [] and .missing == []'
	expect_json '(.errors | length) == 5'
	expect_json '.errors[] | select(.path == "../../etc/passwd") | .error == "'"'..'"' component"'
	expect_json '.errors[] | select(.path | startswith("/")) | .error == "absolute path"'
	expect_json '.errors[] | select(.path == ".evil") | .error | test("outside the root")'
	expect_json '.errors[] | select(.path == ".linkdir/f") | .error | test("outside the root")'
	# Reported the same way when the cache is warm.
	run --separate-stderr timeout 20 heimdal-drift --all s.json
	expect_status 1
	expect_json '(.errors | length) == 5 and .clean == [".absdir/vimrc", ".absolute", ".inside"]'
}

@test "the stat cache: a second run hits, is keyed by the state, and is private" {
	for i in 1 2 3; do printf "file $i" >"$HOME/.f$i"; done
	sums=$(jq -n --arg a "$(sha 'file 1')" --arg b "$(sha 'file 2')" --arg c "$(sha 'file 3')" \
		'{".f1": $a, ".f2": $b, ".f3": $c}')
	with_sums "$sums" >s.json
	touch -d '-1 hour' "$HOME"/.f* s.json
	run --separate-stderr heimdal-drift --verbose s.json
	expect_status 0
	[[ "$stderr" == *"cache: 0 hits"* ]] || fail "cold run hit"
	[ "$(stat -c %a "$HEIMDAL_HOME/drift.cache")" = 600 ] || fail "cache mode"
	# The same state file, unchanged: not even read.
	run --separate-stderr heimdal-drift --verbose s.json
	expect_status 0
	[[ "$stderr" == *"state already seen, not read"* ]] || fail "state re-read"
	[[ "$stderr" == *"cache: 3 hits, 0 racy"* ]] || fail "warm run missed"
	# Written again with the same content (a new file): read, known by its digest.
	cp s.json s.new && mv s.new s.json && touch -d '-1 hour' s.json
	run --separate-stderr heimdal-drift --verbose s.json
	expect_status 0
	[[ "$stderr" == *"state already seen, not parsed"* ]] || fail "state re-parsed"
	run --separate-stderr heimdal-drift --verbose s.json
	[[ "$stderr" == *"state already seen, not read"* ]] || fail "the new file not remembered"
	# stdin redirected from the file is the file: not read either.
	run --separate-stderr heimdal-drift --verbose - <s.json
	expect_status 0
	[[ "$stderr" == *"state already seen, not read"* ]] || fail "stdin from the file"
	# Through a pipe it is always read, and the file stays known.
	run --separate-stderr bash -c 'cat s.json | heimdal-drift --verbose -'
	expect_status 0
	[[ "$stderr" == *"state already seen, not parsed"* ]] || fail "stdin"
	run --separate-stderr heimdal-drift --verbose s.json
	[[ "$stderr" == *"state already seen, not read"* ]] || fail "the file forgotten after stdin"
	# A different state is parsed, yet the stat entries still serve.
	with_sums "$(jq '.".f1" = "'"$(sha other)"'"' <<<"$sums")" >t.json
	run --separate-stderr heimdal-drift --verbose t.json
	expect_status 1
	[[ "$stderr" != *"not parsed"* ]] || fail "new state not parsed"
	[[ "$stderr" == *"cache: 3 hits"* ]] || fail "stat entries not used"
	expect_json '.modified[0].path == ".f1"'
}

@test "the stat cache never hides a change: new size, same size with mtime restored, deletion" {
	printf one >"$HOME/.a"
	printf two >"$HOME/.b"
	printf six >"$HOME/.c"
	touch -d '-1 hour' "$HOME/.a" "$HOME/.b" "$HOME/.c"
	with_sums "$(jq -n --arg a "$(sha one)" --arg b "$(sha two)" --arg c "$(sha six)" '{".a": $a, ".b": $b, ".c": $c}')" >s.json
	run --separate-stderr heimdal-drift s.json
	expect_status 0
	printf 'one more' >"$HOME/.a"
	# Same size, and the old mtime put back: only ctime (and the inode) can tell.
	touch -r "$HOME/.b" ref
	printf TWO >"$HOME/.b"
	touch -r ref "$HOME/.b"
	rm "$HOME/.c"
	run --separate-stderr heimdal-drift s.json
	expect_status 1
	expect_json '[.modified[].path] == [".a", ".b"] and .missing == [".c"]'
	expect_json '.modified[1].actual == "'"$(sha TWO)"'"'
}

@test "git's racy rule: a file whose mtime is not older than the cache is re-hashed every run" {
	printf old >"$HOME/.racy"
	printf fine >"$HOME/.settled"
	touch -d '-1 hour' "$HOME/.settled"
	touch -d '+1 hour' "$HOME/.racy"
	with_sums "$(jq -n --arg a "$(sha old)" --arg b "$(sha fine)" '{".racy": $a, ".settled": $b}')" >s.json
	run --separate-stderr heimdal-drift s.json
	expect_status 0
	run --separate-stderr heimdal-drift -v s.json
	expect_status 0
	[[ "$stderr" == *"cache: 1 hits, 1 racy re-hashed"* ]] || fail "racy entry trusted"
	# A change the stat data cannot show (same size, same mtime) is still caught.
	printf new >"$HOME/.racy"
	touch -d '+1 hour' "$HOME/.racy"
	run --separate-stderr heimdal-drift s.json
	expect_status 1
	expect_json '.modified[0].path == ".racy" and .modified[0].actual == "'"$(sha new)"'"'
}

@test "--no-cache neither reads nor writes the cache; a corrupt cache is ignored" {
	printf x >"$HOME/.x"
	with_sums "{\".x\":\"$(sha x)\"}" >s.json
	run --separate-stderr heimdal-drift --no-cache s.json
	expect_status 0
	[ ! -e "$HEIMDAL_HOME/drift.cache" ] || fail "cache written"
	printf 'heimdal-drift-cache 2\ngarbage\n' >"$HEIMDAL_HOME/drift.cache"
	run --separate-stderr heimdal-drift s.json
	expect_status 0
	expect_json '.checked == 1 and .modified == []'
	head -1 "$HEIMDAL_HOME/drift.cache" | grep -qx 'heimdal-drift-cache 2'
	grep -qx end "$HEIMDAL_HOME/drift.cache" || fail "cache not rewritten"
}

@test "many files hashed in parallel give the same report as one thread" {
	mkdir -p "$HOME/d"
	sums='{}'
	for i in $(seq 1 300); do printf "content $i" >"$HOME/d/f$i"; done
	sums=$(for i in $(seq 1 300); do printf '%s %s\n' "d/f$i" "$(sha "content $i")"; done |
		jq -Rn '[inputs | split(" ") | {(.[0]): .[1]}] | add')
	printf changed >"$HOME/d/f150"
	rm "$HOME/d/f7"
	with_sums "$sums" >s.json
	run --separate-stderr heimdal-drift --no-cache --jobs 1 --all -c s.json
	expect_status 1
	one=$output
	run --separate-stderr heimdal-drift --no-cache --jobs 4 --all -c s.json
	expect_status 1
	[ "$output" = "$one" ] || fail "reports differ"
	expect_json '.checked == 300 and [.modified[].path] == ["d/f150"] and .missing == ["d/f7"] and (.clean | length) == 298'
}

@test "keys sorted, unsorted or given twice: one report, cold, warm and from another order" {
	mkdir -p "$HOME/d"
	for i in $(seq 1 700); do printf "content $i" >"$HOME/d/f$i"; done
	touch -d '-1 hour' "$HOME"/d/*
	(cd "$HOME" && sha256sum d/*) | LC_ALL=C sort -k2 | awk '{ printf "\"%s\":\"%s\"\n", $2, $1 }' >m
	bad=$(sha nothing)
	# Sorted for two chunks and more, then d/f1 out of order at the end; d/f5
	# given again (last, wrong); d/f9 given twice (the last one right).
	{
		grep -v '"d/f1"' m | sed "s|^\"d/f9\":.*|\"d/f9\":\"$bad\"\n&|"
		grep '"d/f1"' m
		echo "\"d/f5\":\"$bad\""
	} | paste -sd, | sed 's/^/{"version":2,"checksums":{/; s/$/}}/' >s.json
	jq -e '(.checksums | length) == 700' s.json >/dev/null || fail "test state"
	run --separate-stderr heimdal-drift --no-cache --jobs 1 --all -c s.json
	expect_status 1
	one=$output
	expect_json '.checked == 700 and [.modified[].path] == ["d/f5"] and .missing == [] and (.clean | length) == 699'
	expect_json '.clean | . == sort'
	run --separate-stderr heimdal-drift --jobs 2 --all -c -v s.json
	expect_status 1
	[ "$output" = "$one" ] || fail "cold run differs"
	[[ "$stderr" == *"cache: 0 hits"* ]] || fail "$stderr"
	run --separate-stderr heimdal-drift --jobs 2 --all -c -v s.json
	expect_status 1
	[ "$output" = "$one" ] || fail "warm run differs"
	[[ "$stderr" == *"state already seen"*"cache: 700 hits"* ]] || fail "$stderr"
	# The same checksums in reverse order: parsed, every stat entry found.
	tac m | paste -sd, | sed 's/^/{"checksums":{/; s/$/}}/' >r.json
	run --separate-stderr heimdal-drift --jobs 2 --all -c -v r.json
	expect_status 0
	[[ "$stderr" == *"cache: 700 hits"* ]] || fail "$stderr"
	expect_json '.checked == 700 and .modified == [] and (.clean | . == sort)'
}

@test "a damaged line in a cache whose state was seen: the state is read after all" {
	mkdir -p "$HOME/d"
	for i in $(seq 1 600); do printf "content $i" >"$HOME/d/f$i"; done
	touch -d '-1 hour' "$HOME"/d/*
	(cd "$HOME" && sha256sum d/*) | awk '{ printf "\"%s\":\"%s\"\n", $2, $1 }' |
		paste -sd, | sed 's/^/{"checksums":{/; s/$/}}/' >s.json
	printf edited >"$HOME/d/f300"
	run --separate-stderr heimdal-drift --jobs 2 -c s.json
	expect_status 1
	one=$output
	sed -i '400s/^[0-9]* /x /' "$HEIMDAL_HOME/drift.cache"
	run --separate-stderr heimdal-drift --jobs 2 -c -v s.json
	expect_status 1
	[ "$output" = "$one" ] || fail "report differs"
	[[ "$stderr" == *"unreadable cache, ignored"*"cache: 0 hits"* ]] || fail "$stderr"
	expect_json '.checked == 600 and [.modified[].path] == ["d/f300"]'
	run --separate-stderr heimdal-drift --jobs 2 -c -v s.json
	[[ "$stderr" == *"state already seen"*"cache: 600 hits"* ]] || fail "cache not rewritten: $stderr"
}

@test "in a pipeline: heimdal-migrate | heimdal-drift, and jq over the report" {
	run --separate-stderr bash -c 'heimdal-migrate "$1" | heimdal-drift -c' _ "$FIXTURES/v1.json"
	expect_status 0
	expect_json '.checked == 0'
	printf edited >"$HOME/.bashrc"
	with_sums "{\".bashrc\":\"$(md5 hello)\"}" >s.json
	run --separate-stderr bash -c 'heimdal-drift <s.json | jq -r ".modified[].path"'
	expect_status 0
	[ "$output" = ".bashrc" ] || fail "pipeline output"
}

@test "check-drift prints the spec's report and the tips, and exits 1" {
	printf test >"$HOME/.bashrc"
	printf 'hello world' >"$HOME/.vimrc"
	local_state '{".bashrc":"5d41402abc4b2a76b9719d911017c592",".vimrc":"7d793037a0760186574b0282f2f435e7"}'
	run --separate-stderr heimdal state check-drift
	expect_status 1
	expected="Checking for file drift...

Modified Files (2):
  * .bashrc
    Expected: 5d41402abc4b2a76b9719d911017c592
    Actual:   098f6bcd4621d373cade4e832627b4f6

  * .vimrc
    Expected: 7d793037a0760186574b0282f2f435e7
    Actual:   5eb63bbbe01eeed093cb22bb8f5acdc3

Tip: Run 'heimdal apply --force' to restore tracked files (a backup is kept)
     or 'heimdal commit' to accept the changes"
	[ "$output" = "$expected" ] || fail "text differs"
}

@test "check-drift in UTF-8 uses the spec's bullet; missing files get their own section" {
	printf test >"$HOME/.bashrc"
	local_state '{".bashrc":"5d41402abc4b2a76b9719d911017c592",".gone":"098f6bcd4621d373cade4e832627b4f6"}'
	LC_ALL=C.UTF-8 run --separate-stderr heimdal state check-drift
	expect_status 1
	[[ "$output" == *"  • .bashrc"* ]] || fail "no bullet"
	[[ "$output" == *"Missing Files (1):
  • .gone"* ]] || fail "no missing section"
}

@test "check-drift: no drift exits 0; --all lists clean files; --json is the tool's report" {
	printf hello >"$HOME/.bashrc"
	local_state '{".bashrc":"5d41402abc4b2a76b9719d911017c592"}'
	run --separate-stderr heimdal state check-drift
	expect_status 0
	[ "${lines[0]}" = "Checking for file drift..." ] || fail "header"
	[[ "$output" == *"No drift: all 1 tracked files match their checksums"* ]] || fail "summary"
	[[ "$output" != *"Tip:"* ]] || fail "tip without drift"
	run --separate-stderr heimdal state check-drift --all
	expect_status 0
	[[ "$output" == *"Clean Files (1):
  * .bashrc"* ]] || fail "clean list"
	run --separate-stderr heimdal state check-drift --json --all
	expect_status 0
	expect_json '.checked == 1 and .clean == [".bashrc"] and .root == env.HOME'
	run --separate-stderr heimdal state check-drift --frobnicate
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
}

@test "escaped keys and duplicate keys read as libjq reads them" {
	printf hello >"$HOME/.bashrc"
	# "\u002e" is ".": the same key, spelled with an escape.
	printf '{"checksums": {"\\u002ebashrc": "%s"}}' "$(md5 hello)" >s.json
	run --separate-stderr heimdal-drift --all --no-cache s.json
	expect_status 0
	expect_json '.clean == [".bashrc"]'
	# A duplicate key: the last one wins, as in jq.
	printf '{"checksums": {".bashrc": "%s", ".bashrc": "%s"}}' "$(md5 other)" "$(md5 hello)" >d.json
	run --separate-stderr heimdal-drift --all --no-cache d.json
	expect_status 0
	expect_json '.checked == 1 and .clean == [".bashrc"]'
}
