import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import YAML from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';

// An in-process Kubernetes API server, good enough for @kubernetes/client-node's real code paths:
// list (pagination with consistent snapshots, label/field selectors), get, create, replace
// (optimistic concurrency), merge/JSON/apply patches, delete, and watch (resume from a
// resourceVersion, bookmarks, 410 Expired in the stream). Tests steer failures through knobs:
// `expire`, `closeWatches`, `fail`, `unavailable`, `expireContinueTokens`.
// Not modelled: admission, defaulting, validation beyond names, strategic-merge semantics (treated
// as merge patch), server-side-apply field ownership conflicts, watch label-transition events.

export interface ResourceType {
  group: string; // '' for the core group
  version: string;
  resource: string; // plural, as in the URL
  kind: string;
  namespaced: boolean;
}

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  status: number;
}

export interface FailureRule {
  status: number; // 500, 403, 404, 410, 429…
  method?: string; // GET (list/get/watch), POST, PUT, PATCH, DELETE
  resource?: string; // plural resource name
  /** true: only watch requests; false: only non-watch requests; unset: both. */
  watch?: boolean;
  /** true: only list requests carrying a continue token (a page after the first). */
  continue?: boolean;
  /** How many matching requests fail (default 1; Infinity for "until cleared"). */
  times?: number;
  message?: string;
}

