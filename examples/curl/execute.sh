#!/bin/sh
# Runs a WebAssembly module on WasmWiz with curl, sending this script's stdin as the program's.
#
#   export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
#   echo "Ada" | examples/curl/execute.sh src/wasmwiz/examples/echo.wat
#   echo "Ada" | examples/curl/execute.sh --name echo src/wasmwiz/examples/echo.wat
#
# Prints the JSON result. With --name NAME it stores the module under that name first,
# printing the stored module's JSON to stderr, and runs it by reference. On a refusal
# (HTTP 4xx/5xx) it prints the problem details to stderr and exits 1; `code` in them says
# what went wrong (see docs/errors.md).
set -eu

usage="usage: execute.sh [--name NAME] MODULE.wasm|MODULE.wat < input"
url="${WASMWIZ_URL:-http://127.0.0.1:8080}"
key="${WASMWIZ_API_KEY:?set WASMWIZ_API_KEY to your API key (ww_...)}"
name=""
if [ "${1:-}" = --name ]; then
    name="${2:?$usage}"
    shift 2
fi
module="${1:?$usage}"

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
if [ -z "$name" ]; then
    post /api/v1/execute --form "wasm=@$module" --form "input=@-"
else
    # Store the module once under a name (201; 200 if these bytes were stored already),
    # then run it by that name: module=NAME (or its id, sha256:...) instead of wasm=@FILE.
    # --form-string sends the value as it is, where -F would read @FILE or <FILE.
    post /api/v1/modules --form "wasm=@$module" --form-string "name=$name"
    cat "$body" >&2
    echo >&2
    post /api/v1/execute --form-string "module=$name" --form "input=@-"
fi
cat "$body"
echo
