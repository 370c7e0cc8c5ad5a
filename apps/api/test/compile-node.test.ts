import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { plainToStruct, type JsonObject } from '@tern/xds';
import { NodeMetadataError, proxyIdentityFromNode } from '../src/compile/index.ts';
import { proxy } from './compile-fixtures.ts';

// Node metadata -> ProxyIdentity: defaults, Istio's string-typed values, and clear errors.

function bad(metadata: JsonObject, message: RegExp, extra: { id?: string } = {}) {
  assert.throws(
    () => proxyIdentityFromNode({ id: extra.id ?? 'p1', metadata: plainToStruct(metadata) }),
    (err: unknown) => err instanceof NodeMetadataError && message.test(err.message),
  );
}

describe('compile: node metadata', () => {
  it('defaults: namespace default, sidecar, NONE, forward proxy on 15001, inbound 15006', () => {
    const p = proxyIdentityFromNode({ id: 'x' });
    assert.deepEqual(
      { ...p, metadata: undefined },
      { id: 'x', namespace: 'default', labels: {}, kind: 'sidecar', interception: 'NONE', outboundPort: 15001, inboundPort: 15006, upstreams: [], appPorts: {}, metadata: undefined },
    );
  });

  it('reads every key, native or as Istio-style strings', () => {
    const native = proxy({
      NAMESPACE: 'shop',
      WORKLOAD_NAME: 'cart-1',
      LABELS: { app: 'cart' },
      SERVICE_ACCOUNT: 'cart',
      INTERCEPTION: 'REDIRECT',
      OUTBOUND_PORT: 15001,
      INBOUND_PORT: 15006,
      UPSTREAMS: [{ host: 'Reviews', port: 9080, localPort: 19080 }],
      APP_PORTS: { '9080': 9081 },
      EGRESS_HOSTS: ['./*', 'istio-system/*'],
    });
    const strings = proxy({
      NAMESPACE: 'shop',
      WORKLOAD_NAME: 'cart-1',
      LABELS: '{"app":"cart"}',
      SERVICE_ACCOUNT: 'cart',
      INTERCEPTION: 'REDIRECT',
      OUTBOUND_PORT: '15001',
      INBOUND_PORT: '15006',
      UPSTREAMS: '[{"host":"reviews","port":"9080","localPort":"19080"}]',
      APP_PORTS: '{"9080":"9081"}',
      EGRESS_HOSTS: './*, istio-system/*',
    });
    for (const p of [native, strings]) {
      assert.equal(p.namespace, 'shop');
      assert.equal(p.workload, 'cart-1');
      assert.deepEqual(p.labels, { app: 'cart' });
      assert.equal(p.serviceAccount, 'cart');
      assert.equal(p.interception, 'REDIRECT');
      assert.deepEqual(p.upstreams, [{ host: 'reviews', port: 9080, localPort: 19080 }]);
      assert.deepEqual(p.appPorts, { '9080': 9081 });
      assert.deepEqual(p.egressHosts, ['./*', 'istio-system/*']);
    }
  });

  it("takes the namespace from an Istio-style node id when NAMESPACE is absent", () => {
    assert.equal(proxyIdentityFromNode({ id: 'sidecar~10.0.0.1~reviews-v1-abc.shop~shop.svc.cluster.local' }).namespace, 'shop');
    assert.equal(proxy({ NAMESPACE: 'other' }, { id: 'sidecar~10.0.0.1~reviews-v1-abc.shop~shop.svc.cluster.local' }).namespace, 'other');
  });

  it('detects proxyless gRPC clients by user agent, or TERN_MODE', () => {
    assert.equal(proxyIdentityFromNode({ id: 'g', user_agent_name: 'grpc-node-js' }).kind, 'proxyless');
    assert.equal(proxyIdentityFromNode({ id: 'g', user_agent_name: 'gRPC Node Pure JS' }).kind, 'proxyless');
    assert.equal(proxyIdentityFromNode({ id: 'g', user_agent_name: 'envoy' }).kind, 'sidecar');
    assert.equal(proxy({ TERN_MODE: 'proxyless' }).kind, 'proxyless');
    assert.equal(proxy({ TERN_MODE: 'sidecar' }, { user_agent_name: 'grpc-go' }).kind, 'sidecar');
  });

  it('rejects bad metadata naming the key and the rule', () => {
    assert.throws(() => proxyIdentityFromNode({}), /node\.id: is required/);
    bad({ UPSTREAMS: [{ host: 'a', port: 80, localPort: 'x' }] }, /^UPSTREAMS\[0\]\.localPort: must be a port number$/);
    bad({ UPSTREAMS: [{ host: 'a', port: 80 }] }, /^UPSTREAMS\[0\]\.localPort: is required$/);
    bad({ UPSTREAMS: [{ port: 80, localPort: 1 }] }, /^UPSTREAMS\[0\]\.host: is required$/);
    bad({ UPSTREAMS: [{ host: 'a', port: 70000, localPort: 1 }] }, /^UPSTREAMS\[0\]\.port: must be a port number$/);
    bad({ UPSTREAMS: [{ host: 'a', port: 1, localPort: 5 }, { host: 'b', port: 1, localPort: 5 }] }, /^UPSTREAMS\[1\]\.localPort: repeats 5/);
    bad({ UPSTREAMS: '{not json' }, /^UPSTREAMS: must be JSON/);
    bad({ UPSTREAMS: { host: 'a' } }, /^UPSTREAMS: must be a list/);
    bad({ NAMESPACE: 'Bad_NS' }, /^NAMESPACE: must be a namespace name/);
    bad({ OUTBOUND_PORT: -1 }, /^OUTBOUND_PORT: must be a port number/);
    bad({ INBOUND_PORT: 0 }, /^INBOUND_PORT: must be a port number$/);
    bad({ INTERCEPTION: 'TPROXY' }, /^INTERCEPTION: must be "NONE" or "REDIRECT"$/);
    bad({ TERN_MODE: 'ambient' }, /^TERN_MODE: must be "sidecar" or "proxyless"$/);
    bad({ LABELS: { app: 3 } }, /^LABELS\.app: must be a string$/);
    bad({ APP_PORTS: { http: 80 } }, /^APP_PORTS\.http: must be a port number$/);
    bad({ APP_PORTS: { '80': 'x' } }, /^APP_PORTS\.80: must be a port number$/);
    bad({ EGRESS_HOSTS: ['reviews'] }, /^EGRESS_HOSTS\[0\]: must be "<namespace>\/<host>"/);
    bad({ WORKLOAD_NAME: 5 }, /^WORKLOAD_NAME: must be a string$/);
  });
});
