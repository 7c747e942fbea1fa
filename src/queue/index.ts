export { AdaptiveConcurrency, type AdaptiveOptions, type Steerable } from './adaptive-concurrency.js';
export { FairScheduler, type FairSchedulerOptions, type JobTraits } from './fair-scheduler.js';
export { PriorityQueue } from './priority-queue.js';
