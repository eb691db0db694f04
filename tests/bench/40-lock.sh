# 40-lock.sh - the local lock against flock(1) on the same machine.
#
# acquire + release is two heimdal-lock runs, as a script uses them (under
# sh -c, whose start counts against heimdal); run -- true holds the lock
# around one command, exactly like flock FILE true.

lock_home="$BENCH_DIR/lock-home"
mkdir -p "$lock_home"
chmod 700 "$lock_home"
: >"$BENCH_DIR/flock-file"
export HEIMDAL_HOME="$lock_home"
# Warm up: this machine's id and the guard file exist, as after a first use.
heimdal-lock run --op bench -- true

bench lock-acquire-release 3x \
	"sh -c 'heimdal-lock acquire -c --op bench | heimdal-lock release'" \
	"flock FILE true" "flock $BENCH_DIR/flock-file true"
bench lock-run-true 2x \
	"heimdal-lock run --op bench -- true" \
	"flock FILE true" "flock $BENCH_DIR/flock-file true"
