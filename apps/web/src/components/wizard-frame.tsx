'use client';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useRef, useState } from 'react';
import type { JSX } from 'react';
import { useAnalysis } from '../lib/analyze.ts';
import type { Diagnostic, StoredResource } from '../lib/api-types.ts';
import { errorInfo, type FieldIssue } from '../lib/errors.ts';
import { cleanResource, toYaml } from '../lib/traffic.ts';
import { useTRPC } from '../lib/trpc.ts';
import { useDebounced } from '../lib/use-debounced.ts';
import { pathUnder } from '../lib/wizards/common.ts';
import { Convergence } from './convergence.tsx';
import { DiffView } from './diff-view.tsx';
import { ErrorMessage, LevelBadge, Loading, RoleButton } from './ui.tsx';

// What every configuration wizard shares once it knows the objects it wants to write: the YAML,
// the diff against what is stored, the analyzer's verdict on the mesh as it would be (nothing is
// written to find out), Save gated on errors and role, and whether the proxies took the result.

/** A diagnostic, schema issue or client-side check that names one of the documents (or a form field). */
export interface Finding {
  level: 'error' | 'warning' | 'info';
  kind: string;
  path: string;
  message: string;
  code: string;
}

export interface WizardFrameProps {
  /** The complete Istio objects the wizard will write (apiVersion, kind, metadata{name,namespace}, spec). */
  documents: Record<string, unknown>[];
  /** Resources that exist now (for the diff and "create" vs "update"). */
  existing: StoredResource[];
  /**
   * Client-side problems that block saving (e.g. a number out of range), shown with the analyzer's.
   * While there are any, the analyzer is not asked (onFindings then receives []).
   */
  localErrors?: Finding[];
  /** Receives the analyzer's findings (and schema issues) for the documents, so a wizard can place them next to its fields. */
  onFindings?: (findings: Finding[]) => void;
  saveLabel?: string;
  /**
   * The findings the wizard shows next to its own fields (default: none); the others are listed
   * under Analysis with their resource and path.
   */
  isPlaced?: (f: Finding) => boolean;
  /** How the summary names where placed findings are ("the fields concerned"). */
  placedWhere?: (count: number) => string;
  /** When this changes (another service picked…), the outcome of the last save is forgotten. */
  resetKey?: string;
}

export { pathUnder };

export function summary(fs: Finding[]): string {
  const n = (level: string) => fs.filter((f) => f.level === level).length;
  const parts = [[n('error'), 'error'], [n('warning'), 'warning'], [n('info'), 'note']] as const;
  return parts.filter(([c]) => c > 0).map(([c, w]) => `${c} ${w}${c === 1 ? '' : 's'}`).join(', ');
}

function key(d: { kind?: unknown; metadata?: unknown }): string {
  const m = (d.metadata ?? {}) as { name?: string; namespace?: string };
  return `${String(d.kind)}/${m.namespace ?? ''}/${m.name ?? ''}`;
}

/** The findings under pathPrefix (of one kind, if given), rendered inline next to a field. */
export function FieldFindings({ findings, pathPrefix, kind }: { findings: Finding[]; pathPrefix: string; kind?: string }): JSX.Element | null {
  const mine = findings.filter((f) => (kind === undefined || f.kind === kind) && pathUnder(f.path, pathPrefix));
  if (mine.length === 0) return null;
  return (
    <>
      {mine.map((f, k) => (
        <div key={k} className={`field-issue msg ${f.level === 'error' ? 'error' : f.level === 'warning' ? 'warning' : 'info'}`} data-testid="finding" role={f.level === 'error' ? 'alert' : undefined}>
          <LevelBadge level={f.level} /> {f.message} {f.code && <span className="small muted">{f.code}</span>}
        </div>
      ))}
    </>
  );
}

const noneIsPlaced = () => false;
const fieldsConcerned = (n: number) => (n === 1 ? 'the field concerned' : 'the fields concerned');

