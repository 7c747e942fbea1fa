import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createSecureServer,
  Http2ServerRequest,
  type Http2ServerResponse,
  constants as http2,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { estimateTokens } from '../../lib/tokens.js';
import type { ChatMessage, ToolSpec } from '../types.js';
import { decideReply, type MockReply, type ScriptedReply } from './brain.js';
import { createCleartextServer, http2SessionOptions } from './cleartext.js';
import { mockEmbedding, toBase64 } from './embeddings.js';
import { DEFAULT_SCENARIO, parseScenario, type Scenario, type ScenarioDefaults } from './scenario.js';

export interface MockLlmOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  defaults?: Partial<ScenarioDefaults>;
  /**
   * Serve HTTPS with HTTP/2 (and HTTP/1.1) using this key and certificate: clients that speak
   * HTTP/2 multiplex many streams over few connections, as real providers allow. Without it the
   * port serves cleartext HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
   */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** HTTP/2 streams a client may open at once on one connection (SETTINGS; default 1,000,000). */
  http2MaxConcurrentStreams?: number;
}

/** What the mock uses of an HTTP/1.1 or HTTP/2 request (the two compat APIs share it). */
interface Request {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: Record<string, string | string[] | undefined>;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** What the mock uses of an HTTP/1.1 or HTTP/2 response. */
interface Response {
  writeHead(status: number, headers?: Record<string, string | number>): unknown;
  setHeader(name: string, value: string): unknown;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  flushHeaders(): void;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  once(event: 'close', listener: () => void): unknown;
  readonly socket: { destroy(): void } | null;
  /** The HTTP/2 stream of the reply (absent over HTTP/1.1). */
  readonly stream?: { close(code: number): void };
}

interface Listener {
  listen(port: number, host: string, done: () => void): unknown;
  address(): AddressInfo | string | null;
  close(done: () => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'connection' | 'secureConnection', listener: (socket: Socket) => void): unknown;
}

interface CompletionBody {
  model?: unknown;
  messages?: unknown;
  tools?: ToolSpec[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
}

const MAX_BODY = 16 * 1024 * 1024;
const MOCK_MODELS = ['mock', 'mock-small', 'mock-medium', 'mock-large'];

/**
 * agentd's offline OpenAI-compatible model server, for demos, tests and benchmarks. Replies are
 * deterministic (see `decideReply`); timing and faults come from the model string (see
 * `parseScenario`) or from defaults given at start.
 */
export class MockLlmServer {
  readonly #server: Listener;
  readonly #scheme: 'http' | 'https';
  readonly #defaults: ScenarioDefaults;
  readonly #counts = new Map<string, number>();
  readonly #scripts = new Map<string, ScriptedReply[]>();
  readonly #scenarios = new Map<string, Scenario>();
  readonly #sockets = new Set<Socket>();
  #url = '';
  /** Chat replies whose client hung up before the reply ended (a cancelled call). */
  abandonedReplies = 0;
  /** Chat requests that arrived over HTTP/2. */
  http2Requests = 0;
  /** The most HTTP/2 chat streams seen open at once on one connection. */
  peakStreamsPerConnection = 0;
  readonly #openStreams = new WeakMap<object, number>();
  /** `traceparent` headers of the latest chat requests that carried one (last 100). */
  readonly traceparents: string[] = [];

