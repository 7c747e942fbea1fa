export { ChatStreamAssembler } from './chat-stream.js';
export { type MockLlmOptions, MockLlmServer, type ScriptedReply } from './mock/index.js';
export { type OpenAICompatibleOptions, OpenAICompatibleProvider } from './openai.js';
export { classifyHttpError, classifyTransportError, extractError } from './provider-errors.js';
export { type StartedProviders, startProviders } from './providers.js';
export { backoffDelay, decideRetry, type RetryDecision, type RetryPolicy } from './retry.js';
export {
  type CallContext,
  costOf,
  type FailedAttempt,
  type LlmCall,
  type ModelGate,
  type ModelRoute,
  ModelRouter,
  type ModelSelector,
  type RouterSink,
} from './router.js';
export type {
  CallOptions,
  CallTimeouts,
  ChatMessage,
  ChatRequest,
  ChatResult,
  FinishReason,
  ForwardedResponse,
  JsonSchema,
  Provider,
  Role,
  StreamFlow,
  StreamSink,
  ToolCall,
  ToolSpec,
  Usage,
} from './types.js';
