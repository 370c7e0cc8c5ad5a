'use client';
import { useEffect, useMemo, useState } from 'react';
import { ServicePicker, TrafficWizardPage, type MeshData } from '../../../components/service-wizard.tsx';
import { Empty } from '../../../components/ui.tsx';
import { FieldFindings, WizardFrame, type Finding } from '../../../components/wizard-frame.tsx';
import type { StoredResource } from '../../../lib/api-types.ts';
import { compareVersions, policyFor, versionsOf } from '../../../lib/mesh.ts';
import { currentWeights, evenSplit, planTrafficShift, rebalance } from '../../../lib/traffic.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';
import { catchAllIndex, type HttpRoute } from '../../../lib/wizards/common.ts';

/** Which version a finding's path points at: spec.http[d].route[i] in the VS (d: the default route), spec.subsets[i] in the DR. */
function versionOfFinding(f: Finding, defaultRoute: number, routeVersions: string[], subsetNames: string[]): string | undefined {
  const route = /^spec\.http\[(\d+)\]\.route\[(\d+)\]/.exec(f.path);
  if (f.kind === 'VirtualService' && route && Number(route[1]) === defaultRoute) return routeVersions[Number(route[2])];
  const subset = /^spec\.subsets\[(\d+)\]/.exec(f.path);
  if (f.kind === 'DestinationRule' && subset) return subsetNames[Number(subset[1])];
  return undefined;
}

function Wizard({ services, workloads, resources }: MeshData) {
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
  const urlW = params.get('w') ?? '';
  const fromUrl = urlW.split(',').filter(Boolean).map(Number);
  const urlWeights =
    fromUrl.length === versions.length && fromUrl.every((n) => Number.isInteger(n) && n >= 0) && fromUrl.reduce((a, b) => a + b, 0) === 100
      ? fromUrl
      : (currentWeights(existingVs, versions) ?? evenSplit(versions.length));
  // The weights just set, until the URL (a router transition) has them: the sliders, the YAML
  // and Save follow the same render, so Save never writes weights other than the ones shown.
  const scopeKey = `${ns}/${svcName}/${versions.join(',')}`;
  const [pending, setPending] = useState<{ scope: string; w: number[] } | undefined>();
  const weights = pending && pending.scope === scopeKey ? pending.w : urlWeights;
  useEffect(() => {
    if (pending && (pending.scope !== scopeKey || pending.w.join(',') === urlW)) setPending(undefined);
  }, [pending, scopeKey, urlW]);
  const setWeights = (w: number[]) => {
    setPending({ scope: scopeKey, w });
    setParams({ w: w.join(',') });
  };
  const [newVersion, setNewVersion] = useState('');

  const plan = useMemo(
    () => (service && versions.length > 0 ? planTrafficShift({ service, versions, weights, writeSubsets, resources }) : undefined),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [service, versions, weights.join(','), writeSubsets, resources],
  );
  const [findings, setFindings] = useState<Finding[]>([]);
  const routeVersions = versions.filter((_, i) => (weights[i] ?? 0) > 0);
  const defaultRoute = catchAllIndex((plan?.documents.find((d) => d.kind === 'VirtualService')?.spec as { http?: HttpRoute[] } | undefined)?.http ?? []);
  const subsetNames = (plan?.documents.find((d) => d.kind === 'DestinationRule')?.spec as { subsets?: { name: string }[] } | undefined)?.subsets?.map((s) => s.name) ?? [];
  // A finding sits next to its version's slider when it has one (a subset kept from an existing
  // DestinationRule may have none: then the frame lists it under Analysis).
  const rowOf = (f: Finding) => {
    const v = versionOfFinding(f, defaultRoute, routeVersions, subsetNames);
    return v !== undefined && versions.includes(v) ? v : undefined;
  };
  const byVersion = (v: string) => findings.filter((f) => rowOf(f) === v);

  return (
    <>
      <ServicePicker
        services={services}
        ns={ns}
        svc={svcName}
        onPick={(n, s) => setParams({ ns: n, svc: s, w: undefined, extra: undefined })}
        note={(s) => `${versionsOf(s, workloads).length} versions`}
      />

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
                  <FieldFindings findings={byVersion(v)} pathPrefix="" />
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
            <WizardFrame
              documents={plan.documents}
              existing={plan.existing.filter((e): e is StoredResource => e !== undefined)}
              onFindings={setFindings}
              isPlaced={(f) => rowOf(f) !== undefined}
              placedWhere={(n) => (n === 1 ? 'the version concerned' : 'the versions concerned')}
              resetKey={`${ns}/${svcName}`}
            />
          )}
        </>
      )}
    </>
  );
}

export default function Page() {
  return (
    <TrafficWizardPage
      title="Traffic shifting"
      intro="Split a service's traffic between its versions. The wizard writes a VirtualService (weighted routes) and a DestinationRule (a subset per version)."
    >
      {(data) => <Wizard {...data} />}
    </TrafficWizardPage>
  );
}
