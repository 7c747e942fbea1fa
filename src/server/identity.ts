import type { FastifyRequest } from 'fastify';
import { DEFAULT_TENANT } from '../runtime/index.js';

/** Who a request acts for. */
export interface Identity {
  tenantId: string;
  userId: string | undefined;
}

const OPEN: Identity = { tenantId: DEFAULT_TENANT, userId: undefined };

/** The identity of a request: the default tenant while the server runs without API keys. */
export function identityOf(request: FastifyRequest): Identity {
  return (request as FastifyRequest & { identity?: Identity }).identity ?? OPEN;
}
