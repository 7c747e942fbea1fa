import Type from 'typebox';

/** `server.websocket`: the multiplexed task API at `GET /v1/ws`. */
export const WebSocketSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    ping_interval_ms: Type.Integer({
      minimum: 100,
      default: 30_000,
      description: 'a ping every interval; a client that missed the previous pong is dropped',
    }),
    max_buffered_bytes: Type.Integer({
      minimum: 1024,
      default: 4_194_304,
      description: 'bytes a slow client may fall behind by before it is closed with code 4008',
    }),
    max_message_bytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
    max_subscriptions: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'tasks one connection may follow at once',
    }),
  },
  { additionalProperties: false, default: {} },
);

/** `server.grpc`: the gRPC AgentService (off unless a port is set). */
export const GrpcSchema = Type.Object(
  {
    port: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 65_535,
        description: 'listen for gRPC here (0 picks a free port)',
      }),
    ),
    host: Type.Optional(Type.String({ description: 'defaults to server.host' })),
    max_message_bytes: Type.Integer({ minimum: 1024, default: 4_194_304 }),
  },
  { additionalProperties: false, default: {} },
);

/** One MCP server an agent takes tools from: a child process over stdio, or streamable HTTP. */
export const McpServerSchema = Type.Object(
  {
    transport: Type.Union([Type.Literal('stdio'), Type.Literal('http')]),
    command: Type.Optional(Type.String({ minLength: 1, description: 'stdio: the program to start' })),
    args: Type.Optional(Type.Array(Type.String())),
    env: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'stdio: extra environment' }),
    ),
    cwd: Type.Optional(Type.String()),
    url: Type.Optional(Type.String({ description: 'http: the MCP endpoint, e.g. https://host/mcp' })),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'http: e.g. authorization' }),
    ),
    tools: Type.Optional(
      Type.Array(Type.String(), { description: "the server's tools to offer (default: all it lists)" }),
    ),
    timeout_ms: Type.Optional(
      Type.Integer({ minimum: 1, description: "a tool call's limit (else the agent's)" }),
    ),
    connect_timeout_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'default 10000' })),
  },
  { additionalProperties: false },
);
