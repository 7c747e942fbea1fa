import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startAgentd, type TestAgentd } from '../helpers/agentd.js';

/** Frames the provider streams: 32 MiB of text in 1 KiB pieces, far more than any buffer on the way. */
const FRAMES = 32 * 1024;
const TEXT = 'x'.repeat(1024);
const frame = (i: number): string =>
  `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"big","choices":[{"index":0,"delta":{"content":"${i === 0 ? 'start' : TEXT}"},"finish_reason":null}]}\n\n`;
const ENDING =
  'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"big","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' +
  'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"big","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n' +
  'data: [DONE]\n\n';
/** agentd's own queue for one slow client may not exceed this (one flush, one provider read, the socket's high-water mark). */
const BOUND = 512 * 1024;

/** An OpenAI-compatible provider that streams FRAMES and honours back-pressure, counting what it could send. */
class StreamingProvider {
  readonly server: Server;
  sent = 0;
  waiting = false;
  /** Set when agentd closed the stream before its end. */
  abandoned = false;

  constructor() {
    this.server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.once('close', () => {
          if (!res.writableFinished) this.abandoned = true;
        });
        this.#pump(res, 0);
      });
    });
  }

  #pump(res: ServerResponse, from: number): void {
    for (let i = from; i < FRAMES; i++) {
      if (res.destroyed) return;
      this.sent++;
      if (!res.write(frame(i))) {
        this.waiting = true;
        res.once('drain', () => {
          this.waiting = false;
          this.#pump(res, i + 1);
        });
        return;
      }
    }
    res.end(ENDING);
  }
}

/** Opens a raw connection that sends a streamed completion request and reads nothing. */
async function slowClient(base: string): Promise<Socket> {
  const url = new URL(base);
  const client = connect(Number(url.port), url.hostname);
  await new Promise((resolve) => client.once('connect', resolve));
  client.pause();
  const body = JSON.stringify({
    model: 'big',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'go' }],
  });
  client.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return client;
}

/** Starts a provider on a free port; its base URL. */
async function listen(provider: StreamingProvider): Promise<string> {
  await new Promise<void>((resolve) => provider.server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(provider.server.address() as AddressInfo).port}/v1`;
}

/** Resolves on the next turn of the event loop after a short pause. */
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

describe('gateway back-pressure', () => {
  let provider: StreamingProvider;
  let agentd: TestAgentd;
  const serverSockets: Socket[] = [];

  before(async () => {
    provider = new StreamingProvider();
    const baseUrl = await listen(provider);
    agentd = await startAgentd({
      config: {
        providers: { up: { type: 'openai', base_url: baseUrl } },
        models: { big: { provider: 'up' } },
        tiers: { small: ['big'], medium: ['big'], large: ['big'] },
      },
    });
    agentd.app.server.on('connection', (socket: Socket) => serverSockets.push(socket));
  });
  after(async () => {
    await agentd.close();
    provider.server.closeAllConnections();
    await new Promise((resolve) => provider.server.close(resolve));
  });

  it('stops reading the provider while the client does not read, with bounded buffering, then delivers everything', async () => {
    const client = await slowClient(agentd.url);
    let queuedMax = 0;
    const sample = (): void => {
      for (const socket of serverSockets) queuedMax = Math.max(queuedMax, socket.writableLength);
    };
    // Wait until the provider is blocked and makes no progress over ten samples in a row (or
    // has sent everything, which is the failure this test looks for).
    let still = 0;
    let last = -1;
    while (still < 10 && provider.sent < FRAMES) {
      await tick();
      sample();
      still = provider.waiting && provider.sent === last ? still + 1 : 0;
      last = provider.sent;
    }
    assert.ok(provider.sent < FRAMES, `the provider was stopped (sent ${provider.sent} of ${FRAMES} frames)`);
    assert.ok(queuedMax <= BOUND, `agentd queued at most ${queuedMax} bytes for the slow client`);

    // The client reads: the rest flows, still bounded, and the stream is complete.
    // The last characters of the previous read, too short to hold a whole match, so none is counted twice.
    let tail = '';
    let frames = 0;
    let ended = false;
    client.setEncoding('utf8');
    const done = new Promise<void>((resolve) => {
      client.on('data', (text: string) => {
        sample();
        const seen = tail + text;
        frames += seen.split('data: {').length - 1;
        ended ||= seen.includes('[DONE]');
        tail = seen.slice(-6);
        if (ended) resolve();
      });
    });
    client.resume();
    await done;
    client.destroy();
    assert.equal(provider.sent, FRAMES);
    assert.equal(frames, FRAMES + 2, 'every content frame, the finish frame and the usage frame');
    assert.ok(queuedMax <= BOUND, `agentd queued at most ${queuedMax} bytes for the slow client`);
  });
});

describe('gateway back-pressure: a client that never reads', () => {
  let provider: StreamingProvider;
  let agentd: TestAgentd;

  before(async () => {
    provider = new StreamingProvider();
    const baseUrl = await listen(provider);
    agentd = await startAgentd({
      config: {
        providers: { up: { type: 'openai', base_url: baseUrl, timeouts: { idle_ms: 300 } } },
        models: { big: { provider: 'up' } },
        tiers: { small: ['big'], medium: ['big'], large: ['big'] },
      },
    });
  });
  after(async () => {
    await agentd.close();
    provider.server.closeAllConnections();
    await new Promise((resolve) => provider.server.close(resolve));
  });

  it('is given up on after the idle timeout: the provider stream is cancelled, not held open', async () => {
    const client = await slowClient(agentd.url);
    let tries = 0;
    while (!provider.abandoned && tries++ < 400) await tick();
    client.destroy();
    assert.ok(provider.abandoned, 'agentd closed the provider stream');
    assert.ok(provider.sent < FRAMES, `the provider did not stream everything (sent ${provider.sent})`);
  });
});
