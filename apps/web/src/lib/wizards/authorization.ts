import type { StoredResource } from '../api-types.ts';
import type { WizardPlan } from './common.ts';
import { checkIpBlocks, checkLabels, checkList, checkPorts, checkResourceName, compact, formatLabels, formError, record, type FormError } from './fields.ts';

// The AuthorizationPolicy editor: form <-> policy. The form shows the action, the selector and each
// rule's sources (from), operations (to) and conditions (when); everything else the stored policy
// has (targetRef(s), provider, serviceAccounts, requestPrincipals, remoteIpBlocks, metadata labels
// and annotations) is kept as it was. Lists are typed comma-separated.

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
export const FORM_ACTIONS: readonly AuthzAction[] = ['ALLOW', 'DENY', 'AUDIT'];

export const SOURCE_KEYS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks'] as const;
export const OPERATION_KEYS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
export type SourceKey = (typeof SOURCE_KEYS)[number];
export type OperationKey = (typeof OPERATION_KEYS)[number];

export type SourceForm = Record<SourceKey, string> & { extra: Record<string, unknown> };
export type OperationForm = Record<OperationKey, string> & { extra: Record<string, unknown> };
export interface ConditionForm {
  key: string;
  values: string;
  notValues: string;
}
export interface RuleForm {
  from: SourceForm[];
  to: OperationForm[];
  when: ConditionForm[];
  /** Fields of the rule the form does not show. */
  extra: Record<string, unknown>;
}

export interface AuthzForm {
  namespace: string;
  name: string;
  action: AuthzAction;
  /** "app=reviews": empty means every workload of the namespace (in the root namespace: the mesh). */
  selector: string;
  /** undefined: no `rules` field at all (ALLOW then matches nothing: denies everything). */
  rules: RuleForm[] | undefined;
}

/** Condition keys the editor suggests; all of Istio's keys are accepted. */
export const CONDITION_KEYS = ['request.headers[x-user]', 'source.ip', 'source.namespace', 'source.principal', 'destination.port'] as const;
const KNOWN_KEY = /^(request\.headers\[[^\]]+\]|source\.ip|remote\.ip|source\.namespace|source\.principal|source\.serviceAccount|request\.auth\.(principal|audiences|presenter|claims\[.+\])|destination\.ip|destination\.port|connection\.sni|experimental\.envoy\.filters\..+)$/;

export function emptySource(): SourceForm {
  return { principals: '', notPrincipals: '', namespaces: '', notNamespaces: '', ipBlocks: '', notIpBlocks: '', extra: {} };
}
export function emptyOperation(): OperationForm {
  return { hosts: '', notHosts: '', ports: '', notPorts: '', methods: '', notMethods: '', paths: '', notPaths: '', extra: {} };
}
export function emptyRule(): RuleForm {
  return { from: [], to: [], when: [], extra: {} };
}
export function emptyAuthzForm(namespace: string): AuthzForm {
  return { namespace, name: '', action: 'ALLOW', selector: '', rules: [emptyRule()] };
}

const join = (v: unknown) => (Array.isArray(v) ? v.map(String).join(', ') : '');

function split<K extends string>(obj: Record<string, unknown>, keys: readonly K[]): [Record<K, string>, Record<string, unknown>] {
  const shown = {} as Record<K, string>;
  const extra: Record<string, unknown> = {};
  for (const k of keys) shown[k] = join(obj[k]);
  for (const [k, v] of Object.entries(obj)) if (!(keys as readonly string[]).includes(k)) extra[k] = structuredClone(v);
  return [shown, extra];
}

/** The form for a stored policy. */
export function authzFormFrom(p: StoredResource): AuthzForm {
  const spec = p.spec as { action?: AuthzAction; selector?: { matchLabels?: Record<string, string> }; rules?: Record<string, unknown>[] };
  return {
    namespace: p.metadata.namespace,
    name: p.metadata.name,
    action: spec.action ?? 'ALLOW',
    selector: formatLabels(spec.selector?.matchLabels),
    rules: spec.rules?.map((r) => {
      const { from, to, when, ...extra } = r as { from?: { source?: Record<string, unknown> }[]; to?: { operation?: Record<string, unknown> }[]; when?: { key?: string; values?: string[]; notValues?: string[] }[] };
      return {
        from: (from ?? []).map((f) => {
          const [shown, rest] = split(f.source ?? {}, SOURCE_KEYS);
          return { ...shown, extra: rest };
        }),
        to: (to ?? []).map((t) => {
          const [shown, rest] = split(t.operation ?? {}, OPERATION_KEYS);
          return { ...shown, extra: rest };
        }),
        when: (when ?? []).map((c) => ({ key: c.key ?? '', values: join(c.values), notValues: join(c.notValues) })),
        extra: structuredClone(extra),
      };
    }),
  };
}

