// The openai npm SDK's `embeddings.create` against the box, for tests/responses/test_npm_sdk.py.
// Reads BOX_BASE_URL, BOX_API_KEY and BOX_MODEL from the environment; asks for two inputs with
// the SDK's default encoding (it asks base64 and decodes the float32 bytes); prints one JSON
// line: {"vectors", "usage", "model"}. The SDK is found through NODE_PATH.
"use strict";
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({
    baseURL: process.env.BOX_BASE_URL,
    apiKey: process.env.BOX_API_KEY,
    maxRetries: 0,
    timeout: 30000,
  });
  const answer = await client.embeddings.create({ model: process.env.BOX_MODEL, input: ["a", "b"] });
  return { vectors: answer.data.map((d) => d.embedding), usage: answer.usage, model: answer.model };
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(String(error && error.stack ? error.stack : error));
    process.exit(1);
  },
);
