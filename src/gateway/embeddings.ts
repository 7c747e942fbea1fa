import { type Identity, QueuedAdmission } from '../admission/index.js';
import { CircuitOpenError, ForbiddenError, InvalidRequestError, toAgentdError } from '../errors.js';
import { estimateTokens } from '../lib/tokens.js';
import { classifyHttpError, classifyTransportError, extractError } from '../llm/index.js';
import type { Runtime } from '../runtime/index.js';

/** The body of `POST /v1/embeddings`; fields other than `model` go to the provider unchanged. */
export interface EmbeddingsBody {
  model: string;
  input: unknown;
  [field: string]: unknown;
}

/**
 * Embeddings through the gateway: the model resolves as for chat (catalog model, tier or
 * `provider/model`), the call passes admission and the model's circuit breaker, and the
 * provider's answer is returned as its own bytes.
 */
export async function forwardEmbeddings(
  runtime: Runtime,
  identity: Identity,
  body: EmbeddingsBody,
  signal: AbortSignal,
): Promise<Buffer> {
  if (identity.agents !== undefined) {
    throw new ForbiddenError('this API key may only run its agents; it may not call models directly', {
      details: { field: 'model', limit: 'key.agents' },
    });
  }
  const route = runtime.router.resolve({ model: body.model }, undefined)[0]!;
  const forward = route.provider.forward?.bind(route.provider);
  if (forward === undefined) {
    throw new InvalidRequestError(`provider "${route.providerName}" does not serve embeddings`, {
      details: { field: 'model' },
    });
  }
  let estimate = 0;
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  for (const input of inputs) if (typeof input === 'string') estimate += estimateTokens(input);
  const admitted = await runtime.admission.admit(identity, '$gateway', crypto.randomUUID(), estimate);
  const ticket = admitted instanceof QueuedAdmission ? await admitted.granted : admitted;
  try {
    if (!route.breaker.tryAcquire()) {
      throw new CircuitOpenError(`the circuit for ${route.id} is open`, {
        retryAfterMs: route.breaker.retryAfterMs(),
      });
    }
    const started = performance.now();
    let answer: Awaited<ReturnType<typeof forward>>;
    try {
      answer = await forward('/embeddings', JSON.stringify({ ...body, model: route.upstreamModel }), signal);
    } catch (err) {
      route.breaker.onFailure();
      throw signal.aborted
        ? toAgentdError(signal.reason)
        : classifyTransportError(route.providerName, route.id, err, false);
    }
    if (answer.status >= 300) {
      const error = classifyHttpError(
        route.providerName,
        route.id,
        answer.status,
        extractError(answer.body.toString('utf8')),
        answer.retryAfterMs,
      );
      if (answer.status >= 500 || answer.status === 429) route.breaker.onFailure();
      else route.breaker.onIgnored();
      throw error;
    }
    route.breaker.onSuccess(performance.now() - started);
    return answer.body;
  } finally {
    runtime.admission.release(ticket);
  }
}
