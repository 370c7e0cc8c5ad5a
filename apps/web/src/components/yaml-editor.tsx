'use client';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useRef, useState } from 'react';
import { errorInfo } from '../lib/errors.ts';
import { roleAllows } from '../lib/roles.ts';
import { useTRPCClient } from '../lib/trpc.ts';
import { useDebounced } from '../lib/use-debounced.ts';
import {
  formatProblem,
  hasBlockingProblem,
  parseSingleDocument,
  problemLines,
  problemsFromApiError,
  problemsFromDiagnostics,
  sortProblems,
  withResourceVersion,
  yamlSyntaxErrors,
  type Problem,
} from '../lib/yaml-editor.ts';
import { LevelBadge } from './ui.tsx';
import { useSession } from './session.tsx';

const LINE_HEIGHT = 19;

/**
 * A plain textarea with a line-number gutter that marks the lines with problems. No editor
 * library: the console adds no packages, and a textarea keeps native editing, undo and
 * accessibility. `jumpTo` (through `editorRef`) selects a line, for the problem list's links.
 */
export function YamlTextarea({
  value,
  onChange,
  problems,
  label,
  editorRef,
  readOnly,
}: {
  value: string;
  onChange: (v: string) => void;
  problems: Problem[];
  label: string;
  editorRef?: React.RefObject<{ jumpTo(line: number): void } | null>;
  readOnly?: boolean;
}) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const lines = value.split('\n').length;
  const marks = useMemo(() => problemLines(problems), [problems]);
  useEffect(() => {
    if (!editorRef) return;
    editorRef.current = {
      jumpTo(line: number) {
        const el = area.current;
        if (!el) return;
        const starts = [0];
        for (let i = 0; i < el.value.length; i++) if (el.value[i] === '\n') starts.push(i + 1);
        const start = starts[line - 1] ?? 0;
        const end = (starts[line] ?? el.value.length + 1) - 1;
        el.focus();
        el.setSelectionRange(start, end);
        el.scrollTop = Math.max(0, (line - 4) * LINE_HEIGHT);
      },
    };
  }, [editorRef]);
  return (
    <div className="yaml-editor" style={{ ['--lh' as string]: `${LINE_HEIGHT}px` }}>
      <div className="gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: lines }, (_, i) => {
          const mark = marks.get(i + 1);
          return (
            <div key={i} className={mark ? `mark-${mark}` : undefined} data-line={i + 1} data-mark={mark}>
              {i + 1}
            </div>
          );
        })}
      </div>
      <textarea
        ref={area}
        aria-label={label}
        data-testid="yaml-input"
        spellCheck={false}
        autoCapitalize="off"
        autoComplete="off"
        wrap="off"
        readOnly={readOnly}
        value={value}
        rows={Math.min(40, Math.max(12, lines + 1))}
        onChange={(e) => onChange(e.target.value)}
        onScroll={(e) => {
          if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
        }}
        onKeyDown={(e) => {
          // Tab indents (two spaces, YAML has no tabs) instead of leaving the field; Escape then Tab leaves.
          if (e.key === 'Tab' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && (e.currentTarget.dataset.escaped !== '1')) {
            e.preventDefault();
            const el = e.currentTarget;
            const { selectionStart: s, selectionEnd: t } = el;
            onChange(`${el.value.slice(0, s)}  ${el.value.slice(t)}`);
            requestAnimationFrame(() => el.setSelectionRange(s + 2, s + 2));
          }
          e.currentTarget.dataset.escaped = e.key === 'Escape' ? '1' : '';
        }}
      />
    </div>
  );
}

