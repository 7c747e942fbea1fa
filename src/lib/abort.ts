import { CancelledError } from '../errors.js';

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error an aborted signal stands for (its reason, or a CancelledError). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason;
  return new CancelledError('the task was cancelled');
}

/**
 * An AbortController that also aborts when a parent signal aborts. `dispose()` detaches it
 * from the parent so long-lived parents do not accumulate listeners.
 */
export class LinkedAbortController extends AbortController {
  #parent: AbortSignal | undefined;
  #onParentAbort: (() => void) | undefined;

  constructor(parent?: AbortSignal) {
    super();
    if (parent === undefined) return;
    if (parent.aborted) {
      this.abort(parent.reason);
      return;
    }
    this.#parent = parent;
    this.#onParentAbort = () => this.abort(parent.reason);
    parent.addEventListener('abort', this.#onParentAbort, { once: true });
  }

  dispose(): void {
    if (this.#parent !== undefined && this.#onParentAbort !== undefined) {
      this.#parent.removeEventListener('abort', this.#onParentAbort);
    }
    this.#parent = undefined;
    this.#onParentAbort = undefined;
  }
}
