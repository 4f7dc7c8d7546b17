// Queues a WebAssembly run on WasmWiz as a job, waits for it, and prints its result.
// Node.js 18.3+, no packages (built-in fetch, FormData, Blob).
//
//   export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
//   echo "Ada" | node examples/node/submit_job.mjs src/wasmwiz/examples/echo.wat
//
// POST /api/v1/jobs answers 202 at once with the job; GET /api/v1/jobs/{id} says where it
// is. We poll, waiting longer each time, until it is finished, failed, cancelled or
// expired. --callback-url URL asks the service to POST the job there as well
// (webhooks/receiver.mjs is a receiver); --timeout S stops waiting, not the job.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { buffer } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const url = process.env.WASMWIZ_URL ?? "http://127.0.0.1:8080";
const key = process.env.WASMWIZ_API_KEY;
const { values: options, positionals } = parseArgs({
  options: { "callback-url": { type: "string" }, timeout: { type: "string", default: "600" } },
  allowPositionals: true,
});
const modulePath = positionals[0];
if (!key || !modulePath) {
  console.error("usage: WASMWIZ_API_KEY=ww_... node submit_job.mjs [--callback-url URL] [--timeout S] MODULE < input");
  process.exit(2);
}

// Sends a request; a refusal (RFC 9457 problem details, a stable `code`) ends the program.
async function call(path, init = {}) {
  let response;
  try {
    response = await fetch(`${url}${path}`, { ...init, headers: { Authorization: `Bearer ${key}` } });
  } catch (error) {
    console.error(`Could not reach ${url}: ${error.cause?.message ?? error.message}`);
    process.exit(2);
  }
  if (!response.ok) {
    const problem = await response.json();
    console.error(`WasmWiz refused the request: ${problem.code} (HTTP ${response.status}): ${problem.detail}`);
    process.exit(1);
  }
  return response.json();
}

const form = new FormData();
form.append("wasm", new Blob([await readFile(modulePath)]), basename(modulePath));
form.append("input", new Blob([await buffer(process.stdin)]), "input");
if (options["callback-url"]) form.append("callback_url", options["callback-url"]);
// base64 keeps the program's output byte for byte.
let job = await call("/api/v1/jobs?encoding=base64", { method: "POST", body: form });
console.error(`job ${job.id} submitted`);

const deadline = Date.now() + Number(options.timeout) * 1000;
let delay = 250;
while (["queued", "running"].includes(job.state)) {
  if (Date.now() >= deadline) {
    console.error(`job ${job.id} is still ${job.state}: it goes on; GET /api/v1/jobs/${job.id} later`);
    process.exit(3);
  }
  await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
  delay = Math.min(delay * 1.5, 5000);
  job = await call(`/api/v1/jobs/${job.id}?encoding=base64`);
}
if (!job.result) {
  console.error(`job ${job.id} ${job.state}${job.error ? `: ${job.error.code}: ${job.error.detail}` : ""}`);
  process.exit(1);
}
// A trap or a timeout is not a refusal: it is the run's status.
const result = job.result;
console.log(`status: ${result.status}, exit code: ${result.exit_code}`);
process.stdout.write(Buffer.from(result.output, "base64"));
process.stderr.write(Buffer.from(result.stderr, "base64"));
