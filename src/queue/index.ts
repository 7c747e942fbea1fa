export { AdaptiveConcurrency, type AdaptiveOptions, type Steerable } from './adaptive-concurrency.js';
export { ClusterBus, type ClusterSignal } from './cluster-bus.js';
export {
  type StreamBacklog,
  type StreamEvent,
  type StreamPosition,
  TaskEventStreams,
  type TaskEventStreamsOptions,
} from './event-streams.js';
export { FairScheduler, type FairSchedulerOptions, type JobTraits } from './fair-scheduler.js';
export { PriorityQueue } from './priority-queue.js';
export {
  bullPriority,
  DistributedTaskQueue,
  FAIR_ROUNDS,
  type QueuedTask,
  type TaskDelivery,
  type TaskQueueOptions,
} from './task-queue.js';
