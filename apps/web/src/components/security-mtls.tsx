'use client';
import { useMemo, useState } from 'react';
import type { StoredResource, WorkloadRecord } from '../lib/api-types.ts';
import { namespacesOf, ROOT_NAMESPACE } from '../lib/mesh.ts';
import { describeSource, meshMtls, meshPolicy, namespaceMtlsOf, namespacePolicy, refOf, workloadMtls, type PolicyMode } from '../lib/security.ts';
import { useQueryState } from '../lib/use-query-state.ts';
import { formatLabels } from '../lib/wizards/fields.ts';
import { peerAuthFormFrom, planPeerAuthentication, POLICY_MODES, type PeerAuthForm, type PeerAuthLevel } from '../lib/wizards/peer-authentication.ts';
import { Empty, MtlsLock } from './ui.tsx';
import { FieldFindings, WizardFrame } from './wizard-frame.tsx';

// The mTLS tab: the effective PeerAuthentication mode of the mesh, each namespace and each
// workload (Istio's precedence, lib/security.ts), and a form per level that writes the policy.
// What is being edited is in the URL (`edit=mesh`, `edit=ns:<ns>`, `edit=pa:<ns>/<name>`,
// `edit=wl:<ns>/<workload>` for a new policy selecting that workload).

interface Target {
  level: PeerAuthLevel;
  namespace: string;
  stored?: StoredResource;
  /** A new workload policy: the workload whose labels prefill the selector. */
  workload?: WorkloadRecord;
}

function targetOf(edit: string, resources: StoredResource[], workloads: WorkloadRecord[]): Target | undefined {
  if (edit === 'mesh') return { level: 'mesh', namespace: ROOT_NAMESPACE, stored: meshPolicy(resources) };
  const [kind, rest = ''] = [edit.slice(0, edit.indexOf(':')), edit.slice(edit.indexOf(':') + 1)];
  if (kind === 'ns' && rest) return { level: 'namespace', namespace: rest, stored: namespacePolicy(resources, rest) };
  const [ns = '', name = ''] = rest.split('/');
  if (kind === 'pa') {
    const stored = resources.find((r) => r.kind === 'PeerAuthentication' && r.metadata.namespace === ns && r.metadata.name === name);
    return stored ? { level: 'workload', namespace: ns, stored } : undefined;
  }
  if (kind === 'wl') return { level: 'workload', namespace: ns, workload: workloads.find((w) => w.namespace === ns && w.name === name) };
  return undefined;
}

function PortModes({ modes }: { modes: { port: number; mode: string }[] }) {
  if (modes.length === 0) return null;
  return (
    <span className="small">
      {modes.map((p) => (
        <span key={p.port} className="row" data-testid={`port-${p.port}`}>port {p.port}: <MtlsLock mode={p.mode} /></span>
      ))}
    </span>
  );
}

