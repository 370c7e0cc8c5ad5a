'use client';
import { useMemo, useState } from 'react';
import { ServiceWizardPage, type ServiceWizardContext } from '../../../../components/service-wizard.tsx';
import { FieldFindings, WizardFrame, type Finding } from '../../../../components/wizard-frame.tsx';
import { currentVirtualService, destinationRuleFor, findingsAt, pathUnder, STRING_MATCH_TYPES, type StringMatchType } from '../../../../lib/wizards/common.ts';
import { subsetNames } from '../../../../lib/wizards/destination-rule.ts';
import { emptyRule, HTTP_METHODS, planRouting, routingFormFrom, type RoutingForm, type RoutingRule } from '../../../../lib/wizards/routing.ts';

function VersionSelect({ value, versions, onChange, label, testId, keepLabel }: { value: string; versions: string[]; onChange: (v: string) => void; label: string; testId: string; keepLabel?: string }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        <option value="">{keepLabel ?? 'Choose…'}</option>
        {versions.map((v) => (
          <option key={v} value={v}>{v}</option>
        ))}
      </select>
    </label>
  );
}

function RoutingWizard({ service, versions, resources }: ServiceWizardContext) {
  const vs = currentVirtualService(service, resources);
  const [form, setForm] = useState<RoutingForm>(() => routingFormFrom(vs));
  const [findings, setFindings] = useState<Finding[]>([]);
  const plan = useMemo(() => planRouting({ service, resources, form }), [service, resources, form]);
  const subsets = subsetNames(destinationRuleFor(service, resources));
  const choices = [...new Set([...versions, ...subsets])];

  const setRows = (rows: RoutingForm['rows']) => setForm({ ...form, rows });
  const setRule = (i: number, patch: Partial<RoutingRule>) => setRows(form.rows.map((r, k) => (k === i && r.kind === 'rule' ? { ...r, ...patch } : r)));
  const move = (i: number, by: number) => {
    const rows = form.rows.slice();
    const [r] = rows.splice(i, 1);
    rows.splice(i + by, 0, r!);
    setRows(rows);
  };
  const ruleNumbers = form.rows.reduce<number[]>((acc, r) => [...acc, (acc.at(-1) ?? -1) + (r.kind === 'rule' ? 1 : 0)], []);
  const defaultRoute = vs ? (vs.spec.http as { match?: unknown[]; route?: { destination?: { subset?: string }; weight?: number }[] }[] | undefined)?.at(-1) : undefined;
  const keepLabel = defaultRoute && !defaultRoute.match?.length
    ? `Keep: ${(defaultRoute.route ?? []).map((d) => `${d.destination?.subset ?? 'any'}${d.weight !== undefined ? ` ${d.weight}%` : ''}`).join(', ')}`
    : undefined;
  const localErrors = plan.errors;
  const vsFindings = (i: number) => findingsAt(findings, 'VirtualService', [`spec.http[${i}]`]);

  return (
    <>
      <section className="panel" aria-labelledby="h-rules">
        <h2 id="h-rules">Rules</h2>
        <p className="small muted">Checked in order: the first rule whose conditions all hold (header and URI path and method) decides the version.</p>
        {form.rows.length === 0 && <p className="muted">No rules yet: everything goes to the default version.</p>}
        {form.rows.map((row, i) => {
          const controls = (
            <span className="row">
              <button type="button" onClick={() => move(i, -1)} disabled={i === 0} aria-label={`Move rule ${i + 1} up`}>↑</button>
              <button type="button" onClick={() => move(i, 1)} disabled={i === form.rows.length - 1} aria-label={`Move rule ${i + 1} down`}>↓</button>
              <button type="button" onClick={() => setRows(form.rows.filter((_, k) => k !== i))}>Remove</button>
            </span>
          );
          if (row.kind === 'kept') {
            return (
              <div key={i} className="wizard-block kept" data-testid={`row-${i}`}>
                <div className="spread">
                  <span><span className="badge neutral">kept as is</span> <span className="mono small">{row.description}</span></span>
                  {controls}
                </div>
                <FieldFindings findings={vsFindings(i)} pathPrefix="" />
              </div>
            );
          }
          const n = ruleNumbers[i]!;
          const p = `rules[${n}]`;
          const label = `Rule ${n + 1}`;
          return (
            <div key={i} className="wizard-block" data-testid={`row-${i}`} role="group" aria-label={label}>
              <div className="spread">
                <strong>{label}</strong>
                {controls}
              </div>
              <div className="row">
                <label>
                  Header name
                  <input value={row.header.name} onChange={(e) => setRule(i, { header: { ...row.header, name: e.target.value } })} placeholder="e.g. end-user" aria-label={`${label} header name`} />
                </label>
                <label>
                  Header match
                  <select value={row.header.type} onChange={(e) => setRule(i, { header: { ...row.header, type: e.target.value as StringMatchType } })} aria-label={`${label} header match`}>
                    {STRING_MATCH_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
                  </select>
                </label>
                <label>
                  Header value
                  <input value={row.header.value} onChange={(e) => setRule(i, { header: { ...row.header, value: e.target.value } })} placeholder="e.g. jason" aria-label={`${label} header value`} />
                </label>
              </div>
              <FieldFindings findings={localErrors} pathPrefix={`${p}.header`} kind="form" />
              <div className="row">
                <label>
                  URI path
                  <select value={row.uri.type} onChange={(e) => setRule(i, { uri: { ...row.uri, type: e.target.value as 'exact' | 'prefix' } })} aria-label={`${label} URI match`}>
                    <option value="prefix">prefix</option>
                    <option value="exact">exact</option>
                  </select>
                </label>
                <label>
                  &nbsp;
                  <input value={row.uri.value} onChange={(e) => setRule(i, { uri: { ...row.uri, value: e.target.value } })} placeholder="e.g. /api/v2" aria-label={`${label} URI path`} />
                </label>
                <label>
                  Method
                  <select value={row.method} onChange={(e) => setRule(i, { method: e.target.value })} aria-label={`${label} method`}>
                    <option value="">any</option>
                    {HTTP_METHODS.map((m) => <option key={m} value={m}>{m}</option>)}
                  </select>
                </label>
                <VersionSelect label="Send to version" value={row.version} versions={choices} onChange={(v) => setRule(i, { version: v })} testId={`rule-${n}-version`} />
              </div>
              <FieldFindings findings={localErrors.filter((e) => !pathUnder(e.path, `${p}.header`))} pathPrefix={p} kind="form" />
              <FieldFindings findings={vsFindings(i)} pathPrefix="" />
            </div>
          );
        })}
        <button type="button" onClick={() => setRows([...form.rows, emptyRule()])} data-testid="add-rule">Add a rule</button>
      </section>

      <section className="panel" aria-labelledby="h-default">
        <h2 id="h-default">Everything else</h2>
        <div className="row">
          <VersionSelect label="Default version" value={form.defaultVersion} versions={choices} onChange={(v) => setForm({ ...form, defaultVersion: v })} testId="default-version" keepLabel={keepLabel ?? 'Choose…'} />
        </div>
        <FieldFindings findings={localErrors} pathPrefix="default" kind="form" />
        <FieldFindings findings={vsFindings(form.rows.length)} pathPrefix="" />
      </section>

      <WizardFrame
        documents={plan.documents}
        existing={plan.existing}
        localErrors={localErrors}
        onFindings={setFindings}
        isPlaced={(f) => f.kind === 'form' || (f.kind === 'VirtualService' && /^spec\.http\[\d+\]/.test(f.path))}
      />
    </>
  );
}

export default function Page() {
  return (
    <ServiceWizardPage
      title="Request routing"
      intro="Send requests to a version by what they carry: a header, a URI path, a method. Writes the service's VirtualService (its http routes) and the DestinationRule subsets the versions need; other settings of the VirtualService (weights of the default route, timeouts, faults) are kept."
    >
      {(ctx) => <RoutingWizard key={`${ctx.service.namespace}/${ctx.service.name}`} {...ctx} />}
    </ServiceWizardPage>
  );
}
