export { calculator, evaluate } from './calculator.js';
export { currentTime } from './current-time.js';
export { createHttpFetch, type HttpFetchOptions, hostAllowed } from './http-fetch.js';
