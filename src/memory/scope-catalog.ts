import type { MemoryFilter, MemoryRecord } from './types.js';

/**
 * The memories a search may return, as the in-memory indexes take it: whole partitions (a
 * tenant's user, or all of a tenant) less some keys (expired ones), or a list of keys (what a
 * storage query returned for a filter the catalog cannot answer).
 */
export type Selection =
  | {
      kind: 'partitions';
      partitions: readonly string[];
      exclude: ReadonlySet<number>;
      /** Memories selected: the partitions' sizes less the excluded keys. */
      size: number;
    }
  | { kind: 'keys'; keys: readonly number[] };

export function selectionSize(selection: Selection): number {
  return selection.kind === 'keys' ? selection.keys.length : selection.size;
}

/** The partition of a memory: its tenant and user. The indexes keep each partition's entries together. */
export function partitionOf(tenantId: string, userId: string | null): string {
  return JSON.stringify([tenantId, userId]);
}

type Scope = Pick<MemoryRecord, 'tenant_id' | 'user_id' | 'agent_id' | 'session_id' | 'expires_at'>;

interface Entry {
  partition: string;
  /** The tenant's session, as a key of `#sessions`. */
  sessionKey: string | null;
  agent: string | null;
  session: string | null;
  expires: number | null;
}

const SCOPE_FIELDS = new Set(['user_id', 'agent_id', 'session_id']);

/**
 * Where each indexed memory belongs (tenant, user, agent, session) and when it expires, kept in
 * step with every write. It answers a filter made only of scope fields (the common "this user's
 * memories") without asking storage, with exactly the memories storage would list: live ones of
 * that scope.
 */
export class ScopeCatalog {
  readonly #entries = new Map<number, Entry>();
  readonly #partitions = new Map<string, Set<number>>();
  /** Partitions of each tenant. */
  readonly #tenants = new Map<string, Set<string>>();
  /** Expiry instants of the memories that have one, by partition. */
  readonly #expiring = new Map<string, Map<number, number>>();
  /** Keys of each session of each tenant, ascending: the order memories were added in. */
  readonly #sessions = new Map<string, number[]>();

  get size(): number {
    return this.#entries.size;
  }

