export {
  type ConfigIssue,
  isProviderQualified,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  validate,
} from './load.js';
export {
  type AgentMemoryConfig,
  AgentMemorySchema,
  type MemoryConfig,
  MemorySchema,
} from './memory-schema.js';
export {
  type LanguageLimitsConfig,
  type LanguageLimitsOverride,
  type SandboxConfig,
  SandboxSchema,
} from './sandbox-schema.js';
export {
  type AgentConfig,
  type BreakerConfig,
  type Config,
  ConfigSchema,
  type LimitSet,
  type LlmTimeouts,
  MODES,
  type Mode,
  type ModelConfig,
  type ProviderConfig,
  type SessionWindowConfig,
  TIERS,
  type Tier,
} from './schema.js';
export {
  type CompactionConfig,
  CompactionSchema,
  DEFAULT_COMPACTION_PROMPT,
  DEFAULT_EXTRACTION_PROMPT,
  type ExtractionConfig,
  ExtractionSchema,
  type SessionsConfig,
  SessionsSchema,
} from './sessions-schema.js';
