/**
 * The soak's request mix against one agentd server: one-shot tasks, tool round trips, turns of
 * 20-turn sessions, hybrid searches of long-term memory (over a fixed seeded set, so stored data
 * does not grow), and a slice of provider faults — some that agentd must absorb (fail-over to a
 * healthy model) and some that must fail with a provider error code.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';

export type Kind = 'one-shot' | 'tool' | 'session' | 'memory' | 'failover' | 'fault';

/** Share of each kind in the mix (sums to 1). */
export const MIX: readonly [Kind, number][] = [
  ['one-shot', 0.45],
  ['tool', 0.2],
  ['session', 0.25],
  ['memory', 0.05],
  ['failover', 0.03],
  ['fault', 0.02],
];

/** Failures the `fault` kind is meant to produce (the provider's 500s, then its open breaker). */
export const EXPECTED_FAULT_CODES: ReadonlySet<string> = new Set([
  'AGENTD_PROVIDER_UNAVAILABLE',
  'AGENTD_CIRCUIT_OPEN',
]);

export interface Outcome {
  kind: Kind;
  ms: number;
  /** Error code (or `HTTP <status>` / `WRONG_ANSWER` / `NETWORK`), undefined on success. */
  code?: string;
  /** True when this outcome is not what the kind should produce. */
  unexpected: boolean;
}

/** agentd configuration for the soak: fast mock model, a faulty one with a fallback, a broken one. */
export function soakConfig(mockOrigin: string): Record<string, unknown> {
  return {
    providers: { mock: { type: 'openai', base_url: `${mockOrigin}/v1`, api_key: 'soak' } },
    models: {
      fast: { provider: 'mock', name: 'mock' },
      flaky: { provider: 'mock', name: 'mock?fault=503', fallbacks: ['fast'] },
      broken: { provider: 'mock', name: 'mock?fault=500' },
    },
    tiers: { small: ['fast'], medium: ['fast'], large: ['fast'] },
    agents: {
      bench: { model: 'fast', system_prompt: 'You are a soak test.', session: { max_messages: 40 } },
      assistant: { model: 'fast', tools: ['calculator'], system_prompt: 'Use the calculator.' },
      failover: { model: 'flaky', system_prompt: 'You are a soak test.' },
      broken: { model: 'broken', system_prompt: 'You are a soak test.' },
    },
  };
}

const TURNS = 20;
const TOPICS = ['tea', 'coffee', 'cycling', 'Lyon', 'Kyoto', 'jazz', 'chess', 'sailing', 'pottery', 'rust'];

export class MixDriver {
  readonly #pool: Pool;
  #draw = 0;
  #searches = 0;
  /** Sessions not in use, with their turn count. */
  readonly #idle: { id: string; turns: number }[] = [];

  constructor(origin: string, connections: number) {
    this.#pool = new Pool(origin, { connections, keepAliveTimeout: 30_000 });
  }

  /** Adds the memories that `memory` requests search (500, in one batch). */
  async seedMemories(): Promise<void> {
    const memories = Array.from({ length: 500 }, (_, i) => ({
      text: `Fact ${i}: the user mentioned ${TOPICS[i % TOPICS.length]} and ${TOPICS[(i * 7) % TOPICS.length]}`,
      tags: [TOPICS[i % TOPICS.length]!],
    }));
    const response = await this.#pool.request({
      path: '/v1/memories/batch',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ memories }),
    });
    const text = await response.body.text();
    if (response.statusCode !== 201) throw new Error(`seeding memories: ${response.statusCode} ${text}`);
  }

  /** The next kind: a deterministic low-discrepancy walk over MIX, so short windows get the same mix. */
  nextKind(): Kind {
    this.#draw = (this.#draw + 0.618_033_988_75) % 1;
    let acc = 0;
    for (const [kind, share] of MIX) {
      acc += share;
      if (this.#draw < acc) return kind;
    }
    return 'one-shot';
  }

  async send(kind: Kind): Promise<Outcome> {
    const started = performance.now();
    let session: { id: string; turns: number } | undefined;
    let path = '/v1/agents/bench/run';
    let body: Record<string, unknown> = { input: 'hello' };
    if (kind === 'tool') {
      path = '/v1/agents/assistant/run';
      body = { input: 'What is 17*23?' };
    } else if (kind === 'session') {
      session = this.#idle.pop() ?? { id: `soak-${randomUUID()}`, turns: 0 };
      session.turns++;
      body = { input: `turn ${session.turns}: tell me more`, session_id: session.id };
    } else if (kind === 'memory') {
      path = '/v1/memories/search';
      body = { text: `what about ${TOPICS[this.#searches++ % TOPICS.length]}?`, top_k: 5 };
    } else if (kind === 'failover') {
      path = '/v1/agents/failover/run';
    } else if (kind === 'fault') {
      path = '/v1/agents/broken/run';
    }
    let code: string | undefined;
    try {
      const response = await this.#pool.request({
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) {
        code = errorCode(text) ?? `HTTP ${response.statusCode}`;
      } else if (kind === 'tool' && !text.includes('391')) {
        code = 'WRONG_ANSWER';
      } else if (kind === 'memory') {
        if (!text.includes('the user mentioned')) code = 'WRONG_ANSWER';
      } else if (!text.includes('"succeeded"')) {
        code = 'WRONG_ANSWER';
      }
    } catch (error) {
      code = `NETWORK ${(error as { code?: string }).code ?? ''}`.trim();
    }
    if (session !== undefined && session.turns < TURNS) this.#idle.push(session);
    const ms = performance.now() - started;
    const unexpected =
      kind === 'fault' ? code === undefined || !EXPECTED_FAULT_CODES.has(code) : code !== undefined;
    return code === undefined ? { kind, ms, unexpected } : { kind, ms, code, unexpected };
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

function errorCode(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}
