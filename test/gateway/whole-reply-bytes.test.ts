import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { oneMockModel, startAgentd, type TestAgentd } from '../helpers/agentd.js';

/** A whole completion whose message content is `content` (raw bytes, spliced into the JSON). */
function completion(content: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"raw","choices":[{"index":0,"message":{"role":"assistant","content":"',
    ),
    content,
    Buffer.from(
      '"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"system_fingerprint":"fp"}',
    ),
  ]);
}

/** Replies by the request's first message: each test's content, as the provider's bytes. */
const REPLIES: Record<string, Buffer> = {
  ascii: completion(Buffer.from('plain text')),
  utf8: completion(Buffer.from('héllo wörld 🌍 \\u00e9')),
  'replacement character': completion(Buffer.from('already \uFFFD in the text')),
  'invalid utf-8': completion(Buffer.from([0x61, 0xf0, 0x90, 0x80, 0x62, 0xff, 0x63])),
};

/**
 * A non-streamed gateway reply is forwarded as the provider's bytes, whichever form agentd sends
 * it in (text with the response head, or the bytes as read when they are not valid UTF-8).
 */
describe('a whole gateway reply is the provider body byte for byte', () => {
  let provider: Server;
  let agentd: TestAgentd;

  before(async () => {
    provider = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          messages: { content: string }[];
        };
        const reply = REPLIES[body.messages[0]!.content]!;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length });
        res.end(reply);
      });
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    const { port } = provider.address() as AddressInfo;
    agentd = await startAgentd({ config: oneMockModel(`http://127.0.0.1:${port}/v1`, 'raw') });
  });
  after(async () => {
    await agentd.close();
    await new Promise((resolve) => provider.close(resolve));
  });

  for (const [name, expected] of Object.entries(REPLIES)) {
    for (const via of ['', '?via=fastify']) {
      it(`${name}${via === '' ? '' : ', through Fastify'}`, async () => {
        const response = await request(`${agentd.url}/v1/chat/completions${via}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'raw', messages: [{ role: 'user', content: name }] }),
        });
        const bytes = Buffer.from(await response.body.arrayBuffer());
        assert.equal(response.statusCode, 200);
        assert.equal(response.headers['content-length'], String(expected.length));
        assert.ok(bytes.equals(expected), `${name}: ${bytes.toString('hex')} ≠ ${expected.toString('hex')}`);
      });
    }
  }
});
