// The openai npm SDK's `responses.create` against the box, for tests/responses/test_npm_sdk.py.
// Reads BOX_BASE_URL, BOX_API_KEY, BOX_MODEL and BOX_STREAM ("1": streamed) from the
// environment; prints one JSON line: {"text", "usage", "id", "events"} (events: the types of
// the streamed events in order, empty when not streamed). The SDK is found through NODE_PATH.
"use strict";
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({
    baseURL: process.env.BOX_BASE_URL,
    apiKey: process.env.BOX_API_KEY,
    maxRetries: 0,
    timeout: 30000,
  });
  const request = {
    model: process.env.BOX_MODEL,
    instructions: "Answer briefly.",
    input: "Say hello from npm.",
    max_output_tokens: 64,
  };
  if (process.env.BOX_STREAM !== "1") {
    const response = await client.responses.create(request);
    return { text: response.output_text, usage: response.usage, id: response.id, events: [] };
  }
  const stream = await client.responses.create({ ...request, stream: true });
  const events = [];
  let text = "";
  let completed = null;
  for await (const event of stream) {
    events.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") completed = event.response;
  }
  return { text, usage: completed && completed.usage, id: completed && completed.id, events };
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (error) => {
    process.stderr.write(`${error.constructor.name}: ${error.message}\n`);
    process.exit(1);
  },
);
