import { CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { logger } from '../log.ts';
import { ResilientInformer } from './informer.ts';
import { CR_KINDS } from './policy-crs.ts';

// Watches Tern's custom resources so that a kubectl edit is found within a debounce instead of at
// the next resync: every add, update or delete of any of the kinds calls `onChange` (the controller
// runs a reconcile pass). The reconciler's own writes come back as events too; the pass they
// trigger finds nothing to do and writes nothing, so there is no loop. The cache itself is not
// read: a pass lists the cluster, so it never acts on a copy older than its own last write.

export class CustomResourceWatch {
  private readonly informers: ResilientInformer<KubernetesObject>[];
  /** Events seen (tests, the log). */
  events = 0;

  constructor(kc: KubeConfig, onChange: () => void) {
    const api = kc.makeApiClient(CustomObjectsApi);
    this.informers = CR_KINDS.map(
      (k) =>
        new ResilientInformer<KubernetesObject>({
          name: `${k.plural}.${k.group}`,
          kubeConfig: kc,
          path: `/apis/${k.group}/${k.version}/${k.plural}`,
          listPage: (page) => api.listClusterCustomObject({ group: k.group, version: k.version, plural: k.plural, ...page }) as Promise<KubernetesListObject<KubernetesObject>>,
          pageSize: 500,
          backoff: { initialMs: 500, maxMs: 30_000 },
          onChange: () => {
            this.events++;
            onChange();
          },
          onError: (err, restartInMs) => logger.warn({ kind: k.kind, err: (err as Error)?.message, restartInMs }, 'kubernetes: custom resource watch failed; restarting'),
        }),
    );
  }

  async start(): Promise<void> {
    // One kind failing to start (its CRD missing) must not keep the others from watching.
    await Promise.all(this.informers.map((i) => i.start().catch((err: Error) => logger.warn({ informer: i.name, err: err.message }, 'kubernetes: custom resource watch did not start; retrying'))));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
