import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { AnalyzeFn } from '../store/writer.ts';
import { kubeErrorCode } from './client.ts';
import { ResilientInformer, type Backoff, type ListPage } from './informer.ts';
import { desiredRegistry, namespaceInjectionEnabled, type DesiredRegistry, type KEndpoints, type KEndpointSlice, type KNamespace, type KPod, type KService } from './registry-map.ts';
import { writeKubernetesRegistry } from './registry-writer.ts';

// The registry from the cluster: informers on Services, EndpointSlices (v1 Endpoints where
// discovery.k8s.io/v1 is not served), Pods and Namespaces. Any change schedules one debounced
// reconcile that recomputes the desired rows from the caches (registry-map.ts, pure) and writes
// the difference in one transaction (registry-writer.ts). Recomputing from the caches, rather
// than applying events one by one, makes re-lists, restarts and out-of-order informers harmless:
// whatever the caches hold when the timer fires is the truth.

export interface RegistrySyncLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RegistrySyncOptions {
  kubeConfig: KubeConfig;
  prisma: PrismaClient;
  analyze: AnalyzeFn;
  domainSuffix: string;
  /** Items per list page (default 500, client-go's default). */
  pageSize?: number;
  /** Changes are coalesced for this long before a write (default 100 ms). */
  debounceMs?: number;
  /** Informer restarts and failed registry writes back off from initialMs doubling to maxMs. */
  backoff?: Backoff;
  /** Only namespaces labelled with all of these (Istio's discoverySelectors, equality only). */
  namespaceSelector?: Record<string, string>;
  log?: RegistrySyncLog;
}

export interface RegistrySyncStatus {
  /** Every informer has listed once and a registry write has completed since. */
  synced: boolean;
  endpointsApi: 'discovery.k8s.io/v1' | 'v1' | undefined;
  informers: Array<{ name: string; synced: boolean; restarts: number; lastError: string | undefined }>;
  writes: number;
  lastRevision: string | undefined;
  /** Cluster objects left out because a local registration has the same namespace/name. */
  conflicts: string[];
  lastWriteError: string | undefined;
}

const quiet: RegistrySyncLog = { info() {}, warn() {} };
const errText = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

export class KubeRegistrySync {
  private readonly core: CoreV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly pageSize: number;
  private readonly debounceMs: number;
  private readonly backoff: Backoff;
  private readonly log: RegistrySyncLog;
  private informers: Array<ResilientInformer<KubernetesObject>> = [];
  private services?: ResilientInformer<KubernetesObject>;
  private pods?: ResilientInformer<KubernetesObject>;
  private slices?: ResilientInformer<KubernetesObject>;
  private endpoints?: ResilientInformer<KubernetesObject>;
  private namespaces?: ResilientInformer<KubernetesObject>;
  private stopped = false;
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private writeFailures = 0;
  private lastWritten: string | undefined;
  private readonly state: Omit<RegistrySyncStatus, 'informers'> = { synced: false, endpointsApi: undefined, writes: 0, lastRevision: undefined, conflicts: [], lastWriteError: undefined };
  private syncedWaiters: Array<() => void> = [];

  constructor(private readonly opts: RegistrySyncOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.discovery = opts.kubeConfig.makeApiClient(DiscoveryV1Api);
    this.pageSize = opts.pageSize ?? 500;
    this.debounceMs = opts.debounceMs ?? 100;
    this.backoff = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.log = opts.log ?? quiet;
  }

  status(): RegistrySyncStatus {
    return {
      ...this.state,
      conflicts: [...this.state.conflicts],
      informers: this.informers.map((i) => ({ name: i.name, synced: i.synced, restarts: i.restarts, lastError: i.lastError === undefined ? undefined : errText(i.lastError) })),
    };
  }

  /** Whether a namespace asks for sidecar injection (undefined: not known to the cluster, or not listed yet). */
  namespaceInjection(name: string): boolean | undefined {
    const ns = this.namespaces?.cache.get(name) as KNamespace | undefined;
    return ns ? namespaceInjectionEnabled(ns) : undefined;
  }

