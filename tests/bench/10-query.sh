# 10-query.sh - heimdal state query against the jq binary on a 1 MB state.
q="$BENCH_DIR/query"
mkdir -p "$q/home/.heimdal"
"$(dirname "${BASH_SOURCE[0]}")/gen-state" 10000 >"$q/home/.heimdal/state.json"
chmod 600 "$q/home/.heimdal/state.json"
export HEIMDAL_HOME="$q/home/.heimdal"
key='.checksums[".config/app7/file9907.conf"]'
bench query-path 0.3 "heimdal state query .lineage.serial" \
	jq "jq .lineage.serial $q/home/.heimdal/state.json"
bench query-path-checksum 0.3 "heimdal state query '$key'" \
	jq "jq '$key' $q/home/.heimdal/state.json"
bench query-filter 1.1 "heimdal state query '.checksums | length'" \
	jq "jq '.checksums | length' $q/home/.heimdal/state.json"
unset HEIMDAL_HOME
