import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKind, KIND_API_GROUPS, type ServiceRecord, type WorkloadRecord } from '@tern/shared';
import { ANALYZERS, analyze, type AnalyzeOptions, type Diagnostic, type MeshState } from '../src/policy/analyze.ts';

// analyze() over a few hundred random meshes. The meshes draw names from small pools so that hosts,
// subsets, labels, namespaces and principals collide often, and every diagnostic code is produced
// somewhere in the run. (When analyze() moved from scans to indexes, this generator checked the
// new code against the old one, diagnostic for diagnostic; see the commit that introduced it.)
// What must hold for any mesh: the same mesh in any order gives the same diagnostics, sorted,
// without repeats, each naming a resource of the mesh, and the input is left untouched.

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/** mulberry32: small, fast, good enough to shuffle test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  /** 0..max items, each drawn by `f`. */
  some<T>(max: number, f: (i: number) => T): T[] {
    return Array.from({ length: this.int(max + 1) }, (_, i) => f(i));
  }
  maybe<T>(p: number, f: () => T): T | undefined {
    return this.chance(p) ? f() : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Random meshes

const NAMESPACES = ['default', 'shop', 'pay', 'istio-system', 'edge'];
const UNKNOWN_NAMESPACES = ['ghost', 'legacy'];
const NAMES = ['reviews', 'ratings', 'details', 'web', 'db'];
const VERSIONS = ['v1', 'v2', 'v3'];
const ACCOUNTS = ['default', 'reviews', 'bookinfo-web', 'sa-1'];
const PORTS = [80, 443, 8080, 9080];
const TIMESTAMPS = [undefined, '2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z', '2025-01-01T00:00:00Z'];

// Istio's v1 for the five kinds; anything else (a Gateway) gets networking's, as analysis ignores it.
const API = (kind: string): string => `${isKind(kind) ? KIND_API_GROUPS[kind] : 'networking.istio.io'}/v1`;

type Resource = MeshState['resources'][number];

class MeshGen {
  private readonly suffix: string;
  /** Two namespaces most things of this mesh live in, so that they meet. */
  private readonly hot: string[];
  constructor(
    private readonly r: Rand,
    readonly opts: AnalyzeOptions,
  ) {
    this.suffix = opts.domainSuffix ?? 'cluster.local';
    this.hot = [r.pick(NAMESPACES), r.pick(NAMESPACES)];
  }

  /** A namespace of the registry: mostly a hot one. */
  regNs(): string {
    return this.r.chance(0.7) ? this.r.pick(this.hot) : this.r.pick(NAMESPACES);
  }

  ns(): string {
    return this.r.chance(0.9) ? this.regNs() : this.r.pick(UNKNOWN_NAMESPACES);
  }

  labels(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.r.chance(0.8)) out['app'] = this.r.chance(0.85) ? this.r.pick(NAMES) : 'other';
    if (this.r.chance(0.6)) out['version'] = this.r.pick(VERSIONS);
    if (this.r.chance(0.2)) out['tier'] = this.r.pick(['front', 'back']);
    if (this.r.chance(0.1)) out['app.kubernetes.io/name'] = this.r.pick(NAMES);
    return out;
  }

  /** A host as written in policy: short, qualified, foreign, wildcard, odd. */
  host(): string {
    const name = this.r.pick(NAMES);
    const ns = this.regNs();
    switch (this.r.int(14)) {
      case 0:
      case 1:
      case 2:
        return name;
      case 3:
      case 4:
        return `${name}.${ns}.svc.${this.suffix}`;
      case 5:
        return `${name}.${ns}.svc.cluster.local`;
      case 6:
        return `${name}.${ns}`;
      case 7:
        return this.r.pick(['api.example.com', 'www.example.com', 'db.corp.com', 'reviews.example.com', 'shared.global', 'example.com']);
      case 8:
        return this.r.pick(['*.example.com', '*.com', '*', `*.${ns}.svc.${this.suffix}`, `*.svc.${this.suffix}`]);
      case 9:
        return this.r.pick(['foo*.bar', '*example.com', '**.com']);
      case 10:
        return this.r.pick(['ghost', `ghost.${ns}.svc.${this.suffix}`, 'nowhere.example.org']);
      case 11:
        return this.r.pick([name.toUpperCase(), ` ${name} `, 'Reviews.Example.com']);
      case 12:
        return this.r.pick(UNKNOWN_NAMESPACES.map((n) => `${name}.${n}.svc.${this.suffix}`));
      default:
        return name;
    }
  }

  exportTo(ns: string): string[] | undefined {
    switch (this.r.int(9)) {
      case 0:
        return [];
      case 1:
        return ['*'];
      case 2:
        return ['.'];
      case 3:
        return ['~'];
      case 4:
        return [this.r.pick(NAMESPACES)];
      case 5:
        return ['.', this.r.pick(NAMESPACES.filter((n) => n !== ns))];
      default:
        return undefined;
    }
  }

  res(kind: string, name: string, spec: unknown, ns: string | undefined): Resource {
    const metadata: Record<string, unknown> = { name };
    if (ns !== undefined) metadata['namespace'] = ns;
    const ts = this.r.pick(TIMESTAMPS);
    if (ts !== undefined) metadata['creationTimestamp'] = ts;
    return { apiVersion: API(kind), kind, metadata, spec } as unknown as Resource;
  }

  /** A namespace for a resource; undefined (defaulted to "default") now and then. */
  resourceNs(): string | undefined {
    return this.r.chance(0.05) ? undefined : this.ns();
  }

  service(): ServiceRecord {
    const namespace = this.regNs();
    const name = this.r.pick(NAMES);
    const hosts = [`${name}.${namespace}.svc.${this.suffix}`];
    // Declared hosts, some shared by services of several namespaces.
    if (this.r.chance(0.25)) hosts.push(this.r.pick(['reviews.example.com', 'API.example.com', 'db.corp.com', 'shared.global', `${name}.global`]));
    const labels = this.r.pick([{}, { app: name }, { app: name, service: name }, this.labels()]);
    const ports = this.r.some(2, () => {
      const number = this.r.pick(PORTS);
      return { name: 'p', number, protocol: 'HTTP' as const, ...(this.r.chance(0.3) ? { targetPort: this.r.pick(PORTS) } : {}) };
    });
    if (ports.length === 0) ports.push({ name: 'http', number: 9080, protocol: 'HTTP' });
    return { namespace, name, hosts, ports, labels, resourceVersion: '1' };
  }

  workload(i: number): WorkloadRecord {
    return {
      namespace: this.regNs(),
      name: `w-${i % 7}`,
      labels: this.labels(),
      serviceAccount: this.r.pick(ACCOUNTS),
      addresses: [],
      ports: {},
      resourceVersion: '1',
    };
  }

  destination(): Record<string, unknown> {
    const d: Record<string, unknown> = { host: this.host() };
    if (this.r.chance(0.55)) d['subset'] = this.r.chance(0.9) ? this.r.pick(VERSIONS) : 'canary';
    if (this.r.chance(0.25)) d['port'] = { number: this.r.pick([...PORTS, 1234]) };
    return d;
  }

  routes(): unknown[] {
    const routes: unknown[] = this.r.some(3, () => ({
      destination: this.destination(),
      ...(this.r.chance(0.6) ? { weight: this.r.pick([0, 20, 30, 50, 70, 80, 100]) } : {}),
    }));
    if (this.r.chance(0.03)) routes.push(null);
    return routes;
  }

  virtualService(i: number): Resource {
    const ns = this.resourceNs();
    const spec: Record<string, unknown> = { hosts: this.r.some(2, () => this.host()) };
    const gateways = this.r.pick([undefined, undefined, ['mesh'], ['gw'], ['gw', 'mesh'], []]);
    if (gateways) spec['gateways'] = gateways;
    const exportTo = this.exportTo(ns ?? 'default');
    if (exportTo) spec['exportTo'] = exportTo;
    spec['http'] = this.r.some(2, () => {
      const http: Record<string, unknown> = { route: this.routes() };
      if (this.r.chance(0.2)) http['mirror'] = this.destination();
      if (this.r.chance(0.15)) http['mirrors'] = this.r.some(2, () => ({ destination: this.destination() }));
      return http;
    });
    if (this.r.chance(0.25)) spec['tcp'] = this.r.some(2, () => ({ route: this.routes() }));
    if (this.r.chance(0.2)) spec['tls'] = this.r.some(2, () => ({ route: this.routes() }));
    return this.res('VirtualService', `vs-${i % 6}`, spec, ns);
  }

  tls(): Record<string, unknown> | undefined {
    return this.r.pick([undefined, { mode: 'DISABLE' }, { mode: 'SIMPLE' }, { mode: 'ISTIO_MUTUAL' }, { mode: 'MUTUAL' }, {}]);
  }

  trafficPolicy(): Record<string, unknown> | undefined {
    if (this.r.chance(0.4)) return undefined;
    const tp: Record<string, unknown> = {};
    const tls = this.tls();
    if (tls) tp['tls'] = tls;
    if (this.r.chance(0.3)) tp['portLevelSettings'] = this.r.some(2, () => ({ port: { number: this.r.pick(PORTS) }, tls: this.tls() }));
    return tp;
  }

  destinationRule(i: number): Resource {
    const ns = this.resourceNs();
    const spec: Record<string, unknown> = {};
    if (this.r.chance(0.97)) spec['host'] = this.host();
    const tp = this.trafficPolicy();
    if (tp) spec['trafficPolicy'] = tp;
    spec['subsets'] = this.r.some(3, (k) => {
      const s: Record<string, unknown> = {};
      if (this.r.chance(0.95)) s['name'] = this.r.chance(0.9) ? this.r.pick(VERSIONS) : `s${k}`;
      const labels = this.r.pick([{ version: this.r.pick(VERSIONS) }, { version: this.r.pick(VERSIONS), tier: 'front' }, {}, this.labels()]);
      if (this.r.chance(0.95)) s['labels'] = labels;
      const stp = this.r.maybe(0.3, () => this.trafficPolicy());
      if (stp) s['trafficPolicy'] = stp;
      return this.r.chance(0.03) ? null : s;
    });
    const exportTo = this.exportTo(ns ?? 'default');
    if (exportTo) spec['exportTo'] = exportTo;
    if (this.r.chance(0.15)) spec['workloadSelector'] = { matchLabels: this.r.pick([{ app: this.r.pick(NAMES) }, { version: 'v1' }]) };
    return this.res('DestinationRule', `dr-${i % 6}`, spec, ns);
  }

  serviceEntry(i: number): Resource {
    const ns = this.resourceNs();
    const spec: Record<string, unknown> = {
      hosts: this.r.some(2, () => this.r.pick(['api.example.com', '*.example.com', 'db.corp.com', '*.corp.com', this.host()])),
    };
    if (this.r.chance(0.7)) spec['ports'] = this.r.some(2, () => ({ number: this.r.pick([...PORTS, 5432]), name: 'p', protocol: 'TCP' }));
    const exportTo = this.exportTo(ns ?? 'default');
    if (exportTo) spec['exportTo'] = exportTo;
    return this.res('ServiceEntry', `se-${i % 4}`, spec, ns);
  }

  selector(): Record<string, unknown> | undefined {
    switch (this.r.int(6)) {
      case 0:
        return { matchLabels: { app: this.r.pick(NAMES) } };
      case 1:
        return { matchLabels: { app: this.r.pick(NAMES), version: this.r.pick(VERSIONS) } };
      case 2:
        return { matchLabels: this.r.chance(0.5) ? { app: 'nothing-here' } : {} };
      case 3:
        return { matchLabels: { tier: this.r.pick(['front', 'back']) } };
      default:
        return undefined;
    }
  }

  peerAuthentication(i: number): Resource {
    const ns = this.r.chance(0.25) ? (this.opts.rootNamespace ?? 'istio-system') : this.resourceNs();
    const spec: Record<string, unknown> = {};
    const selector = this.selector();
    if (selector) spec['selector'] = selector;
    const mode = this.r.pick(['STRICT', 'STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET', undefined]);
    if (mode || this.r.chance(0.5)) spec['mtls'] = mode ? { mode } : {};
    if (this.r.chance(0.3)) {
      const plm: Record<string, unknown> = {};
      for (const p of this.r.some(2, () => this.r.pick(PORTS))) plm[String(p)] = { mode: this.r.pick(['STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET']) };
      spec['portLevelMtls'] = plm;
    }
    return this.res('PeerAuthentication', `pa-${i % 5}`, spec, ns);
  }

  principal(): string {
    const ns = this.r.chance(0.8) ? this.r.pick(NAMESPACES) : this.r.pick(UNKNOWN_NAMESPACES);
    const sa = this.r.pick([...ACCOUNTS, 'nobody']);
    return this.r.pick([
      `cluster.local/ns/${ns}/sa/${sa}`,
      `spiffe://cluster.local/ns/${ns}/sa/${sa}`,
      `ns/${ns}/sa/${sa}`,
      `cluster.local/ns/${ns}/*`,
      `cluster.local/ns/*/sa/${sa}`,
      `cluster.local/ns/${ns.slice(0, 2)}*/sa/${sa}`,
      `cluster.local/ns/*${ns.slice(-2)}/sa/${sa}`,
      `cluster.local/ns/${ns}/sa/${sa.slice(0, 3)}*`,
      `cluster.local/ns/${ns}/sa/*${sa.slice(-2)}`,
      `cluster.local/ns/a*b/sa/${sa}`,
      '*',
      'garbage',
    ]);
  }

  sourceNamespace(): string {
    return this.r.pick([...NAMESPACES, ...UNKNOWN_NAMESPACES, 'sh*', '*ay', '*', 'g*', '*x', 'a*b', '']);
  }

  authorizationPolicy(i: number): Resource {
    const ns = this.resourceNs();
    const spec: Record<string, unknown> = {};
    const selector = this.selector();
    if (selector) spec['selector'] = selector;
    if (this.r.chance(0.1)) spec['targetRef'] = { kind: 'Gateway', name: 'gw' };
    if (this.r.chance(0.05)) spec['targetRefs'] = this.r.some(1, () => ({ kind: 'Service', name: 'reviews' }));
    spec['rules'] = this.r.some(2, () => ({
      from: this.r.some(2, () => {
        const source: Record<string, unknown> = {};
        if (this.r.chance(0.5)) source['principals'] = this.r.some(2, () => this.principal());
        if (this.r.chance(0.2)) source['notPrincipals'] = this.r.some(2, () => this.principal());
        if (this.r.chance(0.4)) source['namespaces'] = this.r.some(2, () => this.sourceNamespace());
        if (this.r.chance(0.2)) source['notNamespaces'] = this.r.some(2, () => this.sourceNamespace());
        return this.r.chance(0.05) ? {} : { source };
      }),
    }));
    return this.res('AuthorizationPolicy', `ap-${i % 5}`, spec, ns);
  }

  /**
   * TLS settings on a rule for a registered service, and PeerAuthentications around its workloads
   * (selectors taken from their labels, sometimes a pair too many): where TRN0301 and the ranking
   * of workload / namespace / mesh-wide policies come into play.
   */
  mtlsScenario(svc: ServiceRecord, workloads: WorkloadRecord[]): Resource[] {
    const r = this.r;
    const spec: Record<string, unknown> = {
      host: r.chance(0.7) ? svc.name : r.pick([`*.${svc.namespace}.svc.${this.suffix}`, '*', svc.hosts[0] as string]),
      trafficPolicy: { tls: this.tls() ?? { mode: 'DISABLE' }, ...(r.chance(0.3) ? { portLevelSettings: [{ port: { number: svc.ports[0]?.number }, tls: this.tls() }] } : {}) },
      subsets: r.some(2, () => ({ name: r.pick(VERSIONS), labels: { version: r.pick(VERSIONS) }, ...(r.chance(0.3) ? { trafficPolicy: { tls: this.tls() } } : {}) })),
    };
    const out = [this.res('DestinationRule', `dr-mtls-${r.int(3)}`, spec, r.chance(0.8) ? svc.namespace : this.ns())];
    const members = workloads.filter((w) => w.namespace === svc.namespace);
    for (let k = r.int(4); k > 0; k--) {
      const labels: Record<string, string> = r.chance(0.7) && members.length > 0 ? { ...r.pick(members).labels } : this.labels();
      if (r.chance(0.3)) labels['tier'] = r.pick(['front', 'back']);
      const pa: Record<string, unknown> = { mtls: { mode: r.pick(['STRICT', 'STRICT', 'PERMISSIVE', 'UNSET']) } };
      if (r.chance(0.6) && Object.keys(labels).length > 0) pa['selector'] = { matchLabels: labels };
      if (r.chance(0.3)) pa['portLevelMtls'] = { [String(r.pick(svc.ports).targetPort ?? r.pick(PORTS))]: { mode: r.pick(['STRICT', 'DISABLE']) } };
      const ns = r.chance(0.2) ? (this.opts.rootNamespace ?? 'istio-system') : svc.namespace;
      out.push(this.res('PeerAuthentication', `pa-mtls-${r.int(3)}`, pa, ns));
    }
    return out;
  }

  /**
   * One host answered by services of several namespaces, none with workloads of its own: a rule's
   * subsets are then matched against the workloads of all those namespaces (TRN0202).
   */
  sharedHostScenario(services: ServiceRecord[], workloads: WorkloadRecord[]): Resource[] {
    const r = this.r;
    const host = r.pick(['shared.global', 'reviews.example.com']);
    for (const namespace of [r.pick(NAMESPACES), r.pick(NAMESPACES)]) {
      const name = `shared-${r.int(3)}`;
      services.push({ namespace, name, hosts: [`${name}.${namespace}.svc.${this.suffix}`, host], ports: [{ name: 'http', number: 80, protocol: 'HTTP' }], labels: {}, resourceVersion: '1' });
      if (r.chance(0.7)) workloads.push({ ...this.workload(workloads.length), namespace });
    }
    const subsets = r.some(3, () => ({ name: r.pick(VERSIONS), labels: r.pick([{ version: r.pick(VERSIONS) }, this.labels()]) }));
    return [this.res('DestinationRule', `dr-shared-${r.int(2)}`, { host, subsets }, this.ns())];
  }

  private readonly byKind: Record<string, (i: number) => Resource> = {
    VirtualService: (i) => this.virtualService(i),
    DestinationRule: (i) => this.destinationRule(i),
    ServiceEntry: (i) => this.serviceEntry(i),
    PeerAuthentication: (i) => this.peerAuthentication(i),
    AuthorizationPolicy: (i) => this.authorizationPolicy(i),
  };

  mesh(scale: number): MeshState {
    const r = this.r;
    const resources: Resource[] = [
      ...r.some(6 * scale, (i) => this.virtualService(i)),
      ...r.some(6 * scale, (i) => this.destinationRule(i)),
      ...r.some(3 * scale, (i) => this.serviceEntry(i)),
      ...r.some(4 * scale, (i) => this.peerAuthentication(i)),
      ...r.some(3 * scale, (i) => this.authorizationPolicy(i)),
    ];
    if (r.chance(0.1)) resources.push(this.res('Gateway', 'gw', { servers: [] }, 'edge'));
    // Identical resources given twice; two different ones with the same identity (kind, namespace,
    // name, creationTimestamp) — only order-sensitive code tells them apart; input in no particular order.
    if (resources.length > 0 && r.chance(0.15)) resources.push(structuredClone(r.pick(resources)));
    if (resources.length > 0 && r.chance(0.25)) {
      const original = r.pick(resources) as unknown as { kind: string; metadata: unknown };
      const make = this.byKind[original.kind];
      if (make) resources.push({ ...(make(0) as object), metadata: structuredClone(original.metadata) } as unknown as Resource);
    }
    shuffle(r, resources);
    const services = r.some(6 * scale, () => this.service());
    const workloads = r.some(10 * scale, (i) => this.workload(i));
    if (services.length > 0 && r.chance(0.4)) resources.push(...this.mtlsScenario(r.pick(services), workloads));
    if (r.chance(0.2)) resources.push(...this.sharedHostScenario(services, workloads));
    if (r.chance(0.05)) (resources as unknown[]).push(null);
    return { resources, services, workloads };
  }
}

