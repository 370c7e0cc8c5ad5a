'use client';
import { useMemo, useState } from 'react';
import { ServiceWizardPage, type ServiceWizardContext } from '../../../../components/service-wizard.tsx';
import { FieldFindings, WizardFrame, type Finding } from '../../../../components/wizard-frame.tsx';
import { currentVirtualService, findingsAt, STRING_MATCH_TYPES, type StringMatchType } from '../../../../lib/wizards/common.ts';
import { faultFormFrom, planFaults, type FaultForm } from '../../../../lib/wizards/faults.ts';

/** Where the analyzer reports on a fault field: the fault of every route that carries one. */
function faultPaths(documents: Record<string, unknown>[], suffix: string): string[] {
  const vs = documents.find((d) => d.kind === 'VirtualService') as { spec?: { http?: { fault?: unknown; match?: unknown }[] } } | undefined;
  return (vs?.spec?.http ?? []).flatMap((r, i) => (r.fault ? [`spec.http[${i}].fault${suffix}`] : []));
}

function FaultWizard({ service, resources }: ServiceWizardContext) {
  const vs = currentVirtualService(service, resources);
  const [form, setForm] = useState<FaultForm>(() => faultFormFrom(vs));
  const [findings, setFindings] = useState<Finding[]>([]);
  const plan = useMemo(() => planFaults({ service, resources, form }), [service, resources, form]);
  const errs = plan.errors;
  const at = (suffix: string) => findingsAt(findings, 'VirtualService', faultPaths(plan.documents, suffix));
  const set = <K extends 'delay' | 'abort' | 'header'>(k: K, v: Partial<FaultForm[K]>) => setForm({ ...form, [k]: { ...form[k], ...v } });

  return (
    <>
      <section className="panel" aria-labelledby="h-fault">
        <h2 id="h-fault">Faults</h2>
        <div className="wizard-block">
          <label className="inline">
            <input type="checkbox" checked={form.delay.enabled} onChange={(e) => set('delay', { enabled: e.target.checked })} name="delay-enabled" />
            Delay requests
          </label>
          {form.delay.enabled && (
            <div className="row">
              <label>
                Fixed delay
                <input value={form.delay.fixedDelay} onChange={(e) => set('delay', { fixedDelay: e.target.value })} placeholder="2s" aria-label="Fixed delay" aria-invalid={errs.some((x) => x.path === 'delay.fixedDelay')} />
              </label>
              <label>
                Of requests (%)
                <input value={form.delay.percent} onChange={(e) => set('delay', { percent: e.target.value })} inputMode="decimal" aria-label="Delay percentage" aria-invalid={errs.some((x) => x.path === 'delay.percent')} />
              </label>
            </div>
          )}
          {form.delay.enabled && <FieldFindings findings={[...errs.filter((x) => x.path.startsWith('delay.')), ...at('.delay')]} pathPrefix="" />}
        </div>
        <div className="wizard-block">
          <label className="inline">
            <input type="checkbox" checked={form.abort.enabled} onChange={(e) => set('abort', { enabled: e.target.checked })} name="abort-enabled" />
            Abort requests with an HTTP status
          </label>
          {form.abort.enabled && (
            <div className="row">
              <label>
                HTTP status
                <input value={form.abort.httpStatus} onChange={(e) => set('abort', { httpStatus: e.target.value })} inputMode="numeric" aria-label="Abort HTTP status" aria-invalid={errs.some((x) => x.path === 'abort.httpStatus')} />
              </label>
              <label>
                Of requests (%)
                <input value={form.abort.percent} onChange={(e) => set('abort', { percent: e.target.value })} inputMode="decimal" aria-label="Abort percentage" aria-invalid={errs.some((x) => x.path === 'abort.percent')} />
              </label>
            </div>
          )}
          {form.abort.enabled && <FieldFindings findings={[...errs.filter((x) => x.path.startsWith('abort.')), ...at('.abort')]} pathPrefix="" />}
        </div>
        {!form.delay.enabled && !form.abort.enabled && <p className="muted" data-testid="no-fault">No fault: saving removes any fault from the service&apos;s routes.</p>}
      </section>

      <section className="panel" aria-labelledby="h-scope">
        <h2 id="h-scope">Which requests</h2>
        <fieldset className="choice">
          <legend className="sr-only">Which requests</legend>
          <label className="inline">
            <input type="radio" name="scope" checked={form.scope === 'all'} onChange={() => setForm({ ...form, scope: 'all' })} />
            All requests
          </label>
          <label className="inline">
            <input type="radio" name="scope" checked={form.scope === 'header'} onChange={() => setForm({ ...form, scope: 'header' })} />
            Only requests with a header
          </label>
        </fieldset>
        {form.scope === 'header' && (
          <>
            <div className="row">
              <label>
                Header name
                <input value={form.header.name} onChange={(e) => set('header', { name: e.target.value })} aria-label="Header name" aria-invalid={errs.some((x) => x.path === 'header.name')} />
              </label>
              <label>
                Match
                <select value={form.header.type} onChange={(e) => set('header', { type: e.target.value as StringMatchType })} aria-label="Header match">
                  {STRING_MATCH_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
                </select>
              </label>
              <label>
                Header value
                <input value={form.header.value} onChange={(e) => set('header', { value: e.target.value })} placeholder="jason" aria-label="Header value" aria-invalid={errs.some((x) => x.path === 'header.value')} />
              </label>
            </div>
            <FieldFindings findings={errs} pathPrefix="header" kind="form" />
            <p className="small muted">The fault goes into a route of its own, first, named <code>fault-injection</code>, sending where those requests went before (a routing rule on the same header, else the default route&apos;s destinations).</p>
          </>
        )}
      </section>

      {plan.documents.length === 0 ? (
        <section className="panel"><p className="muted" data-testid="nothing">{service.name} has no VirtualService and no fault is chosen: there is nothing to write.</p></section>
      ) : (
        <WizardFrame
          documents={plan.documents}
          existing={plan.existing}
          localErrors={errs}
          onFindings={setFindings}
          isPlaced={(f) => f.kind === 'form' || (f.kind === 'VirtualService' && /^spec\.http\[\d+\]\.fault\.(delay|abort)/.test(f.path))}
        />
      )}
    </>
  );
}

export default function Page() {
  return (
    <ServiceWizardPage
      title="Fault injection"
      intro="Delay or abort a share of a service's requests, for all of them or only those carrying a header, to test how callers cope. Writes the faults of the service's VirtualService; its routes, weights, timeouts and retries are kept."
    >
      {(ctx) => <FaultWizard key={`${ctx.service.namespace}/${ctx.service.name}`} {...ctx} />}
    </ServiceWizardPage>
  );
}