const LABELS: Record<SourceKey | OperationKey, string> = {
  principals: 'principals', notPrincipals: 'not principals', namespaces: 'namespaces', notNamespaces: 'not namespaces',
  ipBlocks: 'IP blocks', notIpBlocks: 'not IP blocks', hosts: 'hosts', notHosts: 'not hosts', ports: 'ports', notPorts: 'not ports',
  methods: 'methods', notMethods: 'not methods', paths: 'paths', notPaths: 'not paths',
};

const anyList = (raw: string) => checkList(raw, () => true, '');
const METHOD = /^[A-Za-z*]+$|^\*$/;

function checkField(key: SourceKey | OperationKey, raw: string) {
  if (key === 'ipBlocks' || key === 'notIpBlocks') return checkIpBlocks(raw);
  if (key === 'ports' || key === 'notPorts') return checkPorts(raw);
  if (key === 'methods' || key === 'notMethods') return checkList(raw, (v) => METHOD.test(v), 'HTTP methods such as "GET" (a "*" wildcard at most)');
  if (key === 'paths' || key === 'notPaths') return checkList(raw, (v) => v.startsWith('/') || v.startsWith('*'), 'paths starting with "/" (or "*" for a suffix match)');
  return anyList(raw);
}

/** What the compiler does not do with this policy, in words (shown next to the editor). */
export function compilerNotes(spec: Record<string, unknown>): string[] {
  const notes = new Set<string>();
  const rules = (spec.rules as { from?: { source?: Record<string, unknown> }[]; when?: { key?: string }[]; to?: { operation?: Record<string, unknown> }[] }[] | undefined) ?? [];
  const dropped = spec.action === 'ALLOW' || spec.action === undefined ? 'the whole rule is dropped (a smaller allow)' : 'only that value is dropped (a wider match)';
  for (const r of rules) {
    for (const f of r.from ?? []) {
      const s = f.source ?? {};
      if (s.requestPrincipals || s.notRequestPrincipals) notes.add(`requestPrincipals need JWT authentication, which Tern does not implement: ${dropped}.`);
      if (s.principals || s.notPrincipals || s.namespaces || s.notNamespaces) notes.add('principals and namespaces come from the peer certificate: they match only requests over mTLS (a plain-text caller has no identity).');
    }
    for (const c of r.when ?? []) {
      if (c.key?.startsWith('request.auth.')) notes.add(`${c.key} needs JWT authentication, which Tern does not implement: ${dropped}.`);
      if (c.key?.startsWith('experimental.envoy.filters.')) notes.add(`${c.key} reads Envoy metadata Tern does not produce: ${dropped}.`);
    }
    for (const t of r.to ?? []) {
      const paths = [...((t.operation?.paths as string[] | undefined) ?? []), ...((t.operation?.notPaths as string[] | undefined) ?? [])];
      if (paths.some((p) => p.includes('{*}') || p.includes('{**}'))) notes.add(`path templates ({*}, {**}) are not supported: ${dropped}.`);
      if (t.operation?.ports || t.operation?.notPorts) notes.add('rules apply to HTTP ports only: TCP ports get no authorization.');
    }
  }
  if (spec.targetRef || spec.targetRefs) notes.add('policies with targetRef/targetRefs attach to gateways and waypoints: sidecars ignore them.');
  if (spec.action === 'CUSTOM') notes.add('Tern has no external authorizer: a CUSTOM policy denies what its rules match (fail closed).');
  if (spec.rules === undefined && (spec.action ?? 'ALLOW') === 'ALLOW') notes.add('an ALLOW policy without rules matches nothing: it denies every request to the workloads it selects.');
  return [...notes];
}

export interface AuthzInput {
  form: AuthzForm;
  resources: StoredResource[];
  /** The stored policy being edited (undefined: a new one). */
  stored?: StoredResource;
}

