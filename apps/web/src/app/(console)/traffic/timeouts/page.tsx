'use client';
import { useMemo, useState } from 'react';
import { ServiceWizardPage, type ServiceWizardContext } from '../../../../components/service-wizard.tsx';
import { FieldFindings, WizardFrame, type Finding } from '../../../../components/wizard-frame.tsx';
import { currentVirtualService, describeRoute, findingsAt, httpRoutesOf } from '../../../../lib/wizards/common.ts';
import { GRPC_RETRY_CONDITIONS, HTTP_RETRY_CONDITIONS, planTimeouts, targetIndexes, targetsDiffer, timeoutFormFrom, type TimeoutForm } from '../../../../lib/wizards/timeouts.ts';

function TimeoutWizard({ service, resources }: ServiceWizardContext) {
  const vs = currentVirtualService(service, resources);
  const http = httpRoutesOf(vs);
  const [form, setForm] = useState<TimeoutForm>(() => timeoutFormFrom(vs));
  const [findings, setFindings] = useState<Finding[]>([]);
  const plan = useMemo(() => planTimeouts({ service, resources, form }), [service, resources, form]);
  const errs = plan.errors;
  const targets = targetIndexes(http.length > 0 ? http : [{ route: [{}] }], form.target);
  const at = (suffix: string) => findingsAt(findings, 'VirtualService', targets.map((i) => `spec.http[${i}].${suffix}`));
  const setRetries = (patch: Partial<TimeoutForm['retries']>) => setForm({ ...form, retries: { ...form.retries, ...patch } });
  const toggle = (c: string, on: boolean) => setRetries({ retryOn: on ? [...form.retries.retryOn, c] : form.retries.retryOn.filter((x) => x !== c) });
  const invalid = (path: string) => errs.some((e) => e.path === path);

  return (
    <>
      <section className="panel" aria-labelledby="h-target">
        <h2 id="h-target">Routes</h2>
        <label>
          Apply to
          <select
            value={String(form.target)}
            data-testid="target"
            onChange={(e) => {
              const t = e.target.value === 'all' ? 'all' : Number(e.target.value);
              setForm(timeoutFormFrom(vs, t));
            }}
          >
            <option value="all">Every route</option>
            {http.map((r, i) => (targetIndexes(http, i).length > 0 ? <option key={i} value={i}>{describeRoute(r, i)}</option> : null))}
          </select>
        </label>
        {form.target === 'all' && targetsDiffer(vs) && <div className="msg info">The routes have different timeouts or retries today; the form shows the default route&apos;s, and saving sets them on every route.</div>}
        <FieldFindings findings={errs} pathPrefix="target" kind="form" />
      </section>

      <section className="panel" aria-labelledby="h-timeout">
        <h2 id="h-timeout">Timeout</h2>
        <label>
          Route timeout (empty: none)
          <input value={form.timeout} onChange={(e) => setForm({ ...form, timeout: e.target.value })} placeholder="10s" aria-label="Route timeout" aria-invalid={invalid('timeout')} style={{ maxWidth: 200 }} />
        </label>
        <FieldFindings findings={[...errs.filter((e) => e.path === 'timeout'), ...at('timeout')]} pathPrefix="" />
      </section>

      <section className="panel" aria-labelledby="h-retries">
        <h2 id="h-retries">Retries</h2>
        <fieldset className="choice">
          <legend className="sr-only">Retry policy</legend>
          <label className="inline">
            <input type="radio" name="retry-mode" checked={form.retries.mode === 'default'} onChange={() => setRetries({ mode: 'default' })} />
            Istio&apos;s default (no retry policy written: 2 attempts on connect failures, refused streams and 503)
          </label>
          <label className="inline">
            <input type="radio" name="retry-mode" checked={form.retries.mode === 'custom'} onChange={() => setRetries({ mode: 'custom' })} />
            Custom
          </label>
        </fieldset>
        {form.retries.mode === 'custom' && (
          <>
            <div className="row">
              <label>
                Attempts (0 disables retries)
                <input value={form.retries.attempts} onChange={(e) => setRetries({ attempts: e.target.value })} inputMode="numeric" aria-label="Retry attempts" aria-invalid={invalid('retries.attempts')} />
              </label>
              <label>
                Per-try timeout (empty: the route timeout)
                <input value={form.retries.perTryTimeout} onChange={(e) => setRetries({ perTryTimeout: e.target.value })} placeholder="2s" aria-label="Per-try timeout" aria-invalid={invalid('retries.perTryTimeout')} />
              </label>
            </div>
            <FieldFindings findings={[...errs.filter((e) => e.path === 'retries.attempts' || e.path === 'retries.perTryTimeout'), ...at('retries.attempts'), ...at('retries.perTryTimeout')]} pathPrefix="" />
            <div role="group" aria-labelledby="h-retry-on" style={{ marginTop: 8 }}>
              <div id="h-retry-on" style={{ fontWeight: 500 }}>Retry on</div>
              <div className="checks">
                <span className="small muted">HTTP:</span>
                {HTTP_RETRY_CONDITIONS.map((c) => (
                  <label key={c} className="inline"><input type="checkbox" checked={form.retries.retryOn.includes(c)} onChange={(e) => toggle(c, e.target.checked)} name={`retry-on-${c}`} /> {c}</label>
                ))}
              </div>
              <div className="checks">
                <span className="small muted">gRPC:</span>
                {GRPC_RETRY_CONDITIONS.map((c) => (
                  <label key={c} className="inline"><input type="checkbox" checked={form.retries.retryOn.includes(c)} onChange={(e) => toggle(c, e.target.checked)} name={`retry-on-${c}`} /> {c}</label>
                ))}
              </div>
              <label style={{ marginTop: 6 }}>
                Other conditions (comma-separated: status codes such as 503, retriable-status-codes…)
                <input value={form.retries.otherRetryOn} onChange={(e) => setRetries({ otherRetryOn: e.target.value })} aria-label="Other retry conditions" aria-invalid={invalid('retries.retryOn')} style={{ maxWidth: 420 }} />
              </label>
            </div>
            <FieldFindings findings={[...errs.filter((e) => e.path === 'retries.retryOn'), ...at('retries.retryOn')]} pathPrefix="" />
          </>
        )}
      </section>

      {plan.documents.length === 0 ? (
        <section className="panel"><p className="muted" data-testid="nothing">{service.name} has no VirtualService and nothing is set: there is nothing to write.</p></section>
      ) : (
        <WizardFrame
          documents={plan.documents}
          existing={plan.existing}
          localErrors={errs}
          onFindings={setFindings}
          isPlaced={(f) => {
            const m = /^spec\.http\[(\d+)\]\.(timeout|retries\.(attempts|perTryTimeout|retryOn))/.exec(f.path);
            return f.kind === 'form' || (f.kind === 'VirtualService' && m !== null && targets.includes(Number(m[1])) && (m[2] === 'timeout' || form.retries.mode === 'custom'));
          }}
        />
      )}
    </>
  );
}

export default function Page() {
  return (
    <ServiceWizardPage
      title="Timeouts and retries"
      intro="How long a service's routes wait, and when and how often they retry. Writes the timeout and retries of the service's VirtualService routes; matches, destinations, weights and faults are kept."
    >
      {(ctx) => <TimeoutWizard key={`${ctx.service.namespace}/${ctx.service.name}`} {...ctx} />}
    </ServiceWizardPage>
  );
}
