import { describe, it } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareMesh } from '../src/compile/index.ts';
import { assertEncodes, assertGolden, buildMesh, injected, OPTIONS, proxy, type ServiceSpec, type WorkloadSpec } from './compile-fixtures.ts';
import type { JsonObject } from '@tern/xds';

// One small mesh per Istio feature, compiled for one proxy, checked against a golden file
// (fixtures/compile/<name>.json; UPDATE_GOLDEN=1 rewrites them) and encoded as real xDS.

const here = path.dirname(fileURLToPath(import.meta.url));
const sample = (f: string) => fs.readFileSync(path.join(here, '../../../samples/bookinfo', f), 'utf8');

const http = (number: number, protocol: 'HTTP' | 'GRPC' | 'HTTP2' | 'TCP' | 'TLS' | 'HTTPS' = 'HTTP', targetPort?: number) => ({ name: `${protocol.toLowerCase()}-${number}`, number, protocol, ...(targetPort ? { targetPort } : {}) });

const BOOKINFO_SERVICES: ServiceSpec[] = ['productpage', 'reviews', 'ratings', 'details'].map((name) => ({ name, ports: [http(9080)] }));
const BOOKINFO_WORKLOADS: WorkloadSpec[] = [
  { name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, addresses: ['10.0.0.10'] },
  { name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['10.0.0.21'] },
  { name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, addresses: ['10.0.0.22'] },
  { name: 'reviews-v3', labels: { app: 'reviews', version: 'v3' }, addresses: ['10.0.0.23'] },
  { name: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, addresses: ['10.0.0.31'] },
  { name: 'details-v1', labels: { app: 'details', version: 'v1' }, addresses: ['10.0.0.41'] },
];
const PRODUCTPAGE = { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', INTERCEPTION: 'REDIRECT' };

interface Case {
  name: string;
  yaml?: string;
  services?: ServiceSpec[];
  workloads?: WorkloadSpec[];
  node: JsonObject;
  userAgent?: string;
  mtls?: boolean;
}

const vs = (name: string, body: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: ${name} }\nspec:\n${body}\n---\n`;
const dr = (name: string, body: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: ${name} }\nspec:\n${body}\n---\n`;
const se = (name: string, body: string, ns = 'default') => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${body}\n---\n`;

const SMALL: ServiceSpec[] = [{ name: 'web', ports: [http(8080)] }, { name: 'api', ports: [http(8080)] }, { name: 'api-canary', ports: [http(8080)] }];
const SMALL_WL: WorkloadSpec[] = [
  { name: 'web-1', labels: { app: 'web', team: 'blue' }, addresses: ['10.1.0.1'] },
  { name: 'api-1', labels: { app: 'api', version: 'v1' }, addresses: ['10.1.0.2'] },
  { name: 'api-2', labels: { app: 'api', version: 'v2' }, addresses: ['10.1.0.3'] },
  { name: 'api-canary-1', labels: { app: 'api-canary' }, addresses: ['10.1.0.4'] },
];
const WEB_LOCAL = { NAMESPACE: 'default', WORKLOAD_NAME: 'web-1', OUTBOUND_PORT: 0, LABELS: { app: 'web', team: 'blue' }, UPSTREAMS: [{ host: 'api', port: 8080, localPort: 18080 }] };

const CASES: Case[] = [
  {
    name: 'default-routes-none',
    services: BOOKINFO_SERVICES,
    workloads: [...BOOKINFO_WORKLOADS, { name: 'productpage-local', labels: { app: 'productpage' }, addresses: ['127.0.0.1'], ports: { '9080': 19080 } }],
    node: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-local', APP_PORTS: { '9080': 9081 }, UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: 29080 }, { host: 'nowhere', port: 80, localPort: 29081 }] },
  },
  {
    name: 'bookinfo-redirect',
    yaml: sample('destination-rule-all.yaml') + '\n---\n' + sample('virtual-service-reviews-50-v3.yaml'),
    services: BOOKINFO_SERVICES,
    workloads: BOOKINFO_WORKLOADS,
    node: PRODUCTPAGE,
  },
  {
    name: 'vs-match',
    yaml: vs(
      'api',
      `  hosts: [api]
  http:
  - name: everything
    match:
    - name: exact
      uri: { exact: /v1/items }
      ignoreUriCase: true
      headers: { x-user: { exact: jason }, x-env: { prefix: prod }, x-id: { regex: "[0-9]+" }, x-present: {} }
      withoutHeaders: { x-debug: {} }
      queryParams: { q: { exact: "1" }, p: { regex: "a.*" }, flag: {} }
      method: { exact: POST }
      authority: { prefix: api }
    - name: prefix
      uri: { prefix: /v2 }
      port: 8080
    - name: regex
      uri: { regex: "/v[3-9]/.*" }
    - name: wrong-port
      port: 9999
    - name: blue-team
      sourceLabels: { team: blue }
      uri: { prefix: /blue }
    - name: red-team
      sourceLabels: { team: red }
      uri: { prefix: /red }
    - name: same-namespace
      sourceNamespace: default
      uri: { prefix: /ns }
    - name: other-namespace
      sourceNamespace: other
      uri: { prefix: /other }
    - name: gateway-only
      gateways: [istio-system/ingress]
      uri: { prefix: /gw }
    - name: mesh-gateway
      gateways: [mesh]
      uri: { prefix: /mesh }
    route: [{ destination: { host: api, subset: v2 } }]
  - name: red-only
    match: [{ sourceLabels: { team: red } }]
    route: [{ destination: { host: api, subset: v1 } }]
  - route: [{ destination: { host: api, subset: v1 } }]`,
    ),
    services: SMALL,
    workloads: SMALL_WL,
    node: WEB_LOCAL,
  },
  {
    name: 'vs-rewrite-redirect-direct',
    yaml: vs(
      'api',
      `  hosts: [api]
  http:
  - match: [{ uri: { prefix: /old } }]
    rewrite: { uri: /new, authority: api.internal }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { exact: /login } }]
    rewrite: { uri: /auth/login }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /re } }]
    rewrite: { uriRegexRewrite: { match: "^/re/(.*)$", rewrite: "/\\\\1" } }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /moved } }]
    redirect: { uri: /elsewhere, authority: web, redirectCode: 308, scheme: https, port: 8443 }
  - match: [{ uri: { prefix: /gone } }]
    directResponse: { status: 410, body: { string: "gone for good" } }
  - match: [{ uri: { prefix: /bytes } }]
    directResponse: { status: 200, body: { bytes: "aGVsbG8=" } }
  - route: [{ destination: { host: api } }]`,
    ),
    services: SMALL,
    workloads: SMALL_WL,
    node: WEB_LOCAL,
  },
  {
    name: 'vs-timeout-retries',
    yaml: vs(
      'api',
      `  hosts: [api]
  http:
  - match: [{ uri: { prefix: /slow } }]
    timeout: 1.5s
    retries: { attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,reset,503,unavailable,deadline-exceeded", retryRemoteLocalities: true, backoff: 25ms }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /once } }]
    retries: { attempts: 0 }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /sticky } }]
    retries: { attempts: 2, retryIgnorePreviousHosts: false }
    route: [{ destination: { host: api } }]
  - route: [{ destination: { host: api } }]`,
    ),
    services: SMALL,
    workloads: SMALL_WL,
    node: WEB_LOCAL,
  },
  {
    name: 'vs-fault',
    yaml:
      vs(
        'api',
        `  hosts: [api]
  http:
  - match: [{ uri: { prefix: /delay } }]
    fault: { delay: { fixedDelay: 7s, percentage: { value: 100 } } }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /abort } }]
    fault: { abort: { httpStatus: 503, percentage: { value: 12.5 } } }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /grpc } }]
    fault: { abort: { grpcStatus: UNAVAILABLE }, delay: { fixedDelay: 100ms, percent: 10 } }
    route: [{ destination: { host: api } }]
  - route: [{ destination: { host: api } }]`,
      ) + sample('virtual-service-ratings-test-abort.yaml'),
    services: [...SMALL, { name: 'ratings', ports: [http(9080)] }],
    workloads: SMALL_WL,
    node: { ...WEB_LOCAL, UPSTREAMS: [{ host: 'api', port: 8080, localPort: 18080 }, { host: 'ratings', port: 9080, localPort: 19080 }] },
  },
  {
    name: 'vs-mirror-cors-headers',
    yaml: vs(
      'api',
      `  hosts: [api]
  http:
  - match: [{ uri: { prefix: /one } }]
    mirror: { host: api-canary }
    mirrorPercentage: { value: 25.5 }
    route: [{ destination: { host: api } }]
  - match: [{ uri: { prefix: /many } }]
    mirrors:
    - destination: { host: api-canary }
      percentage: { value: 50 }
    - destination: { host: api, subset: v2 }
    route: [{ destination: { host: api } }]
  - corsPolicy:
      allowOrigins: [{ exact: "https://example.com" }, { regex: ".*\\\\.example\\\\.org" }]
      allowMethods: [GET, POST]
      allowHeaders: [x-user]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
    headers:
      request: { set: { x-a: "1", Host: api.example }, add: { x-b: "2" }, remove: [x-c] }
      response: { set: { x-d: "3" }, remove: [server] }
    route:
    - destination: { host: api, subset: v1 }
      weight: 90
      headers: { request: { set: { x-dest: v1 } } }
    - destination: { host: api, subset: v2 }
      weight: 10
      headers: { response: { add: { x-dest: v2 } } }`,
    ),
    services: SMALL,
    workloads: SMALL_WL,
    node: WEB_LOCAL,
  },
  {
    name: 'dr-load-balancer',
    yaml:
      dr(
        'api',
        `  host: api.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    portLevelSettings:
    - port: { number: 8081 }
      loadBalancer: { consistentHash: { httpHeaderName: x-user, ringHash: { minimumRingSize: 2048 } } }
    - port: { number: 8082 }
      loadBalancer: { consistentHash: { httpCookie: { name: session, path: /, ttl: 60s }, maglev: { tableSize: 65537 } } }
    - port: { number: 8083 }
      loadBalancer: { consistentHash: { useSourceIp: true } }
    - port: { number: 8084 }
      loadBalancer: { consistentHash: { httpQueryParameterName: shard } }
    - port: { number: 8085 }
      loadBalancer: { simple: PASSTHROUGH }
  subsets:
  - name: random
    labels: { version: v1 }
    trafficPolicy: { loadBalancer: { simple: RANDOM } }
  - name: least
    labels: { version: v2 }
    trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }`,
      ),
    services: [{ name: 'api', ports: [http(8080), http(8081), http(8082), http(8083), http(8084), http(8085)] }],
    workloads: SMALL_WL,
    node: { NAMESPACE: 'default', LABELS: { app: 'client' }, OUTBOUND_PORT: 15001 },
  },
  {
    name: 'dr-connection-pool-outlier',
    yaml: dr(
      'api',
      `  host: api
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 100, connectTimeout: 250ms, tcpKeepalive: { probes: 3, time: 7200s, interval: 75s }, maxConnectionDuration: 1h }
      http: { http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 5, maxRetries: 3, idleTimeout: 30s }
    outlierDetection: { consecutive5xxErrors: 7, consecutiveGatewayErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50, minHealthPercent: 25, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 4 }
  subsets:
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      connectionPool: { http: { h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 64 } }
      outlierDetection: { consecutive5xxErrors: 0 }
  - name: v1
    labels: { version: v1 }
    trafficPolicy:
      connectionPool: { http: { useClientProtocol: true } }`,
    ),
    services: [{ name: 'api', ports: [http(8080)] }, { name: 'grpc', ports: [http(50051, 'GRPC')] }, { name: 'h2', ports: [http(8443, 'HTTP2')] }],
    workloads: SMALL_WL,
    node: { NAMESPACE: 'default', LABELS: { app: 'client' } },
  },
  {
    name: 'dr-tls',
    yaml:
      dr(
        'ext',
        `  host: ext.example.com
  trafficPolicy:
    tls: { mode: SIMPLE, caCertificates: /etc/certs/ca.pem, subjectAltNames: [ext.example.com], sni: ext.example.com }
    portLevelSettings:
    - port: { number: 8443 }
      tls: { mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem }
    - port: { number: 9443 }
      tls: { mode: SIMPLE, credentialName: ext-credential }
    - port: { number: 80 }
      tls: { mode: DISABLE }`,
      ) +
      dr('api', `  host: api\n  trafficPolicy:\n    tls: { mode: ISTIO_MUTUAL }`) +
      se('ext', `  hosts: [ext.example.com]\n  ports: [{ number: 443, name: https, protocol: TLS }, { number: 8443, name: mtls, protocol: TLS }, { number: 9443, name: sds, protocol: TLS }, { number: 80, name: http, protocol: HTTP }]\n  resolution: DNS`),
    services: [{ name: 'api', ports: [http(8080)] }],
    workloads: SMALL_WL,
    node: { NAMESPACE: 'default', LABELS: { app: 'client' }, EGRESS_HOSTS: ['./*', '*/ext.example.com'] },
  },
  {
    name: 'mtls-on',
    mtls: true,
    yaml: dr('api', `  host: api\n  trafficPolicy:\n    tls: { mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/default/sa/api"] }`) + se('ext', `  hosts: [ext.example.com]\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  resolution: DNS`),
    services: [{ name: 'api', ports: [http(8080)] }, { name: 'web', ports: [http(8080)] }],
    workloads: injected(SMALL_WL),
    node: { NAMESPACE: 'default', LABELS: { app: 'client' }, EGRESS_HOSTS: '*/*' },
  },
  {
    name: 'service-entry',
    yaml:
      sample('service-entry-external.yaml') +
      '\n---\n' +
      se('static', `  hosts: [db.internal]\n  ports: [{ number: 5432, name: tcp-pg, protocol: TCP, targetPort: 15432 }]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  endpoints:\n  - { address: 10.9.0.1, labels: { role: primary }, locality: eu-west/a, weight: 3 }\n  - { address: 10.9.0.2, ports: { tcp-pg: 25432 }, locality: eu-west/b }`) +
      se('rr', `  hosts: [rr.example.com]\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  resolution: DNS_ROUND_ROBIN\n  endpoints: [{ address: lb.example.com }]`) +
      se('wild', `  hosts: ["*.wild.example.com"]\n  ports: [{ number: 443, name: tls, protocol: TLS }]\n  resolution: NONE`) +
      se('selected', `  hosts: [vm.internal]\n  ports: [{ number: 8080, name: http, protocol: HTTP }]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  workloadSelector: { labels: { app: api } }`) +
      se('hidden', `  hosts: [hidden.example.com]\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  resolution: DNS\n  exportTo: [other]`),
    workloads: SMALL_WL,
    node: { NAMESPACE: 'default', LABELS: { app: 'client' }, EGRESS_HOSTS: ['*/*'] },
  },
  {
    name: 'tcp-routes',
    yaml: vs(
      'db',
      `  hosts: [db]
  tcp:
  - match: [{ port: 5432, sourceLabels: { app: other } }]
    route: [{ destination: { host: db, subset: never } }]
  - route:
    - { destination: { host: db, subset: primary }, weight: 80 }
    - { destination: { host: db, subset: replica }, weight: 20 }`,
    ) + dr('db', `  host: db\n  subsets: [{ name: primary, labels: { role: primary } }, { name: replica, labels: { role: replica } }]`),
    services: [{ name: 'db', ports: [http(5432, 'TCP')] }],
    workloads: [
      { name: 'db-0', labels: { app: 'db', role: 'primary' }, addresses: ['10.2.0.1'] },
      { name: 'db-1', labels: { app: 'db', role: 'replica' }, addresses: ['10.2.0.2', '10.2.0.3'] },
    ],
    node: { NAMESPACE: 'default', LABELS: { app: 'client' }, UPSTREAMS: [{ host: 'db', port: 5432, localPort: 15432 }] },
  },
  {
    name: 'tcp-redirect',
    yaml: vs('db', `  hosts: [db]\n  tcp:\n  - route: [{ destination: { host: db, port: { number: 5432 } } }]`),
    services: [{ name: 'db', ports: [http(5432, 'TCP')] }, { name: 'cache', labels: { tier: 'cache' }, ports: [http(6379, 'TCP', 16379)] }],
    workloads: [
      { name: 'db-0', labels: { app: 'db' }, addresses: ['10.2.0.1'] },
      { name: 'cache-0', labels: { tier: 'cache', app: 'redis' }, addresses: ['10.2.0.9'] },
    ],
    node: { NAMESPACE: 'default', WORKLOAD_NAME: 'cache-0', INTERCEPTION: 'REDIRECT', INBOUND_PORT: 15006 },
  },
  {
    name: 'proxyless-grpc',
    yaml:
      dr('greeter', `  host: greeter\n  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }\n  subsets: [{ name: v1, labels: { version: v1 } }]`) +
      vs(
        'greeter',
        `  hosts: [greeter]
  http:
  - match: [{ headers: { x-version: { exact: v1 } } }]
    fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 0.5 } } }
    corsPolicy: { allowOrigins: [{ exact: "https://x" }] }
    route: [{ destination: { host: greeter, subset: v1 } }]
  - match: [{ uri: { prefix: /old } }]
    redirect: { uri: /new }
  - route: [{ destination: { host: greeter } }]`,
      ) +
      se('dns', `  hosts: [dns.example.com]\n  ports: [{ number: 443, name: grpc, protocol: GRPC }]\n  resolution: DNS`),
    services: [{ name: 'greeter', ports: [http(50051, 'GRPC')] }, { name: 'multi', namespace: 'other', ports: [http(50051, 'GRPC'), http(50052, 'GRPC'), http(6379, 'TCP')] }],
    workloads: [
      { name: 'greeter-1', labels: { app: 'greeter', version: 'v1' }, addresses: ['10.3.0.1'] },
      { name: 'multi-1', namespace: 'other', labels: { app: 'multi' }, addresses: ['10.3.0.2'], ports: { '50052': 60052 } },
    ],
    node: { NAMESPACE: 'default' },
    userAgent: 'grpc-node-js',
  },
  {
    name: 'forward-proxy',
    services: [
      { name: 'web', ports: [http(80)] },
      { name: 'api', ports: [http(8080), http(8081)], hosts: ['api.example.internal'] },
      { name: 'far', namespace: 'other', ports: [http(8080)] },
    ],
    yaml: se('dup', `  hosts: [api.example.internal]\n  ports: [{ number: 8080, name: http, protocol: HTTP }]\n  resolution: DNS`) + vs('far', `  hosts: [far.other.svc.cluster.local]\n  http:\n  - route: [{ destination: { host: far.other.svc.cluster.local } }]`).replace('name: far }', 'name: far, namespace: other }'),
    workloads: [{ name: 'web-1', labels: { app: 'web' }, addresses: ['127.0.0.1'], ports: { '80': 18000 } }],
    node: { NAMESPACE: 'default', WORKLOAD_NAME: 'web-1', OUTBOUND_PORT: '15001', EGRESS_HOSTS: './*,other/far.other.svc.cluster.local' },
  },
];

describe('compile: golden output per feature', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const mesh = buildMesh({ ...(c.yaml !== undefined ? { yaml: c.yaml } : {}), services: c.services ?? [], workloads: c.workloads ?? [] });
      const prepared = prepareMesh(mesh, 'r1', { ...OPTIONS, ...(c.mtls ? { mtls: true } : {}) });
      const out = prepared.compileFor(proxy(c.node, c.userAgent ? { user_agent_name: c.userAgent } : {}));
      assertEncodes(out);
      assertGolden(c.name, out);
    });
  }
});
