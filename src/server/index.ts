export { type App, buildServer } from './app.js';
export { assertSafeBinding, isLoopback } from './auth.js';
export { GrpcServer } from './grpc.js';
export { grpcStatusOf } from './grpc-status.js';
export { formatEventId, parseEventId } from './sse.js';
