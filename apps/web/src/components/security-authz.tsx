'use client';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { useMemo, useState } from 'react';
import type { StoredResource } from '../lib/api-types.ts';
import { resourceHref } from '../lib/links.ts';
import { ROOT_NAMESPACE } from '../lib/mesh.ts';
import { useTRPC } from '../lib/trpc.ts';
import { useQueryState } from '../lib/use-query-state.ts';
import {
  authzFormFrom,
  CONDITION_KEYS,
  emptyAuthzForm,
  emptyOperation,
  emptyRule,
  emptySource,
  FORM_ACTIONS,
  OPERATION_KEYS,
  planAuthorization,
  SOURCE_KEYS,
  summarizePolicy,
  type AuthzForm,
  type OperationKey,
  type RuleForm,
  type SourceKey,
} from '../lib/wizards/authorization.ts';
import { formatLabels } from '../lib/wizards/fields.ts';
import { ConfirmButton } from './confirm-button.tsx';
import { Empty, ErrorMessage, RoleButton } from './ui.tsx';
import { FieldFindings, WizardFrame, type Finding } from './wizard-frame.tsx';

// The authorization tab: AuthorizationPolicies per namespace (`ns`), and the editor for one
// (`ap=<ns>/<name>`, or `ap=new`). The planner (lib/wizards/authorization.ts) keeps what the form
// does not show; the frame shows YAML, diff, analysis, Save and convergence.

const FIELD_LABEL: Record<SourceKey | OperationKey, string> = {
  principals: 'Principals', notPrincipals: 'Not principals', namespaces: 'Namespaces', notNamespaces: 'Not namespaces', ipBlocks: 'IP blocks', notIpBlocks: 'Not IP blocks',
  hosts: 'Hosts', notHosts: 'Not hosts', ports: 'Ports', notPorts: 'Not ports', methods: 'Methods', notMethods: 'Not methods', paths: 'Paths', notPaths: 'Not paths',
};
const PLACEHOLDER: Partial<Record<SourceKey | OperationKey, string>> = {
  principals: 'cluster.local/ns/default/sa/productpage', namespaces: 'default', ipBlocks: '10.0.0.0/16', hosts: 'reviews.default.svc.cluster.local', ports: '9080', methods: 'GET, POST', paths: '/api/*',
};

