// Receives WasmWiz's webhook deliveries, checks each one's signature, and prints the event.
//
//   cd examples/node/webhooks && npm install      # the standardwebhooks package
//   WASMWIZ_WEBHOOK_SECRET=whsec_... node receiver.mjs --port 8000
//
// Deliveries follow Standard Webhooks: the webhook-id, webhook-timestamp and
// webhook-signature headers sign the exact body, and `standardwebhooks` checks them. One
// that does not verify (another secret, a changed body, a timestamp over five minutes
// off) is refused with 400; one that does is answered 204, and printed once per
// webhook-id (the service retries a delivery it got no 2xx for).
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";

const MAX_BODY = 16 * 1024 * 1024; // a job's event carries its result
const secret = process.env.WASMWIZ_WEBHOOK_SECRET;
const { values: options } = parseArgs({
  options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string", default: "8000" } },
});
if (!secret) {
  console.error("set WASMWIZ_WEBHOOK_SECRET to the endpoint's secret (whsec_...)");
  process.exit(2);
}
const webhook = new Webhook(secret);
const seen = new Set();

function describe(event, messageId) {
  let line = `${event.type} (${messageId})`;
  const data = event.data ?? {};
  if (event.type.startsWith("job.")) {
    line += `: job ${data.id} ${data.state}`;
    if (data.result) line += `, status: ${data.result.status}, exit code: ${data.result.exit_code}`;
    if (data.error) line += `, error: ${data.error.code}: ${data.error.detail}`;
  } else {
    line += `: ${JSON.stringify(data)}`;
  }
  return line;
}

const server = createServer(async (request, response) => {
  if (request.method !== "POST") {
    response.writeHead(405).end();
    return;
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY) {
      response.writeHead(413).end();
      return;
    }
    chunks.push(chunk);
  }
  // The exact text received: a body parsed and serialized again would not match.
  const body = Buffer.concat(chunks).toString("utf8");
  let event;
  try {
    event = webhook.verify(body, request.headers);
  } catch (error) {
    console.error(`refused a delivery: ${error.message}`);
    response.writeHead(400).end();
    return;
  }
  const messageId = request.headers["webhook-id"];
  if (!seen.has(messageId)) {
    seen.add(messageId);
    console.log(describe(event, messageId));
  }
  response.writeHead(204).end();
});

server.listen(Number(options.port), options.host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}/`);
});