/** The problem list under the editor; a placed problem links to its line. */
export function ProblemList({ problems, checking, onJump }: { problems: Problem[]; checking: boolean; onJump?: (line: number) => void }) {
  const sorted = sortProblems(problems);
  const errors = problems.filter((p) => p.level === 'error').length;
  const warnings = problems.length - errors;
  return (
    <div data-testid="problems" aria-live="polite">
      <p className="small" data-testid="problems-summary">
        {checking
          ? 'Checking…'
          : problems.length === 0
            ? '✓ Valid: the schema and the analyzer have no findings.'
            : `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}${errors ? ' — fix the errors to save.' : ''}`}
      </p>
      {sorted.length > 0 && (
        <ul className="problems">
          {sorted.map((p, i) => (
            <li key={i} data-testid="problem" data-source={p.source} data-line={p.line} className={p.source === 'conflict' ? 'msg error' : undefined}>
              <LevelBadge level={p.level} /> <span className="small muted">{p.source}</span>{' '}
              {p.resource && <span className="small muted">{p.resource} · </span>}
              {p.line !== undefined && onJump && p.source !== 'conflict' ? (
                <button type="button" className="linkish" data-testid="problem-text" onClick={() => onJump(p.line!)} title={`Go to line ${p.line}`}>
                  {formatProblem(p)}
                </button>
              ) : (
                <span data-testid="problem-text">{formatProblem(p)}</span>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export type ValidationTarget =
  | { mode: 'replace'; kind: string; namespace: string; name: string; resourceVersion: string }
  | { mode: 'create' };

/**
 * Validates as you type (debounced): YAML syntax here, then the API's dry run — schema errors,
 * analysis errors the change would introduce, the analyzer's warnings, and a conflict if the
 * resource changed since `resourceVersion`. Viewers cannot dry-run writes, so they get the
 * analyzer's verdict (`resources.analyze`) instead.
 */
export function useYamlValidation(text: string, target: ValidationTarget, opts: { debounceMs?: number } = {}) {
  const client = useTRPCClient();
  const { me } = useSession();
  const canWrite = roleAllows(me?.role, 'editor');
  const settled = useDebounced(text, opts.debounceMs ?? 400);
  const syntax = useMemo(() => yamlSyntaxErrors(settled), [settled]);
  const single = useMemo(() => (target.mode === 'replace' && syntax.length === 0 ? parseSingleDocument(settled) : undefined), [settled, syntax, target.mode]);
  const local = syntax.length ? syntax : single && !single.ok ? single.problems : [];
  const defaultNs = target.mode === 'replace' ? target.namespace : 'default';
  const blank = settled.trim() === '';
  const api = useQuery({
    queryKey: ['yaml-validate', target, canWrite, settled],
    enabled: local.length === 0 && !blank,
    retry: false,
    refetchOnWindowFocus: false,
    queryFn: async (): Promise<Problem[]> => {
      try {
        if (!canWrite) {
          const out = await client.resources.analyze.mutate({ yaml: settled, ...(target.mode === 'replace' ? { namespace: target.namespace } : {}) });
          return problemsFromDiagnostics(settled, out.diagnostics, defaultNs);
        }
        if (target.mode === 'replace' && single?.ok) {
          const out = await client.resources.replace.mutate({
            kind: target.kind,
            namespace: target.namespace,
            name: target.name,
            resource: withResourceVersion(single.object, target.resourceVersion),
            dryRun: true,
          });
          return problemsFromDiagnostics(settled, out.results.flatMap((r) => r.warnings), defaultNs);
        }
        const out = await client.resources.applyDocuments.mutate({ yaml: settled, mode: 'create', dryRun: true });
        return problemsFromDiagnostics(settled, out.results.flatMap((r) => r.warnings), defaultNs);
      } catch (err) {
        const info = errorInfo(err);
        return problemsFromApiError(settled, info, defaultNs);
      }
    },
  });
  const problems = local.length ? local : blank ? [] : (api.data ?? []);
  const checking = settled !== text || (local.length === 0 && !blank && api.isFetching);
  return { problems, checking, blocking: hasBlockingProblem(problems), checkedText: settled, single, canWrite };
}
