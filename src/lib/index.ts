export { abortReason, LinkedAbortController, sleep } from './abort.js';
export { CoarseTimer, coarseTimer, type TimerEntry } from './coarse-timer.js';
export { RingBuffer } from './ring-buffer.js';
export { estimateTokens } from './tokens.js';
