import { type Admitted, type Identity, QueuedAdmission, TaskTicket } from '../admission/index.js';
import { type CachedReply, ResponseCache } from '../cache/index.js';
import { type AgentdError, CancelledError, ForbiddenError, toAgentdError } from '../errors.js';
import type { Cancellation } from '../lib/cancellation.js';
import { coarseTimer, type TimerEntry } from '../lib/coarse-timer.js';
import { estimateTokens } from '../lib/tokens.js';
import type { ChatRequest, LlmCall, ModelRoute, RouterSink, StreamFlow } from '../llm/index.js';
import type { Runtime } from '../runtime/index.js';
import type { CompletionOutput, DrainListener } from './output.js';
import { type ChatCompletionBody, chatRequestOf, wantsUsage } from './request.js';
import { ChunkWriter, completionId, completionJson, DONE_FRAME, errorFrame } from './wire.js';

/** The admission "agent" gateway calls are planned under (tenant, key, user and global limits apply). */
const GATEWAY_AGENT = '$gateway';

/**
 * Admission holders of gateway calls: unique per process (a random prefix, for limits shared
 * through Redis) without a random id per request.
 */
const HOLDER_PREFIX = `gw-${crypto.randomUUID().slice(0, 8)}-`;
let holders = 0;

/** One gateway-mode completion: who asks, what, and where the answer goes. */
export interface GatewayCall {
  identity: Identity;
  body: ChatCompletionBody;
  output: CompletionOutput;
  /** Aborted when the client hangs up. */
  cancellation: Cancellation;
  traceparent: string | undefined;
}

/**
 * Gateway mode of the OpenAI-compatible API: `model` names a catalog model, a tier or
 * `provider/model`, and the request goes through admission, the response cache and the router
 * (breakers, retries, fail-over) to the provider. A streamed reply is forwarded chunk by chunk as
 * the provider wrote it, a non-streamed one as its original bytes; agentd serialises a reply only
 * when it made it itself (a cache hit).
 */
