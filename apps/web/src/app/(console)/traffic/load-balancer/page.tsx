'use client';
import { useSearchParams } from 'next/navigation';
import { useMemo, useState } from 'react';
import { GroupFindings, InWords, localFindings, placedUnder, RuleFrame, RuleSummary, RulePicker, TextField, useUrlForm } from '../../../../components/destination-rule-form.tsx';
import { TrafficWizardPage } from '../../../../components/service-wizard.tsx';
import { FieldFindings, pathUnder, type Finding } from '../../../../components/wizard-frame.tsx';
import type { ServiceRecord, StoredResource } from '../../../../lib/api-types.ts';
import { destinationRuleFor } from '../../../../lib/wizards/common.ts';
import { policyPath, subsetNames, trafficPolicyOf } from '../../../../lib/wizards/destination-rule.ts';
import {
  describeLoadBalancer,
  HASH_KEYS,
  LOAD_BALANCER_PATHS,
  loadBalancerFormFrom,
  planLoadBalancer,
  SIMPLE_ALGORITHMS,
  type HashOn,
  type LoadBalancerForm,
} from '../../../../lib/wizards/load-balancer.ts';

const HASH_LABELS: Record<HashOn, string> = {
  httpHeaderName: 'A request header',
  httpCookie: 'A cookie',
  useSourceIp: 'The client IP address',
  httpQueryParameterName: 'A query parameter',
};

const ALGORITHM_LABELS: Record<string, string> = {
  ROUND_ROBIN: 'Round robin',
  LEAST_REQUEST: 'Least request',
  RANDOM: 'Random',
  PASSTHROUGH: 'Passthrough (original destination)',
};

/** The rule-level algorithm in a few words, for the per-subset note. */
function ruleLevel(existing: StoredResource | undefined): string {
  const lb = trafficPolicyOf(existing).loadBalancer as { simple?: string; consistentHash?: Record<string, unknown> } | undefined;
  if (lb?.simple) return lb.simple;
  if (lb?.consistentHash) return `consistent hash on ${HASH_KEYS.find((k) => lb.consistentHash?.[k] !== undefined) ?? 'a key'}`;
  return "Istio's default (LEAST_REQUEST)";
}