  /** Resolves once the registry reflects a complete first view of the cluster. */
  whenSynced(): Promise<void> {
    if (this.state.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  /**
   * Starts the informers and returns; the first registry write happens once all of them have
   * listed (so a half-listed cluster never deletes rows). Errors are retried, never thrown.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('KubeRegistrySync already started');
    this.started = true;
    const mk = (name: string, path: string, listPage: ListPage<KubernetesObject>) =>
      new ResilientInformer<KubernetesObject>({
        name,
        kubeConfig: this.opts.kubeConfig,
        path,
        listPage,
        pageSize: this.pageSize,
        backoff: this.backoff,
        onChange: () => this.schedule(),
        onSynced: () => this.schedule(),
        onError: (err, ms) => this.log.warn({ informer: name, err: errText(err), code: kubeErrorCode(err), restartInMs: ms }, 'kubernetes informer failed; restarting'),
      });
    this.services = mk('services', '/api/v1/services', (p) => this.core.listServiceForAllNamespaces(p));
    this.pods = mk('pods', '/api/v1/pods', (p) => this.core.listPodForAllNamespaces(p));
    this.namespaces = mk('namespaces', '/api/v1/namespaces', (p) => this.core.listNamespace(p));
    this.informers = [this.services, this.pods, this.namespaces];
    const api = await this.endpointsApi();
    if (this.stopped) return;
    this.state.endpointsApi = api;
    if (api === 'discovery.k8s.io/v1') {
      this.slices = mk('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', (p) => this.discovery.listEndpointSliceForAllNamespaces(p));
      this.informers.push(this.slices);
    } else {
      this.log.info({}, 'discovery.k8s.io/v1 EndpointSlices are not served: using v1 Endpoints');
      this.endpoints = mk('endpoints', '/api/v1/endpoints', (p) => this.core.listEndpointsForAllNamespaces(p));
      this.informers.push(this.endpoints);
    }
    await Promise.all(this.informers.map((i) => i.start()));
  }

  /** EndpointSlices unless the cluster answers 404 for them; other errors are retried with backoff. */
  private async endpointsApi(): Promise<'discovery.k8s.io/v1' | 'v1'> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.discovery.listEndpointSliceForAllNamespaces({ limit: 1 });
        return 'discovery.k8s.io/v1';
      } catch (err) {
        if (kubeErrorCode(err) === 404) return 'v1';
        const ms = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** attempt);
        this.log.warn({ err: errText(err), code: kubeErrorCode(err), retryInMs: ms }, 'cannot tell whether EndpointSlices are served; retrying');
        await new Promise((r) => setTimeout(r, ms));
      }
    }
    return 'v1';
  }

  private schedule(delay = this.debounceMs): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.reconcile().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule();
        }
      });
    }, delay);
  }

  private desired(): DesiredRegistry {
    return desiredRegistry({
      services: this.services!.cache.list() as KService[],
      pods: this.pods!.cache.list() as KPod[],
      namespaces: this.namespaces!.cache.list() as KNamespace[],
      ...(this.slices ? { endpointSlices: this.slices.cache.list() as KEndpointSlice[] } : { endpoints: (this.endpoints?.cache.list() ?? []) as KEndpoints[] }),
      namespaceSelector: this.opts.namespaceSelector,
    });
  }

  private async reconcile(): Promise<void> {
    if (this.stopped || this.informers.length === 0 || !this.informers.every((i) => i.synced)) return;
    const desired = this.desired();
    const fingerprint = JSON.stringify(desired);
    // Nothing new since the last write: skip the transaction (and its whole-mesh analysis).
    if (fingerprint === this.lastWritten) return;
    try {
      const result = await writeKubernetesRegistry(this.opts.prisma, this.opts.analyze, this.opts.domainSuffix, desired);
      this.lastWritten = fingerprint;
      this.writeFailures = 0;
      this.state.writes += 1;
      this.state.lastRevision = result.revision.toString();
      this.state.lastWriteError = undefined;
      const newConflicts = result.conflicts.filter((c) => !this.state.conflicts.includes(c));
      if (newConflicts.length) this.log.warn({ conflicts: newConflicts }, 'cluster objects shadowed by local registrations were left out');
      this.state.conflicts = result.conflicts;
      if (result.changed) this.log.info({ changed: result.changed, revision: this.state.lastRevision }, 'registry updated from the cluster');
      if (!this.state.synced) {
        this.state.synced = true;
        for (const w of this.syncedWaiters.splice(0)) w();
      }
    } catch (err) {
      if (this.stopped) return;
      const ms = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.writeFailures);
      this.writeFailures += 1;
      this.state.lastWriteError = errText(err);
      this.log.warn({ err: errText(err), retryInMs: ms }, 'registry write from the cluster failed; retrying');
      setTimeout(() => this.schedule(0), ms).unref();
    }
  }

  /** Stops the informers and waits for a write in flight. The rows stay (another replica, or the next start, takes over). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.running;
  }
}
