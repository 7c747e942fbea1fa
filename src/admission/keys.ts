import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Config, LimitSet } from '../config/index.js';
import { InvalidRequestError } from '../errors.js';
import type { ApiKeyRecord, Store } from '../store/index.js';
import type { Identity } from './identity.js';

/** How long a looked-up key (or its absence) is trusted before the store is asked again. */
const CACHE_TTL_MS = 5_000;

export interface NewKey {
  tenant: string;
  user?: string | undefined;
  name?: string | undefined;
  agents?: string[] | undefined;
  limits?: LimitSet | undefined;
}

/** `sha256:<hex>`: keys are stored and configured only as this. */
export function hashKey(key: string): string {
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * API keys: created once (the key is shown only then), stored hashed, mapped to a tenant, an
 * optional user, an optional agent allow-list and optional limits. Keys come from the store
 * (`agentd keys create`) and from `auth.keys` in the configuration. Lookups are cached for a few
 * seconds, so a revocation reaches every process within that time.
 */
export class ApiKeys {
  readonly #store: Store;
  readonly #configured = new Map<string, ApiKeyRecord>();
  readonly #cache = new LRUCache<string, { identity: Identity | null }>({ max: 10_000, ttl: CACHE_TTL_MS });
  #enabled: { value: boolean; checkedAt: number } | undefined;

  constructor(store: Store, config: Config) {
    this.#store = store;
    for (const key of config.auth.keys) {
      this.#configured.set(key.hash, {
        id: key.id,
        prefix: '(config)',
        hash: key.hash,
        tenant_id: key.tenant,
        user_id: key.user ?? null,
        name: key.id,
        agents: key.agents ?? null,
        limits: (key.limits as Record<string, number> | undefined) ?? null,
        created_at: 0,
        revoked_at: null,
      });
    }
  }

  /** Creates a key; the returned `key` is the only time the secret is ever visible. */
  async create(input: NewKey): Promise<{ key: string; record: ApiKeyRecord }> {
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(input.tenant)) {
      throw new InvalidRequestError('tenant must be 1–128 characters of letters, digits, _ . : -', {
        details: { field: 'tenant' },
      });
    }
    const secret = randomBytes(24).toString('base64url');
    const key = `agd_${secret}`;
    const record: ApiKeyRecord = {
      id: `key_${randomBytes(6).toString('hex')}`,
      prefix: key.slice(0, 10),
      hash: hashKey(key),
      tenant_id: input.tenant,
      user_id: input.user ?? null,
      name: input.name ?? null,
      agents: input.agents ?? null,
      limits: (input.limits as Record<string, number> | undefined) ?? null,
      created_at: Date.now(),
      revoked_at: null,
    };
    await this.#store.createApiKey(record);
    this.#enabled = undefined;
    return { key, record };
  }

  list(tenantId?: string): Promise<ApiKeyRecord[]> {
    return this.#store.listApiKeys(tenantId);
  }

  async revoke(id: string): Promise<boolean> {
    const revoked = await this.#store.revokeApiKey(id);
    this.#cache.clear();
    this.#enabled = undefined;
    return revoked;
  }

  /**
   * True when at least one key exists: then every API request must present one. Answers from a
   * cache (synchronously) while it is fresh, so the common case costs no promise.
   */
  enabled(): boolean | Promise<boolean> {
    if (this.#configured.size > 0) return true;
    const cached = this.#enabled;
    if (cached !== undefined && Date.now() - cached.checkedAt < CACHE_TTL_MS) return cached.value;
    return this.#store.countActiveApiKeys().then((count) => {
      this.#enabled = { value: count > 0, checkedAt: Date.now() };
      return count > 0;
    });
  }

  /** The identity a key stands for, or undefined for an unknown or revoked key. */
  async identify(key: string): Promise<Identity | undefined> {
    const hash = hashKey(key);
    const cached = this.#cache.get(hash);
    if (cached !== undefined) return cached.identity ?? undefined;
    const record = this.#configured.get(hash) ?? (await this.#store.findApiKeyByHash(hash));
    const identity =
      record === undefined || record.revoked_at !== null
        ? null
        : {
            tenantId: record.tenant_id,
            userId: record.user_id ?? undefined,
            keyId: record.id,
            agents: record.agents === null ? undefined : new Set(record.agents),
            limits: (record.limits as LimitSet | null) ?? undefined,
          };
    this.#cache.set(hash, { identity });
    return identity ?? undefined;
  }
}
