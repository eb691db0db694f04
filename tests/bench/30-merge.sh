# 30-merge.sh - conflicts and merge of two diverged states with 100k checksums
# each (about 10 MB each), against jq's object merge of the same pair.
#
# The pair: one lineage, 40 shared history entries then 10 on each side, 100k
# shared paths of which each side changed a random tenth, and 1k paths only
# on each side.  Without a base every differing file is a conflict, so the
# merge settles some 19k file conflicts on the way.

d="$BENCH_DIR/merge"
mkdir -p "$d"
python3 - "${here:-$(dirname "$0")}/../fixtures/v2-spec.json" "$d" 100000 <<'EOF'
import json, random, sys
base = json.load(open(sys.argv[1]))
out, n = sys.argv[2], int(sys.argv[3])
rnd = random.Random(1)

def entry(s, m):
    return {"operation": "apply", "timestamp": "2024-01-15T%02d:%02d:00Z" % (s // 60 % 24, s % 60),
            "machine_id": m, "user": "john", "hostname": m, "serial": s}

paths = [".config/app%03d/f%06d.conf" % (i % 997, i) for i in range(n)]
shared = {p: "%064x" % rnd.getrandbits(256) for p in paths}
common = [entry(s, "machine-0") for s in range(1, 41)]
for side, name in ((0, "local"), (1, "remote")):
    st = json.loads(json.dumps(base))
    st["history"] = common + [entry(s, "machine-%d" % (side + 1)) for s in range(41, 51)]
    st["lineage"].update(serial=50, parent_serial=49, machines=["machine-0", "machine-%d" % (side + 1)])
    r = random.Random(side + 10)
    cs = dict(shared)
    for p in r.sample(paths, n // 10):
        cs[p] = "%064x" % r.getrandbits(256)
    for i in range(n // 100):
        cs[".side%d/new%06d" % (side, i)] = "%064x" % r.getrandbits(256)
    st["checksums"] = dict(sorted(cs.items()))
    json.dump(st, open("%s/%s.json" % (out, name), "w"), indent=2)
EOF
l="$d/local.json"
r="$d/remote.json"

# The merge detects every conflict on its way (serial, profile, path, files).
bench "merge 100k (heimdal-merge -c)" 0.8 \
	"heimdal-merge -c --strategy merge --local $l --remote $r" \
	"jq -s '.[0] * .[1]'" "jq -s '.[0] * .[1]' $l $r"
bench "merge 100k + report" 0.8 \
	"heimdal-merge -c --strategy merge --local $l --remote $r --report $d/report.json" \
	"jq -s '.[0] * .[1]'" "jq -s '.[0] * .[1]' $l $r"
bench "merge 100k vs jq -c" 0.8 \
	"heimdal-merge -c --strategy merge --local $l --remote $r" \
	"jq -c -s '.[0] * .[1]'" "jq -c -s '.[0] * .[1]' $l $r"
# heimdal-conflicts exits 1 (conflicts found): -i lets hyperfine time it anyway.
bench "conflicts 100k (heimdal-conflicts)" 0.8 \
	"heimdal-conflicts -c --local $l --remote $r" \
	"jq -c -s '.[0] * .[1]'" "jq -c -s '.[0] * .[1]' $l $r" -i
