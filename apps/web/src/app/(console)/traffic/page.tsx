'use client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Suspense, useEffect, useMemo, useState } from 'react';
import { Convergence } from '../../../components/convergence.tsx';
import { DiffView } from '../../../components/diff-view.tsx';
import { ErrorMessage, Empty, LevelBadge, Loading, RoleButton } from '../../../components/ui.tsx';
import type { Diagnostic, ServiceRecord, StoredResource } from '../../../lib/api-types.ts';
import { errorInfo, type FieldIssue } from '../../../lib/errors.ts';
import { compareVersions, policyFor, versionsOf } from '../../../lib/mesh.ts';
import { cleanResource, currentWeights, evenSplit, planTrafficShift, rebalance, toYaml } from '../../../lib/traffic.ts';
import { useTRPC } from '../../../lib/trpc.ts';
import { useAnalysis } from '../../../lib/analyze.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

/** Diagnostics and schema issues that name one of the documents we are about to write. */
interface Finding {
  level: 'error' | 'warning' | 'info';
  kind: string;
  path: string;
  message: string;
  code: string;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** Which version a finding's path points at: spec.http[0].route[i] in the VS, spec.subsets[i] in the DR. */
function versionOfFinding(f: Finding, routeVersions: string[], subsetNames: string[]): string | undefined {
  const route = /^spec\.http\[0\]\.route\[(\d+)\]/.exec(f.path);
  if (f.kind === 'VirtualService' && route) return routeVersions[Number(route[1])];
  const subset = /^spec\.subsets\[(\d+)\]/.exec(f.path);
  if (f.kind === 'DestinationRule' && subset) return subsetNames[Number(subset[1])];
  return undefined;
}

function summary(fs: Finding[]): string {
  const n = (level: string) => fs.filter((f) => f.level === level).length;
  const parts = [[n('error'), 'error'], [n('warning'), 'warning'], [n('info'), 'note']] as const;
  return parts.filter(([c]) => c > 0).map(([c, w]) => `${c} ${w}${c === 1 ? '' : 's'}`).join(', ');
}

function Wizard({ services, workloads, resources }: { services: ServiceRecord[]; workloads: Parameters<typeof versionsOf>[1]; resources: StoredResource[] }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const svcName = params.get('svc') ?? '';
  const service = services.find((s) => s.namespace === ns && s.name === svcName);
  const extra = (params.get('extra') ?? '').split(',').filter(Boolean);
  const writeSubsets = params.get('subsets') !== '0';
  const versions = useMemo(
    () => (service ? [...new Set([...versionsOf(service, workloads), ...extra])].sort(compareVersions) : []),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [service, workloads, params.get('extra')],
  );
  const existingVs = service ? policyFor(service, resources).virtualServices.find((r) => r.metadata.namespace === ns) : undefined;
  const fromUrl = (params.get('w') ?? '').split(',').filter(Boolean).map(Number);
  const weights =
    fromUrl.length === versions.length && fromUrl.every((n) => Number.isInteger(n) && n >= 0) && fromUrl.reduce((a, b) => a + b, 0) === 100
      ? fromUrl
      : (currentWeights(existingVs, versions) ?? evenSplit(versions.length));
  const setWeights = (w: number[]) => setParams({ w: w.join(',') });
  const [newVersion, setNewVersion] = useState('');
  const [saved, setSaved] = useState<{ revision: string; warnings: Diagnostic[] } | undefined>();

  const plan = useMemo(
    () => (service && versions.length > 0 ? planTrafficShift({ service, versions, weights, writeSubsets, resources }) : undefined),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [service, versions, weights.join(','), writeSubsets, resources],
  );
  const proposedYaml = plan ? toYaml(plan.documents.map((d) => cleanResource(d))) : '';
  const existingYaml = plan ? toYaml(plan.existing.filter((e): e is StoredResource => e !== undefined).map((e) => cleanResource(e))) : '';

  // The analyzer on the mesh as it would be after this write (nothing is written), re-run as the
  // sliders settle: errors block Save, warnings are shown next to the version they concern.
  const checkedPlan = useDebounced(plan, 300);
  const analyzeInput = useMemo(() => (checkedPlan ? { resources: checkedPlan.documents } : undefined), [checkedPlan]);
  const analysis = useAnalysis(analyzeInput, { enabled: analyzeInput !== undefined });
  const ours = (d: { kind: string; namespace: string; resourceName: string }) =>
    plan?.documents.some((doc) => {
      const m = doc.metadata as { name: string; namespace: string };
      return doc.kind === d.kind && m.namespace === d.namespace && m.name === d.resourceName;
    }) ?? false;
  const analyzeIssues: FieldIssue[] = analysis.isError ? errorInfo(analysis.error).issues : [];
  const findings: Finding[] = [
    ...(analysis.data?.diagnostics ?? []).filter(ours).map((d) => ({ level: d.level, kind: d.kind, path: d.path, message: d.message, code: d.code })),
    ...analyzeIssues.map((i) => ({ level: 'error' as const, kind: i.kind ?? '', path: i.path, message: i.message, code: i.rule })),
  ];
  const stale = checkedPlan !== plan || analysis.isFetching;
  const routeVersions = versions.filter((_, i) => (weights[i] ?? 0) > 0);
  const subsetNames = (plan?.documents.find((d) => d.kind === 'DestinationRule')?.spec as { subsets?: { name: string }[] } | undefined)?.subsets?.map((s) => s.name) ?? [];
  // A finding sits next to its version's slider when it has one (a subset kept from an existing
  // DestinationRule may have none: then it is listed under Analysis).
  const rowOf = (f: Finding) => {
    const v = versionOfFinding(f, routeVersions, subsetNames);
    return v !== undefined && versions.includes(v) ? v : undefined;
  };
  const byVersion = (v: string) => findings.filter((f) => rowOf(f) === v);
  const general = findings.filter((f) => rowOf(f) === undefined);
  const errors = findings.filter((f) => f.level === 'error');

  const save = useMutation(
    trpc.resources.applyDocuments.mutationOptions({
      onSuccess: (out) => {
        setSaved({ revision: out.revision, warnings: out.results.flatMap((r) => r.warnings) });
        void queryClient.invalidateQueries();
      },
    }),
  );

  const pick = (value: string) => {
    const [n, s] = value.split('/');
    setSaved(undefined);
    save.reset();
    setParams({ ns: n, svc: s, w: undefined, extra: undefined });
  };

  return (
    <>
      <div className="panel">
        <label>
          Service
          <select name="service" value={service ? `${ns}/${svcName}` : ''} onChange={(e) => pick(e.target.value)} data-testid="service-select">
            <option value="">Choose a service…</option>
            {services.map((s) => (
              <option key={`${s.namespace}/${s.name}`} value={`${s.namespace}/${s.name}`}>
                {s.namespace}/{s.name} ({versionsOf(s, workloads).length} versions)
              </option>
            ))}
          </select>
        </label>
        {ns && svcName && !service && <div className="msg warning">There is no service {ns}/{svcName} in the registry.</div>}
      </div>

      {service && (
        <>
          <section className="panel" aria-labelledby="h-weights">
            <div className="spread">
              <h2 id="h-weights">Weights</h2>
              <span className="small muted" data-testid="weight-total">Total: {weights.reduce((a, b) => a + b, 0)}%</span>
            </div>
            {versions.length === 0 ? (
              <Empty>No workload of {service.name} has a <code>version</code> label. Add a version below to prepare a subset before deploying it.</Empty>
            ) : (
              versions.map((v, i) => (
                <div className="slider-row" key={v}>
                  <label htmlFor={`w-${v}`} className="mono">{v}</label>
                  <input id={`w-${v}`} type="range" min={0} max={100} step={1} value={weights[i] ?? 0} aria-label={`Weight for ${v}`} onChange={(e) => setWeights(rebalance(weights, i, Number(e.target.value)))} />
                  <input type="number" min={0} max={100} value={weights[i] ?? 0} aria-label={`Weight for ${v} (percent)`} data-testid={`weight-${v}`} onChange={(e) => setWeights(rebalance(weights, i, Number(e.target.value)))} />
                  {byVersion(v).map((f, k) => (
                    <div key={k} className={`field-issue msg ${f.level === 'error' ? 'error' : 'warning'}`} data-testid="finding">
                      <LevelBadge level={f.level} /> {f.message} <span className="small muted">{f.code}</span>
                    </div>
                  ))}
                </div>
              ))
            )}
            <div className="row" style={{ marginTop: 8 }}>
              <label className="inline">
                Add a version
                <input value={newVersion} onChange={(e) => setNewVersion(e.target.value.trim())} placeholder="v4" name="new-version" />
              </label>
              <button type="button" disabled={!newVersion || versions.includes(newVersion)} onClick={() => { setParams({ extra: [...extra, newVersion].join(','), w: undefined }); setNewVersion(''); }}>Add</button>
              <button type="button" onClick={() => setWeights(evenSplit(versions.length))} disabled={versions.length === 0}>Split evenly</button>
            </div>
            <label className="inline" style={{ marginTop: 8 }}>
              <input type="checkbox" checked={writeSubsets} onChange={(e) => setParams({ subsets: e.target.checked ? undefined : '0' })} name="write-subsets" />
              Also write the DestinationRule with a subset per version
            </label>
          </section>

          {plan && (
            <section className="panel" aria-labelledby="h-check">
              <h2 id="h-check">Analysis</h2>
              {analysis.isPending && analyzeInput === undefined ? <Loading what="analysis" /> : null}
              {analysis.isFetching && <Loading what="analysis" />}
              {!analysis.isFetching && findings.length === 0 && analysis.isSuccess && <div className="msg ok" data-testid="analysis-clean">The analyzer found no problem with these resources.</div>}
              {!analysis.isFetching && findings.length > general.length && (
                <p className="muted" data-testid="analysis-summary">
                  {summary(findings.filter((f) => !general.includes(f)))} shown next to the version{findings.length - general.length === 1 ? '' : 's'} concerned.
                </p>
              )}
              {general.map((f, k) => (
                <div key={k} className={`msg ${f.level === 'error' ? 'error' : 'warning'}`} data-testid="finding">
                  <LevelBadge level={f.level} /> {f.kind} <code>{f.path}</code>: {f.message} <span className="small muted">{f.code}</span>
                </div>
              ))}
              {analysis.isError && analyzeIssues.length === 0 && <ErrorMessage error={analysis.error} title="Analysis failed" />}
            </section>
          )}

          {plan && (
            <div className="grid2">
              <section className="panel" aria-labelledby="h-yaml">
                <h2 id="h-yaml">YAML to write</h2>
                <pre data-testid="proposed-yaml">{proposedYaml}</pre>
              </section>
              <section className="panel" aria-labelledby="h-diff">
                <h2 id="h-diff">Diff against what exists</h2>
                {plan.existing.every((e) => e === undefined) && <p className="small muted">Nothing exists yet: everything is new.</p>}
                <DiffView before={existingYaml} after={proposedYaml} label="Diff against the stored resources" />
              </section>
            </div>
          )}

          {plan && (
            <section className="panel">
              <div className="row">
                <RoleButton
                  need="editor"
                  id="save"
                  className="primary"
                  disabled={save.isPending || stale || errors.length > 0 || !analysis.isSuccess}
                  onClick={() => {
                    setSaved(undefined);
                    save.mutate({ resources: plan.documents });
                  }}
                >
                  {save.isPending ? 'Saving…' : 'Save'}
                </RoleButton>
                {errors.length > 0 && <span className="reason" data-testid="blocked">Fix the {errors.length === 1 ? 'error' : `${errors.length} errors`} above to save.</span>}
              </div>
              {save.isError && <ErrorMessage error={save.error} title="Not saved" />}
              {saved && (
                <>
                  <div className="msg ok" role="status" data-testid="saved">Saved at revision {saved.revision}.</div>
                  {saved.warnings.map((w, i) => <div key={i} className="msg warning"><LevelBadge level={w.level} /> {w.kind} {w.resourceName} <code>{w.path}</code>: {w.message}</div>)}
                  <Convergence revision={saved.revision} />
                </>
              )}
            </section>
          )}
        </>
      )}
    </>
  );
}

function TrafficPage() {
  const trpc = useTRPC();
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const resources = useQuery(trpc.resources.list.queryOptions({}));
  return (
    <>
      <h1>Traffic shifting</h1>
      <p className="muted">Split a service&apos;s traffic between its versions. The wizard writes a VirtualService (weighted routes) and a DestinationRule (a subset per version).</p>
      {services.isPending || workloads.isPending || resources.isPending ? <Loading what="services" /> : services.isError ? <ErrorMessage error={services.error} /> : workloads.isError ? <ErrorMessage error={workloads.error} /> : resources.isError ? <ErrorMessage error={resources.error} /> : services.data.services.length === 0 ? (
        <Empty>No services are registered yet.</Empty>
      ) : (
        <Wizard services={services.data.services} workloads={workloads.data.workloads} resources={resources.data.items} />
      )}
    </>
  );
}

export default function Page() {
  return <Suspense fallback={<Loading what="page" />}><TrafficPage /></Suspense>;
}
