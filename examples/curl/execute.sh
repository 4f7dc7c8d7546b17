#!/bin/sh
# Runs a WebAssembly module on WasmWiz with curl, sending this script's stdin as the program's.
#
#   export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
#   echo "Ada" | examples/curl/execute.sh src/wasmwiz/examples/echo.wat
#   echo "Ada" | examples/curl/execute.sh --name echo src/wasmwiz/examples/echo.wat
#   examples/curl/execute.sh --file in.txt --collect 'out/*' copy.wasm < /dev/null
#
# Prints the JSON result. With --name NAME it stores the module under that name first,
# printing the stored module's JSON to stderr, and runs it by reference. --file PATH
# (repeatable) puts a local file in the run's directory under its base name; --collect
# PATTERN asks for the files the run leaves that match it, returned in the result's
# `files` (content base64). On a refusal (HTTP 4xx/5xx) it prints the problem details to
# stderr and exits 1; `code` in them says what went wrong (see docs/errors.md).
set -eu

usage="usage: execute.sh [--name NAME] [--file PATH]... [--collect PATTERN] MODULE < input"
url="${WASMWIZ_URL:-http://127.0.0.1:8080}"
key="${WASMWIZ_API_KEY:?set WASMWIZ_API_KEY to your API key (ww_...)}"
name=""
# --file and --collect become curl options gathered at the end of "$@", after this
# script's own arguments: a POSIX shell has no other list that keeps spaces in file names.
left=$# # how many of "$@" are still this script's own
while [ "$left" -gt 1 ]; do
    case "$1" in
    --name) name="$2" ;;
    # files=@PATH sends the file under its base name, its path in the run's directory
    # (files=@PATH;filename=data/in.csv would put it at data/in.csv).
    --file) set -- "$@" --form "files=@$2" ;;
    # collect is a JSON array of glob patterns (a pattern with " or \ needs escaping).
    --collect) set -- "$@" --form-string "collect=[\"$2\"]" ;;
    *) break ;;
    esac
    shift 2
    left=$((left - 2))
done
if [ "$left" -ne 1 ]; then
    echo "$usage" >&2
    exit 2
fi
module="$1"
shift

body="$(mktemp)"
trap 'rm -f "$body"' EXIT

# post PATH FORM-OPTIONS...: POSTs a form to the API and leaves the answer in $body; on a
# refusal it prints the problem details and exits 1.
post() {
    path="$1"
    shift
    status="$(curl --silent --show-error --output "$body" --write-out '%{http_code}' \
        --header "Authorization: Bearer $key" "$@" "$url$path")"
    case "$status" in
    2??) ;;
    *)
        echo "WasmWiz refused the request (HTTP $status):" >&2
        cat "$body" >&2
        echo >&2
        exit 1
        ;;
    esac
}

# -F wasm=@FILE uploads the module; -F input=@- uploads our stdin as the program's stdin.
# args and env are JSON strings, e.g. -F 'args=["-n","3"]' -F 'env={"LANG":"C"}'.
# "$@" is the run's files and collect, if any.
if [ -z "$name" ]; then
    post /api/v1/execute --form "wasm=@$module" --form "input=@-" "$@"
else
    # Store the module once under a name (201; 200 if these bytes were stored already),
    # then run it by that name: module=NAME (or its id, sha256:...) instead of wasm=@FILE.
    # --form-string sends the value as it is, where -F would read @FILE or <FILE.
    post /api/v1/modules --form "wasm=@$module" --form-string "name=$name"
    cat "$body" >&2
    echo >&2
    post /api/v1/execute --form-string "module=$name" --form "input=@-" "$@"
fi
cat "$body"
echo
