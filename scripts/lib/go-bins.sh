# shellcheck shell=bash
# What build-kube-bins.sh and build-node-bins.sh share: their common arguments, the Go build
# environment, and the stamps that make a warm run a no-op. Source it after setting
# SCRIPT_NAME (for log lines) and BIN_DIR; a script with arguments of its own defines
# extra_arg ARG, returning non-zero for an argument it does not know.

log() { echo "$SCRIPT_NAME: $*" >&2; }

# parse_common_args ARGS...: --print-dir (print BIN_DIR, build nothing), --force (sets
# force=1), -h/--help (the script's header comment).
parse_common_args() {
    force=0
    local arg
    for arg in "$@"; do
        case "$arg" in
            --print-dir)
                echo "$BIN_DIR"
                exit 0
                ;;
            --force) force=1 ;;
            -h | --help)
                sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
                exit 0
                ;;
            *)
                if ! declare -F extra_arg >/dev/null || ! extra_arg "$arg"; then
                    log "unknown argument: $arg"
                    exit 2
                fi
                ;;
        esac
    done
}

# go_build_env: static pure-Go binaries built with the machine's own Go (a go.mod
# "toolchain" line must never fetch another one); the Go module proxy is the only source.
go_build_env() {
    export CGO_ENABLED=0
    export GOTOOLCHAIN=local
    export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
    command -v go >/dev/null || {
        log "go is not on PATH"
        exit 1
    }
}

# stamp_ok NAME STAMP: true when NAME is built and was built from STAMP (and no --force).
stamp_ok() {
    [[ $force == 0 && -x "$BIN_DIR/$1" && -f "$BIN_DIR/.$1.stamp" ]] &&
        [[ "$(cat "$BIN_DIR/.$1.stamp")" == "$2" ]]
}

write_stamp() { printf '%s\n' "$2" >"$BIN_DIR/.$1.stamp"; }

# go_install NAME PACKAGE VERSION LDFLAGS: `go install PACKAGE@VERSION` into BIN_DIR/NAME,
# for modules without replace directives; GOBIN is a temp dir so the move is atomic and a
# reader never sees a half-written binary. The stamp names the link flags too.
go_install() {
    local name=$1 pkg=$2 version=$3 ldflags=$4
    local stamp="$pkg@$version $ldflags"
    if stamp_ok "$name" "$stamp"; then
        log "$name $version cached"
        return 0
    fi
    log "--- $name $version"
    local start tmp_out
    start=$(date +%s)
    tmp_out=$(mktemp -d "$BIN_DIR/.build.XXXXXX")
    GOBIN="$tmp_out" nice -n 10 go install -trimpath -ldflags "$ldflags" "$pkg@$version"
    mv -f "$tmp_out/$(basename "$pkg")" "$BIN_DIR/$name"
    write_stamp "$name" "$stamp"
    rmdir "$tmp_out"
    log "--- $name $version took $(($(date +%s) - start))s"
}
