import Type, { type Static } from 'typebox';

/**
 * The `sandbox` section: pools, limits and admission for the `run_javascript` and `run_python`
 * tools (src/sandbox). Limits are per call: a call may ask for up to the `max_*` values; an
 * agent's entry under `sandbox.agents` overrides any of them for that agent.
 */

interface LimitDefaults {
  timeout: number;
  maxTimeout: number;
  memory: number;
  maxMemory: number;
  minMemory: number;
}

// Overrides (`sandbox.agents.*`) get the same fields without defaults, so that an agent's entry
// changes only what it names.
const limitFields = (d: LimitDefaults, withDefaults: boolean) => {
  const dflt = (value: number) => (withDefaults ? { default: value } : {});
  return {
    timeout_ms: Type.Integer({
      minimum: 1,
      ...dflt(d.timeout),
      description: 'a call that names no timeout gets this',
    }),
    max_timeout_ms: Type.Integer({
      minimum: 1,
      ...dflt(d.maxTimeout),
      description: 'the longest timeout a call may ask for',
    }),
    memory_mb: Type.Integer({
      minimum: d.minMemory,
      ...dflt(d.memory),
      description: 'memory of a call that names none',
    }),
    max_memory_mb: Type.Integer({
      minimum: d.minMemory,
      ...dflt(d.maxMemory),
      description: 'the most memory a call may ask for',
    }),
    max_output_bytes: Type.Integer({
      minimum: 256,
      maximum: 16_777_216,
      ...dflt(65_536),
      description: 'cap of stdout and of stderr each; a run that writes more is stopped',
    }),
  };
};

const JS: LimitDefaults = { timeout: 5_000, maxTimeout: 30_000, memory: 64, maxMemory: 256, minMemory: 20 };
const PY: LimitDefaults = { timeout: 10_000, maxTimeout: 60_000, memory: 128, maxMemory: 512, minMemory: 32 };

export const SandboxSchema = Type.Object(
  {
    max_concurrent_per_tenant: Type.Integer({
      minimum: 1,
      default: 4,
      description: 'sandbox runs one tenant may have at once (both languages); one more gets 429',
    }),
    prewarm: Type.Boolean({
      default: true,
      description:
        'start the pool of a language at startup when an agent lists its tool (or tools.direct_execute does); false starts it on first use',
    }),
    breaker: Type.Object(
      {
        window_ms: Type.Integer({ minimum: 100, default: 60_000 }),
        min_requests: Type.Integer({ minimum: 1, default: 3 }),
        failure_rate: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
        open_ms: Type.Integer({ minimum: 1, default: 30_000 }),
      },
      {
        additionalProperties: false,
        default: {},
        description: "per tenant and language: interpreter crashes that stop the tenant's runs for open_ms",
      },
    ),
    javascript: Type.Object(
      {
        ...limitFields(JS, true),
        workers: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'warm worker threads' }),
        max_queue: Type.Integer({
          minimum: 0,
          default: 32,
          description: 'runs waiting for a worker; one more gets 503',
        }),
        max_stack_kb: Type.Integer({
          minimum: 64,
          maximum: 2048,
          default: 256,
          description: "QuickJS's stack limit",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    python: Type.Object(
      {
        ...limitFields(PY, true),
        processes: Type.Integer({
          minimum: 1,
          maximum: 64,
          default: 2,
          description: 'warm interpreter processes',
        }),
        max_queue: Type.Integer({
          minimum: 0,
          default: 16,
          description: 'runs waiting for a process; one more gets 503',
        }),
        max_runs_per_process: Type.Integer({
          minimum: 1,
          default: 200,
          description: 'runs after which a process is replaced',
        }),
        isolation: Type.Union([Type.Literal('auto'), Type.Literal('bwrap'), Type.Literal('process')], {
          default: 'auto',
          description: 'auto: bubblewrap when installed and usable, else a plain child process',
        }),
        max_files: Type.Integer({
          minimum: 0,
          maximum: 1000,
          default: 16,
          description: 'files in or out per run',
        }),
        max_file_bytes: Type.Integer({
          minimum: 1,
          default: 262_144,
          description: 'size of one file in or out',
        }),
        max_scratch_bytes: Type.Integer({
          minimum: 1,
          default: 16_777_216,
          description: 'bytes a run may write to files in its scratch directory',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    agents: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
      Type.Object(
        {
          javascript: Type.Optional(
            Type.Partial(Type.Object(limitFields(JS, false)), { additionalProperties: false }),
          ),
          python: Type.Optional(
            Type.Partial(Type.Object(limitFields(PY, false)), { additionalProperties: false }),
          ),
        },
        { additionalProperties: false },
      ),
      { default: {}, description: "per-agent overrides of the languages' limits" },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type SandboxConfig = Static<typeof SandboxSchema>;
/** One language's limits as configured (all fields set). */
export type LanguageLimitsConfig = SandboxConfig['javascript'] | SandboxConfig['python'];
/** An agent's overrides of one language's limits. */
export type LanguageLimitsOverride = NonNullable<SandboxConfig['agents'][string]['python']>;
