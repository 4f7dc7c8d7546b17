#!/bin/sh
# Runs a WebAssembly module on WasmWiz with curl, sending this script's stdin as the program's.
#
#   export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
#   echo "Ada" | examples/curl/execute.sh src/wasmwiz/examples/echo.wat
#
# Prints the JSON result. On a refusal (HTTP 4xx/5xx) it prints the problem details to
# stderr and exits 1; `code` in them says what went wrong (see docs/errors.md).
set -eu

url="${WASMWIZ_URL:-http://127.0.0.1:8080}"
key="${WASMWIZ_API_KEY:?set WASMWIZ_API_KEY to your API key (ww_...)}"
module="${1:?usage: execute.sh MODULE.wasm|MODULE.wat < input}"

body="$(mktemp)"
trap 'rm -f "$body"' EXIT

# -F wasm=@FILE uploads the module; -F input=@- uploads our stdin as the program's stdin.
# args and env are JSON strings, e.g. -F 'args=["-n","3"]' -F 'env={"LANG":"C"}'.
status="$(curl --silent --show-error --output "$body" --write-out '%{http_code}' \
    --header "Authorization: Bearer $key" \
    --form "wasm=@$module" \
    --form "input=@-" \
    "$url/api/v1/execute")"

if [ "$status" != 200 ]; then
    echo "WasmWiz refused the request (HTTP $status):" >&2
    cat "$body" >&2
    echo >&2
    exit 1
fi
cat "$body"
echo