export function planAuthorization({ form, resources, stored }: AuthzInput): WizardPlan<AuthzForm> & { notes: string[] } {
  const errors: FormError[] = [];
  const name = record(errors, 'name', 'Name', checkResourceName(form.name)) ?? form.name.trim();
  const namespace = form.namespace.trim();
  if (namespace === '') errors.push(formError('namespace', 'Namespace is required', 'required'));
  if (!stored && resources.some((r) => r.kind === 'AuthorizationPolicy' && r.metadata.namespace === namespace && r.metadata.name === name)) {
    errors.push(formError('name', `Name: an AuthorizationPolicy ${namespace}/${name} exists already (edit it from the list)`, 'exists'));
  }
  const spec: Record<string, unknown> = { ...structuredClone(stored?.spec ?? {}) };
  spec.action = form.action;
  const labels = record(errors, 'selector', 'Selector', checkLabels(form.selector));
  if (labels) spec.selector = { matchLabels: labels };
  else delete spec.selector;

  if (form.rules === undefined) delete spec.rules;
  else {
    spec.rules = form.rules.map((r, i) => {
      const at = `rules[${i}]`;
      const from = r.from.map((f, j) => {
        const source: Record<string, unknown> = { ...structuredClone(f.extra) };
        for (const k of SOURCE_KEYS) {
          const v = record(errors, `${at}.from[${j}].${k}`, `Rule ${i + 1}, source ${j + 1}, ${LABELS[k]}:`, checkField(k, f[k]));
          if (v?.length) source[k] = v;
        }
        if (Object.keys(source).length === 0) errors.push(formError(`${at}.from[${j}]`, `Rule ${i + 1}, source ${j + 1}: set at least one field, or remove the source`, 'not_empty'));
        return { source };
      });
      const to = r.to.map((t, j) => {
        const operation: Record<string, unknown> = { ...structuredClone(t.extra) };
        for (const k of OPERATION_KEYS) {
          const v = record(errors, `${at}.to[${j}].${k}`, `Rule ${i + 1}, operation ${j + 1}, ${LABELS[k]}:`, checkField(k, t[k]));
          if (v?.length) operation[k] = v;
        }
        if (Object.keys(operation).length === 0) errors.push(formError(`${at}.to[${j}]`, `Rule ${i + 1}, operation ${j + 1}: set at least one field, or remove the operation`, 'not_empty'));
        return { operation };
      });
      const when = r.when.map((c, j) => {
        const key = c.key.trim();
        const path = `${at}.when[${j}]`;
        if (key === '') errors.push(formError(`${path}.key`, `Rule ${i + 1}, condition ${j + 1}: a key is required`, 'required'));
        else if (!KNOWN_KEY.test(key)) errors.push(formError(`${path}.key`, `Rule ${i + 1}, condition ${j + 1}: ${JSON.stringify(key)} is not a condition key Istio knows (e.g. request.headers[x-user], source.ip, destination.port)`, 'key'));
        const check = key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip' ? checkIpBlocks : key === 'destination.port' ? checkPorts : anyList;
        const values = record(errors, `${path}.values`, `Rule ${i + 1}, condition ${j + 1}, values:`, check(c.values));
        const notValues = record(errors, `${path}.notValues`, `Rule ${i + 1}, condition ${j + 1}, not values:`, check(c.notValues));
        if (!values?.length && !notValues?.length) errors.push(formError(`${path}.values`, `Rule ${i + 1}, condition ${j + 1}: set values or not values for ${key || 'the key'}`, 'not_empty'));
        return compact({ key, values: values?.length ? values : undefined, notValues: notValues?.length ? notValues : undefined });
      });
      return compact({ ...structuredClone(r.extra), from: from.length ? from : undefined, to: to.length ? to : undefined, when: when.length ? when : undefined });
    });
  }
  if (form.action === 'DENY' && spec.rules === undefined) errors.push(formError('rules', 'A DENY policy needs rules: without any it would never match (add an empty rule to deny every request)', 'rules_required'));

  const document = {
    apiVersion: stored?.apiVersion ?? 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      ...(stored ? { labels: stored.metadata.labels, annotations: stored.metadata.annotations } : {}),
      name: stored ? stored.metadata.name : name,
      namespace: stored ? stored.metadata.namespace : namespace,
      ...(stored ? { resourceVersion: stored.metadata.resourceVersion } : {}),
    },
    spec,
  };
  return { documents: [document], existing: stored ? [stored] : [], errors, form, notes: compilerNotes(spec) };
}

/** A one-line summary for the list: "ALLOW from principals cluster.local/ns/default/sa/a to GET /api/*". */
export function summarizePolicy(spec: Record<string, unknown>): string {
  const action = String(spec.action ?? 'ALLOW');
  const rules = spec.rules as { from?: { source?: Record<string, string[]> }[]; to?: { operation?: Record<string, string[]> }[]; when?: { key: string; values?: string[]; notValues?: string[] }[] }[] | undefined;
  if (rules === undefined) return action === 'ALLOW' ? 'ALLOW nothing: denies every request' : `${action} (no rules)`;
  if (rules.length === 0) return `${action} nothing`;
  const part = (o: Record<string, string[]> | undefined) => Object.entries(o ?? {}).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(', ') : ''}`).join('; ');
  const text = rules.map((r) => {
    const bits: string[] = [];
    if (r.from?.length) bits.push(`from ${r.from.map((f) => part(f.source)).join(' or ')}`);
    if (r.to?.length) bits.push(`to ${r.to.map((t) => part(t.operation)).join(' or ')}`);
    if (r.when?.length) bits.push(`when ${r.when.map((c) => `${c.key}${c.values ? ` in ${c.values.join(', ')}` : ''}${c.notValues ? ` not in ${c.notValues.join(', ')}` : ''}`).join(' and ')}`);
    return bits.length ? bits.join(' ') : 'every request';
  });
  const s = `${action} ${text.join(' | ')}`;
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

