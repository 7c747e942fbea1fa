import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BudgetLedger, periodOf, TokenBucket } from '../../src/admission/index.js';

describe('TokenBucket', () => {
  it('allows a burst up to capacity, then refills at the configured rate', () => {
    const bucket = new TokenBucket(5, 10, 0);
    for (let i = 0; i < 5; i++) assert.equal(bucket.take(1, 0), 0);
    assert.equal(bucket.take(1, 0), 100, 'the next token arrives in 100 ms at 10/s');
    assert.equal(bucket.take(1, 50), 50);
    assert.equal(bucket.take(1, 100), 0);
    assert.equal(bucket.available(100), 0);
    assert.equal(bucket.available(300), 2);
  });

  it('never refills beyond capacity, even after a long pause or a clock jump forwards', () => {
    const bucket = new TokenBucket(3, 1, 0);
    bucket.take(3, 0);
    assert.equal(bucket.available(1_000_000_000), 3);
  });

  it('refills nothing when the clock jumps backwards, and resumes from there', () => {
    const bucket = new TokenBucket(10, 10, 1000);
    bucket.take(10, 1000);
    assert.equal(bucket.available(500), 0, 'backwards: no tokens appear');
    assert.equal(bucket.available(600), 1, 'refill resumes from the new time');
  });

  it('refuses forever what can never fit, and takes nothing on a refusal', () => {
    const bucket = new TokenBucket(100, 10, 0);
    assert.equal(bucket.take(101, 0), Number.POSITIVE_INFINITY);
    assert.equal(bucket.take(60, 0), 0);
    assert.equal(bucket.take(60, 0), 2000);
    assert.equal(bucket.available(0), 40, 'the refused take left the bucket as it was');
  });

  it('settles actual usage against an estimate: debit below zero, refund up to capacity', () => {
    const bucket = new TokenBucket(100, 100, 0);
    bucket.take(50, 0);
    bucket.debit(80, 0);
    assert.equal(bucket.available(0), -30);
    assert.equal(bucket.waitFor(10, 0), 400);
    bucket.refund(1000);
    assert.equal(bucket.available(0), 100);
  });
});

describe('budget periods', () => {
  it('names UTC days and months and knows when they end', () => {
    const t = Date.UTC(2026, 10, 22, 23, 59, 59);
    assert.deepEqual(periodOf('day', t), { key: '2026-11-22', endsAt: Date.UTC(2026, 10, 23) });
    assert.deepEqual(periodOf('month', t), { key: '2026-11', endsAt: Date.UTC(2026, 11, 1) });
    assert.equal(periodOf('month', Date.UTC(2026, 11, 31)).endsAt, Date.UTC(2027, 0, 1));
  });

  it('accumulates per scope and period, and forgets past periods', () => {
    const ledger = new BudgetLedger();
    const day1 = Date.UTC(2026, 10, 22, 12);
    const day2 = Date.UTC(2026, 10, 23, 12);
    assert.equal(ledger.charge('t:a:usd', 'day', 1.5, day1), 1.5);
    ledger.charge('t:a:usd', 'day', 1, day1);
    ledger.charge('t:a:usd', 'month', 2.5, day1);
    ledger.charge('t:b:usd', 'day', 7, day1);
    assert.equal(ledger.spent('t:a:usd', 'day', day1), 2.5);
    assert.equal(ledger.spent('t:b:usd', 'day', day1), 7);
    ledger.charge('t:a:usd', 'month', 1, day2);
    assert.equal(ledger.spent('t:a:usd', 'day', day2), 0, 'a new day starts empty');
    assert.equal(ledger.spent('t:a:usd', 'month', day2), 3.5, 'the month carries on');
  });
});
