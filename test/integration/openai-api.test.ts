import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { request } from 'undici';
import { hashKey } from '../../src/admission/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('OpenAI-compatible API', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let client: OpenAI;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: {
          'mock-small': { provider: 'mock' },
          'mock-medium': { provider: 'mock' },
          flaky: { provider: 'mock', name: 'mock?fault=503&times=1' },
        },
        tiers: { small: ['mock-small'], medium: ['mock-medium'], large: ['mock-medium'] },
        llm: { retry: { base_delay_ms: 1, max_delay_ms: 5 } },
        agents: {
          assistant: { tools: ['calculator'], system_prompt: 'Use the calculator.' },
        },
      },
    });
    client = new OpenAI({ baseURL: `${agentd.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  describe('gateway mode', () => {
    it('answers a non-streaming completion with the provider reply and usage', async () => {
      const completion = await client.chat.completions.create({
        model: 'mock-small',
        messages: [{ role: 'user', content: 'hello' }],
      });
      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.choices[0]!.finish_reason, 'stop');
      assert.equal(completion.choices[0]!.message.role, 'assistant');
      assert.match(completion.choices[0]!.message.content ?? '', /^agentd runs agent/);
      assert.ok(completion.usage !== undefined && completion.usage.total_tokens > 0);
      assert.equal(
        completion.usage.total_tokens,
        completion.usage.prompt_tokens + completion.usage.completion_tokens,
      );
    });

    it('resolves a tier name to its models', async () => {
      const completion = await client.chat.completions.create({
        model: 'small',
        messages: [{ role: 'user', content: 'hello' }],
      });
      assert.equal(completion.model, 'mock-small');
    });

    it('streams chunks in order and ends with usage when stream_options.include_usage is set', async () => {
      const stream = await client.chat.completions.create({
        model: 'mock/mock?tokens=5',
        messages: [{ role: 'user', content: 'hello' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const pieces: string[] = [];
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | null | undefined;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.object, 'chat.completion.chunk');
        const choice = chunk.choices[0];
        if (choice?.delta.content) pieces.push(choice.delta.content);
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(pieces.join(''), 'agentd runs agent tasks with.');
      assert.equal(finish, 'stop');
      assert.ok(usage !== undefined && usage !== null && usage.completion_tokens > 0);
      assert.ok(chunks >= 7, 'role chunk, five tokens, finish, usage');
    });

    it('omits the usage chunk when the client did not ask for it', async () => {
      const stream = await client.chat.completions.create({
        model: 'mock/mock?tokens=3',
        messages: [{ role: 'user', content: 'hello' }],
        stream: true,
      });
      for await (const chunk of stream) {
        assert.equal(chunk.usage ?? null, null);
        assert.equal(chunk.choices.length, 1, 'every chunk has a choice');
      }
    });

    it('passes tool calls through, streamed and not', async () => {
      const tools: OpenAI.ChatCompletionTool[] = [
        {
          type: 'function',
          function: {
            name: 'calculator',
            description: 'Evaluates arithmetic',
            parameters: { type: 'object', properties: { expression: { type: 'string' } } },
          },
        },
      ];
      const completion = await client.chat.completions.create({
        model: 'mock-small',
        messages: [{ role: 'user', content: 'What is 6*7?' }],
        tools,
      });
      const choice = completion.choices[0]!;
      assert.equal(choice.finish_reason, 'tool_calls');
      const toolCall = choice.message.tool_calls?.[0];
      assert.ok(toolCall !== undefined && toolCall.type === 'function');
      assert.equal(toolCall.function.name, 'calculator');
      assert.deepEqual(JSON.parse(toolCall.function.arguments), { expression: '6*7' });

      const stream = client.chat.completions.stream({
        model: 'mock-small',
        messages: [{ role: 'user', content: 'What is 6*7?' }],
        tools,
      });
      const final = await stream.finalChatCompletion();
      const streamed = final.choices[0]!;
      assert.equal(streamed.finish_reason, 'tool_calls');
      const streamedCall = streamed.message.tool_calls?.[0];
      assert.ok(streamedCall !== undefined && streamedCall.type === 'function');
      assert.equal(streamedCall.function.name, 'calculator');
      assert.deepEqual(JSON.parse(streamedCall.function.arguments), { expression: '6*7' });

      const answer = await client.chat.completions.create({
        model: 'mock-small',
        messages: [
          { role: 'user', content: 'What is 6*7?' },
          { role: 'assistant', content: null, tool_calls: [toolCall] },
          { role: 'tool', tool_call_id: toolCall.id, content: '{"result":42}' },
        ],
        tools,
      });
      assert.equal(answer.choices[0]!.message.content, 'The result is 42.');
    });

    it('retries a failed provider attempt invisibly', async () => {
      const completion = await client.chat.completions.create({
        model: 'flaky',
        messages: [{ role: 'user', content: 'hello' }],
        stream: false,
      });
      assert.equal(completion.choices[0]!.finish_reason, 'stop');
      assert.equal(mock.requests('mock?fault=503&times=1'), 2);
    });

    it('replays a deterministic request from the response cache, in either wire format', async () => {
      const body = {
        model: 'mock/mock?tokens=4&id=cache',
        messages: [{ role: 'user' as const, content: 'cache me' }],
        temperature: 0,
      };
      const first = await client.chat.completions.create(body);
      const second = await client.chat.completions.create(body).withResponse();
      assert.equal(second.response.headers.get('x-agentd-cache'), 'hit');
      assert.equal(second.data.choices[0]!.message.content, first.choices[0]!.message.content);
      assert.equal(mock.requests('mock?tokens=4&id=cache'), 1);
      const stream = await client.chat.completions.create({ ...body, stream: true });
      const pieces: string[] = [];
      for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta.content ?? '');
      assert.equal(pieces.join(''), first.choices[0]!.message.content);
      assert.equal(mock.requests('mock?tokens=4&id=cache'), 1, 'still one provider call');
    });

    it('forwards embeddings', async () => {
      const result = await client.embeddings.create({ model: 'mock-small', input: ['one', 'two'] });
      assert.equal(result.data.length, 2);
      assert.ok(result.data[0]!.embedding.length > 0);
    });
  });

  describe('agent mode', () => {
    it('runs the agent loop and returns its answer with the tool activity', async () => {
      const response = await call(agentd.url, 'POST', '/v1/chat/completions', {
        model: 'agent:assistant',
        messages: [{ role: 'user', content: 'What is 17*23?' }],
      });
      assert.equal(response.status, 200);
      const completion = response.body;
      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.model, 'agent:assistant');
      assert.equal(completion.choices[0].message.content, 'The result is 391.');
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.equal(completion.agentd.tool_calls.length, 1);
      assert.equal(completion.agentd.tool_calls[0].name, 'calculator');
      assert.equal(completion.agentd.tool_calls[0].ok, true);
      assert.equal(completion.agentd.iterations, 2);
      assert.equal(typeof completion.agentd.task_id, 'string');
    });

    it('streams the answer through the openai client, with tool activity as comments', async () => {
      const stream = await client.chat.completions.create({
        model: 'agent:assistant',
        messages: [{ role: 'user', content: 'What is 2+3?' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const pieces: string[] = [];
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        pieces.push(chunk.choices[0]?.delta.content ?? '');
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(pieces.join(''), 'The result is 5.');
      assert.ok(usage !== undefined && usage !== null && usage.total_tokens > 0);

      const raw = await request(`${agentd.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'agent:assistant',
          messages: [{ role: 'user', content: 'What is 2+3?' }],
          stream: true,
        }),
      });
      const text = await raw.body.text();
      assert.match(text, /^: tool\.started \{.*"name":"calculator"/m);
      assert.match(text, /^: tool\.completed \{.*"ok":true/m);
      assert.ok(text.endsWith('data: [DONE]\n\n'));
    });

    it('keeps a conversation in the session named by user', async () => {
      const user = `u${Date.now()}`;
      await client.chat.completions.create({
        model: 'agent:assistant',
        messages: [{ role: 'user', content: 'What is 1+1?' }],
        user,
      });
      const second = await client.chat.completions
        .create({ model: 'agent:assistant', messages: [{ role: 'user', content: 'hello' }], user })
        .withResponse();
      const session = second.response.headers.get('x-agentd-session-id');
      assert.equal(session, `user:${user}`);
      const messages = await call(agentd.url, 'GET', `/v1/sessions/${encodeURIComponent(session!)}/messages`);
      assert.equal(messages.status, 200);
      const roles = messages.body.data.map((m: { role: string }) => m.role);
      assert.equal(roles.filter((r: string) => r === 'user').length, 2, 'both turns in one session');
    });

    it('answers an unknown agent as an unknown model (404)', async () => {
      await assert.rejects(
        client.chat.completions.create({
          model: 'agent:nobody',
          messages: [{ role: 'user', content: 'hi' }],
        }),
        (err: unknown) => {
          assert.ok(err instanceof APIError);
          assert.equal(err.status, 404);
          assert.equal(err.param, 'model');
          return true;
        },
      );
    });
  });

  describe('errors and cancellation', () => {
    it('reports an unknown model as 404 model_not_found in OpenAI shape', async () => {
      await assert.rejects(
        client.chat.completions.create({
          model: 'no-such-model',
          messages: [{ role: 'user', content: 'hi' }],
        }),
        (err: unknown) => {
          assert.ok(err instanceof APIError);
          assert.equal(err.status, 404);
          assert.equal(err.code, 'model_not_found');
          assert.equal(err.type, 'not_found_error');
          return true;
        },
      );
    });

    it('names the invalid field with a 400', async () => {
      const response = await call(agentd.url, 'POST', '/v1/chat/completions', {
        model: 'mock-small',
        messages: [],
      });
      assert.equal(response.status, 400);
      assert.equal(response.body.error.type, 'invalid_request_error');
      assert.match(response.body.error.message, /messages/);
    });

    it('maps a provider rate limit to 429 with Retry-After', async () => {
      await assert.rejects(
        client.chat.completions.create({
          model: 'mock/mock?fault=429&retry_after=1',
          messages: [{ role: 'user', content: 'hi' }],
        }),
        (err: unknown) => {
          assert.ok(err instanceof APIError);
          assert.equal(err.status, 429);
          assert.equal(err.type, 'rate_limit_error');
          assert.equal(err.headers?.get('retry-after'), '1');
          return true;
        },
      );
    });

    it('ends a stream that breaks after output with an error the client raises', async () => {
      const stream = await client.chat.completions.create({
        model: 'mock/mock?fault=cut&after=2&tokens=10',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      await assert.rejects(
        (async () => {
          for await (const _chunk of stream) {
            // Reading until the error.
          }
        })(),
        (err: unknown) => {
          assert.ok(err instanceof APIError);
          assert.match(err.message, /stream/);
          return true;
        },
      );
    });

    it('aborting a stream cancels the provider call', async () => {
      const controller = new AbortController();
      const model = 'mock/mock?tokens=200&interval_ms=20&id=abort';
      const stream = await client.chat.completions.create(
        { model, messages: [{ role: 'user', content: 'hi' }], stream: true },
        { signal: controller.signal },
      );
      const abandoned = mock.abandonedReplies;
      let received = 0;
      for await (const _chunk of stream) {
        if (++received === 3) {
          controller.abort();
          break;
        }
      }
      for (let i = 0; i < 100 && mock.abandonedReplies === abandoned; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(mock.abandonedReplies, abandoned + 1, 'agentd hung up on the provider');
      assert.equal(mock.requests(model.slice('mock/'.length)), 1, 'and did not retry');
    });

    it('requires an API key when keys exist, answering in OpenAI shape', async () => {
      const secured = await startAgentd({
        config: {
          providers: { mock: { type: 'mock', base_url: mock.url } },
          models: { 'mock-small': { provider: 'mock' } },
          tiers: { small: ['mock-small'], medium: ['mock-small'], large: ['mock-small'] },
          auth: { keys: [{ id: 'k1', hash: hashKey('sk-openai-test'), tenant: 't1' }] },
          agents: { assistant: { tools: ['calculator'] } },
        },
      });
      try {
        const anonymous = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
        await assert.rejects(
          anonymous.chat.completions.create({
            model: 'mock-small',
            messages: [{ role: 'user', content: 'hi' }],
          }),
          (err: unknown) => {
            assert.ok(err instanceof APIError);
            assert.equal(err.status, 401);
            assert.equal(err.type, 'authentication_error');
            assert.equal(err.code, 'invalid_api_key');
            return true;
          },
        );
        const authed = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'sk-openai-test', maxRetries: 0 });
        const models = await authed.models.list();
        const ids = models.data.map((m) => m.id);
        assert.ok(ids.includes('mock-small') && ids.includes('small') && ids.includes('agent:assistant'));
        const completion = await authed.chat.completions.create({
          model: 'mock-small',
          messages: [{ role: 'user', content: 'hi' }],
        });
        assert.equal(completion.choices[0]!.finish_reason, 'stop');
      } finally {
        await secured.close();
      }
    });
  });
});
