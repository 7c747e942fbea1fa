import type { FastifyRequest } from 'fastify';
import { type Identity, OPEN_IDENTITY } from '../admission/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook when API keys are in use. */
    identity: Identity | undefined;
  }
}

export type { Identity };

/** The identity of a request: its API key's, or the default tenant while the server runs open. */
export function identityOf(request: FastifyRequest): Identity {
  return request.identity ?? OPEN_IDENTITY;
}

/** The identity with a user named in the request body, unless the key already fixes the user. */
export function withUser(identity: Identity, userId: string | undefined): Identity {
  if (userId === undefined || identity.userId !== undefined) return identity;
  return { ...identity, userId };
}

/** A single-valued header (the first value when repeated). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
