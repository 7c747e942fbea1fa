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
