import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { logger } from '../../log.ts';
import { ResilientInformer } from '../informer.ts';
import { namespaceInjectionEnabled } from './mutate.ts';

// The namespace labels the webhook decides with. An informer on Namespaces (one watch per replica;
// namespaces are few and change rarely) answers from memory; an API call is made only when the
// cache cannot say "inject":
// - before the first list completes, or for a namespace the cache has not seen yet (created a
//   moment ago: its watch event may still be on the way);
// - when the cache says the namespace is NOT opted in. The API server only calls the webhook for
//   namespaces its namespaceSelector matched, so this mostly means our cache is behind a
//   `kubectl label` — trusting it would leave the pod without a sidecar, so the live object decides.
// So the steady state (pods in labelled namespaces) costs no API call. A TTL cache would either
// make labels changes wait for the TTL or call the API for most pods.

export class NamespaceLabels {
  private readonly core: CoreV1Api;
  private readonly informer: ResilientInformer<V1Namespace>;
  /** Lookups answered without an API call, and with one (tests, the log). */
  hits = 0;
  reads = 0;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.informer = new ResilientInformer<V1Namespace>({
      name: 'webhook-namespaces',
      kubeConfig: kc,
      path: '/api/v1/namespaces',
      listPage: (p) => this.core.listNamespace(p),
      pageSize: 500,
      backoff: { initialMs: 500, maxMs: 30_000 },
      onChange: () => {},
      onError: (err, restartInMs) => logger.warn({ err: err instanceof Error ? err.message : String(err), restartInMs }, 'injection webhook: namespace watch failed; reading namespaces from the API server until it recovers'),
    });
  }

  /** Starts the informer without waiting for it: lookups fall back to the API until it has listed. */
  start(): void {
    this.informer.start().catch((err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'injection webhook: namespace informer did not start; lookups go to the API server'));
  }

  get synced(): boolean {
    return this.informer.synced;
  }

  async labels(namespace: string): Promise<Record<string, string>> {
    const cached = this.informer.synced ? this.informer.cache.get(namespace) : undefined;
    if (cached && namespaceInjectionEnabled(cached.metadata?.labels ?? {})) {
      this.hits++;
      return cached.metadata?.labels ?? {};
    }
    this.reads++;
    const live = await this.core.readNamespace({ name: namespace });
    return live.metadata?.labels ?? {};
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }
}
