// The agentd dashboard: polls the public API (/v1/tasks, /metrics, /readyz) and streams task
// events; no API of its own. An API key, when the server needs one, is kept in localStorage.

import { renderAdmission, renderCache, renderCharts } from './panels.js';
import { MetricsHistory, parsePrometheus } from './prometheus.js';
import { responseError } from './sse.js';
import { TaskBoard } from './tasks.js';

const KEY_STORAGE = 'agentd.apiKey';
const TASKS_EVERY_MS = 1500;
const METRICS_EVERY_MS = 5000;

const $ = (id) => document.getElementById(id);

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

function authHeaders() {
  const key = storedKey();
  return key === '' ? {} : { authorization: `Bearer ${key}` };
}

let needKey = false;

function askForKey() {
  needKey = true;
  $('key-needed').hidden = false;
  $('api-key').focus();
}

function showError(message) {
  const line = $('api-error');
  line.hidden = message === undefined;
  if (message !== undefined) line.textContent = message;
}

/** GETs or POSTs JSON from the API with the key; a 401 asks for a key. */
async function api(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { accept: 'application/json', ...init.headers, ...authHeaders() },
    cache: 'no-store',
  });
  if (response.status === 401) askForKey();
  if (!response.ok) throw await responseError(response);
  return response.json();
}

const board = new TaskBoard({ headers: authHeaders, onUnauthorized: askForKey });
const history = new MetricsHistory(60);

async function refreshTasks() {
  if (needKey && storedKey() === '') return;
  try {
    const page = await api('/v1/tasks?limit=100');
    needKey = false;
    $('key-needed').hidden = true;
    showError(undefined);
    board.update(page.data);
  } catch (err) {
    if (err.status !== 401) showError(`Could not list tasks: ${err.message}`);
  }
}

async function refreshMetrics() {
  let readiness;
  try {
    const response = await fetch('/readyz', { cache: 'no-store' });
    readiness = { ...(await response.json()), ready: response.ok };
    const badge = $('status');
    badge.textContent = readiness.ready
      ? 'ready'
      : readiness.status === 'draining'
        ? 'draining'
        : 'not ready';
    badge.className = `badge ${readiness.ready ? 'ok' : 'bad'}`;
    $('server-info').textContent =
      `v${readiness.version} · up ${readiness.uptime_seconds} s · ${readiness.total_tasks} tasks finished`;
  } catch {
    $('status').textContent = 'unreachable';
    $('status').className = 'badge bad';
  }
  let samples;
  try {
    const response = await fetch('/metrics', { cache: 'no-store' });
    if (!response.ok) throw await responseError(response);
    samples = parsePrometheus(await response.text()).samples.filter((s) => s.name.startsWith('agentd_'));
    history.add(Date.now(), samples);
    $('metrics-note').textContent = '';
    renderCharts(history);
    renderCache(samples);
  } catch (err) {
    $('metrics-note').textContent = `(metrics unavailable: ${err.message})`;
  }
  renderAdmission(readiness, samples);
}

function normaliseMemoryResults(body) {
  return (body?.data ?? []).map((item) => {
    const memory = item.memory ?? item;
    return {
      id: memory.id,
      text: memory.text ?? memory.content ?? '',
      score: item.score,
      scores: item.scores,
    };
  });
}

async function searchMemories(query) {
  const status = $('memory-status');
  const list = $('memory-results');
  status.textContent = 'Searching…';
  status.className = 'muted';
  list.replaceChildren();
  try {
    const body = await api('/v1/memories/search', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, top_k: 10 }),
    });
    const results = normaliseMemoryResults(body);
    status.textContent = results.length === 0 ? 'No memory matches.' : `${results.length} memories`;
    for (const result of results) {
      const item = document.createElement('li');
      item.textContent = result.text;
      const score = document.createElement('span');
      score.className = 'score';
      const parts = Object.entries(result.scores ?? {}).map(
        ([name, value]) => `${name} ${Number(value).toFixed(3)}`,
      );
      const total = typeof result.score === 'number' ? result.score.toFixed(3) : '';
      score.textContent = [total, parts.join(' · '), result.id ?? '']
        .filter((part) => part !== '')
        .join(' · ');
      item.appendChild(score);
      list.appendChild(item);
    }
  } catch (err) {
    status.className = 'error';
    status.textContent =
      err.status === 404
        ? `Memory search is not available on this server (${err.message})`
        : `Search failed: ${err.message}`;
  }
}

function every(ms, work) {
  const run = async () => {
    await work();
    setTimeout(run, ms);
  };
  run();
}

$('api-key').value = storedKey();
$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('api-key').value.trim();
  try {
    if (key === '') localStorage.removeItem(KEY_STORAGE);
    else localStorage.setItem(KEY_STORAGE, key);
  } catch {
    showError('This browser does not allow local storage: the key cannot be kept.');
  }
  refreshTasks();
});
$('key-forget').addEventListener('click', () => {
  localStorage.removeItem(KEY_STORAGE);
  $('api-key').value = '';
});
$('memory-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const query = $('memory-query').value.trim();
  if (query !== '') searchMemories(query);
});

every(TASKS_EVERY_MS, refreshTasks);
every(METRICS_EVERY_MS, refreshMetrics);
