import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { KIND_API_VERSIONS, isKind } from '@tern/shared';
import { logger } from '../log.ts';
import type { ResourceStore } from '../store/resources.ts';
import type { Actor } from '../store/writer.ts';
import { CR_KINDS, planReconcile, REVISION_ANNOTATION, type CustomResource, type ReconcileAction } from './policy-crs.ts';

// Writes the policy stored in PostgreSQL into the cluster as Tern's custom resources, with
// server-side apply under one field manager, and keeps them there: what someone changes with
// kubectl is corrected (or, with `adopt`, taken into the store). Only the leader runs it
// (leader-election.ts). Each pass reads both sides and applies planReconcile's actions.

export const FIELD_MANAGER = 'tern-control-plane';
const KUBERNETES_ACTOR: Actor = { name: 'kubernetes', kind: 'system', role: 'admin' };

export interface ReconcileReport {
  applied: number;
  deleted: number;
  drifted: number;
  adopted: number;
  errors: string[];
}

export class PolicyReconciler {
  private readonly api: CustomObjectsApi;

  constructor(
    kc: KubeConfig,
    private readonly resources: ResourceStore,
    private readonly mode: 'correct' | 'adopt' = 'correct',
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async listCluster(): Promise<CustomResource[]> {
    const out: CustomResource[] = [];
    for (const k of CR_KINDS) {
      const list = (await this.api.listClusterCustomObject({ group: k.group, version: k.version, plural: k.plural })) as { items?: CustomResource[] };
      out.push(...(list.items ?? []).map((i) => ({ ...i, kind: k.kind })));
    }
    return out;
  }

  /** One pass: read the store and the cluster, act on the differences. */
  async reconcileOnce(): Promise<ReconcileReport> {
    const [stored, inCluster] = await Promise.all([this.resources.list(), this.listCluster()]);
    const report: ReconcileReport = { applied: 0, deleted: 0, drifted: 0, adopted: 0, errors: [] };
    for (const a of planReconcile(stored, inCluster, this.mode)) {
      try {
        await this.act(a, report);
      } catch (err) {
        const what = a.kind === 'delete' ? `${a.crKind.kind} ${a.namespace}/${a.name}` : `${a.cr.kind} ${a.cr.metadata.namespace}/${a.cr.metadata.name}`;
        report.errors.push(`${a.kind} ${what}: ${(err as Error).message}`);
      }
    }
    if (report.drifted + report.adopted > 0) logger.warn({ drifted: report.drifted, adopted: report.adopted, mode: this.mode }, 'kubernetes: custom resources edited in the cluster');
    if (report.errors.length > 0) logger.error({ errors: report.errors }, 'kubernetes: reconcile errors');
    return report;
  }

  private async act(a: ReconcileAction, report: ReconcileReport): Promise<void> {
    if (a.kind === 'delete') {
      await this.api.deleteNamespacedCustomObject({ group: a.crKind.group, version: a.crKind.version, namespace: a.namespace, plural: a.crKind.plural, name: a.name });
      report.deleted++;
      return;
    }
    const k = CR_KINDS.find((c) => c.kind === a.cr.kind)!;
    if (a.kind === 'adopt') {
      if (!isKind(a.cr.kind)) return;
      const object = { apiVersion: KIND_API_VERSIONS[a.cr.kind][0], kind: a.cr.kind, metadata: { name: a.cr.metadata.name, namespace: a.cr.metadata.namespace }, spec: a.cr.spec };
      await this.resources.apply([{ object }], 'update', KUBERNETES_ACTOR);
      report.adopted++;
      return;
    }
    const { name, namespace } = a.cr.metadata;
    // Server-side apply, forced: Tern owns these fields; a kubectl edit's ownership is taken back.
    await this.api.patchNamespacedCustomObject(
      { group: k.group, version: k.version, namespace, plural: k.plural, name, body: { apiVersion: a.cr.apiVersion, kind: a.cr.kind, metadata: { name, namespace, labels: a.cr.metadata.labels, annotations: a.cr.metadata.annotations }, spec: a.cr.spec }, fieldManager: FIELD_MANAGER, force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    // The status subresource, under a manager of its own: API servers before 1.22 do not keep
    // per-subresource managedFields, so the same manager applying only status would give up spec.
    await this.api.patchNamespacedCustomObjectStatus(
      {
        group: k.group, version: k.version, namespace, plural: k.plural, name, fieldManager: `${FIELD_MANAGER}-status`, force: true,
        body: { apiVersion: a.cr.apiVersion, kind: a.cr.kind, metadata: { name, namespace }, status: { conditions: [{ type: 'Accepted', status: 'True', reason: 'Stored', message: `stored in Tern at resourceVersion ${a.cr.metadata.annotations?.[REVISION_ANNOTATION] ?? ''}`, lastTransitionTime: new Date().toISOString() }] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    report.applied++;
    if (a.reason === 'drifted') report.drifted++;
  }
}
