import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { KIND_API_VERSIONS, isKind, type StoredResource } from '@tern/shared';
import { logger } from '../log.ts';
import type { AuditLog } from '../store/audit.ts';
import type { ResourceStore } from '../store/resources.ts';
import { diffObjects } from '../store/writer.ts';
import { KUBERNETES_ACTOR, type DriftAction } from './actor.ts';
import { acceptedCondition, nextConditions, proxiesConvergedCondition, proxyFingerprint, sameConditions, settled, type ProxyConvergence } from './conditions.ts';
import { CR_KINDS, planReconcile, REVISION_ANNOTATION, type CustomResource, type ReconcileAction } from './policy-crs.ts';

// Writes the policy stored in PostgreSQL into the cluster as Tern's custom resources, with
// server-side apply under one field manager, and keeps them there: what someone changes with
// kubectl is corrected (or, with `adopt`, taken into the store), and recorded in the audit log.
// Each object's status carries the conditions of conditions.ts. Only the leader runs it
// (leader-election.ts). Each pass reads both sides and applies planReconcile's actions, then
// writes the status of every object whose conditions changed (and only those).

export const FIELD_MANAGER = 'tern-control-plane';
/** Status has a manager of its own: API servers before 1.22 do not keep per-subresource managedFields. */
export const STATUS_FIELD_MANAGER = `${FIELD_MANAGER}-status`;

export interface ReconcileReport {
  applied: number;
  deleted: number;
  drifted: number;
  adopted: number;
  /** Status subresources written (conditions changed). */
  statusWritten: number;
  /** Objects with a condition not True (proxies pending or rejecting). */
  unsettled: number;
  errors: string[];
}

export interface ReconcilerOptions {
  mode?: 'correct' | 'adopt';
  /** Where drift is recorded (undefined: only logged). */
  audit?: AuditLog | undefined;
  /** The connected proxies of the mesh, from every replica (undefined: no ProxiesConverged condition). */
  proxies?: (() => Promise<ProxyConvergence[]>) | undefined;
}

const key = (kind: string, ns: string, name: string) => `${kind}/${ns}/${name}`;
const crKey = (c: CustomResource) => key(c.kind, c.metadata.namespace, c.metadata.name);

export class PolicyReconciler {
  private readonly api: CustomObjectsApi;
  readonly mode: 'correct' | 'adopt';
  private readonly audit: AuditLog | undefined;
  private readonly proxies: (() => Promise<ProxyConvergence[]>) | undefined;
  /** The last completed pass (for the API). */
  lastPass: (ReconcileReport & { at: string }) | undefined;
  /** The proxies the last pass computed conditions from (proxyFingerprint): the controller polls for a change. */
  proxyFingerprint: string | undefined;

  constructor(
    kc: KubeConfig,
    private readonly resources: ResourceStore,
    o: ReconcilerOptions = {},
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.mode = o.mode ?? 'correct';
    this.audit = o.audit;
    this.proxies = o.proxies;
  }

  /** The proxies' state differs from what the last pass used: conditions may have changed. */
  async proxiesChanged(): Promise<boolean> {
    if (!this.proxies) return false;
    return proxyFingerprint(await this.proxies()) !== this.proxyFingerprint;
  }

  async listCluster(): Promise<CustomResource[]> {
    const out: CustomResource[] = [];
    for (const k of CR_KINDS) {
      const list = (await this.api.listClusterCustomObject({ group: k.group, version: k.version, plural: k.plural })) as { items?: CustomResource[] };
      out.push(...(list.items ?? []).map((i) => ({ ...i, kind: k.kind })));
    }
    return out;
  }

  /** One pass: read the store and the cluster, act on the differences, bring conditions up to date. */
  async reconcileOnce(): Promise<ReconcileReport> {
    const [stored, inCluster, proxies] = await Promise.all([this.resources.list(), this.listCluster(), this.proxies?.()]);
    if (proxies) this.proxyFingerprint = proxyFingerprint(proxies);
    const report: ReconcileReport = { applied: 0, deleted: 0, drifted: 0, adopted: 0, statusWritten: 0, unsettled: 0, errors: [] };
    const current = new Map(inCluster.map((c) => [crKey(c), c]));
    /** Objects whose cluster copy is not the store's after this pass (failed, adopted): no status from this pass. */
    const skip = new Set<string>();
    for (const a of planReconcile(stored, inCluster, this.mode)) {
      const k = a.kind === 'delete' ? key(a.crKind.kind, a.namespace, a.name) : crKey(a.cr);
      try {
        const written = await this.act(a, report);
        if (written) current.set(k, written);
        else skip.add(k);
      } catch (err) {
        skip.add(k);
        const what = a.kind === 'delete' ? `${a.crKind.kind} ${a.namespace}/${a.name}` : `${a.cr.kind} ${a.cr.metadata.namespace}/${a.cr.metadata.name}`;
        report.errors.push(`${a.kind} ${what}: ${(err as Error).message}`);
      }
    }
    await this.writeConditions(stored, current, skip, proxies, report);
    if (report.drifted + report.adopted > 0) logger.warn({ drifted: report.drifted, adopted: report.adopted, mode: this.mode }, 'kubernetes: custom resources edited in the cluster');
    if (report.errors.length > 0) logger.error({ errors: report.errors }, 'kubernetes: reconcile errors');
    this.lastPass = { ...report, at: new Date().toISOString() };
    return report;
  }

