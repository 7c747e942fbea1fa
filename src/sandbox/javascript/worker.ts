/**
 * A worker thread that runs JavaScript in QuickJS, one program at a time. The main thread
 * sends `{ id, spec }` and receives `{ id, result }`; between runs the next instance is
 * prepared, so a run only pays for creating its context.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type JsRunSpec, QuickJsEngine } from './quickjs.js';

export interface JsWorkerData {
  /** The memory limit most runs use: the prepared instance is made with it. */
  memoryBytes: number;
  /** The largest output cap a run may have: console lines are cut to it inside the VM. */
  maxOutputBytes: number;
}

export interface JsRunMessage {
  id: number;
  spec: JsRunSpec;
}

const port = parentPort!;
const { memoryBytes, maxOutputBytes } = workerData as JsWorkerData;
const engine = await QuickJsEngine.create(maxOutputBytes);
await engine.prepare(memoryBytes);

port.on('message', (message: JsRunMessage) => {
  engine.run(message.spec).then(
    (result) => {
      port.postMessage({ id: message.id, result });
      setImmediate(prepareNext);
    },
    (err: unknown) => {
      port.postMessage({ id: message.id, error: (err as Error).message ?? String(err) });
      setImmediate(prepareNext);
    },
  );
});
port.postMessage({ ready: true, prepared: true });

function prepareNext(): void {
  engine.prepare(memoryBytes).then(
    () => port.postMessage({ prepared: true }),
    (err: unknown) => {
      // An instance that cannot be made now is made on the next run instead.
      port.postMessage({ warning: `preparing a QuickJS instance failed: ${(err as Error).message}` });
    },
  );
}
