'use client';
import { useSearchParams } from 'next/navigation';
import { useMemo, useState } from 'react';
import { GroupFindings, InWords, localFindings, placedUnder, RuleFrame, RuleSummary, RulePicker, TextField, useUrlForm } from '../../../../components/destination-rule-form.tsx';
import { TrafficWizardPage } from '../../../../components/service-wizard.tsx';
import type { Finding } from '../../../../components/wizard-frame.tsx';
import type { ServiceRecord, StoredResource } from '../../../../lib/api-types.ts';
import {
  CIRCUIT_BREAKER_FIELDS,
  circuitBreakerFormFrom,
  describeCircuitBreaker,
  fieldSubpath,
  keptCircuitBreakerFields,
  planCircuitBreaker,
  type CircuitBreakerField,
  type CircuitBreakerForm,
} from '../../../../lib/wizards/circuit-breaker.ts';
import { destinationRuleFor } from '../../../../lib/wizards/common.ts';

const PREFIX = 'spec.trafficPolicy';

const HINTS: Record<CircuitBreakerField, { placeholder: string; hint: string }> = {
  maxConnections: { placeholder: 'no limit', hint: 'TCP connections from each calling proxy to the service.' },
  connectTimeout: { placeholder: '10s', hint: 'How long to wait for a connection, e.g. 250ms, 5s.' },
  http1MaxPendingRequests: { placeholder: 'no limit', hint: 'Requests that may wait for a free connection.' },
  http2MaxRequests: { placeholder: 'no limit', hint: 'Requests in flight at once.' },
  maxRequestsPerConnection: { placeholder: 'no limit', hint: '1 turns keep-alive off.' },
  maxRetries: { placeholder: 'no limit', hint: 'Retries outstanding at once.' },
  consecutive5xxErrors: { placeholder: '5', hint: 'Errors in a row before ejection; 0 turns this off.' },
  consecutiveGatewayErrors: { placeholder: 'off', hint: '502, 503, 504 or connection failures in a row.' },
  interval: { placeholder: '10s', hint: 'How often endpoints are checked.' },
  baseEjectionTime: { placeholder: '30s', hint: 'Ejected for this long × times ejected.' },
  maxEjectionPercent: { placeholder: '10', hint: 'Percent of endpoints that may be ejected at once (0–100).' },
};

const POOL_FIELDS: CircuitBreakerField[] = ['maxConnections', 'http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'connectTimeout'];
const OUTLIER_FIELDS: CircuitBreakerField[] = ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent'];

function Wizard({ services, resources }: { services: ServiceRecord[]; resources: StoredResource[] }) {
  const search = useSearchParams();
  // Which service is kept in state too: the URL is written with history.replaceState (see useUrlForm).
  const [scope, setScopeState] = useState(() => ({ ns: search.get('ns') ?? '', svc: search.get('svc') ?? '' }));
  const service = services.find((s) => s.namespace === scope.ns && s.name === scope.svc);
  const existing = service ? destinationRuleFor(service, resources) : undefined;
  const initial = useMemo(() => circuitBreakerFormFrom(existing), [existing]);
  const { form, set, setScope } = useUrlForm<CircuitBreakerForm>(initial);
  const [remote, setRemote] = useState<Finding[]>([]);

  const plan = service ? planCircuitBreaker({ service, existing, form }) : undefined;
  const findings = [...localFindings(plan?.errors ?? []), ...remote];
  const fieldPaths = [...POOL_FIELDS, ...OUTLIER_FIELDS].map((f) => `${PREFIX}.${fieldSubpath(f)}`);
  const groupPaths = [`${PREFIX}.connectionPool`, `${PREFIX}.outlierDetection`];
  const host = service?.name ?? '';

  const field = (f: CircuitBreakerField) => (
    <TextField
      key={f}
      name={f}
      label={CIRCUIT_BREAKER_FIELDS[f].label}
      value={form[f]}
      onChange={(v) => set(f, v)}
      path={`${PREFIX}.${fieldSubpath(f)}`}
      findings={findings}
      placeholder={HINTS[f].placeholder}
      hint={HINTS[f].hint}
      inputMode={f === 'connectTimeout' || f === 'interval' || f === 'baseEjectionTime' ? 'text' : 'numeric'}
    />
  );

  return (
    <>
      <RulePicker
        services={services}
        resources={resources}
        ns={scope.ns}
        svc={scope.svc}
        onPick={(ns, svc) => {
          setScopeState({ ns, svc });
          setRemote([]);
          setScope({ ns, svc });
        }}
      />
      {service && plan && (
        <>
          <RuleSummary existing={existing} service={service} kept={keptCircuitBreakerFields(existing)} />
          <div className="grid2">
            <section className="panel" aria-labelledby="h-pool">
              <div className="spread">
                <h2 id="h-pool">Connection pool (circuit breaker)</h2>
                <label className="inline">
                  <input type="checkbox" name="pool" checked={form.pool} onChange={(e) => set('pool', e.target.checked)} />
                  Limit connections
                </label>
              </div>
              <GroupFindings findings={findings} path={`${PREFIX}.connectionPool`} />
              {form.pool ? (
                <div className="dr-fields">{POOL_FIELDS.map(field)}</div>
              ) : (
                <p className="muted">Off: no connection limits{existing ? '; saving removes trafficPolicy.connectionPool' : ''}.</p>
              )}
            </section>
            <section className="panel" aria-labelledby="h-outlier">
              <div className="spread">
                <h2 id="h-outlier">Outlier detection</h2>
                <label className="inline">
                  <input type="checkbox" name="outlier" checked={form.outlier} onChange={(e) => set('outlier', e.target.checked)} />
                  Eject failing endpoints
                </label>
              </div>
              <GroupFindings findings={findings} path={`${PREFIX}.outlierDetection`} />
              {form.outlier ? (
                <div className="dr-fields">{OUTLIER_FIELDS.map(field)}</div>
              ) : (
                <p className="muted">Off: failing endpoints are not ejected{existing ? '; saving removes trafficPolicy.outlierDetection' : ''}.</p>
              )}
            </section>
          </div>
          <InWords lines={describeCircuitBreaker(form, host)} />
          <RuleFrame
            plan={plan}
            onFindings={setRemote}
            isPlaced={placedUnder(fieldPaths, groupPaths)}
            resetKey={`${scope.ns}/${scope.svc}`}
          />
        </>
      )}
    </>
  );
}

export default function Page() {
  return (
    <TrafficWizardPage
      title="Circuit breaker and outlier detection"
      intro={
        <>
          Limit the connections and requests each calling proxy sends to a service (beyond them, requests fail fast with 503 instead of piling up), and take endpoints that keep failing out of
          the load balancing for a while. The wizard edits the service&apos;s DestinationRule: <code>trafficPolicy.connectionPool</code> and <code>trafficPolicy.outlierDetection</code>.
        </>
      }
    >
      {(data) => <Wizard services={data.services} resources={data.resources} />}
    </TrafficWizardPage>
  );
}
