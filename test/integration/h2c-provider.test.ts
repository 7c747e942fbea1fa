import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import {
  type CallOptions,
  type ChatRequest,
  MockLlmServer,
  OpenAICompatibleProvider,
  type ToolSpec,
} from '../../src/llm/index.js';
import { call, startAgentd } from '../helpers/agentd.js';

const CALCULATOR: ToolSpec = {
  type: 'function',
  function: {
    name: 'calculator',
    description: 'Evaluates arithmetic',
    parameters: { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'] },
  },
};

/** The call the mock asks for when offered the calculator with arithmetic. */
const CALCULATION = 'calculator({"expression":"6*7"})';

/** Generous limits, so that a busy machine does not turn an answer into a timeout. */
const OPTIONS: CallOptions = { timeouts: { headersMs: 10_000, firstTokenMs: 10_000, idleMs: 10_000 } };
/** Short limits for the faults that never answer: the deadline is what they test. */
const SHORT: CallOptions = { timeouts: { headersMs: 300, firstTokenMs: 10_000, idleMs: 300 } };

/** How a call ended, in the terms a caller sees: the answer, or the error's stable code and retryability. */
type Outcome =
  | { ok: true; content: string | null; tools: string[]; finish: string; outputTokens: number }
  | { ok: false; code: string; retryable: boolean; retryAfterMs: number | undefined };

async function outcome(
  provider: OpenAICompatibleProvider,
  chat: ChatRequest,
  options: CallOptions = OPTIONS,
): Promise<Outcome> {
  try {
    const result = await provider.chat(chat, options);
    return {
      ok: true,
      content: result.content,
      tools: result.toolCalls.map((tool) => `${tool.function.name}(${tool.function.arguments})`),
      finish: result.finishReason,
      outputTokens: result.usage.output_tokens,
    };
  } catch (error) {
    const { code, retryable, retryAfterMs } = error as {
      code: string;
      retryable: boolean;
      retryAfterMs: number | undefined;
    };
    return { ok: false, code, retryable, retryAfterMs };
  }
}

const hello = (model: string): ChatRequest => ({ model, messages: [{ role: 'user', content: 'hello' }] });

describe('HTTP/2 with prior knowledge (h2c) to an http:// provider', () => {
  let mock: MockLlmServer;
  let http1: OpenAICompatibleProvider;
  let h2c: OpenAICompatibleProvider;

  before(async () => {
    mock = await MockLlmServer.start();
    http1 = new OpenAICompatibleProvider({ name: 'mock', baseUrl: mock.url });
    h2c = new OpenAICompatibleProvider({ name: 'mock', baseUrl: mock.url, http2: true, connections: 1 });
  });
  after(async () => {
    await http1.close();
    await h2c.close();
    await mock.close();
  });

  it('the mock serves HTTP/1.1 and h2c on one port', async () => {
    const before = mock.http2Requests;
    const res = await request(`${mock.url}/models`);
    assert.equal(res.statusCode, 200);
    assert.equal(((await res.body.json()) as { object: string }).object, 'list');
    await h2c.chat(hello('mock'), OPTIONS);
    await http1.chat(hello('mock'), OPTIONS);
    assert.equal(mock.http2Requests, before + 1, 'only the h2c call arrived over HTTP/2');
  });

  // Each case runs once over HTTP/1.1 and once over h2c; the two must end the same way.
  const cases: { name: string; chat: ChatRequest; options?: CallOptions; tools?: string[] }[] = [
    { name: 'a streamed answer', chat: hello('mock') },
    { name: 'a whole (non-streamed) answer', chat: hello('mock'), options: { ...OPTIONS, stream: false } },
    {
      name: 'a streamed tool call',
      chat: { model: 'mock', messages: [{ role: 'user', content: 'What is 6*7?' }], tools: [CALCULATOR] },
      tools: [CALCULATION],
    },
    {
      name: 'a whole tool call',
      chat: { model: 'mock', messages: [{ role: 'user', content: 'What is 6*7?' }], tools: [CALCULATOR] },
      options: { ...OPTIONS, stream: false },
      tools: [CALCULATION],
    },
    { name: '429 with Retry-After', chat: hello('mock?fault=429&retry_after=2') },
    { name: '503', chat: hello('mock?fault=503') },
    { name: 'context length exceeded', chat: hello('mock?fault=context_length') },
    { name: 'a reset before the headers', chat: hello('mock?fault=reset') },
    { name: 'no headers at all', chat: hello('mock?fault=hang'), options: SHORT },
    { name: 'a stream cut before its finish reason', chat: hello('mock?fault=cut&interval_ms=5') },
    { name: 'a stream reset mid-answer', chat: hello('mock?fault=cut_reset&interval_ms=5') },
    { name: 'a stream gone silent', chat: hello('mock?fault=stall&interval_ms=5'), options: SHORT },
    { name: 'an error event in the stream', chat: hello('mock?fault=error_event&interval_ms=5') },
    { name: 'a malformed chunk', chat: hello('mock?fault=malformed&interval_ms=5') },
    { name: 'a finish reason without [DONE]', chat: hello('mock?fault=no_done_hang') },
  ];
  for (const { name, chat, options, tools } of cases) {
    it(`${name}: ends over h2c as over HTTP/1.1`, async () => {
      // Faults apply per model string: each protocol gets its own string.
      const tagged = (protocol: string): string =>
        `${chat.model}${chat.model.includes('?') ? '&' : '?'}protocol=${protocol}`;
      const viaHttp1 = await outcome(http1, { ...chat, model: tagged('h1') }, options);
      const viaH2c = await outcome(h2c, { ...chat, model: tagged('h2c') }, options);
      assert.deepEqual(viaH2c, viaHttp1);
      if (tools !== undefined) assert.deepEqual(viaH2c.ok && viaH2c.tools, tools);
    });
  }

  it('a reset of one stream leaves the other streams of its connection intact', async () => {
    const slow = 'mock?interval_ms=20&tokens=5';
    const [broken, ...others] = await Promise.all([
      outcome(h2c, hello('mock?fault=cut_reset&interval_ms=20&id=one')),
      ...Array.from({ length: 5 }, () => outcome(h2c, hello(slow))),
    ]);
    assert.equal(broken?.ok, false);
    for (const other of others) assert.equal(other.ok, true, JSON.stringify(other));
  });

  it("once the server's SETTINGS are known, calls beyond its streams per connection wait for a free stream", async () => {
    const narrow = await MockLlmServer.start({ http2MaxConcurrentStreams: 3 });
    const provider = new OpenAICompatibleProvider({
      name: 'narrow',
      baseUrl: narrow.url,
      http2: true,
      connections: 1,
    });
    try {
      // Streams opened in the first round trip, before the server's SETTINGS arrive, may be
      // refused (REFUSED_STREAM: not processed, retryable); one call first opens the connection.
      assert.equal((await outcome(provider, hello('mock'))).ok, true);
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, () => outcome(provider, hello('mock?interval_ms=20&tokens=4'))),
      );
      for (const each of outcomes) assert.equal(each.ok, true, JSON.stringify(each));
      assert.equal(narrow.http2Requests, 13);
      assert.ok(narrow.peakStreamsPerConnection > 1, 'calls shared the connection');
      assert.ok(narrow.peakStreamsPerConnection <= 3, `peak ${narrow.peakStreamsPerConnection} streams`);
    } finally {
      await provider.close();
      await narrow.close();
    }
  });

  it('max_concurrent_streams caps the streams agentd opens per connection; the rest queue', async () => {
    const own = await MockLlmServer.start();
    const capped = new OpenAICompatibleProvider({
      name: 'capped',
      baseUrl: own.url,
      http2: true,
      connections: 2,
      maxConcurrentStreams: 2,
    });
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () => outcome(capped, hello('mock?interval_ms=20&tokens=4'))),
      );
      for (const each of outcomes) assert.equal(each.ok, true, JSON.stringify(each));
      assert.equal(own.http2Requests, 10);
      assert.ok(own.peakStreamsPerConnection <= 2, `peak ${own.peakStreamsPerConnection} streams`);
    } finally {
      await capped.close();
      await own.close();
    }
  });

  it('agentd runs tasks over h2c when `http2: true` names an http:// base_url', async () => {
    const own = await MockLlmServer.start();
    const agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: own.url, http2: true, connections: 1 } },
        models: { m: { provider: 'mock', name: 'mock' } },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
      },
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: 'What is 6*7?' }),
        ),
      );
      for (const res of results) assert.equal(res.body.result, 'The result is 42.');
      assert.equal(own.http2Requests, 20, 'both model calls of every task went over h2c');
    } finally {
      await agentd.close();
      await own.close();
    }
  });
});
