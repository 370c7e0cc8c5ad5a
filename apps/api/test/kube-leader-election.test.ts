import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { LeaderElector } from '../src/kube/leader-election.ts';
import { startRealApiServer, type RealApiServer } from './kube/real-apiserver.ts';

// Two reconcilers on a real kube-apiserver: one leader at a time, and failover within the lease
// time when the leader dies (or at once when it steps down).

let kube: RealApiServer;
let kc: KubeConfig;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const electors: LeaderElector[] = [];

before(async () => {
  kube = await startRealApiServer();
  kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'tern-system' } } });
});

after(async () => {
  for (const e of electors) await e.stop(false);
  await kube?.stop();
});

function elector(identity: string, name: string, log: string[]): LeaderElector {
  const e = new LeaderElector({
    kc, namespace: 'tern-system', name, identity, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 400,
    onStartedLeading: () => log.push(`${identity} +`),
    onStoppedLeading: () => log.push(`${identity} -`),
  });
  electors.push(e);
  return e.start();
}

async function until(check: () => boolean, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
  return Date.now() - start;
}

test('two candidates: exactly one leads, for as long as it lives; when it dies the other takes over within the lease time', async () => {
  const log: string[] = [];
  const a = elector('replica-a', 'tern-reconciler', log);
  const b = elector('replica-b', 'tern-reconciler', log);
  await until(() => a.isLeader || b.isLeader, 5000, 'a leader');
  // Never two at once, over several renewal periods.
  for (let i = 0; i < 20; i++) {
    assert.ok(!(a.isLeader && b.isLeader), `two leaders: ${log.join(', ')}`);
    assert.ok(a.isLeader || b.isLeader, `no leader: ${log.join(', ')}`);
    await sleep(150);
  }
  const [leader, other] = a.isLeader ? [a, b] : [b, a];
  const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'tern-reconciler', namespace: 'tern-system' });
  assert.equal(lease.spec?.holderIdentity, leader === a ? 'replica-a' : 'replica-b');
  assert.equal(lease.spec?.leaseDurationSeconds, 3);
  // The leader dies without releasing (a crash): the other waits out the lease, then leads.
  await leader.stop(false);
  const took = await until(() => other.isLeader, 8000, 'failover');
  assert.ok(took >= 2000, `took over after ${took} ms: not before the lease ran out`);
  // Protocol bounds, not performance: the lease (3 s) plus retry periods, with slack for a busy CI.
  assert.ok(took <= 6000, `took over after ${took} ms: within the lease time and a few retry periods`);
});

test('a leader that steps down releases the lease: the other leads within a retry period or two', async () => {
  const log: string[] = [];
  const a = elector('replica-c', 'tern-other-lease', log);
  await until(() => a.isLeader, 5000, 'c leads');
  const b = elector('replica-d', 'tern-other-lease', log);
  await sleep(1000);
  assert.ok(!b.isLeader);
  await a.stop(true);
  const took = await until(() => b.isLeader, 3000, 'd after the release');
  assert.ok(took < 2000, `took ${took} ms`);
  assert.deepEqual(log, ['replica-c +', 'replica-c -', 'replica-d +']);
});

test('a leader cut off from the API server stops leading once its renew deadline passes', async () => {
  const log: string[] = [];
  const a = elector('replica-e', 'tern-cut-off', log);
  await until(() => a.isLeader, 5000, 'e leads');
  await kube.stop();
  const took = await until(() => !a.isLeader, 8000, 'e steps down');
  // Not at the first failed renewal (it keeps leading within the 2 s deadline), but before the 3 s lease is over for others.
  assert.ok(took >= 1000 && took <= 5000, `stepped down after ${took} ms (renew deadline 2 s)`);
});
