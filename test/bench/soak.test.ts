import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers/agentd.js';

const root = new URL('../..', import.meta.url).pathname;
const dir = tempDir('agentd-soak-test-');

describe('npm run soak (20 s)', () => {
  after(() => dir.remove());

  it('drives the mixed workload, records every interval, and reports drift and errors by code', () => {
    const out = join(dir.path, 'soak.json');
    const result = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'bench/soak/run.ts'),
        ...['--duration', '20s', '--interval', '2s', '--calibrate', '2s', '--out', out],
      ],
      { cwd: root, encoding: 'utf8', timeout: 90_000 },
    );
    assert.notEqual(result.status, null, `the soak did not finish: ${result.stderr}`);
    const report = JSON.parse(readFileSync(out, 'utf8')) as {
      samples: Record<string, unknown>[];
      unexpected: number;
      unexpected_examples: string[];
      errors_by_code: Record<string, number>;
      drift: Record<string, number>;
      passed: boolean;
      failures: string[];
    };
    assert.equal(report.samples.length, 10, 'one sample per interval');
    for (const sample of report.samples) {
      for (const field of [
        'throughput',
        'p50_ms',
        'p99_ms',
        'rss_mib',
        'heap_used_mib',
        'event_loop_lag_p99_ms',
        'open_handles',
      ]) {
        assert.equal(typeof sample[field], 'number', field);
      }
      assert.ok((sample.rss_mib as number) > 10, 'the server process RSS is read');
      assert.ok((sample.open_handles as number) > 0, 'open handles come from the server metrics');
    }
    // Nothing failed that should not have: only the deliberate provider faults fail, with their codes.
    assert.equal(report.unexpected, 0, report.unexpected_examples.join('; '));
    for (const code of Object.keys(report.errors_by_code)) {
      assert.ok(['AGENTD_PROVIDER_UNAVAILABLE', 'AGENTD_CIRCUIT_OPEN'].includes(code), code);
    }
    for (const key of ['rss', 'p50', 'p99', 'throughput'])
      assert.equal(typeof report.drift[key], 'number', key);
    // The exit code is the verdict (drift on a loaded machine is not asserted here).
    assert.equal(result.status, report.passed ? 0 : 1, report.failures.join('; '));
    assert.match(result.stdout, /drift: RSS/);
  });
});