export function AuthzTab({ resources, namespaces }: { resources: StoredResource[]; namespaces: string[] }) {
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const ap = params.get('ap') ?? '';
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [deleted, setDeleted] = useState<string | undefined>();
  const remove = useMutation(trpc.resources.delete.mutationOptions({ onSuccess: () => void queryClient.invalidateQueries() }));
  const policies = resources.filter((r) => r.kind === 'AuthorizationPolicy' && (ns === '' || r.metadata.namespace === ns));
  const editing = ap === 'new' ? undefined : resources.find((r) => r.kind === 'AuthorizationPolicy' && `${r.metadata.namespace}/${r.metadata.name}` === ap);

  return (
    <>
      <section className="panel" aria-labelledby="h-ap-list">
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2 id="h-ap-list">Authorization policies</h2>
          <label>
            Namespace
            <select value={ns} onChange={(e) => setParams({ ns: e.target.value })} aria-label="Namespace filter">
              <option value="">All namespaces</option>
              {namespaces.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </label>
        </div>
        {policies.length === 0 ? <Empty>No AuthorizationPolicy{ns ? ` in ${ns}` : ''}: every request is allowed (unless a policy in {ROOT_NAMESPACE} applies).</Empty> : (
          <table data-testid="authz-policies">
            <thead><tr><th>Policy</th><th>Action</th><th>Selector</th><th>Rules</th><th>Summary</th><th /></tr></thead>
            <tbody>
              {policies.map((p) => {
                const ref = `${p.metadata.namespace}/${p.metadata.name}`;
                const spec = p.spec as { action?: string; selector?: { matchLabels?: Record<string, string> }; rules?: unknown[] };
                return (
                  <tr key={ref} data-testid={`ap-${p.metadata.namespace}-${p.metadata.name}`}>
                    <td><Link href={resourceHref('AuthorizationPolicy', p.metadata.namespace, p.metadata.name)}>{ref}</Link></td>
                    <td><span className={`badge ${spec.action === 'DENY' ? 'err' : spec.action === 'AUDIT' ? 'neutral' : spec.action === 'CUSTOM' ? 'warn' : 'ok'}`}>{spec.action ?? 'ALLOW'}</span></td>
                    <td className="mono small">{formatLabels(spec.selector?.matchLabels) || (p.metadata.namespace === ROOT_NAMESPACE ? 'whole mesh' : 'whole namespace')}</td>
                    <td>{spec.rules?.length ?? 'none'}</td>
                    <td className="small">{summarizePolicy(p.spec)}</td>
                    <td>
                      <span className="row">
                        <button type="button" onClick={() => setParams({ ap: ref })} aria-label={`Edit ${ref}`} aria-pressed={ap === ref}>Edit</button>
                        <ConfirmButton
                          need="editor"
                          id={`delete-${p.metadata.namespace}-${p.metadata.name}`}
                          label="Delete"
                          question={`Delete ${ref}? Its rules stop applying at once.`}
                          confirmLabel="Yes, delete"
                          busy={remove.isPending}
                          onConfirm={() => {
                            setDeleted(undefined);
                            remove.mutate(
                              { kind: 'AuthorizationPolicy', namespace: p.metadata.namespace, name: p.metadata.name, resourceVersion: p.metadata.resourceVersion },
                              { onSuccess: (out) => { setDeleted(`Deleted ${ref} at revision ${out.revision}.`); if (ap === ref) setParams({ ap: undefined }); } },
                            );
                          }}
                        />
                      </span>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {remove.isError && <ErrorMessage error={remove.error} title="Not deleted" />}
        {deleted && <div className="msg ok" role="status" data-testid="deleted">{deleted}</div>}
        <p><RoleButton need="editor" id="new-policy" onClick={() => setParams({ ap: 'new' })}>New policy</RoleButton></p>
      </section>

      {ap !== '' && ap !== 'new' && !editing && <div className="msg warning">There is no AuthorizationPolicy {ap}.</div>}
      {(ap === 'new' || editing) && (
        <AuthzEditor key={ap} stored={editing} resources={resources} namespace={ns || namespaces.find((n) => n !== ROOT_NAMESPACE) || 'default'} namespaces={namespaces} onClose={() => setParams({ ap: undefined })} />
      )}
    </>
  );
}

/** A list input: a short visible label, the full one ("Rule 1 source 1 IP blocks") for assistive technology. */
function ListField({ label, full, value, onChange, path, errs, placeholder }: { label: string; full: string; value: string; onChange: (v: string) => void; path: string; errs: { path: string }[]; placeholder?: string }) {
  return (
    <label>
      {label}
      <input value={value} onChange={(e) => onChange(e.target.value)} placeholder={placeholder} aria-label={full} aria-invalid={errs.some((e) => e.path === path)} />
    </label>
  );
}

function AuthzEditor({ stored, resources, namespace, namespaces, onClose }: { stored?: StoredResource; resources: StoredResource[]; namespace: string; namespaces: string[]; onClose: () => void }) {
  const [form, setForm] = useState<AuthzForm>(() => (stored ? authzFormFrom(stored) : emptyAuthzForm(namespace)));
  const plan = useMemo(() => planAuthorization({ form, resources, stored }), [form, resources, stored]);
  const errs = plan.errors;
  const [findings, setFindings] = useState<Finding[]>([]);
  // The analyzer's findings on a source, operation or condition, shown next to it (rules map 1:1).
  const at = (prefix: string) => <FieldFindings findings={findings} pathPrefix={`spec.${prefix}`} kind="AuthorizationPolicy" />;
  const rules = form.rules ?? [];
  const setRules = (rs: RuleForm[] | undefined) => setForm({ ...form, rules: rs });
  const setRule = (i: number, patch: Partial<RuleForm>) => setRules(rules.map((r, k) => (k === i ? { ...r, ...patch } : r)));
  const title = stored ? `${stored.metadata.namespace}/${stored.metadata.name}` : 'a new policy';

  return (
    <>
      <section className="panel" aria-labelledby="h-ap-edit" data-testid="ap-editor">
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2 id="h-ap-edit">AuthorizationPolicy {title}</h2>
          <button type="button" onClick={onClose}>Close</button>
        </div>
        <div className="row">
          <label>
            Namespace
            <select value={form.namespace} onChange={(e) => setForm({ ...form, namespace: e.target.value })} disabled={stored !== undefined} aria-label="Policy namespace">
              {[...new Set([form.namespace, ...namespaces, ROOT_NAMESPACE])].map((n) => <option key={n} value={n}>{n}{n === ROOT_NAMESPACE ? ' (whole mesh)' : ''}</option>)}
            </select>
          </label>
          <label>
            Name
            <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} disabled={stored !== undefined} aria-label="Policy name" aria-invalid={errs.some((e) => e.path === 'name')} />
          </label>
          <label>
            Action
            <select value={form.action} onChange={(e) => setForm({ ...form, action: e.target.value as AuthzForm['action'] })} aria-label="Action">
              {[...new Set([...FORM_ACTIONS, form.action])].map((a) => <option key={a} value={a}>{a}</option>)}
            </select>
          </label>
          <label>
            Selector (workload labels)
            <input value={form.selector} onChange={(e) => setForm({ ...form, selector: e.target.value })} placeholder="app=reviews (empty: the whole namespace)" aria-label="Selector" aria-invalid={errs.some((e) => e.path === 'selector')} />
          </label>
        </div>
        <FieldFindings findings={errs} pathPrefix="name" kind="form" />
        <FieldFindings findings={errs} pathPrefix="selector" kind="form" />
        <p className="small muted">
          {form.action === 'ALLOW' && 'ALLOW: once any ALLOW policy applies to a workload, requests no rule matches are denied. '}
          {form.action === 'DENY' && 'DENY: a request any rule matches is denied (DENY is checked before ALLOW). '}
          {form.action === 'AUDIT' && 'AUDIT: never blocks; matching requests are only logged. '}
          A rule matches when all its parts hold: any source, any operation, and every condition. Lists are comma-separated; values may use a leading or trailing <code>*</code>.
        </p>

        {form.rules === undefined ? (
          <p className="msg info" data-testid="no-rules">No rules: {form.action === 'ALLOW' ? 'this policy matches nothing, so it denies every request to the workloads it selects.' : 'add one.'} <button type="button" onClick={() => setRules([emptyRule()])}>Add a rule</button></p>
        ) : (
          <>
            {rules.map((r, i) => (
              <div key={i} className="wizard-block" data-testid={`rule-${i}`}>
                <div className="row" style={{ justifyContent: 'space-between' }}>
                  <strong>Rule {i + 1}</strong>
                  <button type="button" onClick={() => setRules(rules.filter((_, k) => k !== i))}>Remove rule {i + 1}</button>
                </div>
                {r.from.length === 0 && r.to.length === 0 && r.when.length === 0 && <p className="small muted">An empty rule matches every request.</p>}
                {r.from.map((f, j) => (
                  <div key={`f${j}`} className="wizard-block">
                    <div className="row" style={{ justifyContent: 'space-between' }}><span>From (source {j + 1})</span><button type="button" onClick={() => setRule(i, { from: r.from.filter((_, k) => k !== j) })}>Remove source</button></div>
                    <div className="row">
                      {SOURCE_KEYS.map((k) => (
                        <ListField key={k} label={FIELD_LABEL[k]} full={`Rule ${i + 1} source ${j + 1} ${FIELD_LABEL[k]}`} value={f[k]} placeholder={PLACEHOLDER[k]} path={`rules[${i}].from[${j}].${k}`} errs={errs} onChange={(v) => setRule(i, { from: r.from.map((x, m) => (m === j ? { ...x, [k]: v } : x)) })} />
                      ))}
                    </div>
                    {Object.keys(f.extra).length > 0 && <p className="small muted">Kept as stored: {Object.keys(f.extra).join(', ')}.</p>}
                    <FieldFindings findings={errs} pathPrefix={`rules[${i}].from[${j}]`} kind="form" />
                    {at(`rules[${i}].from[${j}]`)}
                  </div>
                ))}
                {r.to.map((t, j) => (
                  <div key={`t${j}`} className="wizard-block">
                    <div className="row" style={{ justifyContent: 'space-between' }}><span>To (operation {j + 1})</span><button type="button" onClick={() => setRule(i, { to: r.to.filter((_, k) => k !== j) })}>Remove operation</button></div>
                    <div className="row">
                      {OPERATION_KEYS.map((k) => (
                        <ListField key={k} label={FIELD_LABEL[k]} full={`Rule ${i + 1} operation ${j + 1} ${FIELD_LABEL[k]}`} value={t[k]} placeholder={PLACEHOLDER[k]} path={`rules[${i}].to[${j}].${k}`} errs={errs} onChange={(v) => setRule(i, { to: r.to.map((x, m) => (m === j ? { ...x, [k]: v } : x)) })} />
                      ))}
                    </div>
                    <FieldFindings findings={errs} pathPrefix={`rules[${i}].to[${j}]`} kind="form" />
                    {at(`rules[${i}].to[${j}]`)}
                  </div>
                ))}
                {r.when.map((c, j) => (
                  <div key={`w${j}`}>
                    <div className="row">
                      <label>
                        {`When (condition ${j + 1}) key`}
                        <input value={c.key} list="authz-keys" onChange={(e) => setRule(i, { when: r.when.map((x, m) => (m === j ? { ...x, key: e.target.value } : x)) })} aria-label={`Rule ${i + 1} condition ${j + 1} key`} aria-invalid={errs.some((e) => e.path === `rules[${i}].when[${j}].key`)} />
                      </label>
                      <ListField label="Values" full={`Rule ${i + 1} condition ${j + 1} values`} value={c.values} path={`rules[${i}].when[${j}].values`} errs={errs} onChange={(v) => setRule(i, { when: r.when.map((x, m) => (m === j ? { ...x, values: v } : x)) })} />
                      <ListField label="Not values" full={`Rule ${i + 1} condition ${j + 1} not values`} value={c.notValues} path={`rules[${i}].when[${j}].notValues`} errs={errs} onChange={(v) => setRule(i, { when: r.when.map((x, m) => (m === j ? { ...x, notValues: v } : x)) })} />
                      <button type="button" onClick={() => setRule(i, { when: r.when.filter((_, k) => k !== j) })}>Remove condition</button>
                    </div>
                    <FieldFindings findings={errs} pathPrefix={`rules[${i}].when[${j}]`} kind="form" />
                    {at(`rules[${i}].when[${j}]`)}
                  </div>
                ))}
                <div className="row">
                  <button type="button" onClick={() => setRule(i, { from: [...r.from, emptySource()] })}>Add a source (from)</button>
                  <button type="button" onClick={() => setRule(i, { to: [...r.to, emptyOperation()] })}>Add an operation (to)</button>
                  <button type="button" onClick={() => setRule(i, { when: [...r.when, { key: '', values: '', notValues: '' }] })}>Add a condition (when)</button>
                </div>
              </div>
            ))}
            <div className="row">
              <button type="button" onClick={() => setRules([...rules, emptyRule()])}>Add a rule</button>
              {form.action === 'ALLOW' && <button type="button" onClick={() => setRules(undefined)}>No rules (deny everything)</button>}
            </div>
          </>
        )}
        <FieldFindings findings={errs.filter((e) => e.path === 'rules')} pathPrefix="rules" kind="form" />
        <datalist id="authz-keys">{CONDITION_KEYS.map((k) => <option key={k} value={k} />)}</datalist>

        <div className="msg info" data-testid="compiler-limits">
          <strong>What Tern enforces:</strong>
          <ul>
            <li>principals, namespaces and <code>source.principal</code>/<code>source.namespace</code> come from the peer certificate: they match only over mTLS.</li>
            <li>JWT fields (<code>requestPrincipals</code>, <code>request.auth.*</code>) and path templates (<code>{'{*}'}</code>, <code>{'{**}'}</code>) are not supported: under ALLOW the rule is dropped, under DENY/AUDIT only the value.</li>
            <li>Only HTTP ports are checked (TCP ports get no authorization); AUDIT never blocks; CUSTOM has no external authorizer and denies what it matches.</li>
          </ul>
          {plan.notes.length > 0 && (
            <>
              <strong>For this policy:</strong>
              <ul data-testid="policy-notes">{plan.notes.map((n) => <li key={n}>{n}</li>)}</ul>
            </>
          )}
        </div>
      </section>
      <WizardFrame
        documents={plan.documents}
        existing={plan.existing}
        localErrors={errs}
        onFindings={setFindings}
        isPlaced={(f) => f.kind === 'form' || (f.kind === 'AuthorizationPolicy' && /^spec\.rules\[\d+\]\.(from|to|when)\[\d+\]/.test(f.path))}
        resetKey={title}
      />
    </>
  );
}
