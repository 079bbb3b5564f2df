// Drives a blockserve server with the official OpenAI Node SDK and prints what it got back as one JSON
// line; NodeSdkTest compares it with the server's own answers. Arguments: baseURL model forcedTokenId.
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const [baseURL, model, forced] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
const sdkVersion = JSON.parse(readFileSync(new URL('./node_modules/openai/package.json', import.meta.url))).version;
const out = { sdkVersion };
const messages = [{ role: 'user', content: 'What is a paged KV cache?' }];

out.models = (await client.models.list()).data.map((m) => m.id);

const chat = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 2 });
out.chat = chat.choices[0].message.content;
out.chatFinish = chat.choices[0].finish_reason;
out.chatLogprobs = chat.choices[0].logprobs.content.map((t) => [t.token, t.logprob, t.top_logprobs.length]);
out.chatUsage = chat.usage;

let streamed = '';
const stream = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
for await (const chunk of stream) {
  if (chunk.choices.length > 0) {
    streamed += chunk.choices[0].delta.content ?? '';
  } else {
    out.streamUsage = chunk.usage;
  }
}
out.streamed = streamed;

const response = await client.responses.create({ model, input: messages[0].content, max_output_tokens: 12, temperature: 0 });
out.responseText = response.output_text;
out.responseStatus = response.status;
let responseStreamed = '';
const events = [];
const responseStream = await client.responses.create({ model, input: messages[0].content, max_output_tokens: 12,
  temperature: 0, stream: true });
for await (const event of responseStream) {
  events.push(event.type);
  if (event.type === 'response.output_text.delta') {
    responseStreamed += event.delta;
  }
}
out.responseStreamed = responseStreamed;
out.responseEvents = [events[0], events[events.length - 1]];

const biased = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0,
  logit_bias: { [forced]: 100 } });
out.biased = biased.choices[0].text;

const echoed = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 1, temperature: 0,
  logprobs: 1, echo: true });
out.echo = { text: echoed.choices[0].text, tokens: echoed.choices[0].logprobs.tokens,
  tokenLogprobs: echoed.choices[0].logprobs.token_logprobs };

try {
  await client.completions.create({ model, prompt: 'x', max_tokens: 5, temperature: -1 });
  out.error = 'no error';
} catch (e) {
  out.error = { badRequest: e instanceof OpenAI.BadRequestError, status: e.status, param: e.param ?? null,
    type: e.type ?? null };
}
console.log(JSON.stringify(out));