export class ChatGateway {
  readonly #runtime: Runtime;

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
  }

  /** Answers one completion; throws what fails before the answer started. */
  async complete(call: GatewayCall): Promise<void> {
    const runtime = this.#runtime;
    const { body, identity } = call;
    if (identity.agents !== undefined) {
      throw new ForbiddenError(
        'this API key may only run its agents (model "agent:<name>"); it may not call models directly',
        { details: { field: 'model', limit: 'key.agents' } },
      );
    }
    const chain = runtime.router.resolve({ model: body.model }, undefined);
    const request = chatRequestOf(body);
    const admitted = this.#admit(identity, request);
    // An immediate admission (no limit to wait for) continues without a turn of the microtask queue.
    const ticket = admitted instanceof TaskTicket ? admitted : await this.#await(admitted, call.cancellation);
    let answered: LlmCall | undefined;
    try {
      answered = await this.#answer(call, chain, request);
    } catch (err) {
      const error = toAgentdError(err);
      if (!call.output.started) throw error;
      if (!call.output.closed) call.output.end(errorFrame(error.toBody()));
    } finally {
      const tokens =
        answered === undefined ? 0 : answered.result.usage.input_tokens + answered.result.usage.output_tokens;
      const usd = answered?.costUsd ?? 0;
      if (answered !== undefined && usd > 0) {
        const metrics = runtime.metrics;
        metrics.cost.with(metrics.tenantLabel(identity.tenantId), answered.model).inc(usd);
      }
      const settled = runtime.admission.settle(ticket, tokens, usd);
      if (settled instanceof Promise) settled.catch(() => {});
      runtime.admission.release(ticket);
    }
  }

  /** Draws the request from the caller's limits. */
  #admit(identity: Identity, request: Omit<ChatRequest, 'model'>): Admitted | Promise<Admitted> {
    let estimate = request.maxTokens ?? 256;
    for (const message of request.messages) estimate += estimateTokens(message.content) + 4;
    return this.#runtime.admission.admit(
      identity,
      GATEWAY_AGENT,
      HOLDER_PREFIX + String(++holders),
      estimate,
    );
  }

  /** Waits for an admission decided remotely or for a concurrency slot. */
  async #await(pending: Admitted | Promise<Admitted>, cancellation: Cancellation): Promise<TaskTicket> {
    const admitted = await pending;
    if (!(admitted instanceof QueuedAdmission)) return admitted;
    const ticket = await admitted.granted;
    if (cancellation.reason !== undefined) {
      this.#runtime.admission.release(ticket);
      throw cancellation.reason;
    }
    return ticket;
  }

  async #answer(
    call: GatewayCall,
    chain: ModelRoute[],
    request: Omit<ChatRequest, 'model'>,
  ): Promise<LlmCall | undefined> {
    const responses = this.#runtime.responses;
    const stream = call.body.stream === true;
    if (responses === undefined || !ResponseCache.cacheable(request, false))
      return this.#forward(call, chain, request, stream, undefined);
    const tenant = call.identity.tenantId;
    const key = ResponseCache.key(tenant, chain[0]?.id ?? '', request);
    let fresh: LlmCall | undefined;
    const reply = await responses.get(tenant, key, async () => {
      const recorded: string[] = [];
      fresh = await this.#forward(call, chain, request, stream, recorded);
      const result = fresh.result;
      if (!stream && result.content !== null) recorded.push(result.content);
      return {
        chunks: recorded,
        toolCalls: result.toolCalls,
        finishReason: result.finishReason,
        usage: result.usage,
        model: result.providerModel ?? fresh.model,
      } satisfies CachedReply;
    });
    if (fresh !== undefined) return fresh;
    if (reply === undefined) return this.#forward(call, chain, request, stream, undefined);
    call.output.header('x-agentd-cache', 'hit');
    replay(reply, call.output, stream, wantsUsage(call.body));
    return undefined;
  }

  /** Calls the chain and forwards the provider's reply; `recorded` collects text for the cache. */
  async #forward(
    call: GatewayCall,
    chain: ModelRoute[],
    request: Omit<ChatRequest, 'model'>,
    stream: boolean,
    recorded: string[] | undefined,
  ): Promise<LlmCall> {
    const output = call.output;
    const sink = stream
      ? new StreamForwarder(
          output,
          wantsUsage(call.body),
          call.cancellation,
          recorded,
          chain[0]?.timeouts.idleMs ?? 60_000,
        )
      : new BodyForwarder();
    let result: LlmCall;
    try {
      result = await this.#runtime.router.chat(chain, request, {
        cancellation: call.cancellation,
        sink,
        stream,
        traceparent: call.traceparent,
      });
    } finally {
      if (sink instanceof StreamForwarder) sink.stopWaiting();
    }
    if (output.closed) return result;
    output.header('x-agentd-model', result.model);
    if (sink instanceof StreamForwarder) sink.finish(result);
    else if (sink.body !== undefined) output.json(sink.body);
    else {
      const r = result.result;
      output.json(
        JSON.stringify(
          completionJson(
            completionId(),
            Math.floor(Date.now() / 1000),
            r.providerModel ?? result.model,
            r.content,
            r.toolCalls,
            r.finishReason,
            r.usage,
          ),
        ),
      );
    }
    return result;
  }
}

/**
 * Forwards a provider's stream chunk by chunk, each event's data as the provider sent it. Chunks
 * before the first text or tool call (the role chunk) are held back, so a failed attempt that
 * produced nothing can be retried invisibly; once output reached the client, a failed attempt
 * ends the stream with an error instead. When the client reads slower than the provider writes,
 * the provider stream is paused until the client drains (memory stays bounded); a client that
 * reads nothing for the idle timeout is given up on.
 */
class StreamForwarder implements RouterSink, DrainListener {
  readonly #output: CompletionOutput;
  readonly #includeUsage: boolean;
  readonly #cancellation: Cancellation;
  readonly #recorded: string[] | undefined;
  readonly #stallMs: number;
  #committed = false;
  #pending: string[] | undefined;
  #usageSent = false;
  #flow: StreamFlow | undefined;
  #waiting = false;
  #stallTimer: TimerEntry | undefined;

  constructor(
    output: CompletionOutput,
    includeUsage: boolean,
    cancellation: Cancellation,
    recorded: string[] | undefined,
    stallMs: number,
  ) {
    this.#output = output;
    this.#includeUsage = includeUsage;
    this.#cancellation = cancellation;
    this.#recorded = recorded;
    this.#stallMs = stallMs;
  }

