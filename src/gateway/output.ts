/** Told when a congested client has read what was queued for it. */
export interface DrainListener {
  onDrain(): void;
}

/**
 * Where a completion goes: a server route implements it over its response, so nothing in the
 * gateway knows about HTTP. A failure before `write` or `json` is thrown to the caller instead.
 */
export interface CompletionOutput {
  /** Sets a response header; only before the first write. */
  header(name: string, value: string): void;
  /**
   * Queues stream text (sent at the end of the current turn of the event loop, or at once past a
   * threshold); the first write sends the event-stream headers. False while the client is not
   * keeping up: the writer should stop producing until `onDrainOnce` calls back.
   */
  write(text: string): boolean;
  /** Ends a stream, after a last piece of text if given (one send for both). */
  end(text?: string): void;
  /** Sends a whole JSON answer (serialised already, or the provider's own bytes). */
  json(body: string | Buffer): void;
  /** Calls `listener.onDrain()` once, when the client has read what was queued for it. */
  onDrainOnce(listener: DrainListener): void;
  /** True once the first write or answer was made. */
  readonly started: boolean;
  /** True once the client went away. */
  readonly closed: boolean;
}
