// Tasks on the page: the live table with output streaming in, the selected task's output and
// full event log, recent tasks, recent failures and a per-agent summary. Rows are keyed by task
// id and updated in place: rebuilding a table on every token would swallow clicks.

import { formatValue } from './charts.js';
import { followTaskEvents, TaskOutput } from './sse.js';

/** Live tasks streamed at once (the selected task streams too, on top). */
const MAX_LIVE_STREAMS = 3;
const RECENT_ROWS = 25;
const FAILURE_ROWS = 10;
const TAIL_CHARS = 160;

const $ = (id) => document.getElementById(id);

function setText(element, value) {
  const text = String(value);
  if (element.textContent !== text) element.textContent = text;
}

function setStatus(cell, status) {
  setText(cell, status);
  const name = `status-${status}`;
  if (cell.className !== name) cell.className = name;
}

/** Ids start with a timestamp shared by tasks created together: the random tail tells them apart. */
function shortId(id) {
  return id.length > 13 ? `…${id.slice(-12)}` : id;
}

function isLive(status) {
  return status === 'queued' || status === 'running';
}

/** Start to end; for a running task, start to now; none for a task that never started. */
function durationSeconds(task) {
  if (task.started_at === null && task.finished_at === null) return Number.NaN;
  const start = Date.parse(task.started_at ?? task.created_at);
  const end = task.finished_at === null ? Date.now() : Date.parse(task.finished_at);
  return (end - start) / 1000;
}

function clock(date) {
  return (
    date.toLocaleTimeString([], { hour12: false }) + `.${String(date.getMilliseconds()).padStart(3, '0')}`
  );
}

function median(values) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A one-line description of an event for the log. */
function describe(type, data) {
  switch (type) {
    case 'task.queued':
    case 'task.started':
      return `agent ${data.agent ?? ''}${data.recovered ? ' (recovered after a restart)' : ''}`;
    case 'llm.started':
      return `iteration ${data.iteration ?? ''}`;
    case 'llm.discarded':
      return `${data.model ?? ''}: ${data.code ?? ''} ${data.reason ?? ''} — streamed text dropped`;
    case 'llm.stepped_down':
      return `to tier ${data.tier} (${data.reason})`;
    case 'llm.completed':
      return `${data.model ?? ''} · ${data.finish_reason ?? ''}`;
    case 'tool.started':
      return `${data.name}(${String(data.arguments ?? '').slice(0, 120)})`;
    case 'tool.completed':
      return `${data.name ?? data.id ?? ''} ${data.ok === false ? `failed: ${data.error?.message ?? ''}` : 'ok'}`;
    case 'task.completed':
      return data.error ? `${data.status}: ${data.error.code} ${data.error.message}` : String(data.status);
    default:
      return JSON.stringify(data).slice(0, 200);
  }
}

/** One task's event stream and the text it produced so far. */
class TaskStream {
  constructor(id, board) {
    this.id = id;
    this.board = board;
    this.output = new TaskOutput();
    this.events = [];
    this.completion = undefined;
    this.status = undefined;
    this.controller = new AbortController();
    followTaskEvents(id, {
      headers: board.headers,
      signal: this.controller.signal,
      onEvent: (type, data, eventId) => this.onEvent(type, data, eventId),
    }).catch((err) => board.onStreamError(this, err));
  }

  onEvent(type, data, eventId) {
    this.events.push({ id: eventId, type, data, received: new Date() });
    this.output.apply(type, data);
    if (type === 'task.started') this.status = 'running';
    else if (type === 'task.queued') this.status ??= 'queued';
    else if (type === 'task.completed') {
      this.status = data.status;
      this.completion = data;
    }
    this.board.changed(this);
  }

  close() {
    this.controller.abort();
  }
}

/** Keyed table rows, created once and updated in place. */
class RowSet {
  constructor(tbody, columns, onClick) {
    this.tbody = tbody;
    this.columns = columns;
    this.rows = new Map();
    this.onClick = onClick;
  }