const BUILTIN: ResourceType[] = [
  { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true },
  { group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', namespaced: true },
  { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', resource: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  { group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true },
  { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true },
  { group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
  { group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
];

const gvrKey = (t: { group: string; version: string; resource: string }) => `${t.group}/${t.version}/${t.resource}`;
const apiVersionOf = (t: ResourceType) => (t.group ? `${t.group}/${t.version}` : t.version);
const objKey = (ns: string, name: string) => `${ns}/${name}`;
const clone = <T>(v: T): T => structuredClone(v);

interface Collection {
  type: ResourceType;
  objects: Map<string, KubeObject>;
  /** Every change, in resourceVersion order: what a watch from an older version replays. */
  log: Array<{ rv: number; type: WatchEventType; object: KubeObject }>;
  /** Watches from a resourceVersion at or below this get 410 Expired (etcd compaction). */
  compactedRv: number;
}

interface Watcher {
  type: ResourceType;
  namespace: string | undefined;
  selector: Selector;
  fields: Selector;
  bookmarks: boolean;
  res: http.ServerResponse;
}

interface Snapshot {
  items: KubeObject[];
  rv: number;
  offset: number;
  query: string;
}

export interface FakeApiServerOptions {
  /** Send a BOOKMARK to watches that allow them this often (0: only when `bookmark()` is called). */
  bookmarkIntervalMs?: number;
  /** More resource types (custom resources) besides the built-in ones. */
  resources?: ResourceType[];
}

export class FakeApiServer {
  readonly requests: RequestRecord[] = [];
  private readonly types = new Map<string, ResourceType>();
  private readonly collections = new Map<string, Collection>();
  private readonly watchers = new Set<Watcher>();
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly failures: Array<FailureRule & { left: number }> = [];
  private readonly missing = new Set<string>();
  private rv = 1;
  private server: http.Server;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  url = '';

  private constructor(opts: FakeApiServerOptions) {
    for (const t of [...BUILTIN, ...(opts.resources ?? [])]) this.addResourceType(t);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.sendStatus(res, 500, 'InternalError', String(err));
        else res.destroy();
      });
    });
    if (opts.bookmarkIntervalMs) {
      this.bookmarkTimer = setInterval(() => this.bookmark(), opts.bookmarkIntervalMs);
      this.bookmarkTimer.unref();
    }
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  async close(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  addResourceType(t: ResourceType): void {
    this.types.set(gvrKey(t), t);
    this.collections.set(gvrKey(t), { type: t, objects: new Map(), log: [], compactedRv: 0 });
  }

  // ---- knobs for tests ----

  /** The current (global) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Make the next matching requests fail with this status (a Kubernetes Status body). */
  fail(rule: FailureRule): void {
    this.failures.push({ ...rule, left: rule.times ?? 1 });
  }

  clearFailures(): void {
    this.failures.length = 0;
  }

  /** Every request to this resource answers 404 and discovery leaves it out (an API the cluster does not serve). */
  unavailable(resource: string, on = true): void {
    if (on) this.missing.add(resource);
    else this.missing.delete(resource);
  }

  /**
   * Compaction: history of `resource` up to now is gone. Open watches on it get an in-stream
   * `ERROR` event with a 410 Expired Status and are closed, as the real server does; resuming
   * from any older resourceVersion answers 410 too, so clients must re-list.
   */
  expire(resource: string): void {
    for (const c of this.collections.values()) {
      if (c.type.resource !== resource) continue;
      c.compactedRv = this.rv;
      c.log = [];
    }
    for (const w of [...this.watchers]) {
      if (w.type.resource !== resource) continue;
      this.writeEvent(w, 'ERROR', statusBody(410, 'Expired', 'too old resource version: compacted'));
      this.endWatch(w);
    }
  }

  /** Close open watches on `resource` cleanly (a server-side timeout): clients resume from their last version. */
  closeWatches(resource?: string): void {
    for (const w of [...this.watchers]) if (!resource || w.type.resource === resource) this.endWatch(w);
  }

  /** Continue tokens handed out so far answer 410 Expired. */
  expireContinueTokens(): void {
    this.snapshots.clear();
  }

  /** Send a BOOKMARK with the current resourceVersion to every watch that allowed bookmarks. */
  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      this.writeEvent(w, 'BOOKMARK', { kind: w.type.kind, apiVersion: apiVersionOf(w.type), metadata: { resourceVersion: String(this.rv) } });
    }
  }

  watchCount(resource?: string): number {
    return [...this.watchers].filter((w) => !resource || w.type.resource === resource).length;
  }

  // ---- direct object access for tests (same semantics as over HTTP, events included) ----

  /** Creates or replaces an object; `resource` is the plural name ('pods', 'endpointslices'…). */
  upsert(resource: string, obj: KubeObject): KubeObject {
    const t = this.typeByResource(resource);
    const ns = t.namespaced ? (obj.metadata.namespace ?? 'default') : undefined;
    const existing = this.collection(t).objects.get(objKey(ns ?? '', obj.metadata.name!));
    return existing ? this.doReplace(t, ns, obj.metadata.name!, obj, true) : this.doCreate(t, ns, obj);
  }

  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const t = this.typeByResource(resource);
    const c = this.collection(t);
    if (!c.objects.has(objKey(namespace ?? '', name))) return undefined;
    return this.doDelete(t, namespace, name);
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.collection(this.typeByResource(resource)).objects.get(objKey(namespace ?? '', name));
    return o && clone(o);
  }

  list(resource: string, namespace?: string): KubeObject[] {
    return [...this.collection(this.typeByResource(resource)).objects.values()].filter((o) => !namespace || o.metadata.namespace === namespace).map(clone);
  }

  private typeByResource(resource: string): ResourceType {
    const found = [...this.types.values()].find((t) => t.resource === resource);
    if (!found) throw new Error(`fake apiserver: unknown resource ${resource}`);
    return found;
  }

  private collection(t: ResourceType): Collection {
    return this.collections.get(gvrKey(t))!;
  }

  // ---- HTTP ----

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? 'GET';
    const record: RequestRecord = { method, path: url.pathname, query, contentType: req.headers['content-type'], status: 0 };
    this.requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    const body = method === 'GET' || method === 'DELETE' ? '' : await readBody(req);

    if (this.discovery(url.pathname, res)) return;
    const route = this.route(url.pathname);
    if (!route) return this.sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${method} ${url.pathname})`);
    const { type, namespace, name } = route;
    const isWatch = query.watch === 'true' || query.watch === '1';

    const rule = this.failures.find(
      (f) => f.left > 0 && (!f.method || f.method === method) && (!f.resource || f.resource === type.resource) && (f.watch === undefined || f.watch === isWatch) && (!f.continue || Boolean(query.continue)),
    );
    if (rule) {
      rule.left -= 1;
      const reason = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 410: 'Expired', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable' }[rule.status] ?? 'Unknown';
      return this.sendStatus(res, rule.status, reason, rule.message ?? `injected failure (${rule.status})`);
    }
    if (this.missing.has(type.resource)) return this.sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');

    try {
      switch (method) {
        case 'GET':
          if (isWatch) return this.watch(type, namespace, query, res);
          if (name) return this.sendJson(res, 200, this.getOne(type, namespace, name));
          return this.sendJson(res, 200, this.listPage(type, namespace, query));
        case 'POST':
          if (name) throw new ApiError(405, 'MethodNotAllowed', 'POST to a named object');
          return this.sendJson(res, 201, this.doCreate(type, namespace, parseJson(body)));
        case 'PUT': {
          if (!name) throw new ApiError(405, 'MethodNotAllowed', 'PUT needs a name');
          const obj = parseJson(body);
          if (obj.metadata?.name && obj.metadata.name !== name) throw new ApiError(400, 'BadRequest', `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
          return this.sendJson(res, 200, this.doReplace(type, namespace, name, obj, false));
        }
        case 'PATCH': {
          if (!name) throw new ApiError(405, 'MethodNotAllowed', 'PATCH needs a name');
          return this.patch(type, namespace, name, req.headers['content-type'] ?? '', body, query, res);
        }
        case 'DELETE': {
          if (!name) throw new ApiError(405, 'MethodNotAllowed', 'delete collection is not supported by the fake');
          if (!this.collection(type).objects.has(objKey(namespace ?? '', name))) throw notFound(type, name);
          return this.sendJson(res, 200, this.doDelete(type, namespace, name));
        }
        default:
          throw new ApiError(405, 'MethodNotAllowed', `method ${method} not allowed`);
      }
    } catch (err) {
      if (err instanceof ApiError) return this.sendStatus(res, err.code, err.reason, err.message, err.details);
      throw err;
    }
  }

  /** /api, /apis, /api/v1, /apis/<g>/<v>, /version. */
  private discovery(path: string, res: http.ServerResponse): boolean {
    const p = path.replace(/\/+$/, '');
    const live = [...this.types.values()].filter((t) => !this.missing.has(t.resource));
    if (p === '/version') {
      this.sendJson(res, 200, { major: '1', minor: '30', gitVersion: 'v1.30.0-fake', platform: 'linux/amd64' });
      return true;
    }
    if (p === '/api') {
      this.sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      return true;
    }
    if (p === '/apis') {
      const groups = new Map<string, Set<string>>();
      for (const t of live) if (t.group) (groups.get(t.group) ?? groups.set(t.group, new Set()).get(t.group)!).add(t.version);
      this.sendJson(res, 200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...groups].map(([name, vs]) => {
          const versions = [...vs].map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
          return { name, versions, preferredVersion: versions[0] };
        }),
      });
      return true;
    }
    const m = /^\/api\/(v1)$/.exec(p) ?? /^\/apis\/([^/]+\/[^/]+)$/.exec(p);
    if (m) {
      const gv = m[1]!;
      const resources = live.filter((t) => apiVersionOf(t) === gv);
      if (resources.length === 0) return false;
      this.sendJson(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: gv,
        resources: resources.map((t) => ({
          name: t.resource,
          singularName: t.kind.toLowerCase(),
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        })),
      });
      return true;
    }
    return false;
  }

  private route(path: string): { type: ResourceType; namespace: string | undefined; name: string | undefined } | undefined {
    const segs = path.split('/').filter(Boolean);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [resource, name, sub] = rest;
    if (!resource || rest.length > 3) return undefined;
    // Subresources (status, scale…) are served as the object itself.
    if (sub !== undefined && sub !== 'status') return undefined;
    const type = this.types.get(gvrKey({ group, version, resource }));
    if (!type) return undefined;
    if (!type.namespaced && namespace !== undefined) return undefined;
    return { type, namespace, name };
  }

  private getOne(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.collection(type).objects.get(objKey(namespace ?? '', name));
    if (!o) throw notFound(type, name);
    return o;
  }

  private listPage(type: ResourceType, namespace: string | undefined, query: Record<string, string>): unknown {
    const limit = query.limit ? Number(query.limit) : 0;
    const filterKey = `${namespace ?? ''}|${query.labelSelector ?? ''}|${query.fieldSelector ?? ''}`;
    let snap: Snapshot;
    if (query.continue) {
      const found = this.snapshots.get(query.continue);
      if (!found || found.query !== filterKey) {
        throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
      this.snapshots.delete(query.continue);
      snap = found;
    } else {
      const selector = parseSelector(query.labelSelector ?? '', 'labelSelector');
      const fields = parseSelector(query.fieldSelector ?? '', 'fieldSelector');
      const items = [...this.collection(type).objects.values()]
        .filter((o) => matches(o, namespace, selector, fields))
        .sort((a, b) => (objKey(a.metadata.namespace ?? '', a.metadata.name!) < objKey(b.metadata.namespace ?? '', b.metadata.name!) ? -1 : 1))
        .map(clone);
      snap = { items, rv: this.rv, offset: 0, query: filterKey };
    }
    const end = limit > 0 ? Math.min(snap.offset + limit, snap.items.length) : snap.items.length;
    const page = snap.items.slice(snap.offset, end);
    const metadata: Record<string, unknown> = { resourceVersion: String(snap.rv) };
    if (end < snap.items.length) {
      const token = Buffer.from(randomUUID()).toString('base64url');
      this.snapshots.set(token, { ...snap, offset: end });
      metadata.continue = token;
      metadata.remainingItemCount = snap.items.length - end;
    }
    return { kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata, items: page };
  }

  private bump(): string {
    this.rv += 1;
    return String(this.rv);
  }

  private emit(type: ResourceType, event: WatchEventType, obj: KubeObject): void {
    const c = this.collection(type);
    const rv = Number(obj.metadata.resourceVersion);
    c.log.push({ rv, type: event, object: clone(obj) });
    for (const w of this.watchers) {
      if (w.type !== type || !matches(obj, w.namespace, w.selector, w.fields)) continue;
      this.writeEvent(w, event, obj);
    }
  }

  private doCreate(type: ResourceType, pathNs: string | undefined, input: KubeObject): KubeObject {
    const obj = clone(input);
    if (!obj || typeof obj !== 'object' || !obj.metadata || typeof obj.metadata !== 'object') throw new ApiError(400, 'BadRequest', 'the object has no metadata');
    const ns = type.namespaced ? (pathNs ?? obj.metadata.namespace ?? 'default') : undefined;
    if (type.namespaced && obj.metadata.namespace && obj.metadata.namespace !== ns) {
      throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = `${obj.metadata.generateName}${randomUUID().slice(0, 5)}`;
    const name = obj.metadata.name;
    if (!name || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) {
      throw new ApiError(422, 'Invalid', `${type.kind} "${name ?? ''}" is invalid: metadata.name: Invalid value: must be a lowercase RFC 1123 subdomain`, { name: name ?? '', group: type.group, kind: type.kind });
    }
    const c = this.collection(type);
    if (c.objects.has(objKey(ns ?? '', name))) {
      throw new ApiError(409, 'AlreadyExists', `${type.resource}${type.group ? `.${type.group}` : ''} "${name}" already exists`, { name, group: type.group, kind: type.resource });
    }
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    obj.metadata = {
      ...obj.metadata,
      ...(ns !== undefined ? { namespace: ns } : {}),
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      generation: 1,
      resourceVersion: this.bump(),
    };
    c.objects.set(objKey(ns ?? '', name), obj);
    this.emit(type, 'ADDED', obj);
    return clone(obj);
  }

  /** `force`: the tests' direct upsert, which ignores a stale resourceVersion. */
  private doReplace(type: ResourceType, pathNs: string | undefined, name: string, input: KubeObject, force: boolean): KubeObject {
    const c = this.collection(type);
    const ns = type.namespaced ? (pathNs ?? input.metadata?.namespace ?? 'default') : undefined;
    const prev = c.objects.get(objKey(ns ?? '', name));
    if (!prev) throw notFound(type, name);
    const obj = clone(input);
    if (!obj.metadata || typeof obj.metadata !== 'object') throw new ApiError(400, 'BadRequest', 'the object has no metadata');
    if (!force && obj.metadata.resourceVersion && obj.metadata.resourceVersion !== prev.metadata.resourceVersion) {
      throw conflict(type, name);
    }
    return this.store(type, ns, name, prev, obj);
  }

  /** Writes `next` over `prev` keeping what the server owns, bumping the version and generation. */
  private store(type: ResourceType, ns: string | undefined, name: string, prev: KubeObject, next: KubeObject): KubeObject {
    const specChanged = JSON.stringify(next.spec ?? null) !== JSON.stringify(prev.spec ?? null);
    next.apiVersion = apiVersionOf(type);
    next.kind = type.kind;
    next.metadata = {
      ...next.metadata,
      name,
      ...(ns !== undefined ? { namespace: ns } : {}),
      uid: prev.metadata.uid,
      creationTimestamp: prev.metadata.creationTimestamp,
      generation: Number(prev.metadata.generation ?? 1) + (specChanged ? 1 : 0),
    };
    // An unchanged object keeps its version and sends no event, as the real server does.
    const { resourceVersion: _a, ...nextMeta } = next.metadata;
    const { resourceVersion: _b, ...prevMeta } = prev.metadata;
    if (JSON.stringify({ ...next, metadata: nextMeta }) === JSON.stringify({ ...prev, metadata: prevMeta })) return clone(prev);
    next.metadata.resourceVersion = this.bump();
    this.collection(type).objects.set(objKey(ns ?? '', name), next);
    this.emit(type, 'MODIFIED', next);
    return clone(next);
  }

  private doDelete(type: ResourceType, ns: string | undefined, name: string): KubeObject {
    const c = this.collection(type);
    const prev = c.objects.get(objKey(ns ?? '', name))!;
    c.objects.delete(objKey(ns ?? '', name));
    const gone = { ...clone(prev), metadata: { ...clone(prev.metadata), resourceVersion: this.bump() } };
    this.emit(type, 'DELETED', gone);
    return gone;
  }

  private patch(type: ResourceType, ns: string | undefined, name: string, contentType: string, body: string, query: Record<string, string>, res: http.ServerResponse): void {
    const ct = contentType.split(';')[0]!.trim();
    const c = this.collection(type);
    const prev = c.objects.get(objKey(ns ?? '', name));
    if (ct === 'application/apply-patch+yaml') {
      if (!query.fieldManager) throw new ApiError(400, 'BadRequest', 'PATCH request with apply content type must specify fieldManager');
      let applied: KubeObject;
      try {
        applied = YAML.parse(body) as KubeObject;
      } catch (err) {
        throw new ApiError(400, 'BadRequest', `invalid apply body: ${(err as Error).message}`);
      }
      if (!applied || typeof applied !== 'object' || !applied.metadata) throw new ApiError(400, 'BadRequest', 'apply body must be an object with metadata');
      if (applied.metadata.name && applied.metadata.name !== name) throw new ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
      const entry = { manager: query.fieldManager, operation: 'Apply', apiVersion: apiVersionOf(type), time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: {} };
      if (!prev) {
        const created = this.doCreate(type, ns, { ...applied, metadata: { ...applied.metadata, name, managedFields: [entry] } });
        return this.sendJson(res, 201, created);
      }
      const merged = mergePatch(clone(prev), stripNulls(applied)) as KubeObject;
      const others = ((prev.metadata.managedFields as Array<{ manager: string; operation: string }> | undefined) ?? []).filter((m) => !(m.manager === query.fieldManager && m.operation === 'Apply'));
      merged.metadata.managedFields = [...others, entry];
      delete merged.metadata.resourceVersion;
      return this.sendJson(res, 200, this.store(type, ns, name, prev, merged));
    }
    if (!prev) throw notFound(type, name);
    let patch: unknown;
    try {
      patch = JSON.parse(body);
    } catch (err) {
      throw new ApiError(400, 'BadRequest', `invalid patch body: ${(err as Error).message}`);
    }
    let next: KubeObject;
    if (ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') {
      const want = (patch as KubeObject | null)?.metadata?.resourceVersion;
      if (want !== undefined && want !== prev.metadata.resourceVersion) throw conflict(type, name);
      next = mergePatch(clone(prev), patch) as KubeObject;
    } else if (ct === 'application/json-patch+json') {
      next = jsonPatch(clone(prev), patch);
      if (next.metadata.resourceVersion !== prev.metadata.resourceVersion) throw conflict(type, name);
    } else {
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${JSON.stringify(contentType)})`);
    }
    delete next.metadata.resourceVersion;
    if (query.fieldManager) {
      const managed = ((prev.metadata.managedFields as Array<{ manager: string; operation: string }> | undefined) ?? []).filter((m) => !(m.manager === query.fieldManager && m.operation === 'Update'));
      next.metadata.managedFields = [...managed, { manager: query.fieldManager, operation: 'Update', apiVersion: apiVersionOf(type), time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: {} }];
    }
    this.sendJson(res, 200, this.store(type, ns, name, prev, next));
  }

  private watch(type: ResourceType, namespace: string | undefined, query: Record<string, string>, res: http.ServerResponse): void {
    const selector = parseSelector(query.labelSelector ?? '', 'labelSelector');
    const fields = parseSelector(query.fieldSelector ?? '', 'fieldSelector');
    const c = this.collection(type);
    const from = query.resourceVersion && query.resourceVersion !== '0' ? Number(query.resourceVersion) : undefined;
    if (from !== undefined && !Number.isInteger(from)) throw new ApiError(400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(query.resourceVersion)}`);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache' });
    // client-node awaits the response headers before it counts the watch as started.
    res.flushHeaders();
    const w: Watcher = { type, namespace, selector, fields, bookmarks: query.allowWatchBookmarks === 'true', res };
    if (from !== undefined && from < c.compactedRv) {
      this.writeEvent(w, 'ERROR', statusBody(410, 'Expired', `too old resource version: ${from} (${c.compactedRv})`));
      res.end();
      return;
    }
    if (from === undefined) {
      // No version: the current state as synthetic ADDED events, then changes.
      for (const o of c.objects.values()) if (matches(o, namespace, selector, fields)) this.writeEvent(w, 'ADDED', o);
    } else {
      for (const e of c.log) if (e.rv > from && matches(e.object, namespace, selector, fields)) this.writeEvent(w, e.type, e.object);
    }
    this.watchers.add(w);
    const timeout = query.timeoutSeconds ? setTimeout(() => this.endWatch(w), Number(query.timeoutSeconds) * 1000) : undefined;
    res.on('close', () => {
      if (timeout) clearTimeout(timeout);
      this.watchers.delete(w);
    });
  }

  private writeEvent(w: Watcher, type: string, object: unknown): void {
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private endWatch(w: Watcher): void {
    this.watchers.delete(w);
    w.res.end();
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendStatus(res: http.ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void {
    this.sendJson(res, code, statusBody(code, reason, message, details));
  }
}

export function statusBody(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

function notFound(type: ResourceType, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${type.resource}${type.group ? `.${type.group}` : ''} "${name}" not found`, { name, group: type.group, kind: type.resource });
}

function conflict(type: ResourceType, name: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${type.resource}${type.group ? `.${type.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: type.group, kind: type.resource });
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(body: string): KubeObject {
  try {
    return JSON.parse(body) as KubeObject;
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `invalid JSON body: ${(err as Error).message}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, unknown> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (!isObj(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, stripNulls(x)]));
}

/** RFC 6902: add, remove, replace, test (what client-node sends by default). */
function jsonPatch(doc: KubeObject, ops: unknown): KubeObject {
  if (!Array.isArray(ops)) throw new ApiError(400, 'BadRequest', 'a JSON patch must be an array of operations');
  let root: unknown = doc;
  for (const [i, op] of ops.entries()) {
    if (!isObj(op) || typeof op.op !== 'string' || typeof op.path !== 'string') throw new ApiError(400, 'BadRequest', `patch[${i}]: needs op and path`);
    const parts = op.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (parts.length === 0) {
      if (op.op === 'replace' || op.op === 'add') root = clone(op.value);
      continue;
    }
    let parent: any = root;
    for (const p of parts.slice(0, -1)) {
      parent = Array.isArray(parent) ? parent[Number(p)] : isObj(parent) ? parent[p] : undefined;
      if (parent === undefined) throw new ApiError(422, 'Invalid', `patch[${i}]: path ${op.path} does not exist`);
    }
    const last = parts[parts.length - 1]!;
    const exists = Array.isArray(parent) ? (last === '-' ? false : Number(last) < parent.length) : Object.hasOwn(parent, last);
    switch (op.op) {
      case 'add':
        if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, clone(op.value));
        else parent[last] = clone(op.value);
        break;
      case 'replace':
        if (!exists) throw new ApiError(422, 'Invalid', `patch[${i}]: replace of missing ${op.path}`);
        parent[Array.isArray(parent) ? Number(last) : last] = clone(op.value);
        break;
      case 'remove':
        if (!exists) throw new ApiError(422, 'Invalid', `patch[${i}]: remove of missing ${op.path}`);
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
        break;
      case 'test':
        if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new ApiError(422, 'Invalid', `patch[${i}]: test failed at ${op.path}`);
        break;
      default:
        throw new ApiError(400, 'BadRequest', `patch[${i}]: unsupported op ${op.op}`);
    }
  }
  return root as KubeObject;
}

// ---- selectors ----

type Requirement = { key: string; op: 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists'; values: string[] };
type Selector = Requirement[];

/** Label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`, comma-separated. */
export function parseSelector(text: string, field: string): Selector {
  const out: Selector = [];
  const src = text.trim();
  if (!src) return out;
  // Split on commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of src) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) out.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((s) => s.trim()).filter(Boolean) });
    else if ((m = /^([^\s!=]+)\s*!=\s*(\S*)$/.exec(p))) out.push({ key: m[1]!, op: 'neq', values: [m[2]!] });
    else if ((m = /^([^\s!=]+)\s*==?\s*(\S*)$/.exec(p))) out.push({ key: m[1]!, op: 'eq', values: [m[2]!] });
    else if ((m = /^!\s*([^\s!=]+)$/.exec(p))) out.push({ key: m[1]!, op: 'notexists', values: [] });
    else if ((m = /^([^\s!=(),]+)$/.exec(p))) out.push({ key: m[1]!, op: 'exists', values: [] });
    else throw new ApiError(400, 'BadRequest', `unable to parse requirement ${JSON.stringify(p)} in ${field}`);
  }
  return out;
}

function selects(sel: Selector, get: (key: string) => string | undefined): boolean {
  return sel.every((r) => {
    const v = get(r.key);
    switch (r.op) {
      case 'eq':
        return v === r.values[0];
      case 'neq':
        return v !== r.values[0];
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'notexists':
        return v === undefined;
    }
  });
}

function matches(o: KubeObject, namespace: string | undefined, labels: Selector, fields: Selector): boolean {
  if (namespace !== undefined && o.metadata.namespace !== namespace) return false;
  if (!selects(labels, (k) => o.metadata.labels?.[k])) return false;
  return selects(fields, (k) => {
    // metadata.name, metadata.namespace, spec.nodeName, status.phase…: a dotted path into the object.
    let v: unknown = o;
    for (const p of k.split('.')) v = isObj(v) ? v[p] : undefined;
    return v === undefined ? undefined : String(v);
  });
}

/** A KubeConfig for client-node pointing at the fake (plain HTTP needs skipTLSVerify). */
export function kubeconfigFor(server: { url: string }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: server.url, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'fake-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  return kc;
}