export function WizardFrame(props: WizardFrameProps): JSX.Element {
  const { existing, localErrors = [], onFindings, saveLabel = 'Save', isPlaced = noneIsPlaced, placedWhere = fieldsConcerned, resetKey } = props;
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [saved, setSaved] = useState<{ revision: string; warnings: Diagnostic[] } | undefined>();

  // Wizards rebuild their documents on every render: the content is what counts.
  const docsJson = JSON.stringify(props.documents);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const documents = useMemo(() => props.documents, [docsJson]);
  const replaced = useMemo(() => {
    const byKey = new Map(existing.map((e) => [key(e as { kind: unknown; metadata: unknown }), e]));
    return documents.map((d) => byKey.get(key(d)));
  }, [documents, existing]);
  const proposedYaml = toYaml(documents.map((d) => cleanResource(d)));
  const existingYaml = toYaml(replaced.filter((e): e is StoredResource => e !== undefined).map((e) => cleanResource(e)));

  // The analyzer on the mesh as it would be after this write, re-run as the inputs settle.
  // While the form itself has errors the analyzer waits: its schema check would only repeat them
  // in its own words, once per route that carries the field.
  const checked = useDebounced(documents, 300);
  const formBlocked = localErrors.length > 0;
  const analyzeInput = useMemo(() => (checked.length > 0 && !formBlocked ? { resources: checked } : undefined), [checked, formBlocked]);
  const analysis = useAnalysis(analyzeInput, { enabled: analyzeInput !== undefined });
  const ours = (d: { kind: string; namespace: string; resourceName: string }) =>
    documents.some((doc) => {
      const m = doc.metadata as { name: string; namespace: string };
      return doc.kind === d.kind && m.namespace === d.namespace && m.name === d.resourceName;
    });
  const analyzeIssues: FieldIssue[] = analysis.isError ? errorInfo(analysis.error).issues : [];
  const remote: Finding[] = [
    ...(analysis.data?.diagnostics ?? []).filter(ours).map((d) => ({ level: d.level, kind: d.kind, path: d.path, message: d.message, code: d.code })),
    ...analyzeIssues.map((i) => ({ level: 'error' as const, kind: i.kind ?? '', path: i.path, message: i.message, code: i.rule })),
  ];
  const remoteJson = JSON.stringify(remote);
  const lastSent = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (!onFindings || lastSent.current === remoteJson) return;
    lastSent.current = remoteJson;
    onFindings(JSON.parse(remoteJson) as Finding[]);
  }, [remoteJson, onFindings]);

  const findings = [...localErrors, ...remote];
  const general = findings.filter((f) => !isPlaced(f));
  const placed = findings.filter((f) => isPlaced(f));
  const errors = findings.filter((f) => f.level === 'error');
  const stale = checked !== documents || analysis.isFetching;

  const save = useMutation(
    trpc.resources.applyDocuments.mutationOptions({
      onSuccess: (out) => {
        setSaved({ revision: out.revision, warnings: out.results.flatMap((r) => r.warnings) });
        void queryClient.invalidateQueries();
      },
    }),
  );
  const resetRef = useRef(resetKey);
  useEffect(() => {
    if (resetRef.current === resetKey) return;
    resetRef.current = resetKey;
    setSaved(undefined);
    save.reset();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [resetKey]);

  const unchanged = documents.length > 0 && replaced.every((e) => e !== undefined) && proposedYaml === existingYaml;
  const blockedBy = errors.length > 0 ? `Fix the ${errors.length === 1 ? 'error' : `${errors.length} errors`} above to save.` : undefined;
  return (
    <>
      <section className="panel" aria-labelledby="h-check">
        <h2 id="h-check">Analysis</h2>
        {analysis.isFetching && <Loading what="analysis" />}
        {formBlocked && <p className="small muted" data-testid="analysis-waiting">The analyzer checks these resources once the form&apos;s errors are fixed.</p>}
        {!analysis.isFetching && findings.length === 0 && analysis.isSuccess && <div className="msg ok" data-testid="analysis-clean">The analyzer found no problem with these resources.</div>}
        {!analysis.isFetching && placed.length > 0 && (
          <p className="muted" data-testid="analysis-summary">
            {summary(placed)} shown next to {placedWhere(placed.length)}.
          </p>
        )}
        {general.map((f, k) => (
          <div key={k} className={`msg ${f.level === 'error' ? 'error' : f.level === 'warning' ? 'warning' : 'info'}`} data-testid="finding">
            <LevelBadge level={f.level} /> {f.kind} <code>{f.path}</code>: {f.message} <span className="small muted">{f.code}</span>
          </div>
        ))}
        {analysis.isError && analyzeIssues.length === 0 && <ErrorMessage error={analysis.error} title="Analysis failed" />}
      </section>

      <div className="grid2">
        <section className="panel" aria-labelledby="h-yaml">
          <h2 id="h-yaml">YAML to write</h2>
          <ul className="small muted" data-testid="write-plan" style={{ margin: '0 0 8px', paddingLeft: 18 }}>
            {documents.map((d, i) => (
              <li key={key(d)}>
                {replaced[i] ? 'Updates' : 'Creates'} {String(d.kind)} {(d.metadata as { namespace?: string }).namespace}/{(d.metadata as { name?: string }).name}
              </li>
            ))}
          </ul>
          <pre data-testid="proposed-yaml">{proposedYaml}</pre>
        </section>
        <section className="panel" aria-labelledby="h-diff">
          <h2 id="h-diff">Diff against what exists</h2>
          {replaced.every((e) => e === undefined) && <p className="small muted">Nothing exists yet: everything is new.</p>}
          <DiffView before={existingYaml} after={proposedYaml} label="Diff against the stored resources" />
        </section>
      </div>

      <section className="panel">
        <div className="row">
          <RoleButton
            need="editor"
            id="save"
            className="primary"
            disabled={save.isPending || stale || errors.length > 0 || !analysis.isSuccess || documents.length === 0 || unchanged}
            title={blockedBy}
            onClick={() => {
              setSaved(undefined);
              save.mutate({ resources: documents });
            }}
          >
            {save.isPending ? 'Saving…' : saveLabel}
          </RoleButton>
          {blockedBy && <span className="reason" data-testid="blocked">{blockedBy}</span>}
          {!blockedBy && unchanged && <span className="reason" data-testid="unchanged">Nothing to save: this is what is stored.</span>}
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
    </>
  );
}
