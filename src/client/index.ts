export {
  AgentdApiError,
  AgentdClient,
  type AgentdClientOptions,
  AgentdConnectionError,
  type RequestOptions,
} from './client.js';
export type {
  AgentJson,
  ApiErrorBody,
  CreateTaskRequest,
  HealthJson,
  ListTasksQuery,
  MessageJson,
  Page,
  TaskEvent,
  TaskEventType,
  TaskJson,
  TaskOptions,
  TaskStatus,
  Usage,
} from './types.js';
