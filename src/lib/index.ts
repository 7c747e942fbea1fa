export { type AbortTarget, Cancellation, ChildCancellation, sleep } from './cancellation.js';
export { CoarseTimer, coarseTimer, type TimerEntry } from './coarse-timer.js';
export { uuidv7 } from './ids.js';
export { RingBuffer } from './ring-buffer.js';
export { estimateTokens } from './tokens.js';