  private constructor(defaults: ScenarioDefaults, options: MockLlmOptions) {
    const tls = options.tls;
    const streams = options.http2MaxConcurrentStreams ?? 1_000_000;
    this.#defaults = defaults;
    this.#scheme = tls === undefined ? 'http' : 'https';
    const onHttp2 = (req: Http2ServerRequest, res: Http2ServerResponse): void =>
      this.#handle(req, res as unknown as Response);
    this.#server =
      tls === undefined
        ? createCleartextServer(
            (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res),
            onHttp2,
            streams,
          )
        : createSecureServer({ ...tls, allowHTTP1: true, ...http2SessionOptions(streams) }, onHttp2);
    this.#server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a mock server and resolves once it listens. */
  static async start(options: MockLlmOptions = {}): Promise<MockLlmServer> {
    const mock = new MockLlmServer({ ...DEFAULT_SCENARIO, ...options.defaults }, options);
    await new Promise<void>((resolve, reject) => {
      mock.#server.once('error', reject);
      mock.#server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    const address = mock.#server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    mock.#url = `${mock.#scheme}://${host}:${address.port}/v1`;
    return mock;
  }

  /** Base URL including `/v1`, ready for an OpenAI client's `baseURL`. */
  get url(): string {
    return this.#url;
  }

  /** How many chat requests arrived for this exact model string. */
  requests(model: string): number {
    return this.#counts.get(model) ?? 0;
  }

  /** Queues replies for a model string; each request takes the next one. */
  enqueue(model: string, ...replies: ScriptedReply[]): void {
    const queue = this.#scripts.get(model);
    if (queue === undefined) this.#scripts.set(model, replies);
    else queue.push(...replies);
  }

  /** Forgets request counts and queued replies. */
  reset(): void {
    this.#counts.clear();
    this.#scripts.clear();
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #countStream(req: Http2ServerRequest): void {
    this.http2Requests++;
    const session = req.stream.session;
    if (session === undefined) return;
    const open = (this.#openStreams.get(session) ?? 0) + 1;
    this.#openStreams.set(session, open);
    if (open > this.peakStreamsPerConnection) this.peakStreamsPerConnection = open;
    req.stream.once('close', () => this.#openStreams.set(session, (this.#openStreams.get(session) ?? 1) - 1));
  }

  #handle(req: Request, res: Response): void {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url.endsWith('/chat/completions')) {
      if (req instanceof Http2ServerRequest) this.#countStream(req);
      const traceparent = req.headers.traceparent;
      if (typeof traceparent === 'string') {
        this.traceparents.push(traceparent);
        if (this.traceparents.length > 100) this.traceparents.shift();
      }
      readBody(req, res, (raw) => this.#chat(raw, res));
      return;
    }
    if (req.method === 'POST' && url.endsWith('/embeddings')) {
      readBody(req, res, (raw) => this.#embeddings(raw, res));
      return;
    }
    if (req.method === 'GET' && url.endsWith('/models')) {
      const data = MOCK_MODELS.map((id) => ({ id, object: 'model', created: 0, owned_by: 'agentd-mock' }));
      sendJson(res, 200, { object: 'list', data });
      return;
    }
    if (req.method === 'GET' && url === '/mock/stats') {
      sendJson(res, 200, { requests: Object.fromEntries(this.#counts) });
      return;
    }
    sendError(res, 404, 'not_found', `no route ${req.method} ${url}`);
  }

  /**
   * `POST /v1/embeddings`: `input` is a string or an array of strings; `dimensions` (or
   * `?dims=N` in the model name) sets the size, 384 by default. Faults apply as for chat.
   */
  #embeddings(raw: string, res: Response): void {
    let body: { model?: unknown; input?: unknown; dimensions?: unknown; encoding_format?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      sendError(res, 400, 'invalid_request_error', 'the body is not valid JSON');
      return;
    }
    const model = typeof body.model === 'string' ? body.model : '';
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    if (model === '' || !Array.isArray(inputs) || !inputs.every((item) => typeof item === 'string')) {
      sendError(
        res,
        400,
        'invalid_request_error',
        '`model` (string) and `input` (string or array of strings) are required',
      );
      return;
    }
    const count = (this.#counts.get(model) ?? 0) + 1;
    this.#counts.set(model, count);
    const scenario = this.#scenario(model);
    if (scenario.fault !== undefined && count <= scenario.times) {
      const status = scenario.fault === '429' ? 429 : 500;
      sendError(
        res,
        status,
        status === 429 ? 'rate_limit_exceeded' : 'server_error',
        `mock ${scenario.fault}`,
      );
      return;
    }
    const dimsParam = new URLSearchParams(model.includes('?') ? model.slice(model.indexOf('?') + 1) : '').get(
      'dims',
    );
    const dimensions =
      typeof body.dimensions === 'number' ? body.dimensions : dimsParam !== null ? Number(dimsParam) : 384;
    if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 8192) {
      sendError(res, 400, 'invalid_request_error', '`dimensions` must be an integer from 1 to 8192');
      return;
    }
    const base64 = body.encoding_format === 'base64';
    let tokens = 0;
    const data = (inputs as string[]).map((text, index) => {
      tokens += estimateTokens(text);
      const vector = mockEmbedding(text, dimensions);
      return { object: 'embedding', index, embedding: base64 ? toBase64(vector) : Array.from(vector) };
    });
    sendJson(res, 200, {
      object: 'list',
      data,
      model: scenario.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  #scenario(model: string): Scenario {
    let scenario = this.#scenarios.get(model);
    if (scenario === undefined) {
      scenario = parseScenario(model, this.#defaults);
      if (this.#scenarios.size > 10_000) this.#scenarios.clear();
      this.#scenarios.set(model, scenario);
    }
    return scenario;
  }

  #chat(raw: string, res: Response): void {
    res.once('close', () => {
      if (!res.writableEnded) this.abandonedReplies++;
    });
    let body: CompletionBody;
    try {
      body = JSON.parse(raw) as CompletionBody;
    } catch {
      sendError(res, 400, 'invalid_request_error', 'the body is not valid JSON');
      return;
    }
    if (typeof body.model !== 'string' || !Array.isArray(body.messages)) {
      sendError(res, 400, 'invalid_request_error', '`model` (string) and `messages` (array) are required');
      return;
    }
    const model = body.model;
    const count = (this.#counts.get(model) ?? 0) + 1;
    this.#counts.set(model, count);
    const scenario = this.#scenario(model);
    const fault = scenario.fault !== undefined && count <= scenario.times ? scenario.fault : undefined;
    const queue = this.#scripts.get(model);
    const scripted = queue === undefined || queue.length === 0 ? undefined : queue.shift();
    const exchange = new Exchange(res, body, scenario, fault, scripted);
    // Unreferenced: a reply still waiting out its latency never keeps a closed mock's process alive.
    if (scenario.latencyMs > 0) setTimeout(startExchange, scenario.latencyMs, exchange).unref();
    else exchange.start();
  }
}

function startExchange(exchange: Exchange): void {
  exchange.start();
}

function stepExchange(exchange: Exchange): void {
  exchange.step();
}

/** One chat completion in flight: decides the reply and writes it, streamed or whole. */
class Exchange {
  readonly #res: Response;
  readonly #body: CompletionBody;
  readonly #scenario: Scenario;
  #fault: Scenario['fault'];
  readonly #scripted: ScriptedReply | undefined;
  #reply: MockReply = { tokens: [], toolCalls: [] };
  #prefix = '';
  #next = 0;

  constructor(
    res: Response,
    body: CompletionBody,
    scenario: Scenario,
    fault: Scenario['fault'],
    scripted: ScriptedReply | undefined,
  ) {
    this.#res = res;
    this.#body = body;
    this.#scenario = scenario;
    this.#fault = fault;
    this.#scripted = scripted;
  }

  start(): void {
    const res = this.#res;
    switch (this.#fault) {
      case '429': {
        if (this.#scenario.retryAfterMs !== undefined) {
          res.setHeader('retry-after', String(Math.ceil(this.#scenario.retryAfterMs / 1000)));
          res.setHeader('retry-after-ms', String(this.#scenario.retryAfterMs));
        }
        sendError(res, 429, 'rate_limit_exceeded', 'Rate limit reached for requests (mock)');
        return;
      }
      case '500':
      case '502':
      case '503':
        sendError(res, Number(this.#fault), 'server_error', `The server had an error (mock ${this.#fault})`);
        return;
      case 'reset':
        resetReply(res);
        return;
      case 'hang':
        return;
      case 'context_length':
        sendError(
          res,
          400,
          'context_length_exceeded',
          "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        );
        return;
      case 'content_policy':
        sendError(
          res,
          400,
          'content_policy_violation',
          'Your request was rejected by the safety system (mock).',
        );
        return;
    }
    const messages = this.#body.messages as ChatMessage[];
    this.#reply = decideReply(messages, this.#body.tools, this.#scenario, this.#scripted);
    if (this.#body.stream !== true) {
      this.#sendWhole();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const created = Math.floor(Date.now() / 1000);
    this.#prefix = `data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(this.#scenario.model)},"choices":[`;
    const timed = this.#scenario.ttftMs > 0 || this.#scenario.intervalMs > 0 || this.#fault !== undefined;
    if (!timed) {
      res.end(this.#wholeStream());
      return;
    }
    // Real providers send headers at once and make the first token wait; Node would hold the
    // headers back until the first write.
    res.flushHeaders();
    if (this.#scenario.ttftMs > 0) setTimeout(stepExchange, this.#scenario.ttftMs, this);
    else this.step();
  }

  /** Writes the next token (or the ending) and schedules the one after. */
  step(): void {
    const res = this.#res;
    if (res.destroyed) return;
    const index = this.#next++;
    if (this.#interrupts() && index >= this.#scenario.after && this.#interrupt()) return;
    const tokens = this.#reply.tokens;
    if (index === 0 && this.#reply.toolCalls.length > 0) {
      res.write(this.#toolCallChunks());
    } else if (index < tokens.length) {
      res.write(this.#contentChunk(tokens[index]!, index === 0));
    } else {
      if (!(this.#interrupts() && this.#interrupt())) this.#finish();
      return;
    }
    if (this.#scenario.intervalMs > 0) setTimeout(stepExchange, this.#scenario.intervalMs, this);
    else setImmediate(stepExchange, this);
  }

  /** True while a fault that breaks the stream part-way is pending. */
  #interrupts(): boolean {
    const fault = this.#fault;
    return (
      fault === 'stall' ||
      fault === 'cut' ||
      fault === 'cut_reset' ||
      fault === 'malformed' ||
      fault === 'error_event'
    );
  }

  /** Acts on the pending stream fault; returns true when the stream stops here. */
  #interrupt(): boolean {
    const res = this.#res;
    switch (this.#fault) {
      case 'stall':
        return true;
      case 'cut':
        res.end();
        return true;
      case 'cut_reset':
        resetReply(res);
        return true;
      case 'error_event':
        res.end(
          'data: {"error":{"message":"The server had an error while processing your request (mock)","type":"server_error"}}\n\n',
        );
        return true;
      default:
        // malformed: one broken chunk, then the stream carries on normally.
        res.write('data: {"id":"chatcmpl-mock","choices":[{"delta":{"content":\n\n');
        this.#fault = undefined;
        return false;
    }
  }

  #finish(): void {
    const ending = this.#ending();
    if (this.#fault === 'no_done') this.#res.end(ending);
    else if (this.#fault === 'no_done_hang') this.#res.write(ending);
    else this.#res.end(`${ending}data: [DONE]\n\n`);
  }

  #wholeStream(): string {
    const tokens = this.#reply.tokens;
    let out = this.#reply.toolCalls.length > 0 ? this.#toolCallChunks() : '';
    for (let i = 0; i < tokens.length; i++) out += this.#contentChunk(tokens[i]!, i === 0 && out === '');
    return `${out}${this.#ending()}data: [DONE]\n\n`;
  }

  #contentChunk(token: string, first: boolean): string {
    const role = first ? '"role":"assistant",' : '';
    return `${this.#prefix}{"index":0,"delta":{${role}"content":${JSON.stringify(token)}},"finish_reason":null}]}\n\n`;
  }

  #toolCallChunks(): string {
    let out = '';
    const calls = this.#reply.toolCalls;
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!;
      const head = {
        index: i,
        id: `call_mock_${i}`,
        type: 'function',
        function: { name: call.name, arguments: '' },
      };
      const role = i === 0 ? '"role":"assistant","content":null,' : '';
      out += `${this.#prefix}{"index":0,"delta":{${role}"tool_calls":[${JSON.stringify(head)}]},"finish_reason":null}]}\n\n`;
      // Arguments arrive in two pieces, as real providers split them.
      const half = Math.ceil(call.arguments.length / 2);
      for (const piece of [call.arguments.slice(0, half), call.arguments.slice(half)]) {
        if (piece === '') continue;
        const delta = { index: i, function: { arguments: piece } };
        out += `${this.#prefix}{"index":0,"delta":{"tool_calls":[${JSON.stringify(delta)}]},"finish_reason":null}]}\n\n`;
      }
    }
    return out;
  }

  #ending(): string {
    const reason = this.#reply.toolCalls.length > 0 ? 'tool_calls' : 'stop';
    let out = `${this.#prefix}{"index":0,"delta":{},"finish_reason":"${reason}"}]}\n\n`;
    if (this.#body.stream_options?.include_usage === true) {
      out += `${this.#prefix}],"usage":${JSON.stringify(this.#usage())}}\n\n`;
    }
    return out;
  }

  #usage(): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
    let prompt = 0;
    for (const message of this.#body.messages as ChatMessage[]) prompt += estimateTokens(message.content) + 4;
    let completion = this.#reply.tokens.length;
    for (const call of this.#reply.toolCalls) completion += estimateTokens(call.arguments) + 2;
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  #sendWhole(): void {
    const calls = this.#reply.toolCalls;
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: this.#reply.tokens.length > 0 ? this.#reply.tokens.join('') : null,
    };
    if (calls.length > 0) {
      message.tool_calls = calls.map((call, i) => ({
        id: `call_mock_${i}`,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      }));
    }
    sendJson(this.#res, 200, {
      id: 'chatcmpl-mock',
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: this.#scenario.model,
      choices: [{ index: 0, message, finish_reason: calls.length > 0 ? 'tool_calls' : 'stop' }],
      usage: this.#usage(),
    });
  }
}

/**
 * Breaks the reply as a connection reset does. Over HTTP/2 only this reply's stream is reset
 * (RST_STREAM): the connection carries other replies, which a real provider would not break.
 */
function resetReply(res: Response): void {
  if (res.stream !== undefined) res.stream.close(http2.NGHTTP2_INTERNAL_ERROR);
  else res.socket?.destroy();
}

function readBody(req: Request, res: Response, onBody: (raw: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) sendError(res, 413, 'invalid_request_error', 'request body too large');
    else onBody(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
  });
}

function sendJson(res: Response, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: Response, status: number, code: string, message: string): void {
  const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
  sendJson(res, status, { error: { message, type, param: null, code } });
}
