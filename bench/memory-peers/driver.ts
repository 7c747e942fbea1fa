/**
 * One measurement process of `npm run bench:memory:peers`: one subject, one phase, a fresh
 * scratch directory. Prints `RESULT <json>` (or `FAILED <json reason>`) on stdout.
 *
 * - `load`: adds `count` memories for one user in batches, then times searches of that user
 *   (LoCoMo questions as queries, each query text used once per mode so no query cache answers).
 * - `locomo`: each LoCoMo conversation stored for its own user, every question of categories 1–4
 *   asked of its conversation; evidence recall@k.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from '../lib/stats.js';
import { allQuestions, corpus, loadConversations } from './data.js';
import type { MemorySubject, MemorySubjectModule } from './subject.js';

export type Phase = 'load' | 'locomo';

export interface DriverRequest {
  subject: string;
  phase: Phase;
  /** Memories of the one user (load phase). */
  count: number;
  baseURL: string;
  model: string;
  dimensions: number;
  /** Memories per add call. */
  batch: number;
  /** Untimed searches per mode before the timed ones (load phase). */
  warmup: number;
  /** Timed searches per mode at most (load phase)… */
  queries: number;
  /** …and seconds per mode at most. */
  searchSeconds: number;
  /** Seconds the timed adds may take at most: a subject still adding then stops (reported incomplete). */
  addSeconds: number;
  k: number;
  /** LoCoMo conversations of the locomo phase (all five unless fewer are asked for). */
  conversations: number;
}

export interface ModeFigures {
  p50_ms: number;
  p99_ms: number;
  searches: number;
  /** Searches that returned fewer than k results or an unknown memory. */
  short: number;
}

export interface DriverResult {
  subject: string;
  phase: Phase;
  /** Memories stored in the timed adds (fewer than asked when the add budget ran out). */
  count: number;
  /** False when the add budget ran out before every memory was stored: no search figures then. */
  complete: boolean;
  add_seconds: number;
  memories_per_sec: number;
  /** Per mode: latency of the timed searches (load phase) or of the questions (locomo phase). */
  search: Record<string, ModeFigures>;
  /** Per mode: mean evidence recall@k over the questions (locomo phase). */
  recall: Record<string, number>;
  questions: number;
  /** The process's peak resident set (VmHWM), MiB. */
  peak_rss_mib: number;
  seconds: number;
}

function peakRssMib(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return Number.isFinite(kib) ? kib / 1024 : process.memoryUsage().rss / 2 ** 20;
}

/** Adds `items` in batches until done or `deadline` (a `performance.now()` time); returns how many were added. */
async function addAll(
  subject: MemorySubject,
  user: string,
  items: readonly { ref: string; text: string }[],
  batch: number,
  deadline = Number.POSITIVE_INFINITY,
): Promise<number> {
  let added = 0;
  while (added < items.length && performance.now() < deadline) {
    const slice = items.slice(added, added + batch);
    await subject.add(user, slice);
    added += slice.length;
  }
  return added;
}

async function run(request: DriverRequest): Promise<DriverResult> {
  const began = performance.now();
  const dir = mkdtempSync(join(tmpdir(), `agentd-bench-memory-peers-${request.subject}-`));
  try {
    const module = (await import(`./subjects/${request.subject}.js`)) as MemorySubjectModule;
    const subject = await module.create({
      baseURL: request.baseURL,
      model: request.model,
      dimensions: request.dimensions,
      dir,
    });
    const conversations = loadConversations();
    const asked = request.phase === 'locomo' ? conversations.slice(0, request.conversations) : conversations;
    const result: DriverResult = {
      subject: request.subject,
      phase: request.phase,
      count: 0,
      complete: true,
      add_seconds: 0,
      memories_per_sec: 0,
      search: {},
      recall: {},
      questions: 0,
      peak_rss_mib: 0,
      seconds: 0,
    };
    // Warm-up adds for another user (lazy initialisation, JIT), untimed: the same for every subject.
    const warm = corpus(conversations, request.batch).map((item) => ({
      ref: `${item.ref}~warm-up`,
      text: `${item.text} (warm-up)`,
    }));
    await addAll(subject, 'warm-up', warm, request.batch);

    if (request.phase === 'load') {
      const items = corpus(conversations, request.count);
      const known = new Set(items.map((item) => item.ref));
      const started = performance.now();
      result.count = await addAll(
        subject,
        'u-bench',
        items,
        request.batch,
        started + request.addSeconds * 1000,
      );
      result.add_seconds = (performance.now() - started) / 1000;
      result.memories_per_sec = result.count / result.add_seconds;
      result.complete = result.count === items.length;
      const queries = allQuestions(conversations);
      let next = 0;
      for (const mode of result.complete ? subject.modes : []) {
        for (let i = 0; i < request.warmup; i++)
          await subject.search('u-bench', queries[next++ % queries.length]!, request.k, mode);
        const times: number[] = [];
        let short = 0;
        const deadline = performance.now() + request.searchSeconds * 1000;
        while (times.length < request.queries && performance.now() < deadline) {
          const query = queries[next++ % queries.length]!;
          const t0 = performance.now();
          const refs = await subject.search('u-bench', query, request.k, mode);
          times.push(performance.now() - t0);
          if (refs.length < request.k || refs.some((ref) => !known.has(ref))) short++;
        }
        result.search[mode] = {
          p50_ms: percentile(times, 50),
          p99_ms: percentile(times, 99),
          searches: times.length,
          short,
        };
      }
    } else {
      const started = performance.now();
      const deadline = started + request.addSeconds * 1000;
      for (const conversation of asked) {
        const added = await addAll(subject, conversation.id, conversation.turns, request.batch, deadline);
        result.count += added;
        result.complete &&= added === conversation.turns.length;
      }
      result.add_seconds = (performance.now() - started) / 1000;
      result.memories_per_sec = result.count / result.add_seconds;
      for (const mode of result.complete ? subject.modes : []) {
        let sum = 0;
        const times: number[] = [];
        let short = 0;
        for (const conversation of asked) {
          for (const question of conversation.questions) {
            const t0 = performance.now();
            const found = await subject.search(conversation.id, question.question, request.k, mode);
            times.push(performance.now() - t0);
            if (found.length < request.k) short++;
            const refs = new Set(found);
            sum += question.evidence.filter((e) => refs.has(e)).length / question.evidence.length;
          }
        }
        result.recall[mode] = sum / times.length;
        result.questions = times.length;
        result.search[mode] = {
          p50_ms: percentile(times, 50),
          p99_ms: percentile(times, 99),
          searches: times.length,
          short,
        };
      }
    }
    await subject.close();
    result.peak_rss_mib = peakRssMib();
    result.seconds = (performance.now() - began) / 1000;
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const request = JSON.parse(process.argv[2] ?? '{}') as DriverRequest;
try {
  const result = await run(request);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (err) {
  const error = err as Error;
  process.stdout.write(`FAILED ${JSON.stringify(`${error.name}: ${error.message}`.slice(0, 400))}\n`);
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
}