  onStreamStart(flow: StreamFlow): void {
    this.#flow = flow;
    if (this.#waiting) flow.pause();
  }

  onText(text: string): void {
    this.#recorded?.push(text);
    if (!this.#committed) this.#commit();
  }

  onToolCallStart(): void {
    if (!this.#committed) this.#commit();
  }

  onChunk(data: string, usageOnly: boolean): void {
    if (usageOnly) {
      if (!this.#includeUsage) return;
      this.#usageSent = true;
    }
    const frame = `data: ${data}\n\n`;
    if (this.#committed) {
      if (!this.#output.write(frame)) this.#waitForDrain();
    } else if (this.#pending === undefined) this.#pending = [frame];
    else this.#pending.push(frame);
  }

  onDiscard(error: AgentdError): void {
    if (!this.#committed) {
      this.#pending = undefined;
      return;
    }
    // The client already holds this attempt's output: stop rather than splice another reply on.
    this.#cancellation.abortWith(error);
  }

  /** The client read what was queued: read the provider again. */
  onDrain(): void {
    if (!this.#waiting) return;
    this.stopWaiting();
    this.#flow?.resume();
  }

  /** The client stopped reading for the whole idle timeout. */
  stall(): void {
    if (!this.#waiting) return;
    this.#stallTimer = undefined;
    this.#cancellation.abortWith(
      new CancelledError(`the client read nothing for ${this.#stallMs} ms; the stream was stopped`),
    );
  }

  /** Ends the wait for a drain (the call settled, or the client caught up). */
  stopWaiting(): void {
    this.#waiting = false;
    coarseTimer.cancel(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  /** After the call succeeded: what is held back, the usage chunk if asked and not sent, `[DONE]`. */
  finish(call: LlmCall): void {
    if (!this.#committed) this.#commit();
    if (this.#includeUsage && !this.#usageSent) {
      const result = call.result;
      const writer = new ChunkWriter(
        completionId(),
        Math.floor(Date.now() / 1000),
        result.providerModel ?? call.model,
      );
      this.#output.write(writer.usage(result.usage));
    }
    this.#output.end(DONE_FRAME);
  }

  #commit(): void {
    this.#committed = true;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) return;
    let keepingUp = true;
    for (const frame of pending) keepingUp = this.#output.write(frame);
    if (!keepingUp) this.#waitForDrain();
  }

  #waitForDrain(): void {
    if (this.#waiting) return;
    this.#waiting = true;
    this.#flow?.pause();
    this.#output.onDrainOnce(this);
    this.#stallTimer = coarseTimer.schedule(this.#stallMs, stallForwarder, this);
  }
}

function stallForwarder(forwarder: StreamForwarder): void {
  forwarder.stall();
}

/** Keeps a non-streamed reply's bytes (the last attempt's: the one that answered). */
class BodyForwarder implements RouterSink {
  /** The reply's bytes as the provider sent them: as text when that encodes back to them exactly. */
  body: string | Buffer | undefined;

  onBody(body: Buffer, text: string): void {
    // Node writes a string body together with the response head and a Buffer after it, as a
    // separate queued chunk (discuss/0010). Text decoded without a replacement character was
    // valid UTF-8, which encodes back to the same bytes; anything else is forwarded as read.
    this.body = text.includes('\uFFFD') ? body : text;
  }
}

/** Answers from a cached reply in the wire format the client asked for. */
function replay(reply: CachedReply, output: CompletionOutput, stream: boolean, includeUsage: boolean): void {
  const id = completionId();
  const created = Math.floor(Date.now() / 1000);
  if (!stream) {
    const content = reply.chunks.length === 0 ? null : reply.chunks.join('');
    output.json(
      JSON.stringify(
        completionJson(id, created, reply.model, content, reply.toolCalls, reply.finishReason, reply.usage),
      ),
    );
    return;
  }
  const writer = new ChunkWriter(id, created, reply.model);
  output.write(writer.role());
  for (const chunk of reply.chunks) output.write(writer.text(chunk));
  if (reply.toolCalls.length > 0) output.write(writer.toolCalls(reply.toolCalls));
  output.write(writer.finish(reply.finishReason));
  if (includeUsage) output.write(writer.usage(reply.usage));
  output.end(DONE_FRAME);
}
