/**
 * `npm run bench:stream`: CPU per streamed chunk on agentd's side of a slow streaming task —
 * what the 100,000-task concurrency benchmark pays 50,000 times a second. One answer is the
 * mock's bytes (a first chunk, 60 one-word deltas, a finish chunk, a usage chunk, `[DONE]`: 63 events), one
 * event per Buffer as HTTP/2 DATA frames carry them, fed through the path a provider reply takes:
 * UTF-8 decoding, SSE parsing, the content fast path, and the task's event log (merged deltas
 * while nobody listens; one event per delta for a subscriber). Reported per chunk (answer ÷ 63).
 * Rows are side by side in one run; eventsource-parser + JSON.parse alone is the reference.
 */
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { Task } from '../../src/agent/task.js';
import { ChatStreamAssembler } from '../../src/llm/chat-stream.js';
import type { TaskRecord } from '../../src/store/index.js';
import { describeMachine } from '../lib/machine.js';
import { measureMicro } from '../lib/micro.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { round } from '../lib/stats.js';

const WORDS = 60;
const head =
  '{"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1796470467,"model":"mock","choices":[';
const frame = (body: string): Buffer => Buffer.from(`data: ${head}${body}\n\n`);
const frames: Buffer[] = [
  frame('{"index":0,"delta":{"role":"assistant","content":"Once "},"finish_reason":null}]}'),
];
for (let i = 1; i < WORDS; i++)
  frames.push(frame(`{"index":0,"delta":{"content":"word${i} "},"finish_reason":null}]}`));
frames.push(frame('{"index":0,"delta":{},"finish_reason":"stop"}]}'));
frames.push(frame('],"usage":{"prompt_tokens":6,"completion_tokens":60,"total_tokens":66}}'));
frames.push(Buffer.from('data: [DONE]\n\n'));
const CHUNKS = frames.length;

function record(): TaskRecord {
  return {
    id: 'bench',
    agent: 'bench',
    tenant_id: 'default',
    user_id: null,
    session_id: null,
    status: 'running',
    input: 'Tell me a long story.',
    result: null,
    partial: false,
    error: null,
    model: null,
    usage: { input_tokens: 0, output_tokens: 0 },
    cost_usd: 0,
    iterations: 1,
    tool_calls: 0,
    idempotency_key: null,
    metadata: null,
    options: {},
    attempt: 1,
    event_seq: 0,
    created_at: 0,
    started_at: 0,
    finished_at: null,
  };
}

let sink = 0;
/** The provider's per-answer work: decode each frame and assemble the reply. */
function answer(task: Task | undefined): void {
  const decoder = new StringDecoder('utf8');
  const assembler = new ChatStreamAssembler(task, 0);
  for (const chunk of frames) assembler.feed(decoder.write(chunk));
  if (!assembler.complete) throw new Error('incomplete answer');
  sink += assembler.result([]).content?.length ?? 0;
}

const results = await measureMicro({
  'reference: eventsource-parser + JSON.parse per event': () => {
    const decoder = new StringDecoder('utf8');
    const parser = createParser({
      onEvent: (event) => {
        if (event.data !== '[DONE]')
          sink += (JSON.parse(event.data) as { choices: unknown[] }).choices.length;
      },
    });
    for (const chunk of frames) parser.feed(decoder.write(chunk));
  },
  'agentd: decode + SSE + assemble': () => answer(undefined),
  'agentd: … + task events, nobody listening': () => answer(new Task(record(), 256)),
  'agentd: … + task events, one subscriber': () => {
    const task = new Task(record(), 256);
    task.events.subscribe(0, () => {
      sink++;
    });
    answer(task);
  },
});
if (sink === 0) throw new Error('nothing was parsed');

const machine = describeMachine();
const rows = results.map((r) => ({
  name: r.name,
  answer_us: r.p50_ns / 1000,
  chunk_ns: r.p50_ns / CHUNKS,
}));
const markdown = [
  table(
    ['per streamed answer (63 chunks)', 'µs per answer p50', 'ns per chunk'],
    rows.map((r) => [r.name, round(r.answer_us), Math.round(r.chunk_ns)]),
  ),
  '',
  `${CHUNKS} SSE events of the mock's format, one Buffer each. ${String(machine.cpu)}, Node ${String(machine.node)}. Command: \`npm run bench:stream\`.`,
].join('\n');
console.log(markdown);
const path = writeResult('stream-chunk', { machine, chunks_per_answer: CHUNKS, results: rows });
console.log(`wrote ${path}`);
updateDocs('stream-chunk', markdown);
