import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiKeys, hashKey } from '../../src/admission/index.js';
import { loadConfig } from '../../src/config/index.js';
import { SqliteStore } from '../../src/store/index.js';

describe('API keys', () => {
  it('stores only a hash, maps a key to its identity, and stops accepting it once revoked', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const keys = new ApiKeys(store, loadConfig({ env: {} }).config);
    assert.equal(await keys.enabled(), false);
    const { key, record } = await keys.create({
      tenant: 'acme',
      user: 'ann',
      agents: ['assistant'],
      limits: { concurrency: 2 },
    });
    assert.match(key, /^agd_[A-Za-z0-9_-]{32}$/);
    assert.equal(record.hash, hashKey(key));
    assert.ok(!JSON.stringify(await store.listApiKeys()).includes(key.slice(4)), 'the secret is not stored');
    assert.equal(await keys.enabled(), true);
    const identity = await keys.identify(key);
    assert.equal(identity?.tenantId, 'acme');
    assert.equal(identity?.userId, 'ann');
    assert.deepEqual([...(identity?.agents ?? [])], ['assistant']);
    assert.equal(identity?.limits?.concurrency, 2);
    assert.equal(await keys.identify('agd_wrong'), undefined);
    assert.ok(await keys.revoke(record.id));
    assert.equal(await keys.identify(key), undefined);
    assert.equal(await keys.revoke(record.id), false);
    await store.close();
  });

  it('accepts keys declared in configuration by hash', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const config = loadConfig({
      env: {},
      config: { auth: { keys: [{ id: 'ci', hash: hashKey('agd_from-config'), tenant: 'ci' }] } },
    }).config;
    const keys = new ApiKeys(store, config);
    assert.equal(await keys.enabled(), true);
    assert.equal((await keys.identify('agd_from-config'))?.tenantId, 'ci');
    await store.close();
  });

  it('rejects an invalid tenant name', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const keys = new ApiKeys(store, loadConfig({ env: {} }).config);
    await assert.rejects(keys.create({ tenant: 'no spaces allowed' }), { code: 'AGENTD_INVALID_REQUEST' });
    await store.close();
  });
});
