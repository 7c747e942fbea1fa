import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Task } from '../../src/agent/index.js';
import { task as taskRecord } from '../helpers/store.js';

describe('Task', () => {
  it('resolves every whenFinished caller with the finished record, also after the fact', async () => {
    const task = new Task(taskRecord('t1', { status: 'running' }), 16);
    const early = [task.whenFinished(), task.whenFinished()];
    assert.equal(early[0], early[1], 'one promise for every caller');
    task.finish('succeeded', 'answer', null);
    for (const finished of await Promise.all(early)) {
      assert.equal(finished, task.record);
      assert.equal(finished.result, 'answer');
    }
    assert.equal((await task.whenFinished()).status, 'succeeded');
  });
});
