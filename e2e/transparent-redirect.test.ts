import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';

// Transparent redirect as in a Kubernetes pod: iptables sends the app's connections to the sidecar,
// which recovers where they were going from the kernel's connection-tracking table. The scenario
// runs in its own network namespace (netns/redirect-mesh.ts) so its addresses and iptables rules
// touch nothing else. It needs root (as istio-init does), iptables and unshare: .ci/run installs
// them.

const root = path.resolve(import.meta.dirname, '..');

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'root (CAP_NET_ADMIN) to create a network namespace and write iptables rules';
  for (const cmd of ['unshare', 'iptables', 'ip']) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      return `the ${cmd} command`;
    }
  }
  return undefined;
}

test('iptables-redirected connections reach the listener of their original destination; policy, passthrough and inbound all apply', async () => {
  const missing = missingPrerequisite();
  assert.equal(missing, undefined, `this test needs ${missing}`);
  const child = spawn('unshare', ['--net', '--', process.execPath, '--import', 'tsx', 'e2e/netns/redirect-mesh.ts'], {
    cwd: root,
    env: { ...process.env, TERN_TEST_DB: 'pglite', TERN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  // A proxy that lost track of destinations would loop connections to itself: do not hang on it.
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearTimeout(killer);
  const line = out.trim().split('\n').filter((l) => l.startsWith('{"listeners"') || l.startsWith('{"error"')).pop();
  assert.ok(line, `the scenario printed no result (exit ${code}): ${err}`);
  const r = JSON.parse(line) as Record<string, any>;
  assert.equal(r.error, undefined, `${r.error}\nproxy: ${r.proxyStderr}`);

  // The per-port listener is virtual (bind_to_port: false) and nothing is FAILED.
  assert.match(r.listeners, /^virtualOutbound::0\.0\.0\.0:15001$/m);
  assert.match(r.listeners, /^virtualInbound::0\.0\.0\.0:15006$/m);
  assert.match(r.listeners, /^0\.0\.0\.0_9080::0\.0\.0\.0:9080::virtual$/m);
  assert.doesNotMatch(r.listeners, /FAILED/);

  // Dialling v1's address with Host "reviews" is routed as the service: both versions answer…
  assert.deepEqual(Object.keys(r.defaultRoute).sort(), ['reviews-v1', 'reviews-v2']);
  assert.equal(r.defaultRoute['reviews-v1'] + r.defaultRoute['reviews-v2'], 20);
  // …and a VirtualService sends all of it to v2, whatever address the app dialled.
  assert.deepEqual(r.allToV2, { 'reviews-v2': 20 });
  // An address outside the mesh is passed through to where the app meant to go.
  assert.equal(r.passthrough, 'ping through the passthrough cluster');
  assert.ok(r.stats.some((l: string) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('destination_service="PassthroughCluster"')), 'the passthrough connection is counted');
  // A connection made to 15001 directly is closed, not looped back into the proxy.
  assert.ok(r.direct === '' || /ECONNRESET/.test(r.direct), r.direct);
  // Inbound: the pod's port 9080 reaches the app through virtualInbound's chain for that port.
  assert.deepEqual(r.inbound, { status: 200, body: 'productpage' });
  assert.ok(r.stats.some((l: string) => l.startsWith('istio_requests_total{reporter="destination"') && l.includes('response_code="200"')), 'the inbound request is counted');
  assert.equal(code, 0, err);
});