  /** Shows exactly these ids, in this order; `fill(cells, id)` updates a row's cells. */
  show(ids, fill) {
    const wanted = new Set(ids);
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    let previous = null;
    for (const id of ids) {
      let row = this.rows.get(id);
      if (row === undefined) {
        const tr = document.createElement('tr');
        tr.dataset.taskId = id;
        const cells = this.columns.map((className) => {
          const td = document.createElement('td');
          if (className) td.className = className;
          tr.appendChild(td);
          return td;
        });
        tr.addEventListener('click', () => this.onClick(id));
        row = { tr, cells };
        this.rows.set(id, row);
      }
      const expected = previous === null ? this.tbody.firstChild : previous.nextSibling;
      if (expected !== row.tr) this.tbody.insertBefore(row.tr, expected);
      fill(row.cells, id);
      row.tr.classList.toggle('selected', id === this.selected);
      previous = row.tr;
    }
  }
}

/** Everything about tasks on the page. */
export class TaskBoard {
  constructor({ headers, onUnauthorized }) {
    this.headers = headers;
    this.onUnauthorized = onUnauthorized;
    this.tasks = [];
    this.byId = new Map();
    this.streams = new Map();
    this.selectedId = undefined;
    this.follow = true;
    this.logRows = 0;
    this.lastLogged = undefined;
    this.pending = false;
    const select = (id) => this.select(id, true);
    this.live = new RowSet($('live-tasks').tBodies[0], ['id', '', '', 'num', 'tail'], select);
    this.recent = new RowSet($('recent-tasks').tBodies[0], ['id', '', '', 'num', 'num', 'num'], select);
    this.failed = new RowSet($('failed-tasks').tBodies[0], ['id', '', '', 'error'], select);
    $('follow-newest').addEventListener('click', () => {
      this.follow = true;
      if (this.tasks[0] !== undefined) this.select(this.tasks[0].id, false);
    });
  }

  /** Takes a fresh task list (newest first) and adjusts streams and tables. */
  update(tasks) {
    this.tasks = tasks;
    this.byId = new Map(tasks.map((task) => [task.id, task]));
    if (this.follow && tasks[0] !== undefined && tasks[0].id !== this.selectedId)
      this.select(tasks[0].id, false);
    this.#adjustStreams();
    this.render();
  }

  select(id, byUser) {
    if (byUser) this.follow = false;
    $('follow-newest').hidden = this.follow;
    if (id === this.selectedId) return;
    this.selectedId = id;
    this.live.selected = this.recent.selected = this.failed.selected = id;
    $('event-log').tBodies[0].replaceChildren();
    this.logRows = 0;
    this.lastLogged = undefined;
    this.#adjustStreams();
    this.render();
  }