  /** Records a memory (replacing what was known of its key); returns its partition. */
  add(key: number, scope: Scope): string {
    this.remove(key);
    const partition = partitionOf(scope.tenant_id, scope.user_id);
    const sessionKey = scope.session_id === null ? null : JSON.stringify([scope.tenant_id, scope.session_id]);
    if (sessionKey !== null) {
      let keys = this.#sessions.get(sessionKey);
      if (keys === undefined) {
        keys = [];
        this.#sessions.set(sessionKey, keys);
      }
      if (keys.length === 0 || keys[keys.length - 1]! < key) keys.push(key);
      else keys.splice(lowerBound(keys, key), 0, key);
    }
    this.#entries.set(key, {
      partition,
      sessionKey,
      agent: scope.agent_id,
      session: scope.session_id,
      expires: null,
    });
    let keys = this.#partitions.get(partition);
    if (keys === undefined) {
      keys = new Set();
      this.#partitions.set(partition, keys);
      let partitions = this.#tenants.get(scope.tenant_id);
      if (partitions === undefined) {
        partitions = new Set();
        this.#tenants.set(scope.tenant_id, partitions);
      }
      partitions.add(partition);
    }
    keys.add(key);
    this.setExpiry(key, scope.expires_at);
    return partition;
  }

  setExpiry(key: number, expires: number | null): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    entry.expires = expires;
    let expiring = this.#expiring.get(entry.partition);
    if (expires === null) {
      expiring?.delete(key);
      if (expiring?.size === 0) this.#expiring.delete(entry.partition);
      return;
    }
    if (expiring === undefined) {
      expiring = new Map();
      this.#expiring.set(entry.partition, expiring);
    }
    expiring.set(key, expires);
  }

  remove(key: number): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.setExpiry(key, null);
    this.#entries.delete(key);
    if (entry.sessionKey !== null) {
      const keys = this.#sessions.get(entry.sessionKey)!;
      keys.splice(lowerBound(keys, key), 1);
      if (keys.length === 0) this.#sessions.delete(entry.sessionKey);
    }
    const keys = this.#partitions.get(entry.partition)!;
    keys.delete(key);
    if (keys.size > 0) return;
    this.#partitions.delete(entry.partition);
    const [tenant] = JSON.parse(entry.partition) as [string];
    const partitions = this.#tenants.get(tenant)!;
    partitions.delete(entry.partition);
    if (partitions.size === 0) this.#tenants.delete(tenant);
  }

  /** The memories added just before and just after `key` in its session (none without a session). */
  neighbours(key: number): number[] {
    const sessionKey = this.#entries.get(key)?.sessionKey;
    if (sessionKey === undefined || sessionKey === null) return [];
    const keys = this.#sessions.get(sessionKey)!;
    const at = lowerBound(keys, key);
    const out: number[] = [];
    if (at > 0) out.push(keys[at - 1]!);
    if (at + 1 < keys.length) out.push(keys[at + 1]!);
    return out;
  }

  /** Whether a memory is in a selection. */
  member(selection: Selection): (key: number) => boolean {
    if (selection.kind === 'keys') {
      const keys = new Set(selection.keys);
      return (key) => keys.has(key);
    }
    const partitions = new Set(selection.partitions);
    return (key) => {
      const entry = this.#entries.get(key);
      return entry !== undefined && partitions.has(entry.partition) && !selection.exclude.has(key);
    };
  }

  /** The partitions of a tenant (for searches over all of its memories). */
  partitionsOf(tenantId: string): readonly string[] {
    const partitions = this.#tenants.get(tenantId);
    return partitions === undefined ? [] : [...partitions];
  }

  /**
   * The live memories of `tenantId` that pass `filter`, when the filter names only scope fields
   * (user, agent, session) as strings; undefined for any other filter (storage must answer).
   */
  select(tenantId: string, filter: MemoryFilter | undefined, now: number): Selection | undefined {
    if (filter !== undefined && (typeof filter !== 'object' || filter === null || Array.isArray(filter)))
      return undefined;
    const scope = (filter ?? {}) as Record<string, unknown>;
    for (const [field, value] of Object.entries(scope)) {
      if (value === undefined) continue;
      if (!SCOPE_FIELDS.has(field) || typeof value !== 'string') return undefined;
    }
    const user = scope.user_id as string | undefined;
    const agent = scope.agent_id as string | undefined;
    const session = scope.session_id as string | undefined;
    const partitions =
      user === undefined
        ? this.partitionsOf(tenantId)
        : this.#partitions.has(partitionOf(tenantId, user))
          ? [partitionOf(tenantId, user)]
          : [];
    if (agent !== undefined || session !== undefined) {
      const keys: number[] = [];
      for (const partition of partitions) {
        for (const key of this.#partitions.get(partition)!) {
          const entry = this.#entries.get(key)!;
          if (agent !== undefined && entry.agent !== agent) continue;
          if (session !== undefined && entry.session !== session) continue;
          if (entry.expires !== null && entry.expires <= now) continue;
          keys.push(key);
        }
      }
      return { kind: 'keys', keys };
    }
    const exclude = new Set<number>();
    let size = 0;
    for (const partition of partitions) {
      size += this.#partitions.get(partition)!.size;
      const expiring = this.#expiring.get(partition);
      if (expiring === undefined) continue;
      for (const [key, expires] of expiring) if (expires <= now) exclude.add(key);
    }
    return { kind: 'partitions', partitions, exclude, size: size - exclude.size };
  }
}

/** The index of the first element ≥ `key` in an ascending array. */
function lowerBound(keys: readonly number[], key: number): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