function shuffle<T>(r: Rand, xs: T[]): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
}

function options(r: Rand): AnalyzeOptions {
  switch (r.int(8)) {
    case 0:
      return { rootNamespace: 'shop' };
    case 1:
      return { domainSuffix: 'corp.internal' };
    default:
      return {};
  }
}

// ---------------------------------------------------------------------------------------------

const MESHES = 600;

function shuffled<T>(r: Rand, items: readonly T[]): T[] {
  const out = [...items];
  shuffle(r, out);
  return out;
}

/** The store never holds two resources with one identity; order may decide between such twins. */
function identitiesUnique(m: MeshState): boolean {
  const ids = m.resources.filter(Boolean).map((x) => `${x.kind}/${x.metadata.namespace ?? 'default'}/${x.metadata.name}`);
  return new Set(ids).size === ids.length;
}

const key = (d: Diagnostic) => [d.namespace, d.kind, d.resourceName, d.path, d.code, d.message];

describe('analyze() on random meshes', () => {
  test(`${MESHES} random meshes: order-independent, sorted, no repeats, input untouched; every code produced`, () => {
    const seen = new Map<string, number>();
    let total = 0;
    let reorderedChecked = 0;
    for (let seed = 1; seed <= MESHES; seed++) {
      const r = new Rand(seed);
      const opts = options(r);
      // Mostly small meshes (dense collisions), now and then a larger one (more interactions).
      const mesh = new MeshGen(r, opts).mesh(seed % 10 === 0 ? 4 : 1);
      const pristine = structuredClone(mesh);
      const out = analyze(mesh, opts);
      assert.deepStrictEqual(mesh, pristine, `mesh #${seed} was modified`);
      const reordered: MeshState = {
        resources: shuffled(r, mesh.resources),
        services: shuffled(r, mesh.services),
        workloads: shuffled(r, mesh.workloads),
      };
      if (identitiesUnique(mesh)) {
        assert.deepStrictEqual(analyze(reordered, opts), out, `mesh #${seed}: order changed the result`);
        reorderedChecked++;
      }
      const keys = out.map((d) => JSON.stringify(key(d)));
      assert.equal(new Set(keys).size, keys.length, `mesh #${seed}: a diagnostic is repeated`);
      for (let i = 1; i < out.length; i++) {
        const a = key(out[i - 1]!), b = key(out[i]!);
        const cmp = a.findIndex((v, k) => v !== b[k]);
        assert.ok(cmp === -1 || a[cmp]! < b[cmp]!, `mesh #${seed}: not sorted at ${i}`);
      }
      const names = new Set(mesh.resources.filter(Boolean).map((x) => `${x.kind}/${x.metadata.namespace ?? 'default'}/${x.metadata.name}`));
      for (const d of out) assert.ok(names.has(`${d.kind}/${d.namespace}/${d.resourceName}`), `mesh #${seed}: ${d.code} names no resource`);
      for (const d of out) seen.set(d.code, (seen.get(d.code) ?? 0) + 1);
      total += out.length;
    }
    const missing = ANALYZERS.map((a) => a.code).filter((c) => !seen.has(c));
    assert.deepEqual(missing, [], `codes never produced by the generated meshes: ${missing.join(', ')}`);
    assert.ok(total > MESHES, `expected plenty of diagnostics, got ${total}`);
    assert.ok(reorderedChecked > MESHES / 2, `order independence checked on only ${reorderedChecked} meshes`);
  });

  test('a large mesh: exactly the missing subsets and the subsets without workloads are reported', () => {
    const services: ServiceRecord[] = [];
    const workloads: WorkloadRecord[] = [];
    const resources: Resource[] = [];
    const missingSubset = new Set<string>();
    const noWorkloads = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const ns = `team-${i % 10}`;
      const name = `svc-${i}`;
      services.push({ namespace: ns, name, hosts: [`${name}.${ns}.svc.cluster.local`], ports: [{ name: 'http', number: 8080, protocol: 'HTTP' }], labels: {}, resourceVersion: '1' });
      // Every fifth service has no workloads; every seventh routes to a subset nobody defines.
      if (i % 5 !== 0) {
        for (const version of ['v1', 'v2'])
          workloads.push({ namespace: ns, name: `${name}-${version}`, labels: { app: name, version }, serviceAccount: name, addresses: [], ports: {}, resourceVersion: '1' });
      } else noWorkloads.add(`${ns}/${name}`);
      if (i % 7 === 0) missingSubset.add(`${ns}/${name}`);
      const meta = { name, namespace: ns };
      resources.push({
        apiVersion: API('DestinationRule'),
        kind: 'DestinationRule',
        metadata: meta,
        spec: { host: name, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
      } as unknown as Resource);
      resources.push({
        apiVersion: API('VirtualService'),
        kind: 'VirtualService',
        metadata: meta,
        spec: { hosts: [name], http: [{ route: [{ destination: { host: name, subset: i % 7 === 0 ? 'v3' : 'v1' } }] }] },
      } as unknown as Resource);
    }
    const out = analyze({ resources, services, workloads });
    const where = (code: string) => new Set(out.filter((d) => d.code === code).map((d) => `${d.namespace}/${d.resourceName}`));
    assert.deepEqual(where('TRN0102'), missingSubset);
    assert.deepEqual(where('TRN0202'), noWorkloads);
    assert.equal(out.filter((d) => d.code === 'TRN0202').length, noWorkloads.size * 2, 'one finding per subset');
    assert.deepEqual(new Set(out.map((d) => d.code)), new Set(['TRN0102', 'TRN0202']));
  });
});
