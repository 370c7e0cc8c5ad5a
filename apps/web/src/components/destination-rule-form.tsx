'use client';
import Link from 'next/link';
import { usePathname, useSearchParams } from 'next/navigation';
import { useCallback, useState, type ReactNode } from 'react';
import type { ServiceRecord, StoredResource } from '../lib/api-types.ts';
import { resourceHref } from '../lib/links.ts';
import { destinationRuleFor } from '../lib/wizards/common.ts';
import { subsetNames, type DestinationRulePlan } from '../lib/wizards/destination-rule.ts';
import type { FormError } from '../lib/wizards/fields.ts';
import { ServicePicker } from './service-wizard.tsx';
import { FieldFindings, pathUnder, WizardFrame, type Finding, type WizardFrameProps } from './wizard-frame.tsx';

// The pieces the DestinationRule wizards (circuit breaker, load balancer) share: the service
// picker (with each service's rule), the form kept in the URL, a labelled field with its findings next to it.

type FormValue = string | boolean;

/** The params a wizard's URL always has; form fields are every other param. */
const FIXED = ['ns', 'svc', 'subset'];

function encode(v: FormValue): string {
  return typeof v === 'boolean' ? (v ? '1' : '0') : v;
}

/**
 * The form: the stored rule's values (`initial`) with the user's changes on top. The changes live
 * in React state (typing stays instant) and are mirrored into the query string, so a link shows
 * the same unsaved form; a param that is present but empty means "cleared".
 */
export function useUrlForm<F extends { [K in keyof F]: FormValue }>(initial: F): {
  form: F;
  set: <K extends keyof F & string>(key: K, value: F[K]) => void;
  setScope: (patch: Record<string, string | undefined>) => void;
  params: URLSearchParams;
} {
  const search = useSearchParams();
  const pathname = usePathname();
  const params = new URLSearchParams(search.toString());
  const [overrides, setOverrides] = useState<Partial<Record<string, string>>>(() => {
    const out: Record<string, string> = {};
    for (const [k, v] of params) if (!FIXED.includes(k)) out[k] = v;
    return out;
  });
  const base = initial as Record<string, FormValue>;
  const form: Record<string, FormValue> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined || !(k in base)) continue;
    form[k] = typeof base[k] === 'boolean' ? v === '1' : v;
  }

  const write = useCallback(
    (fixed: Record<string, string | undefined>, fields: Partial<Record<string, string>>) => {
      const next = new URLSearchParams();
      for (const k of FIXED) {
        const v = k in fixed ? fixed[k] : (search.get(k) ?? undefined);
        if (v) next.set(k, v);
      }
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) next.set(k, v);
      const qs = next.toString();
      // history.replaceState, not a router navigation: Next keeps useSearchParams in step and the
      // page does not re-render through a transition on every keystroke.
      window.history.replaceState(null, '', qs ? `${pathname}?${qs}` : pathname);
    },
    [search, pathname],
  );

  const set = <K extends keyof F & string>(key: K, value: F[K]) => {
    const next = { ...overrides };
    if (encode(value) === encode(base[key]!)) delete next[key];
    else next[key] = encode(value);
    setOverrides(next);
    write({}, next);
  };
  /** Another service or subset: the changes are dropped. */
  const setScope = (patch: Record<string, string | undefined>) => {
    setOverrides({});
    write(patch, {});
  };
  return { form: form as unknown as F, set, setScope, params };
}

/** The service picker of a DestinationRule wizard: each service says which rule it has. */
export function RulePicker(props: { services: ServiceRecord[]; resources: StoredResource[]; ns: string; svc: string; onPick: (ns: string, svc: string) => void }) {
  const { resources, ...rest } = props;
  return <ServicePicker {...rest} note={(s) => {
    const dr = destinationRuleFor(s, resources);
    return dr ? `DestinationRule ${dr.metadata.name}` : 'no DestinationRule yet';
  }} />;
}

/** Which rule is edited, and what of it the wizard keeps. */
export function RuleSummary({ existing, service, kept }: { existing: StoredResource | undefined; service: ServiceRecord; kept: string[] }) {
  const subsets = subsetNames(existing);
  return (
    <p className="small muted" data-testid="rule-summary">
      {existing ? (
        <>
          Edits <Link href={resourceHref('DestinationRule', existing.metadata.namespace, existing.metadata.name)}>DestinationRule {existing.metadata.namespace}/{existing.metadata.name}</Link>
          {subsets.length > 0 ? `; its subsets (${subsets.join(', ')})` : ''}
          {kept.length > 0 ? `${subsets.length > 0 ? ',' : ';'} ${kept.join(', ')}` : ''}
          {subsets.length > 0 || kept.length > 0 ? ' and every other field are kept.' : '; every other field is kept.'}
        </>
      ) : (
        <>{service.name} has no DestinationRule yet: Save creates DestinationRule {service.namespace}/{service.name}.</>
      )}
    </p>
  );
}

/** The form's errors as findings on the DestinationRule (their paths are the rule's), placed like the analyzer's. */
export function localFindings(errors: FormError[]): Finding[] {
  return errors.map((e) => ({ ...e, kind: 'DestinationRule' }));
}

/** The wizard frame for one DestinationRule plan: the form's errors block saving and sit next to their fields. */
export function RuleFrame({ plan, ...rest }: { plan: DestinationRulePlan } & Pick<WizardFrameProps, 'onFindings' | 'isPlaced' | 'resetKey'>) {
  return <WizardFrame documents={[plan.document]} existing={plan.existing ? [plan.existing] : []} localErrors={localFindings(plan.errors)} {...rest} />;
}

/** "What this does": the wizard's settings in sentences. */
export function InWords({ lines }: { lines: string[] }) {
  return (
    <section className="panel" aria-labelledby="h-words">
      <h2 id="h-words">What this does</h2>
      <ul data-testid="in-words" className="in-words">
        {lines.map((s, i) => <li key={i}>{s}</li>)}
      </ul>
    </section>
  );
}

/** Whether a finding belongs next to one of these paths (exact for group paths, under for fields). */
export function placedUnder(fieldPaths: string[], groupPaths: string[]) {
  return (f: Finding) => f.kind === 'DestinationRule' && (groupPaths.includes(f.path) || fieldPaths.some((p) => pathUnder(f.path, p)));
}

/** Findings that name exactly this path (a group), not its fields. */
export function GroupFindings({ findings, path }: { findings: Finding[]; path: string }) {
  return <FieldFindings findings={findings.filter((f) => f.kind === 'DestinationRule' && f.path === path)} pathPrefix={path} />;
}

export function TextField(props: {
  name: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  path: string;
  findings: Finding[];
  placeholder?: string;
  hint?: ReactNode;
  inputMode?: 'numeric' | 'text';
}) {
  const id = `f-${props.name}`;
  const mine = props.findings.filter((f) => f.kind === 'DestinationRule' && pathUnder(f.path, props.path));
  const invalid = mine.some((f) => f.level === 'error');
  return (
    <div className="dr-field" data-testid={`field-${props.name}`}>
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        value={props.value}
        placeholder={props.placeholder}
        inputMode={props.inputMode}
        aria-invalid={invalid || undefined}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        autoComplete="off"
        onChange={(e) => props.onChange(e.target.value)}
      />
      {props.hint && <span id={`${id}-hint`} className="small muted">{props.hint}</span>}
      <FieldFindings findings={mine} pathPrefix={props.path} />
    </div>
  );
}