  #adjustStreams() {
    const wanted = new Set(
      this.tasks
        .filter((task) => isLive(task.status))
        .slice(0, MAX_LIVE_STREAMS)
        .map((task) => task.id),
    );
    if (this.selectedId !== undefined) wanted.add(this.selectedId);
    for (const [id, stream] of this.streams) {
      if (wanted.has(id)) continue;
      stream.close();
      this.streams.delete(id);
    }
    for (const id of wanted) if (!this.streams.has(id)) this.streams.set(id, new TaskStream(id, this));
  }

  changed() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  /**
   * A stream the server refused: without a key it is dropped (and re-opened once a key is given);
   * otherwise (say, a task gone from storage) it stays, with its error, so it is not retried.
   */
  onStreamError(stream, err) {
    if (err.status === 401) {
      this.onUnauthorized();
      if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
      return;
    }
    stream.error = err.message;
    this.changed(stream);
  }

  /** A task as best known: the listed record, overlaid with what its stream already told. */
  #current(id) {
    const task = this.byId.get(id);
    const stream = this.streams.get(id);
    if (stream?.completion === undefined) {
      return task === undefined || stream?.status === undefined ? task : { ...task, status: stream.status };
    }
    const done = stream.completion;
    return {
      ...(task ?? { id, agent: '', created_at: new Date().toISOString(), started_at: null }),
      status: done.status,
      result: done.result ?? null,
      error: done.error ?? null,
      model: done.model ?? task?.model ?? null,
      cost_usd: done.cost_usd ?? task?.cost_usd ?? 0,
      finished_at: task?.finished_at ?? new Date().toISOString(),
    };
  }

  render() {
    this.#renderLive();
    this.#renderSelected();
    this.#renderRecent();
    this.#renderAgents();
  }

  #renderLive() {
    const live = this.tasks.filter((task) => isLive(task.status)).map((task) => task.id);
    setText($('live-count'), live.length === 0 ? '' : `(${live.length})`);
    $('live-empty').hidden = live.length > 0;
    const now = Date.now();
    this.live.show(live, (cells, id) => {
      const task = this.#current(id);
      const stream = this.streams.get(id);
      setText(cells[0], shortId(id));
      cells[0].title = id;
      setText(cells[1], task.agent);
      setStatus(cells[2], task.status);
      setText(cells[3], `${Math.max(0, Math.round((now - Date.parse(task.created_at)) / 1000))} s`);
      setText(
        cells[4],
        stream === undefined
          ? '(not streamed: more than 3 live tasks)'
          : stream.output.text.slice(-TAIL_CHARS),
      );
    });
  }

  #renderRecent() {
    const recent = this.tasks.slice(0, RECENT_ROWS).map((task) => task.id);
    this.recent.show(recent, (cells, id) => {
      const task = this.#current(id);
      setText(cells[0], shortId(id));
      cells[0].title = id;
      setText(cells[1], task.agent);
      setStatus(cells[2], task.status);
      setText(cells[3], formatValue(durationSeconds(task), 's'));
      setText(cells[4], formatValue(task.usage?.total_tokens ?? 0, ''));
      setText(cells[5], formatValue(task.cost_usd ?? 0, 'usd'));
    });
    const failures = this.tasks.filter((task) => task.status === 'failed').slice(0, FAILURE_ROWS);
    $('failures-empty').hidden = failures.length > 0;
    this.failed.show(
      failures.map((task) => task.id),
      (cells, id) => {
        const task = this.byId.get(id);
        setText(cells[0], shortId(id));
        cells[0].title = id;
        setText(cells[1], task.agent);
        setText(cells[2], task.finished_at === null ? '' : new Date(task.finished_at).toLocaleTimeString());
        setText(cells[3], task.error === null ? 'failed' : `${task.error.code}: ${task.error.message}`);
      },
    );
  }

  #renderSelected() {
    const id = this.selectedId;
    setText($('selected-id'), id ?? '–');
    const details = $('selected-details');
    const output = $('task-output');
    const errorLine = $('task-error');
    if (id === undefined) {
      details.replaceChildren();
      setText(output, '');
      errorLine.hidden = true;
      return;
    }
    const task = this.#current(id);
    const stream = this.streams.get(id);
    if (task !== undefined) {
      const usage = task.usage ?? { input_tokens: 0, output_tokens: 0 };
      const rows = [
        ['Status', task.status],
        ['Agent', task.agent],
        ['Model', task.model ?? '–'],
        ['Created', new Date(task.created_at).toLocaleString()],
        ['Duration', formatValue(durationSeconds(task), 's')],
        ['Tokens', `${usage.input_tokens} in · ${usage.output_tokens} out`],
        ['Cost', formatValue(task.cost_usd ?? 0, 'usd')],
        ['Input', task.input ?? ''],
      ];
      this.#fillDetails(details, rows);
      details.querySelector('dd')?.setAttribute('class', `status-${task.status}`);
      errorLine.hidden = !task.error;
      if (task.error) setText(errorLine, `${task.error.code}: ${task.error.message}`);
    }
    const text = stream?.output.text ?? task?.result ?? '';
    if (output.textContent !== text) {
      const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
      output.textContent = text;
      if (atBottom) output.scrollTop = output.scrollHeight;
    }
    if (stream !== undefined) this.#renderLog(stream);
    if (stream?.error !== undefined && task?.error == null) {
      errorLine.hidden = false;
      setText(errorLine, `Could not stream this task's events: ${stream.error}`);
    }
  }

  #fillDetails(dl, rows) {
    if (dl.children.length !== rows.length * 2) {
      dl.replaceChildren();
      for (const [label] of rows) {
        const dt = document.createElement('dt');
        dt.textContent = label;
        dl.append(dt, document.createElement('dd'));
      }
    }
    rows.forEach(([, value], i) => {
      setText(dl.children[i * 2 + 1], value);
    });
  }

  /** Appends the events not yet shown; consecutive text deltas share one row. */
  #renderLog(stream) {
    const tbody = $('event-log').tBodies[0];
    for (; this.logRows < stream.events.length; this.logRows++) {
      const event = stream.events[this.logRows];
      const last = this.lastLogged;
      if (event.type === 'llm.delta' && last?.type === 'llm.delta') {
        last.count++;
        last.chars += (event.data.text ?? '').length;
        setText(last.cells[0], `${last.first}–${event.id ?? ''}`);
        setText(last.cells[3], `${last.count} deltas, ${last.chars} characters`);
        continue;
      }
      const tr = document.createElement('tr');
      tr.dataset.event = event.type;
      const cells = [0, 1, 2, 3].map(() => tr.appendChild(document.createElement('td')));
      cells[0].className = 'num';
      setText(cells[0], event.id ?? '');
      setText(cells[1], clock(event.received));
      setText(cells[2], event.type);
      const chars = (event.data.text ?? '').length;
      setText(
        cells[3],
        event.type === 'llm.delta' ? `1 delta, ${chars} characters` : describe(event.type, event.data),
      );
      if (event.type === 'task.completed' || event.type === 'llm.discarded')
        cells[3].className = `status-${event.data.status ?? 'failed'}`;
      tbody.appendChild(tr);
      this.lastLogged = { type: event.type, cells, count: 1, chars, first: event.id ?? '' };
    }
  }

  #renderAgents() {
    const agents = new Map();
    for (const task of this.tasks) {
      let row = agents.get(task.agent);
      if (row === undefined) {
        row = { tasks: 0, succeeded: 0, failed: 0, tokens: 0, cost: 0, durations: [] };
        agents.set(task.agent, row);
      }
      row.tasks++;
      if (task.status === 'succeeded') row.succeeded++;
      if (task.status === 'failed') row.failed++;
      row.tokens += task.usage?.total_tokens ?? 0;
      row.cost += task.cost_usd ?? 0;
      const seconds = task.finished_at === null ? Number.NaN : durationSeconds(task);
      if (Number.isFinite(seconds)) row.durations.push(seconds);
    }
    const tbody = $('agent-summary').tBodies[0];
    const names = [...agents.keys()].sort();
    while (tbody.rows.length > names.length) tbody.deleteRow(-1);
    names.forEach((name, i) => {
      const row = agents.get(name);
      const tr = tbody.rows[i] ?? tbody.insertRow();
      while (tr.cells.length < 7) tr.insertCell().className = tr.cells.length > 1 ? 'num' : '';
      const values = [
        name,
        row.tasks,
        row.succeeded,
        row.failed,
        formatValue(row.tokens, ''),
        formatValue(row.cost, 'usd'),
        formatValue(median(row.durations), 's'),
      ];
      values.forEach((value, c) => {
        setText(tr.cells[c], value);
      });
    });
  }
}