function Wizard({ services, resources }: { services: ServiceRecord[]; resources: StoredResource[] }) {
  const search = useSearchParams();
  // Service and subset are kept in state too: the URL is written with history.replaceState (see useUrlForm).
  const [scope, setScopeState] = useState(() => ({ ns: search.get('ns') ?? '', svc: search.get('svc') ?? '', subset: search.get('subset') ?? '' }));
  const service = services.find((s) => s.namespace === scope.ns && s.name === scope.svc);
  const existing = service ? destinationRuleFor(service, resources) : undefined;
  const subsets = subsetNames(existing);
  const subset = scope.subset && subsets.includes(scope.subset) ? scope.subset : undefined;
  const initial = useMemo(() => loadBalancerFormFrom(existing, subset), [existing, subset]);
  const { form, set, setScope } = useUrlForm<LoadBalancerForm>(initial);
  const [remote, setRemote] = useState<Finding[]>([]);

  const plan = service ? planLoadBalancer({ service, existing, form, subset }) : undefined;
  const findings = [...localFindings(plan?.errors ?? []), ...remote];
  const prefix = policyPath(existing, subset);
  const lbPath = `${prefix}.loadBalancer`;
  const path = (f: keyof typeof LOAD_BALANCER_PATHS) => `${prefix}.${LOAD_BALANCER_PATHS[f]}`;
  const changeScope = (patch: Partial<typeof scope>) => {
    const next = { ...scope, ...patch };
    setScopeState(next);
    setRemote([]);
    setScope({ ns: next.ns, svc: next.svc, subset: next.subset || undefined });
  };
  const storedSimple = typeof initial.simple === 'string' && !(SIMPLE_ALGORITHMS as readonly string[]).includes(initial.simple) ? initial.simple : undefined;

  return (
    <>
      <RulePicker services={services} resources={resources} ns={scope.ns} svc={scope.svc} onPick={(ns, svc) => changeScope({ ns, svc, subset: '' })} />
      {scope.subset && service && !subset && <div className="msg warning">The DestinationRule has no subset {scope.subset}; showing the rule-wide load balancer.</div>}
      {service && plan && (
        <>
          <RuleSummary existing={existing} service={service} kept={[]} />
          <section className="panel" aria-labelledby="h-lb">
            <h2 id="h-lb">Load balancer</h2>
            <div className="dr-field" style={{ maxWidth: 420, marginBottom: 12 }}>
              <label htmlFor="f-subset">Applies to</label>
              <select id="f-subset" name="subset" value={subset ?? ''} onChange={(e) => changeScope({ subset: e.target.value })} data-testid="subset-select">
                <option value="">Every subset (the rule&apos;s trafficPolicy)</option>
                {subsets.map((s) => (
                  <option key={s} value={s}>Subset {s} only (overrides the rule&apos;s)</option>
                ))}
              </select>
            </div>
            {subset && <p className="small muted">The rest of {service.name} keeps the rule-wide load balancer: {ruleLevel(existing)}.</p>}
            <GroupFindings findings={findings} path={lbPath} />
            <fieldset className="choice">
              <legend>How to pick an endpoint</legend>
              {(
                [
                  ['default', subset ? 'Same as the whole rule' : "Istio's default"],
                  ['simple', 'Simple'],
                  ['consistentHash', 'Consistent hash (sticky sessions)'],
                ] as const
              ).map(([mode, label]) => (
                <label key={mode} className="inline">
                  <input type="radio" name="mode" value={mode} checked={form.mode === mode} onChange={() => set('mode', mode)} />
                  {label}
                </label>
              ))}
            </fieldset>

            {form.mode === 'simple' && (
              <div className="dr-field" style={{ maxWidth: 320 }}>
                <label htmlFor="f-simple">Algorithm</label>
                <select id="f-simple" name="simple" value={form.simple} onChange={(e) => set('simple', e.target.value)}>
                  {SIMPLE_ALGORITHMS.map((a) => <option key={a} value={a}>{ALGORITHM_LABELS[a]} ({a})</option>)}
                  {storedSimple && <option value={storedSimple}>{storedSimple} (as stored)</option>}
                </select>
                <FieldFindings findings={findings.filter((f) => f.kind === 'DestinationRule' && pathUnder(f.path, path('simple')))} pathPrefix={path('simple')} />
              </div>
            )}

            {form.mode === 'consistentHash' && (
              <>
                <fieldset className="choice">
                  <legend>Hash on</legend>
                  {HASH_KEYS.map((k) => (
                    <label key={k} className="inline">
                      <input type="radio" name="hashOn" value={k} checked={form.hashOn === k} onChange={() => set('hashOn', k)} />
                      {HASH_LABELS[k]}
                    </label>
                  ))}
                </fieldset>
                <div className="dr-fields">
                  {form.hashOn === 'httpHeaderName' && (
                    <TextField name="httpHeaderName" label="Header name" value={form.httpHeaderName} onChange={(v) => set('httpHeaderName', v)} path={path('httpHeaderName')} findings={findings} placeholder="x-user-id" hint="Requests with the same value stick together." />
                  )}
                  {form.hashOn === 'httpCookie' && (
                    <>
                      <TextField name="cookieName" label="Cookie name" value={form.cookieName} onChange={(v) => set('cookieName', v)} path={path('cookieName')} findings={findings} placeholder="session" />
                      <TextField name="cookieTtl" label="Cookie TTL" value={form.cookieTtl} onChange={(v) => set('cookieTtl', v)} path={path('cookieTtl')} findings={findings} placeholder="e.g. 1h" hint="With a TTL the proxy sets the cookie when it is missing; 0s: a session cookie." />
                    </>
                  )}
                  {form.hashOn === 'httpQueryParameterName' && (
                    <TextField name="httpQueryParameterName" label="Query parameter name" value={form.httpQueryParameterName} onChange={(v) => set('httpQueryParameterName', v)} path={path('httpQueryParameterName')} findings={findings} placeholder="user" />
                  )}
                  <TextField name="minimumRingSize" label="Minimum ring size (optional)" value={form.minimumRingSize} onChange={(v) => set('minimumRingSize', v)} path={path('minimumRingSize')} findings={findings} placeholder="1024" inputMode="numeric" hint="Ring hash entries; more spread keys more evenly." />
                </div>
              </>
            )}
          </section>
          <InWords lines={describeLoadBalancer(form, service.name, subset)} />
          <RuleFrame
            plan={plan}
            onFindings={setRemote}
            isPlaced={placedUnder(Object.keys(LOAD_BALANCER_PATHS).filter((k) => k !== 'hashOn').map((k) => path(k as keyof typeof LOAD_BALANCER_PATHS)), [lbPath])}
            resetKey={`${scope.ns}/${scope.svc}/${subset ?? ''}`}
          />
        </>
      )}
    </>
  );
}

export default function Page() {
  return (
    <TrafficWizardPage
      title="Load balancer"
      intro={
        <>
          Choose how each calling proxy spreads requests over a service&apos;s endpoints: a simple algorithm, or a consistent hash so that requests with the same header, cookie, client
          address or query parameter reach the same endpoint. The wizard edits the service&apos;s DestinationRule: <code>trafficPolicy.loadBalancer</code>, or one subset&apos;s.
        </>
      }
    >
      {(data) => <Wizard services={data.services} resources={data.resources} />}
    </TrafficWizardPage>
  );
}
