import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plainContentDelta } from '../../src/llm/content-delta.js';

const chunk = (content: string, extra = '') =>
  `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",${extra}"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]}`;

describe('plainContentDelta', () => {
  it('reads exactly what JSON.parse reads, for any text', () => {
    const alphabet = [
      'a',
      ' ',
      '"',
      '\\',
      '\n',
      '\t',
      '世',
      '界',
      '😀',
      '\u0001',
      '/',
      '}',
      '{',
      '"}',
      'é',
      '\u2028',
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let n = 0; n < 5000; n++) {
      let text = '';
      const length = Math.floor(random() * 12);
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
      const data = chunk(text, random() < 0.3 ? '"system_fingerprint":"fp",' : '');
      const expected = (JSON.parse(data) as { choices: { delta: { content: string } }[] }).choices[0]!.delta
        .content;
      const fast = plainContentDelta(data);
      if (fast !== undefined) assert.equal(fast, expected, data);
    }
  });

  it('takes the fast path for ordinary text deltas', () => {
    assert.equal(plainContentDelta(chunk('Hello ')), 'Hello ');
    assert.equal(plainContentDelta(chunk('say \\"hi\\"'.replace(/\\/g, ''))), 'say "hi"');
  });

  it('declines anything that is not a plain text delta', () => {
    const finish = '{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}';
    const tools = '{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[]},"finish_reason":null}]}';
    const usage =
      '{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":{"prompt_tokens":1}}';
    const two =
      '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":null}]}';
    const cut = '{"choices":[{"index":0,"delta":{"content":"abc';
    const unclosed = '{"choices":[{"index":0,"delta":{"content":"abc","finish_reason":null}]}';
    const broken = '{"choices":[{"index":0,"delta":{"content":"a\\q"},"finish_reason":null}]}';
    for (const data of [finish, tools, usage, two, cut, unclosed, broken])
      assert.equal(plainContentDelta(data), undefined, data);
  });
});
