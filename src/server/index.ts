export { type App, buildServer } from './app.js';
export { formatEventId, parseEventId } from './sse.js';
