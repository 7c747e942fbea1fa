export {
  DEFAULT_TENANT,
  type EventStream,
  type HealthReport,
  Runtime,
  type RuntimeOptions,
  type Submission,
  type SubmitRequest,
} from './runtime.js';
export type { ToolExecutionRequest } from './tool-execution.js';
export { VERSION } from './version.js';
