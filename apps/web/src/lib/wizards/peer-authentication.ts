import type { StoredResource } from '../api-types.ts';
import { ROOT_NAMESPACE } from '../mesh.ts';
import { namespacePolicy, type PeerAuthSpec, type PolicyMode } from '../security.ts';
import type { WizardPlan } from './common.ts';
import { checkInt, checkLabels, checkResourceName, formatLabels, formError, record, type FormError } from './fields.ts';

// The PeerAuthentication form of the Security page, for one level: the mesh (namespace-wide in the
// root namespace), a namespace (its namespace-wide policy) or a workload (a selector policy, with
// optional per-port modes). It edits the stored policy when there is one and keeps what it does
// not show (metadata labels and annotations).

export type PeerAuthLevel = 'mesh' | 'namespace' | 'workload';
export const POLICY_MODES: readonly PolicyMode[] = ['STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET'];

export interface PeerAuthForm {
  level: PeerAuthLevel;
  namespace: string;
  name: string;
  mode: PolicyMode;
  /** Workload level: "app=reviews, version=v1". */
  selector: string;
  ports: { port: string; mode: PolicyMode }[];
}

function modeOf(m: string | undefined): PolicyMode {
  return (POLICY_MODES as readonly string[]).includes(m ?? '') ? (m as PolicyMode) : 'UNSET';
}

/** The form for a stored policy (or a new one at that level: named "default", as Istio's docs do). */
export function peerAuthFormFrom(level: PeerAuthLevel, namespace: string, stored: StoredResource | undefined): PeerAuthForm {
  const spec = (stored?.spec ?? {}) as PeerAuthSpec;
  return {
    level,
    namespace: level === 'mesh' ? ROOT_NAMESPACE : namespace,
    name: stored?.metadata.name ?? (level === 'workload' ? '' : 'default'),
    mode: stored ? modeOf(spec.mtls?.mode) : 'STRICT',
    selector: formatLabels(spec.selector?.matchLabels),
    ports: Object.entries(spec.portLevelMtls ?? {}).map(([port, m]) => ({ port, mode: modeOf(m.mode) })),
  };
}

/** The stored policy the form edits: the level's namespace-wide one, or the named selector policy. */
export function storedPeerAuth(form: Pick<PeerAuthForm, 'level' | 'namespace' | 'name'>, resources: StoredResource[]): StoredResource | undefined {
  if (form.level !== 'workload') return namespacePolicy(resources, form.level === 'mesh' ? ROOT_NAMESPACE : form.namespace);
  return resources.find((r) => r.kind === 'PeerAuthentication' && r.metadata.namespace === form.namespace && r.metadata.name === form.name.trim());
}

export function planPeerAuthentication(form: PeerAuthForm, resources: StoredResource[]): WizardPlan<PeerAuthForm> {
  const errors: FormError[] = [];
  const namespace = form.level === 'mesh' ? ROOT_NAMESPACE : form.namespace.trim();
  if (namespace === '') errors.push(formError('namespace', 'Namespace is required', 'required'));
  const name = record(errors, 'name', 'Name', checkResourceName(form.name)) ?? form.name.trim();
  const stored = storedPeerAuth({ ...form, namespace }, resources);
  const spec: Record<string, unknown> = { ...structuredClone(stored?.spec ?? {}) };
  spec.mtls = { mode: form.mode };
  delete spec.selector;
  delete spec.portLevelMtls;
  if (form.level === 'workload') {
    const labels = record(errors, 'selector', 'Workload labels', checkLabels(form.selector, { required: true }));
    if (labels) spec.selector = { matchLabels: labels };
    const ports: Record<string, { mode: PolicyMode }> = {};
    form.ports.forEach((p, i) => {
      const n = record(errors, `ports[${i}].port`, `Port ${i + 1}`, checkInt(p.port, { required: true, min: 1, max: 65535 }));
      if (n === undefined) return;
      if (ports[String(n)]) errors.push(formError(`ports[${i}].port`, `Port ${i + 1}: ${n} is listed twice`, 'duplicate'));
      ports[String(n)] = { mode: p.mode };
    });
    if (Object.keys(ports).length > 0) spec.portLevelMtls = ports;
  }
  const document = {
    apiVersion: stored?.apiVersion ?? 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: {
      ...(stored ? { labels: stored.metadata.labels, annotations: stored.metadata.annotations } : {}),
      // A namespace-wide policy keeps its stored name: renaming would create a second one.
      name: form.level !== 'workload' && stored ? stored.metadata.name : name,
      namespace,
      ...(stored ? { resourceVersion: stored.metadata.resourceVersion } : {}),
    },
    spec,
  };
  return { documents: [document], existing: stored ? [stored] : [], errors, form };
}
