import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { applyProviderDefaults } from './providers.js';
import { AgentSchema, type Config, ConfigSchema, ModelSchema, ProviderSchema, TIERS } from './schema.js';

/** One problem found in a configuration, named by its field path (`agents.assistant.tools`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

export interface LoadOptions {
  /** A config file; defaults to `AGENTD_CONFIG`, then `agentd.yaml|yml|json` in the working directory. */
  file?: string | undefined;
  /** An in-memory config, merged over the file (used by the library API and tests). */
  config?: unknown;
  /** Environment to read overrides from (defaults to `process.env`). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, if any. */
  file: string | undefined;
  /** Where the LLM provider came from: a file, an environment variable, or the mock fallback. */
  providerSource: string;
}

const checker = Compile(ConfigSchema);
const DEFAULT_FILES = ['agentd.yaml', 'agentd.yml', 'agentd.json'];

/** Reads, merges, defaults and validates the configuration. Throws ConfigError listing every issue. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = findFile(options.file ?? env.AGENTD_CONFIG, cwd);
  let raw: Record<string, unknown> = file === undefined ? {} : readConfigFile(file);
  if (options.config !== undefined) raw = deepMerge(raw, options.config as Record<string, unknown>);
  raw = applyEnv(raw, env);
  const defaulted = withDefaults(raw);
  const issues = validate(defaulted);
  if (issues.length > 0) throw configError(issues, file);
  const config = defaulted as Config;
  const providerSource = applyProviderDefaults(config, env, file);
  const refIssues = checkReferences(config);
  if (refIssues.length > 0) throw configError(refIssues, file);
  return { config, file, providerSource };
}

/** Validates a configuration (defaults filled in) against the schema; returns issues (empty when valid). */
export function validate(raw: unknown): ConfigIssue[] {
  if (checker.Check(raw)) return [];
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const error of checker.Errors(raw)) {
    const issue = describe(error, raw);
    if (issue === undefined) continue;
    const key = `${issue.path}|${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

function describe(error: SchemaError, raw: unknown): ConfigIssue | undefined {
  const path = pointerToPath(error.instancePath);
  switch (error.keyword) {
    case 'boolean':
      // `additionalProperties: false` reports the offending key itself.
      return { path, message: 'unknown field' };
    case 'additionalProperties':
      return undefined;
    case 'required': {
      const missing = (error.params.requiredProperties as string[] | undefined)?.join(', ') ?? '';
      return { path: path === '' ? missing : `${path}.${missing}`, message: 'is required' };
    }
    case 'type': {
      const got = valueAt(raw, error.instancePath);
      return { path, message: `expected ${String(error.params.type)}, got ${describeValue(got)}` };
    }
    default: {
      const got = valueAt(raw, error.instancePath);
      return { path, message: `${error.message} (got ${describeValue(got)})` };
    }
  }
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function valueAt(raw: unknown, pointer: string): unknown {
  let node = raw;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function configError(issues: ConfigIssue[], file: string | undefined): InstanceType<typeof ConfigError> {
  const where = file === undefined ? 'configuration' : file;
  const lines = issues.map((issue) => `  ${issue.path || '(root)'}: ${issue.message}`);
  return new ConfigError(`invalid ${where}:\n${lines.join('\n')}`, { details: { issues } });
}

/** Fills schema defaults, including inside the records (agents, providers, models) TypeBox skips. */
export function withDefaults(raw: Record<string, unknown>): Record<string, unknown> {
  const config = Value.Default(ConfigSchema, structuredClone(raw)) as Record<string, unknown>;
  const records = [
    ['agents', AgentSchema],
    ['providers', ProviderSchema],
    ['models', ModelSchema],
  ] as const;
  for (const [key, schema] of records) {
    const record = config[key];
    if (!isPlainObject(record)) continue;
    for (const [name, entry] of Object.entries(record)) {
      if (isPlainObject(entry)) record[name] = Value.Default(schema, entry);
    }
  }
  return config;
}

/** Cross-field checks the schema cannot express: every reference points at something declared. */
function checkReferences(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const isModel = (id: string): boolean => id in config.models || isProviderQualified(config, id);
  for (const [id, model] of Object.entries(config.models)) {
    if (!(model.provider in config.providers)) {
      issues.push({ path: `models.${id}.provider`, message: `no provider named "${model.provider}"` });
    }
    if (model.context_fallback !== undefined && !isModel(model.context_fallback)) {
      issues.push({
        path: `models.${id}.context_fallback`,
        message: `no model named "${model.context_fallback}"`,
      });
    }
    for (const [i, fallback] of (model.fallbacks ?? []).entries()) {
      if (!isModel(fallback))
        issues.push({ path: `models.${id}.fallbacks.${i}`, message: `no model named "${fallback}"` });
    }
  }
  for (const tier of TIERS) {
    for (const [i, id] of (config.tiers[tier] ?? []).entries()) {
      if (!isModel(id)) issues.push({ path: `tiers.${tier}.${i}`, message: `no model named "${id}"` });
    }
  }
  for (const [name, agent] of Object.entries(config.agents)) {
    const model = agent.model;
    if (model !== undefined && !isModel(model) && !(TIERS as readonly string[]).includes(model)) {
      issues.push({ path: `agents.${name}.model`, message: `"${model}" is neither a model nor a tier` });
    }
  }
  return issues;
}

/** `provider/model` names a model directly on a declared provider. */
export function isProviderQualified(config: Config, id: string): boolean {
  const slash = id.indexOf('/');
  return slash > 0 && id.slice(0, slash) in config.providers;
}

function findFile(explicit: string | undefined, cwd: string): string | undefined {
  if (explicit !== undefined && explicit !== '') {
    const path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new ConfigError(`config file not found: ${path}`);
    return path;
  }
  for (const name of DEFAULT_FILES) {
    const path = resolve(cwd, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

function readConfigFile(path: string): Record<string, unknown> {
  const text = readFileSync(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`${path} must contain a mapping at the top level`);
  }
  return parsed as Record<string, unknown>;
}

const SHORTCUTS: Record<string, string[]> = {
  REDIS_URL: ['redis', 'url'],
  DATABASE_URL: ['storage', 'url'],
  AGENTD_HOST: ['server', 'host'],
  AGENTD_PORT: ['server', 'port'],
  AGENTD_DB: ['storage', 'path'],
  AGENTD_LOG_LEVEL: ['log', 'level'],
};

/**
 * Environment overrides: the shortcuts above, and `AGENTD_<SECTION>__<KEY>[__<KEY>…]` for any
 * field (`AGENTD_LLM__RETRY__MAX_ATTEMPTS=5`). Values are parsed as JSON when they parse.
 */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || (!name.startsWith('AGENTD_') && SHORTCUTS[name] === undefined)) continue;
    const path =
      SHORTCUTS[name] ?? (name.includes('__') ? name.slice(7).toLowerCase().split('__') : undefined);
    if (path === undefined) continue;
    setPath(out, path, parseEnvValue(value));
  }
  return out;
}

function parseEnvValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    if (isPlainObject(current) && isPlainObject(value)) out[key] = deepMerge(current, value);
    else out[key] = value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
