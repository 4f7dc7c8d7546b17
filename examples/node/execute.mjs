// Runs a WebAssembly module on WasmWiz with Node.js 18+ (built-in fetch, FormData, Blob).
//
//   export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
//   echo "Ada" | node examples/node/execute.mjs src/wasmwiz/examples/echo.wat
//
// With --name echo it stores the module under that name first and runs it by reference.
// --file PATH (repeatable) puts a local file in the run's directory under its base name;
// --collect PATTERN brings back the files the run leaves that match it, printed after its
// output.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { buffer } from "node:stream/consumers";
import { parseArgs } from "node:util";

const url = process.env.WASMWIZ_URL ?? "http://127.0.0.1:8080";
const key = process.env.WASMWIZ_API_KEY;
const { values: options, positionals } = parseArgs({
  options: {
    name: { type: "string" },
    file: { type: "string", multiple: true },
    collect: { type: "string" },
  },
  allowPositionals: true,
});
const modulePath = positionals[0];
if (!key || !modulePath) {
  console.error(
    "usage: WASMWIZ_API_KEY=ww_... node execute.mjs [--name NAME] [--file PATH]... " +
      "[--collect PATTERN] MODULE < input",
  );
  process.exit(2);
}

// POSTs a form to the API; a refusal is printed and ends the program.
async function post(path, form) {
  let response;
  try {
    response = await fetch(`${url}${path}`, {
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
  return response.json();
}

const wasm = new Blob([await readFile(modulePath)]);
const form = new FormData();
if (options.name === undefined) {
  form.append("wasm", wasm, basename(modulePath));
} else {
  // Store the module once: 201, or 200 if these bytes were stored already.
  const upload = new FormData();
  upload.append("wasm", wasm, basename(modulePath));
  upload.append("name", options.name);
  const stored = await post("/api/v1/modules", upload);
  console.error(`stored ${stored.id} as ${options.name}`);
  // Then run it by reference: `module` (a name or its id) instead of `wasm`.
  form.append("module", options.name);
}
form.append("input", new Blob([await buffer(process.stdin)]), "input");
form.append("args", JSON.stringify([]));
// One `files` part per file, its filename the file's path in the run's directory.
for (const path of options.file ?? []) {
  form.append("files", new Blob([await readFile(path)]), basename(path));
}
if (options.collect !== undefined) {
  form.append("collect", JSON.stringify([options.collect])); // a JSON array of globs
}

// A trap or a timeout is a 200 too: `status` says how the run ended.
const result = await post("/api/v1/execute", form);
process.stdout.write(`status: ${result.status}, exit code: ${result.exit_code}\n`);
process.stdout.write(result.output);
process.stderr.write(result.stderr);
// Each collected file: its content is always base64. A program that writes them to disk
// must keep every path inside its directory (no absolute path, no `..`).
for (const file of result.files) {
  if (file.content === null) {
    // past the service's cap on collected files
    process.stdout.write(`file: ${file.path} (${file.size} bytes, not sent: over the cap)\n`);
  } else {
    process.stdout.write(`file: ${file.path} (${file.size} bytes)\n`);
    process.stdout.write(Buffer.from(file.content, "base64"));
  }
}
