export { SandboxAdmission, type SandboxAdmissionOptions, type SandboxPermit } from './admission.js';
export type { PoolStats } from './javascript/pool.js';
export type { IsolationLevel, IsolationMode } from './python/isolation.js';
export { Sandbox, type SandboxRunRequest, type SandboxStats } from './sandbox.js';
export { createSandboxTools, sandboxLanguage } from './tools.js';
export type { InputFile, Language, RunLimits, SandboxFile, SandboxResult } from './types.js';
