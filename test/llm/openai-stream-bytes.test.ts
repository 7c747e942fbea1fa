import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type CallOptions, OpenAICompatibleProvider } from '../../src/llm/index.js';

const OPTIONS: CallOptions = { timeouts: { headersMs: 10_000, firstTokenMs: 10_000, idleMs: 10_000 } };

function event(delta: Record<string, unknown>, finish: string | null = null): string {
  return `data: ${JSON.stringify({ model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

/** The reply the server streams for a model, as the byte pieces it writes one by one. */
const REPLIES: Record<string, Buffer[]> = {};

/** A reply cut into pieces at the given byte offsets. */
function cut(text: string, offsets: number[]): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const pieces: Buffer[] = [];
  let from = 0;
  for (const offset of [...offsets, bytes.length]) {
    pieces.push(bytes.subarray(from, offset));
    from = offset;
  }
  return pieces;
}

describe('OpenAI-compatible provider: streamed bytes', () => {
  let server: Server;
  let provider: OpenAICompatibleProvider;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', async () => {
        const { model } = JSON.parse(body) as { model: string };
        res.socket?.setNoDelay(true);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // Pieces written apart arrive as separate chunks.
        for (const piece of REPLIES[model] ?? []) {
          res.write(piece);
          await delay(20);
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    provider = new OpenAICompatibleProvider({ name: 'bytes', baseUrl: `http://127.0.0.1:${port}/v1` });
  });
  after(async () => {
    await provider.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const reply = `${event({ role: 'assistant', content: 'h😀llo, ' })}${event({ content: 'wörld' })}${event({}, 'stop')}data: [DONE]\n\n`;
  const emoji = Buffer.from(reply, 'utf8').indexOf(Buffer.from('😀', 'utf8'));
  const umlaut = Buffer.from(reply, 'utf8').indexOf(Buffer.from('ö', 'utf8'));

  const cases: [string, number[]][] = [
    ['whole', []],
    ['cut between events (every chunk ends in ASCII)', [Buffer.from(event({ content: 'h😀llo, ' })).length]],
    ['cut inside a four-byte character', [emoji + 1, emoji + 2, emoji + 3]],
    ['cut inside a two-byte character, later chunks ASCII-ended', [umlaut + 1]],
    ['cut right after a multi-byte character', [emoji + 4, umlaut + 2]],
  ];
  for (const [name, offsets] of cases) {
    it(`decodes a reply ${name}`, async () => {
      const model = `model-${name}`;
      REPLIES[model] = cut(reply, offsets);
      const result = await provider.chat({ model, messages: [{ role: 'user', content: 'hi' }] }, OPTIONS);
      assert.equal(result.content, 'h😀llo, wörld');
      assert.equal(result.finishReason, 'stop');
    });
  }
});
