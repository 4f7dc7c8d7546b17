// Runs a WebAssembly module on WasmWiz with Node.js 18+ (built-in fetch, FormData, Blob).
//
//   export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
//   echo "Ada" | node examples/node/execute.mjs src/wasmwiz/examples/echo.wat
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { buffer } from "node:stream/consumers";

const url = process.env.WASMWIZ_URL ?? "http://127.0.0.1:8080";
const key = process.env.WASMWIZ_API_KEY;
const modulePath = process.argv[2];
if (!key || !modulePath) {
  console.error("usage: WASMWIZ_API_KEY=ww_... node execute.mjs MODULE < input");
  process.exit(2);
}

const form = new FormData();
form.append("wasm", new Blob([await readFile(modulePath)]), basename(modulePath));
form.append("input", new Blob([await buffer(process.stdin)]), "input");
form.append("args", JSON.stringify([]));

let response;
try {
  response = await fetch(`${url}/api/v1/execute`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}` },
    body: form,
  });
} catch (error) {
  console.error(`Could not reach ${url}: ${error.cause?.message ?? error.message}`);
  process.exit(2);
}

if (!response.ok) {
  // Refusals are RFC 9457 problem details with a stable `code`.
  const problem = await response.json();
  const retry = response.headers.get("Retry-After");
  console.error(
    `WasmWiz refused the request: ${problem.code} (HTTP ${response.status}): ${problem.detail}` +
      (retry ? `; retry after ${retry} s` : ""),
  );
  process.exit(1);
}

// A trap or a timeout is a 200 too: `status` says how the run ended.
const result = await response.json();
process.stdout.write(`status: ${result.status}, exit code: ${result.exit_code}\n`);
process.stdout.write(result.output);
process.stderr.write(result.stderr);
