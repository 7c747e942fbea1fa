export type { MockReply, ScriptedReply } from './brain.js';
export { mockEmbedding } from './embeddings.js';
export { FAULTS, type Fault, type Scenario, type ScenarioDefaults } from './scenario.js';
export { type MockLlmOptions, MockLlmServer } from './server.js';
