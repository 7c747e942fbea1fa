import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TaskEvent, TaskEventLog } from '../../src/agent/index.js';

describe('TaskEventLog', () => {
  it('numbers events from 1 and replays those after a sequence number', () => {
    const log = new TaskEventLog(100);
    log.append('task.queued', {});
    log.append('task.started', {});
    log.append('llm.started', {});
    const live: TaskEvent[] = [];
    const sub = log.subscribe(1, (e) => live.push(e));
    assert.deepEqual(
      sub.backlog.map((e) => e.seq),
      [2, 3],
    );
    assert.equal(sub.gap, false);
    log.append('llm.completed', {});
    assert.deepEqual(
      live.map((e) => e.type),
      ['llm.completed'],
    );
    sub.unsubscribe();
    log.append('task.completed', {});
    assert.equal(live.length, 1, 'no delivery after unsubscribe');
    assert.equal(log.closed, true);
  });

  it('merges text deltas nobody has seen yet, so resume stays exact', () => {
    const log = new TaskEventLog(100);
    log.append('llm.started', {});
    log.appendDelta('Hel');
    log.appendDelta('lo');
    assert.equal(log.lastSeq, 2, 'merged into one event');
    const seen: TaskEvent[] = [];
    const sub = log.subscribe(0, (e) => seen.push(e));
    assert.equal(sub.backlog[1]!.data.text, 'Hello');
    log.appendDelta(' wor');
    log.appendDelta('ld');
    assert.deepEqual(
      seen.map((e) => e.data.text),
      [' wor', 'ld'],
      'a listener gets every delta',
    );
    sub.unsubscribe();
    log.appendDelta('!');
    log.appendDelta('!');
    const replay = log.subscribe(4, () => {});
    assert.deepEqual(
      replay.backlog.map((e) => e.data.text),
      ['!!'],
      'delivered deltas are never merged into',
    );
  });

  it('replays merged deltas whole after the events that follow them', () => {
    const log = new TaskEventLog(100);
    log.append('llm.started', {});
    for (const piece of ['agentd ', 'runs ', 'agent ', 'tasks.']) log.appendDelta(piece);
    log.append('llm.completed', {});
    log.appendDelta('second ');
    log.appendDelta('call');
    log.append('task.completed', {});
    assert.deepEqual(
      log.subscribe(0, () => {}).backlog.map((e) => [e.type, e.data.text]),
      [
        ['llm.started', undefined],
        ['llm.delta', 'agentd runs agent tasks.'],
        ['llm.completed', undefined],
        ['llm.delta', 'second call'],
        ['task.completed', undefined],
      ],
    );
  });

  it('reports a gap when the requested events were evicted', () => {
    const log = new TaskEventLog(8);
    for (let i = 0; i < 20; i++) log.append('llm.started', { i });
    const sub = log.subscribe(3, () => {});
    assert.equal(sub.gap, true);
    assert.deepEqual(
      sub.backlog.map((e) => e.seq),
      [13, 14, 15, 16, 17, 18, 19, 20],
    );
    assert.equal(log.subscribe(12, () => {}).gap, false);
  });

  it('drops a listener that throws without breaking the log', () => {
    const log = new TaskEventLog(10);
    log.subscribe(0, () => {
      throw new Error('socket gone');
    });
    log.append('task.started', {});
    log.append('task.completed', {});
    assert.equal(log.lastSeq, 2);
  });
});
