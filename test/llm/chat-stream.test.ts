import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createParser } from 'eventsource-parser';
import { ChatStreamAssembler } from '../../src/llm/chat-stream.js';
import type { ChatMessage } from '../../src/llm/index.js';

const messages: ChatMessage[] = [{ role: 'user', content: 'hello' }];

function chunk(delta: Record<string, unknown>, finish: string | null = null): string {
  return `data: ${JSON.stringify({ model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

describe('ChatStreamAssembler', () => {
  it('joins text deltas, even when SSE frames are split at any byte', () => {
    const stream = `${chunk({ role: 'assistant', content: 'Hel' })}${chunk({ content: 'lo, ' })}${chunk({ content: '世界' })}${chunk({}, 'stop')}data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}\n\ndata: [DONE]\n\n`;
    for (const size of [1, 2, 7, 64, stream.length]) {
      const pieces: string[] = [];
      const assembler = new ChatStreamAssembler({ onText: (t) => pieces.push(t) }, performance.now());
      for (let i = 0; i < stream.length; i += size) assembler.feed(stream.slice(i, i + size));
      const result = assembler.result(messages);
      assert.equal(result.content, 'Hello, 世界');
      assert.deepEqual(pieces, ['Hel', 'lo, ', '世界']);
      assert.equal(result.finishReason, 'stop');
      assert.deepEqual(result.usage, { input_tokens: 5, output_tokens: 3 });
      assert.equal(result.usageEstimated, false);
      assert.equal(result.providerModel, 'm');
      assert.ok(assembler.done && assembler.complete);
    }
  });

  it('assembles tool calls whose arguments arrive in pieces', () => {
    const assembler = new ChatStreamAssembler(undefined, performance.now());
    assembler.feed(
      chunk({
        tool_calls: [
          { index: 0, id: 'call_1', type: 'function', function: { name: 'calculator', arguments: '' } },
        ],
      }),
    );
    assembler.feed(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"expres' } }] }));
    assembler.feed(
      chunk({
        tool_calls: [{ index: 1, id: 'call_2', function: { name: 'current_time', arguments: '{}' } }],
      }),
    );
    assembler.feed(chunk({ tool_calls: [{ index: 0, function: { arguments: 'sion":"1+1"}' } }] }));
    assembler.feed(chunk({}, 'tool_calls'));
    const result = assembler.result(messages);
    assert.equal(result.content, null);
    assert.equal(result.finishReason, 'tool_calls');
    assert.deepEqual(
      result.toolCalls.map((c) => [c.id, c.function.name, c.function.arguments]),
      [
        ['call_1', 'calculator', '{"expression":"1+1"}'],
        ['call_2', 'current_time', '{}'],
      ],
    );
  });

  it('skips a malformed chunk and keeps the rest of the answer', () => {
    const assembler = new ChatStreamAssembler(undefined, performance.now());
    assembler.feed(chunk({ content: 'a' }));
    assembler.feed('data: {"choices":[{"delta":{"content":\n\n');
    assembler.feed(chunk({ content: 'b' }, 'stop'));
    const result = assembler.result(messages);
    assert.equal(result.content, 'ab');
    assert.equal(result.skippedChunks, 1);
    assert.equal(assembler.failure, undefined);
  });

  it('turns a flood of malformed chunks into a protocol error', () => {
    const assembler = new ChatStreamAssembler(undefined, performance.now());
    for (let i = 0; i < 20; i++) assembler.feed('data: not json\n\n');
    assert.equal((assembler.failure as { code?: string })?.code, 'AGENTD_PROVIDER_PROTOCOL');
  });

  it('reports an error payload in the stream as a failure', () => {
    const assembler = new ChatStreamAssembler(undefined, performance.now());
    assembler.feed('data: {"error":{"message":"overloaded","type":"server_error"}}\n\n');
    assert.match(String(assembler.failure?.message), /overloaded/);
  });

  it('is finished but not complete after a finish reason without usage, and estimates usage', () => {
    const assembler = new ChatStreamAssembler(undefined, performance.now());
    assembler.feed(chunk({ content: 'twelve chars' }, 'stop'));
    assert.ok(assembler.finished);
    assert.ok(!assembler.complete);
    const result = assembler.result(messages);
    assert.equal(result.usageEstimated, true);
    assert.ok(result.usage.output_tokens > 0 && result.usage.input_tokens > 0);
  });

  it('reads every event exactly as eventsource-parser does, whatever the framing', () => {
    // Plain `data:` events take a fast path; comments, event/id fields, multi-line data, CRLF and
    // lone CR line ends, a BOM and pieces split anywhere must still follow the SSE rules.
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = [
      (i: number) => chunk({ content: `w${i} "q"\\ é ` }),
      () => ': keep-alive\n\n',
      (i: number) => `event: message\nid: ${i}\n${chunk({ content: `e${i}` })}`,
      (i: number) => `data: {"choices":[{"delta":{"content":"m${i}"},\ndata: "finish_reason":null}]}\n\n`,
      (i: number) => chunk({ content: `crlf${i}` }).replace(/\n/g, '\r\n'),
      (i: number) => chunk({ content: `cr${i}` }).replace(/\n/g, '\r'),
      (i: number) => `data:${JSON.stringify({ choices: [{ delta: { content: `nospace${i}` } }] })}\n\n`,
      () => 'retry: 100\n\n',
    ];
    for (let run = 0; run < 300; run++) {
      let stream = run % 5 === 0 ? '\uFEFF' : '';
      stream += chunk({ role: 'assistant', content: 'first' });
      const count = 1 + random(30);
      for (let i = 0; i < count; i++) {
        const kind = random(3) === 0 ? random(pieces.length) : 0;
        stream += pieces[kind]!(i);
      }
      stream += `${chunk({}, 'stop')}data: [DONE]\n\n`;
      const expected: string[] = [];
      const reference = createParser({
        onEvent: (event) => {
          if (event.data === '[DONE]') return;
          const text = (JSON.parse(event.data) as { choices: { delta: { content?: string } }[] }).choices[0]
            ?.delta.content;
          if (text) expected.push(text);
        },
      });
      reference.feed(stream);
      const got: string[] = [];
      const assembler = new ChatStreamAssembler({ onText: (t) => got.push(t) }, performance.now());
      // Whole events per piece (as HTTP/2 frames carry them) and arbitrary splits.
      for (let i = 0; i < stream.length; ) {
        const size = run % 2 === 0 ? 1 + random(300) : 1 + random(8);
        assembler.feed(stream.slice(i, i + size));
        i += size;
      }
      assert.deepEqual(got, expected, `run ${run}`);
      assert.equal(assembler.result(messages).content, expected.length === 0 ? null : expected.join(''));
      assert.ok(assembler.done);
    }
  });
});