export function MtlsTab({ resources, workloads, extraNamespaces }: { resources: StoredResource[]; workloads: WorkloadRecord[]; extraNamespaces: string[] }) {
  const [params, setParams] = useQueryState();
  const edit = params.get('edit') ?? '';
  const mesh = meshMtls(resources);
  const namespaces = [...new Set([...namespacesOf({ resources, workloads }), ...extraNamespaces])].filter((n) => n !== ROOT_NAMESPACE).sort();
  const selectorPolicies = resources.filter((r) => r.kind === 'PeerAuthentication' && Object.keys((r.spec as { selector?: { matchLabels?: object } }).selector?.matchLabels ?? {}).length > 0);
  const target = edit ? targetOf(edit, resources, workloads) : undefined;
  const editButton = (value: string, label: string) => (
    <button type="button" onClick={() => setParams({ edit: value })} aria-label={label} aria-pressed={edit === value}>Edit</button>
  );

  return (
    <>
      <section className="panel" aria-labelledby="h-mesh">
        <h2 id="h-mesh">Mesh</h2>
        <div className="row" data-testid="mesh-mode">
          <MtlsLock mode={mesh.mode} /> <span className="small muted">{describeSource(mesh)}</span>
          {editButton('mesh', 'Edit the mesh-wide mode')}
        </div>
        <p className="small muted">The mesh-wide PeerAuthentication lives in the root namespace <code>{ROOT_NAMESPACE}</code> without a selector. Each level inherits from the one above unless it sets a mode: workload, then namespace, then mesh, then Istio&apos;s default PERMISSIVE (UNSET inherits).</p>
      </section>

      <div className="grid2">
        <section className="panel" aria-labelledby="h-ns-modes">
          <h2 id="h-ns-modes">Namespaces</h2>
          {namespaces.length === 0 ? <Empty>No namespaces yet.</Empty> : (
            <table data-testid="namespace-modes">
              <thead><tr><th>Namespace</th><th>Mode</th><th>From</th><th /></tr></thead>
              <tbody>
                {namespaces.map((ns) => {
                  const m = namespaceMtlsOf(resources, ns);
                  return (
                    <tr key={ns} data-testid={`ns-${ns}`}>
                      <td>{ns}</td>
                      <td><MtlsLock mode={m.mode} /></td>
                      <td className="small">{m.source === 'namespace' ? `namespace policy ${m.policy}` : m.source === 'mesh' ? 'inherited from the mesh' : "Istio's default"}</td>
                      <td>{editButton(`ns:${ns}`, `Edit the mode of namespace ${ns}`)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </section>

        <section className="panel" aria-labelledby="h-wl-modes">
          <h2 id="h-wl-modes">Workloads</h2>
          {workloads.length === 0 ? <Empty>No workloads are registered.</Empty> : (
            <table data-testid="workload-modes">
              <thead><tr><th>Workload</th><th>Mode</th><th>From</th><th /></tr></thead>
              <tbody>
                {workloads.map((w) => {
                  const m = workloadMtls(resources, w.namespace, w.labels);
                  const ref = m.workloadPolicy;
                  return (
                    <tr key={`${w.namespace}/${w.name}`} data-testid={`wl-${w.namespace}-${w.name}`}>
                      <td>{w.namespace}/{w.name}</td>
                      <td><MtlsLock mode={m.mode} /> <PortModes modes={m.ports} /></td>
                      <td className="small" data-testid="source">{m.source === 'workload' ? `workload policy ${m.policy}` : `inherited: ${describeSource(m)}`}{ref && m.source !== 'workload' ? ` (workload policy ${ref} sets UNSET)` : ''}</td>
                      <td>{ref ? editButton(`pa:${ref}`, `Edit the policy of ${w.name}`) : <button type="button" onClick={() => setParams({ edit: `wl:${w.namespace}/${w.name}` })} aria-label={`Override the mode of ${w.name}`}>Override</button>}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
          {selectorPolicies.length > 0 && (
            <>
              <h3>Workload policies</h3>
              <table data-testid="workload-policies">
                <thead><tr><th>Policy</th><th>Selector</th><th>Mode</th><th>Selects</th><th /></tr></thead>
                <tbody>
                  {selectorPolicies.map((p) => {
                    const spec = p.spec as { selector?: { matchLabels?: Record<string, string> }; mtls?: { mode?: string }; portLevelMtls?: Record<string, { mode?: string }> };
                    const selects = workloads.filter((w) => w.namespace === p.metadata.namespace && workloadMtls(resources, w.namespace, w.labels).workloadPolicy === refOf(p)).length;
                    return (
                      <tr key={refOf(p)}>
                        <td>{refOf(p)}</td>
                        <td className="mono small">{formatLabels(spec.selector?.matchLabels)}</td>
                        <td>{spec.mtls?.mode ?? 'UNSET'}{spec.portLevelMtls ? `; ports ${Object.entries(spec.portLevelMtls).map(([k, v]) => `${k}: ${v.mode ?? 'UNSET'}`).join(', ')}` : ''}</td>
                        <td>{selects} workload{selects === 1 ? '' : 's'}</td>
                        <td>{editButton(`pa:${refOf(p)}`, `Edit ${refOf(p)}`)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </>
          )}
          <p className="small"><button type="button" onClick={() => setParams({ edit: 'wl:' })}>New workload policy</button></p>
        </section>
      </div>

      {edit && !target && <div className="msg warning">Nothing to edit at {edit}: the policy may have been deleted.</div>}
      {target && (
        <PeerAuthEditor
          key={edit}
          target={target}
          resources={resources}
          namespaces={namespaces}
          onClose={() => setParams({ edit: undefined })}
        />
      )}
    </>
  );
}

function PeerAuthEditor({ target, resources, namespaces, onClose }: { target: Target; resources: StoredResource[]; namespaces: string[]; onClose: () => void }) {
  const [form, setForm] = useState<PeerAuthForm>(() => {
    const f = peerAuthFormFrom(target.level, target.namespace || namespaces[0] || 'default', target.stored);
    if (!target.stored && target.workload) {
      const labels = target.workload.labels;
      const pick = labels.app ? { app: labels.app, ...(labels.version ? { version: labels.version } : {}) } : labels;
      return { ...f, name: `${target.workload.name}-mtls`, selector: formatLabels(pick), mode: 'PERMISSIVE' };
    }
    return f;
  });
  const plan = useMemo(() => planPeerAuthentication(form, resources), [form, resources]);
  const errs = plan.errors;
  const current = plan.existing[0];
  const title = target.level === 'mesh' ? 'the mesh' : target.level === 'namespace' ? `namespace ${form.namespace}` : current ? `workload policy ${refOf(current)}` : 'a new workload policy';
  const setPort = (i: number, patch: Partial<PeerAuthForm['ports'][number]>) => setForm({ ...form, ports: form.ports.map((p, k) => (k === i ? { ...p, ...patch } : p)) });
  const modeSelect = (value: PolicyMode, onChange: (m: PolicyMode) => void, label: string) => (
    <select value={value} onChange={(e) => onChange(e.target.value as PolicyMode)} aria-label={label}>
      {POLICY_MODES.map((m) => <option key={m} value={m}>{m === 'UNSET' ? 'UNSET (inherit)' : m}</option>)}
    </select>
  );

  return (
    <>
      <section className="panel" aria-labelledby="h-pa-edit" data-testid="pa-editor">
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2 id="h-pa-edit">PeerAuthentication for {title}</h2>
          <button type="button" onClick={onClose}>Close</button>
        </div>
        <div className="row">
          {target.level === 'workload' && !target.stored && (
            <label>
              Namespace
              <select value={form.namespace} onChange={(e) => setForm({ ...form, namespace: e.target.value })} aria-label="Policy namespace">
                {[...new Set([form.namespace, ...namespaces])].map((n) => <option key={n} value={n}>{n}</option>)}
              </select>
            </label>
          )}
          {target.level === 'workload' && (
            <label>
              Name
              <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} disabled={target.stored !== undefined} aria-label="Policy name" aria-invalid={errs.some((e) => e.path === 'name')} />
            </label>
          )}
          <label>
            Mode
            {modeSelect(form.mode, (mode) => setForm({ ...form, mode }), 'mTLS mode')}
          </label>
        </div>
        <FieldFindings findings={errs} pathPrefix="name" kind="form" />
        <FieldFindings findings={errs} pathPrefix="namespace" kind="form" />
        {target.level === 'workload' && (
          <>
            <label>
              Workload labels (selector)
              <input value={form.selector} onChange={(e) => setForm({ ...form, selector: e.target.value })} placeholder="app=reviews, version=v1" aria-label="Workload labels" aria-invalid={errs.some((e) => e.path === 'selector')} />
            </label>
            <FieldFindings findings={errs} pathPrefix="selector" kind="form" />
            <div className="wizard-block">
              <strong>Per-port modes</strong> <span className="small muted">(override the mode for one port of the workload)</span>
              {form.ports.map((p, i) => (
                <div key={i}>
                  <div className="row">
                    <label>
                      Port
                      <input value={p.port} onChange={(e) => setPort(i, { port: e.target.value })} inputMode="numeric" aria-label={`Port ${i + 1}`} aria-invalid={errs.some((e) => e.path === `ports[${i}].port`)} />
                    </label>
                    <label>
                      Mode
                      {modeSelect(p.mode, (mode) => setPort(i, { mode }), `Port ${i + 1} mode`)}
                    </label>
                    <button type="button" onClick={() => setForm({ ...form, ports: form.ports.filter((_, k) => k !== i) })}>Remove</button>
                  </div>
                  <FieldFindings findings={errs} pathPrefix={`ports[${i}]`} kind="form" />
                </div>
              ))}
              <button type="button" onClick={() => setForm({ ...form, ports: [...form.ports, { port: '', mode: 'PERMISSIVE' }] })}>Add a port</button>
            </div>
          </>
        )}
      </section>
      <WizardFrame documents={plan.documents} existing={plan.existing} localErrors={errs} isPlaced={(f) => f.kind === 'form'} resetKey={`${form.level}/${form.namespace}/${form.name}`} />
    </>
  );
}
