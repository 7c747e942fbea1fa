export { Agent, type AgentOptions, defineAgent } from './agent.js';
export {
  type Subscription,
  type TaskEvent,
  type TaskEventListener,
  TaskEventLog,
  type TaskEventType,
} from './events.js';
export { type LoopDeps, runTask } from './loop.js';
export { completionData, Task } from './task.js';