  /** The cluster's object after the action (undefined: none to write status on). */
  private async act(a: ReconcileAction, report: ReconcileReport): Promise<CustomResource | undefined> {
    if (a.kind === 'delete') {
      await this.api.deleteNamespacedCustomObject({ group: a.crKind.group, version: a.crKind.version, namespace: a.namespace, plural: a.crKind.plural, name: a.name });
      report.deleted++;
      return undefined;
    }
    const k = CR_KINDS.find((c) => c.kind === a.cr.kind)!;
    if (a.kind === 'adopt') {
      if (!isKind(a.cr.kind)) return undefined;
      const object = { apiVersion: KIND_API_VERSIONS[a.cr.kind][0], kind: a.cr.kind, metadata: { name: a.cr.metadata.name, namespace: a.cr.metadata.namespace }, spec: a.cr.spec };
      const outcome = await this.resources.apply([{ object }], 'update', KUBERNETES_ACTOR);
      report.adopted++;
      await this.recordDrift('drift-adopted', a.cr, a.stored.spec, a.cr.spec, outcome.revision);
      // The store changed: the next pass (the change feed triggers it) writes it back with the new revision.
      return undefined;
    }
    const { name, namespace } = a.cr.metadata;
    // Server-side apply, forced: Tern owns these fields; a kubectl edit's ownership is taken back.
    const written = (await this.api.patchNamespacedCustomObject(
      { group: k.group, version: k.version, namespace, plural: k.plural, name, body: { apiVersion: a.cr.apiVersion, kind: a.cr.kind, metadata: { name, namespace, labels: a.cr.metadata.labels, annotations: a.cr.metadata.annotations }, spec: a.cr.spec }, fieldManager: FIELD_MANAGER, force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )) as CustomResource;
    report.applied++;
    if (a.reason === 'drifted') {
      report.drifted++;
      await this.recordDrift('drift-corrected', a.current!, a.current!.spec, a.cr.spec, BigInt(a.cr.metadata.annotations?.[REVISION_ANNOTATION] ?? '0'));
    }
    return { ...written, kind: a.cr.kind };
  }

  /** Drift in the audit log, shaped like a store write's entry: the spec's diff from what it was to what it became. */
  private async recordDrift(action: DriftAction, cr: CustomResource, from: unknown, to: unknown, revision: bigint): Promise<void> {
    if (!this.audit) return;
    // Who edited it: the field managers other than Tern's own.
    const editors = [...new Set((cr.metadata.managedFields ?? []).map((m) => m.manager).filter((m): m is string => !!m && m !== FIELD_MANAGER && m !== STATUS_FIELD_MANAGER))];
    try {
      await this.audit.record({
        actor: KUBERNETES_ACTOR.name,
        actorKind: KUBERNETES_ACTOR.kind,
        action,
        kind: cr.kind,
        namespace: cr.metadata.namespace,
        name: cr.metadata.name,
        revision,
        diff: diffObjects({ spec: from }, { spec: to }),
        details: { mode: this.mode, clusterResourceVersion: cr.metadata.resourceVersion ?? null, editedBy: editors },
      });
    } catch (err) {
      logger.error({ err: (err as Error).message, action, name: `${cr.metadata.namespace}/${cr.metadata.name}` }, 'kubernetes: could not record drift in the audit log');
    }
  }

  private async writeConditions(stored: StoredResource[], current: Map<string, CustomResource>, skip: Set<string>, proxies: ProxyConvergence[] | undefined, report: ReconcileReport): Promise<void> {
    const now = new Date();
    for (const r of stored) {
      const k = CR_KINDS.find((c) => c.kind === r.kind);
      if (!k) continue;
      const id = key(r.kind, r.metadata.namespace, r.metadata.name);
      const cr = current.get(id);
      if (!cr || skip.has(id)) continue;
      const generation = cr.metadata.generation;
      const desired = [acceptedCondition(r, generation)];
      if (proxies) desired.push(proxiesConvergedCondition(r.metadata.resourceVersion, proxies, generation));
      const have = cr.status?.conditions;
      const next = nextConditions(have, desired, now);
      if (!settled(next)) report.unsettled++;
      if (sameConditions(have, next)) continue;
      const { name, namespace } = r.metadata;
      try {
        await this.api.patchNamespacedCustomObjectStatus(
          { group: k.group, version: k.version, namespace, plural: k.plural, name, fieldManager: STATUS_FIELD_MANAGER, force: true, body: { apiVersion: `${k.group}/${k.version}`, kind: k.kind, metadata: { name, namespace }, status: { conditions: next } } },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
        );
        report.statusWritten++;
      } catch (err) {
        report.errors.push(`status ${r.kind} ${namespace}/${name}: ${(err as Error).message}`);
      }
    }
  }
}
