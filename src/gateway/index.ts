export { AGENT_MODEL_PREFIX, AgentChat, type AgentChatCall } from './agent-chat.js';
export { ChatGateway, type GatewayCall } from './chat-gateway.js';
export { type EmbeddingsBody, forwardEmbeddings } from './embeddings.js';
export type { CompletionOutput, DrainListener } from './output.js';
export { type ChatCompletionBody, wantsUsage } from './request.js';
export { type OpenAIErrorBody, openAIError, openAIErrorBody } from './wire.js';
