/** Something a cancellation can stop: an in-flight call, a child cancellation. */
export interface AbortTarget {
  abortWith(reason: Error): void;
}

/**
 * A cancellation token for the hot path. Node's AbortSignal is an EventTarget, and linking one
 * per provider request costs tens of microseconds; this is an array of targets and a reason.
 * Code that needs a standard AbortSignal (tool handlers, user code) gets one from `signal`,
 * created on first use.
 */
export class Cancellation implements AbortTarget {
  #reason: Error | undefined;
  #targets: AbortTarget[] | undefined;
  #controller: AbortController | undefined;

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get reason(): Error | undefined {
    return this.#reason;
  }

  /** Aborts once with `reason`, stopping every registered target; later calls do nothing. */
  abortWith(reason: Error): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    const targets = this.#targets;
    this.#targets = undefined;
    if (targets !== undefined) for (const target of targets) target.abortWith(reason);
    this.#controller?.abort(reason);
  }

  /** Registers a target; if already aborted, the target is aborted at once instead. */
  add(target: AbortTarget): void {
    if (this.#reason !== undefined) {
      target.abortWith(this.#reason);
      return;
    }
    if (this.#targets === undefined) this.#targets = [target];
    else this.#targets.push(target);
  }

  remove(target: AbortTarget): void {
    const targets = this.#targets;
    if (targets === undefined) return;
    const index = targets.lastIndexOf(target);
    if (index === -1) return;
    // The last target gone (a call settled): a finished task keeps no empty list.
    if (targets.length === 1) this.#targets = undefined;
    else targets.splice(index, 1);
  }

  /** A child that aborts with this one and can also be aborted alone; `dispose` detaches it. */
  child(): ChildCancellation {
    const child = new ChildCancellation(this);
    this.add(child);
    return child;
  }

  /** A standard AbortSignal that aborts with this cancellation (created on first use). */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#reason !== undefined) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }
}

export class ChildCancellation extends Cancellation {
  readonly #parent: Cancellation;

  constructor(parent: Cancellation) {
    super();
    this.#parent = parent;
  }

  dispose(): void {
    this.#parent.remove(this);
  }
}

/** Resolves after `ms`, or rejects with the cancellation's reason if it aborts first. */
export function sleep(ms: number, cancellation?: Cancellation): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cancellation?.remove(waiter);
      resolve();
    }, ms);
    const waiter: AbortTarget = {
      abortWith(reason: Error) {
        clearTimeout(timer);
        reject(reason);
      },
    };
    cancellation?.add(waiter);
  });
}
