export { LocalScheduler, type SchedulerOptions } from './local-scheduler.js';
export { PriorityQueue } from './priority-queue.js';
