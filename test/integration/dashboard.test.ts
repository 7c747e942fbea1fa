import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { request } from 'undici';
import { MockLlmServer } from '../../src/llm/index.js';
import { createLogger } from '../../src/observability/index.js';
import { dashboardRoutes, loadDashboardAssets } from '../../src/server/routes/dashboard.js';
import { call, startAgentd, type TestAgentd, tempDir } from '../helpers/agentd.js';

// Browser globals, for the functions the page evaluates (this project compiles without the DOM lib).
declare const document: any;
declare const localStorage: any;

const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium with a fresh profile; fails with the install command when it is missing. */
async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    assert.fail(
      `Chromium is not installed at ${CHROMIUM}: run \`apt-get update && apt-get install -y chromium\``,
    );
  }
  const profile = tempDir('agentd-chromium-');
  const context = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      profile.remove();
    },
  };
}

/** Provider set-up: a fast model, a slowly streaming one and one that always fails. */
function config(mock: MockLlmServer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    providers: { mock: { type: 'mock', base_url: mock.url } },
    models: {
      m: { provider: 'mock', name: 'mock' },
      slow: { provider: 'mock', name: 'mock?ttft_ms=200&interval_ms=120&tokens=30' },
      broken: { provider: 'mock', name: 'mock?fault=context_length' },
    },
    tiers: { small: ['m'], medium: ['m'], large: ['m'] },
    // The machine running the tests is loaded: the resource guard must not refuse the test's tasks.
    limits: { resource: { max_event_loop_lag_ms: 60_000, warn_ratio: 0.99, refuse_ratio: 1 } },
    ...extra,
  };
}

