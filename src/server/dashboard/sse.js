// Server-sent events read with fetch() rather than EventSource: EventSource cannot send an
// Authorization header, and the dashboard must when the server has API keys.

/**
 * An incremental parser of the text/event-stream format: feed it text as it arrives (chunks may
 * split a line, or a CRLF, anywhere) and it returns the complete events ({ id, event, data }).
 * Comments (heartbeats) are dropped; `data` is the raw text (lines joined by \n).
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.pendingCr = false;
    this.reset();
  }

  reset() {
    this.id = undefined;
    this.event = '';
    this.data = [];
  }

  /** Parses a chunk of text; returns the events it completed. */
  push(text) {
    const events = [];
    let input = text;
    // A CR ended the previous chunk: an LF starting this one belongs to the same line break.
    if (this.pendingCr && input.startsWith('\n')) input = input.slice(1);
    this.pendingCr = false;
    this.buffer += input;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr === -1 && lf === -1) break;
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      const line = this.buffer.slice(start, end);
      start = end + 1;
      if (end === cr) {
        if (start === this.buffer.length) this.pendingCr = true;
        else if (this.buffer[start] === '\n') start++;
      }
      const event = this.line(line);
      if (event !== undefined) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  line(line) {
    if (line === '') {
      if (this.data.length === 0 && this.id === undefined && this.event === '') return undefined;
      const event = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
      this.reset();
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\u0000')) this.id = value;
    return undefined;
  }
}

/**
 * The text a task produced so far, built from its events: deltas append; `llm.discarded` (a
 * streamed attempt failed and is being retried or replaced) cuts the text back to where that model
 * call began; `task.completed` replaces it with the stored result.
 */
export class TaskOutput {
  constructor() {
    this.text = '';
    /** Where the current model call's text starts. */
    this.mark = 0;
  }

  apply(type, data) {
    if (type === 'llm.started') this.mark = this.text.length;
    else if (type === 'llm.delta') this.text += data.text ?? '';
    else if (type === 'llm.discarded') this.text = this.text.slice(0, this.mark);
    else if (type === 'task.completed' && typeof data.result === 'string') this.text = data.result;
  }
}

/**
 * Streams a task's events: calls `onEvent(type, data, id)` for each, resumes with `?after=<last id>`
 * when the connection drops, and resolves once `task.completed` arrived or `signal` aborted.
 * `headers()` is read on every (re)connect, so a key entered meanwhile is used. A non-2xx answer
 * rejects with an Error carrying `status` and the server's message.
 */
export async function followTaskEvents(taskId, { headers, onEvent, signal, retryMs = 1000 }) {
  let lastId;
  let completed = false;
  while (!completed && !signal.aborted) {
    const query = lastId === undefined ? '' : `?after=${encodeURIComponent(lastId)}`;
    let response;
    try {
      response = await fetch(`/v1/tasks/${encodeURIComponent(taskId)}/events${query}`, {
        headers: { accept: 'text/event-stream', ...headers() },
        signal,
        cache: 'no-store',
      });
    } catch {
      // Unreachable or refused: try again unless the page stopped following this task.
      if (signal.aborted) return;
      await pause(retryMs, signal);
      continue;
    }
    if (!response.ok) throw await responseError(response);
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          if (event.id !== undefined) lastId = event.id;
          let data;
          try {
            data = event.data === '' ? {} : JSON.parse(event.data);
          } catch {
            data = { text: event.data };
          }
          onEvent(event.event, data, event.id);
          if (event.event === 'task.completed') completed = true;
        }
      }
    } catch {
      // The connection dropped mid-stream: resume after the last event seen.
    }
    if (!completed && !signal.aborted) await pause(retryMs, signal);
  }
}

/** An Error for a non-2xx answer, with the server's `error.message` when it sent one. */
export async function responseError(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body?.error?.message) message = `${response.status}: ${body.error.message}`;
  } catch {
    // Not JSON: the status line says enough.
  }
  const error = new Error(message);
  error.status = response.status;
  return error;
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
