export { type App, buildServer } from './app.js';
export { assertSafeBinding, isLoopback } from './auth.js';
export { formatEventId, parseEventId } from './sse.js';