async function waitForTask(url: string, id: string, headers: Record<string, string> = {}): Promise<any> {
  for (;;) {
    const res = await call(url, 'GET', `/v1/tasks/${id}`, undefined, headers);
    if (res.body.status !== 'queued' && res.body.status !== 'running') return res.body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Samples the selected task's output until the task ends; returns the distinct texts seen. */
async function watchOutput(page: Page, id: string): Promise<string[]> {
  await page.waitForFunction((taskId) => document.getElementById('selected-id')?.textContent === taskId, id);
  const seen: string[] = [];
  for (;;) {
    const { text, status } = await page.evaluate(() => ({
      text: document.getElementById('task-output')?.textContent ?? '',
      status: document.querySelector('#selected-details dd')?.textContent ?? '',
    }));
    if (text !== '' && text !== seen[seen.length - 1]) seen.push(text);
    if (status === 'succeeded' || status === 'failed' || status === 'cancelled') return seen;
    await page.waitForTimeout(50);
  }
}

describe('dashboard', () => {
  let mock: MockLlmServer;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  before(async () => {
    mock = await MockLlmServer.start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await mock?.close();
  });

  describe('on an open server', () => {
    let agentd: TestAgentd;
    let page: Page;
    const requested: string[] = [];
    const consoleErrors: string[] = [];
    before(async () => {
      agentd = await startAgentd({ config: config(mock) });
      page = await browser.context.newPage();
      page.on('request', (req) => requested.push(req.url()));
      page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text());
      });
      await page.goto(`${agentd.url}/`);
    });
    after(async () => {
      await page?.close();
      await agentd?.close();
    });

    it('serves the page and its assets with a strict CSP, ETags and 304 on reload', async () => {
      const res = await request(`${agentd.url}/`);
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /connect-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
      const html = await res.body.text();
      const etag = String(res.headers.etag);
      const again = await request(`${agentd.url}/`, { headers: { 'if-none-match': etag } });
      assert.equal(again.statusCode, 304);
      assert.equal(await again.body.text(), '');
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      assert.ok(assets.includes('/dashboard/dashboard.js') && assets.includes('/dashboard/dashboard.css'));
      for (const asset of [
        'dashboard.js',
        'dashboard.css',
        'tasks.js',
        'panels.js',
        'prometheus.js',
        'sse.js',
      ]) {
        const file = await request(`${agentd.url}/dashboard/${asset}`);
        assert.equal(file.statusCode, 200, asset);
        assert.match(
          String(file.headers['content-type']),
          asset.endsWith('.js') ? /javascript/ : /text\/css/,
        );
        const text = await file.body.text();
        // No CDN, no web fonts: the only absolute URL is the SVG namespace, which is never fetched.
        const external = text
          .match(/https?:\/\/[^\s'"`)]+/g)
          ?.filter((u) => u !== 'http://www.w3.org/2000/svg');
        assert.deepEqual(external ?? [], [], `${asset} refers to nothing outside agentd`);
        const cached = await request(`${agentd.url}/dashboard/${asset}`, {
          headers: { 'if-none-match': String(file.headers.etag) },
        });
        assert.equal(cached.statusCode, 304);
        await cached.body.dump();
      }
      const missing = await request(`${agentd.url}/dashboard/nope.js`);
      assert.equal(missing.statusCode, 404);
      await missing.body.dump();
    });

    it('shows a task started through the API, streams its output and its full event log', async () => {
      const created = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'Tell me about agentd',
        model: 'slow',
      });
      assert.equal(created.status, 202);
      const id: string = created.body.id;
      await page.waitForSelector(`#live-tasks tr[data-task-id="${id}"]`);
      const recentRow = await page.waitForSelector(`#recent-tasks tr[data-task-id="${id}"]`);
      const seen = await watchOutput(page, id);
      assert.ok(seen.length >= 3, `the output grew while streaming (${seen.length} distinct texts)`);
      for (let i = 1; i < seen.length - 1; i++) {
        assert.ok(seen[i]!.startsWith(seen[i - 1]!), 'streamed text only grows');
      }
      const task = await waitForTask(agentd.url, id);
      assert.equal(task.status, 'succeeded');
      assert.equal(await page.textContent('#task-output'), task.result);
      const events = await page.$$eval('#event-log tbody tr', (rows) =>
        rows.map((row) => (row as any).dataset.event),
      );
      assert.equal(events[0], 'task.queued');
      assert.equal(events[events.length - 1], 'task.completed');
      for (const type of ['task.started', 'llm.started', 'llm.delta', 'llm.completed'])
        assert.ok(events.includes(type), `event log has ${type}`);
      await page.waitForSelector(`#recent-tasks tr[data-task-id="${id}"] td.status-succeeded`);
      assert.equal(
        await recentRow.evaluate((row: any) => row.isConnected),
        true,
        'rows are updated in place',
      );
      await page.waitForFunction(() => !document.querySelector('#live-tasks tbody tr'));
    });

    it('lists a failed task with its error code and message', async () => {
      const created = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'This will not fit',
        model: 'broken',
        wait: true,
      });
      assert.equal(created.body.status, 'failed');
      const row = await page.waitForSelector(`#failed-tasks tr[data-task-id="${created.body.id}"]`);
      assert.match(String(await row.textContent()), new RegExp(created.body.error.code));
    });

    it('selects a clicked task and stays on it until told to follow the newest again', async () => {
      const first = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'One',
        wait: true,
      });
      await page.click(`#recent-tasks tr[data-task-id="${first.body.id}"]`);
      await page.waitForFunction(
        (id) => document.getElementById('selected-id').textContent === id,
        first.body.id,
      );
      assert.equal(await page.isVisible('#follow-newest'), true);
      const newer = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'Two',
        wait: true,
      });
      await page.waitForSelector(`#recent-tasks tr[data-task-id="${newer.body.id}"]`);
      assert.equal(await page.textContent('#selected-id'), first.body.id);
      assert.equal(await page.textContent('#task-output'), first.body.result);
      await page.click('#follow-newest');
      await page.waitForFunction(
        (id) => document.getElementById('selected-id').textContent === id,
        newer.body.id,
      );
      assert.equal(await page.isVisible('#follow-newest'), false);
    });

    it('fills the metrics, agent, admission and cache panels', async () => {
      await page.waitForSelector('#chart-latency svg', { timeout: 20_000 });
      assert.match(String(await page.textContent('#chart-latency')), /assistant/);
      await page.waitForSelector('#chart-ttft svg');
      await page.waitForSelector('#chart-tokens svg');
      await page.waitForSelector('#chart-throughput svg', { timeout: 20_000 });
      const summary = String(await page.textContent('#agent-summary tbody'));
      assert.match(summary, /assistant/);
      const readiness = String(await page.textContent('#readiness'));
      assert.match(readiness, /Readyyes/);
      assert.match(readiness, /Storageok/);
      assert.match(String(await page.textContent('#resource-guard')), /Heap/);
      await page.waitForSelector('#breakers tbody tr');
      assert.match(String(await page.textContent('#breakers')), /model:m/);
      assert.equal(await page.isVisible('#cache-empty'), true);
      assert.match(String(await page.textContent('#cache-empty')), /No cache activity yet\./);
      assert.deepEqual(consoleErrors, []);
    });

    it('shows the memory search 404 message when the server has no memory search', async () => {
      await page.fill('#memory-query', 'favourite colour');
      await page.click('#memory-form button');
      await page.waitForFunction(() =>
        /not available/.test(document.getElementById('memory-status')!.textContent!),
      );
      assert.match(String(await page.textContent('#memory-status')), /404/);
    });

    it('lists memory search results in either response shape', async () => {
      // No memory search exists on this server yet: the browser is answered as one would answer.
      const shapes = [
        {
          data: [
            {
              memory: { id: 'mem_1', text: 'Prefers green tea' },
              score: 0.91,
              scores: { fulltext: 0.8, semantic: 0.95 },
            },
            { memory: { id: 'mem_2', text: 'Lives in Lyon' }, score: 0.42, scores: { semantic: 0.42 } },
          ],
        },
        { data: [{ id: 'mem_3', text: 'Allergic to peanuts', score: 0.77 }] },
      ];
      const other = await browser.context.newPage();
      try {
        let answer = 0;
        await other.route('**/v1/memories/search', (route) =>
          route.fulfill({
            status: 200,
            contentType: 'application/json',
            body: JSON.stringify(shapes[answer++]),
          }),
        );
        await other.goto(`${agentd.url}/`);
        await other.fill('#memory-query', 'drinks');
        await other.click('#memory-form button');
        await other.waitForSelector('#memory-results li');
        const first = await other.$$eval('#memory-results li', (items) =>
          items.map((item: any) => item.textContent),
        );
        assert.equal(first.length, 2);
        assert.match(first[0]!, /^Prefers green tea0\.910 · fulltext 0\.800 · semantic 0\.950 · mem_1$/);
        assert.match(String(await other.textContent('#memory-status')), /2 memories/);
        await other.click('#memory-form button');
        await other.waitForFunction(() =>
          /Allergic/.test(document.getElementById('memory-results').textContent),
        );
        const second = await other.$$eval('#memory-results li', (items) =>
          items.map((item: any) => item.textContent),
        );
        assert.equal(second.length, 1);
        assert.match(second[0]!, /^Allergic to peanuts0\.770 · mem_3$/);
      } finally {
        await other.close();
      }
    });

    it('fetches nothing outside the server', () => {
      assert.ok(requested.length > 0);
      for (const url of requested) assert.ok(url.startsWith(`${agentd.url}/`), `${url} is agentd's`);
    });
  });

  describe('on a server with API keys', () => {
    let agentd: TestAgentd;
    before(async () => {
      agentd = await startAgentd({ config: config(mock) });
    });
    after(() => agentd?.close());

    it('asks for a key, keeps it, and streams the tenant tasks with it', async () => {
      const { key } = await agentd.runtime.keys.create({ tenant: 'acme' });
      const page = await browser.context.newPage();
      try {
        await page.goto(`${agentd.url}/`);
        await page.waitForSelector('#key-needed', { state: 'visible' });
        await page.fill('#api-key', key);
        await page.click('#key-form button[type=submit]');
        await page.waitForSelector('#key-needed', { state: 'hidden' });
        const headers = { authorization: `Bearer ${key}` };
        const created = await call(
          agentd.url,
          'POST',
          '/v1/tasks',
          { agent: 'assistant', input: 'Hello', model: 'slow' },
          headers,
        );
        assert.equal(created.status, 202);
        const seen = await watchOutput(page, created.body.id);
        assert.ok(seen.length >= 2, 'the output streamed with the key');
        const task = await waitForTask(agentd.url, created.body.id, headers);
        assert.equal(await page.textContent('#task-output'), task.result);
        assert.equal(await page.evaluate(() => localStorage.getItem('agentd.apiKey')), key);
      } finally {
        await page.close();
      }
    });
  });

  it('is off with server.dashboard: false', async () => {
    const agentd = await startAgentd({ config: config(mock, { server: { dashboard: false } }) });
    try {
      const res = await call(agentd.url, 'GET', '/');
      assert.equal(res.status, 404);
    } finally {
      await agentd.close();
    }
  });

  it('answers 503 naming the problem when its files are missing', async () => {
    const app = Fastify();
    const assets = loadDashboardAssets(['/nonexistent/dashboard/']);
    dashboardRoutes(app as any, createLogger({ level: 'silent' }), assets);
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 503);
    const body = res.json();
    assert.equal(body.error.code, 'AGENTD_DASHBOARD_UNAVAILABLE');
    assert.match(body.error.message, /index\.html.*\/nonexistent\/dashboard\/.*npm run build/);
    await app.close();
  });
});
