import type { Redis } from 'ioredis';

export type ClusterSignal = 'cancel' | 'done';

/**
 * Signals between nodes over Redis pub/sub, each carrying a task id: `cancel` asks the node running
 * the task to stop it; `done` tells nodes awaiting a task that it finished (its row is final in
 * storage). Pub/sub is fire-and-forget: receivers also reconcile with storage on a timer.
 */
export class ClusterBus {
  readonly #publisher: Redis;
  readonly #channels: Record<ClusterSignal, string>;

  private constructor(publisher: Redis, prefix: string) {
    this.#publisher = publisher;
    this.#channels = { cancel: `${prefix}cluster:cancel`, done: `${prefix}cluster:done` };
  }

  /** Subscribes `subscriber` (a connection of its own) and routes messages to `receive`. */
  static async open(
    publisher: Redis,
    subscriber: Redis,
    prefix: string,
    receive: (signal: ClusterSignal, taskId: string) => void,
  ): Promise<ClusterBus> {
    const bus = new ClusterBus(publisher, prefix);
    const byChannel = new Map<string, ClusterSignal>([
      [bus.#channels.cancel, 'cancel'],
      [bus.#channels.done, 'done'],
    ]);
    subscriber.on('message', (channel: string, message: string) => {
      const signal = byChannel.get(channel);
      if (signal !== undefined) receive(signal, message);
    });
    await subscriber.subscribe(bus.#channels.cancel, bus.#channels.done);
    return bus;
  }

  async send(signal: ClusterSignal, taskId: string): Promise<void> {
    await this.#publisher.publish(this.#channels[signal], taskId);
  }
}
