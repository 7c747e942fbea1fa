// Takes docs/images/dashboard.png: starts agentd on the mock model, runs a realistic mix of tasks
// (several agents and models, tool calls, cached replies, failures, a cancellation, tasks still
// streaming), waits for the charts to have history, and photographs the page in headless Chromium
// (saved with a 256-colour palette to stay small).
// Usage: npm run docs:screenshot
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { request } from 'undici';
import { MockLlmServer } from '../src/llm/index.js';
import { createLogger } from '../src/observability/index.js';
import { Runtime } from '../src/runtime/index.js';
import { buildServer } from '../src/server/index.js';
import { toPalettePng } from './png-palette.js';

const root = new URL('..', import.meta.url).pathname;
const output = join(root, 'docs/images/dashboard.png');
mkdirSync(join(root, 'docs/images'), { recursive: true });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const mock = await MockLlmServer.start();
const runtime = await Runtime.create({
  config: {
    storage: { path: ':memory:' },
    providers: { mock: { type: 'mock', base_url: mock.url } },
    models: {
      'gpt-4o-mini': {
        provider: 'mock',
        name: 'mock?ttft_ms=40&interval_ms=8&tokens=40',
        input_usd_per_mtok: 0.15,
        output_usd_per_mtok: 0.6,
      },
      'gpt-4o': {
        provider: 'mock',
        name: 'mock?ttft_ms=120&interval_ms=15&tokens=80',
        input_usd_per_mtok: 2.5,
        output_usd_per_mtok: 10,
      },
      'writer-slow': {
        provider: 'mock',
        name: 'mock?ttft_ms=300&interval_ms=250&tokens=400',
        input_usd_per_mtok: 2.5,
        output_usd_per_mtok: 10,
      },
      overloaded: { provider: 'mock', name: 'mock?fault=context_length' },
    },
    tiers: { small: ['gpt-4o-mini'], medium: ['gpt-4o-mini'], large: ['gpt-4o'] },
    agents: {
      support: { model: 'gpt-4o-mini', tools: ['calculator'], description: 'Answers customers' },
      researcher: { model: 'gpt-4o', description: 'Long-form research' },
      writer: { model: 'writer-slow', description: 'Drafts documents' },
    },
    limits: {
      tenants: { default: { requests_per_second: 50, burst: 40 } },
      agents: { researcher: { requests_per_second: 0.05, burst: 5 } },
      resource: { max_event_loop_lag_ms: 60_000, warn_ratio: 0.99, refuse_ratio: 1 },
    },
  },
  env: {},
  logger: createLogger({ level: 'silent' }),
});
const app = await buildServer(runtime);
const url = await app.listen({ host: '127.0.0.1', port: 0 });

async function submit(body: Record<string, unknown>): Promise<{ id: string; status: string }> {
  const res = await request(`${url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await res.body.json()) as { id: string; status: string };
}

const profile = join(tmpdir(), `agentd-screenshot-${process.pid}`);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
  ],
  viewport: { width: 1280, height: 900 },
  colorScheme: 'light',
});
try {
  const page = await context.newPage();
  await page.goto(`${url}/`);
  const questions = [
    'What is 12*7?',
    'What is 1024/8?',
    'Refund policy?',
    'What is 3+4?',
    'Reset my password',
  ];
  for (let round = 0; round < 3; round++) {
    const batch: Promise<unknown>[] = [];
    for (const input of questions) batch.push(submit({ agent: 'support', input, wait: true, cache: true }));
    batch.push(
      submit({
        agent: 'researcher',
        input: `Summarise the state of agent runtimes, part ${round + 1}`,
        wait: true,
      }),
    );
    batch.push(submit({ agent: 'assistant', input: 'Hello there', wait: true }));
    await Promise.all(batch);
    await sleep(5200); // one metrics scrape per round: the throughput chart gets history
  }
  await submit({ agent: 'researcher', input: 'A very long document', model: 'overloaded', wait: true });
  await submit({ agent: 'support', input: 'Another very long thread', model: 'overloaded', wait: true });
  // Past the researcher's rate: refused with 429, counted under "Refusals by limit".
  for (let i = 0; i < 3; i++) await submit({ agent: 'researcher', input: 'One more summary', wait: true });
  const cancelled = await submit({ agent: 'writer', input: 'Draft the Q3 report' });
  await sleep(500);
  await request(`${url}/v1/tasks/${cancelled.id}/cancel`, { method: 'POST' });
  await submit({ agent: 'writer', input: 'Draft the release notes for agentd 0.2' });
  await submit({ agent: 'writer', input: 'Write a migration guide' });
  await sleep(5500);
  await page.waitForSelector('#chart-throughput svg');
  writeFileSync(output, toPalettePng(await page.screenshot({ fullPage: true })));
  console.log(`wrote ${output} (${Math.round(statSync(output).size / 1024)} KB)`);
} finally {
  await context.close();
  await app.close();
  await runtime.close({ drainMs: 0 });
  await mock.close();
  rmSync(profile, { recursive: true, force: true });
}
