/**
 * Where a completion goes: a server route implements it over its response, so nothing in the
 * gateway knows about HTTP. A failure before `write` or `json` is thrown to the caller instead.
 */
export interface CompletionOutput {
  /** Sets a response header; only before the first write. */
  header(name: string, value: string): void;
  /** Writes stream text; the first write sends the event-stream headers. */
  write(text: string): void;
  /** Ends a stream. */
  end(): void;
  /** Sends a whole JSON answer (serialised already, or the provider's own bytes). */
  json(body: string | Buffer): void;
  /** True once the first byte was sent. */
  readonly started: boolean;
  /** True once the client went away. */
  readonly closed: boolean;
}
