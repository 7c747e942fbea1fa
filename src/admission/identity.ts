import type { LimitSet } from '../config/index.js';

/** Who a request acts for: a tenant always; a user and an API key when known. */
export interface Identity {
  tenantId: string;
  userId: string | undefined;
  keyId: string | undefined;
  /** Agents this identity may run; undefined means all. */
  agents: ReadonlySet<string> | undefined;
  /** Limits carried by the API key. */
  limits: LimitSet | undefined;
}

export const DEFAULT_TENANT = 'default';

/** The identity of the open (no keys) mode: the default tenant. */
export const OPEN_IDENTITY: Identity = {
  tenantId: DEFAULT_TENANT,
  userId: undefined,
  keyId: undefined,
  agents: undefined,
  limits: undefined,
};

/** An identity for a tenant (and user) without a key: library callers and tests. */
export function tenantIdentity(tenantId: string, userId?: string): Identity {
  return { tenantId, userId, keyId: undefined, agents: undefined, limits: undefined };
}
