import type { z } from 'zod';

/**
 * One problem found in a document. `path` is the field's location written the way a person
 * would point at it in the YAML (`spec.http[0].route[1].weight`, `metadata.labels["app/x"]`),
 * "" for the document itself; `rule` is a stable machine name that callers may switch on;
 * `message` is a sentence for people and may change wording between releases.
 */
export interface FieldIssue {
  path: string;
  rule: string;
  message: string;
}

type PathKey = PropertyKey;

// Keys that read unambiguously after a dot. Anything else (dots, slashes, digits first, spaces)
// is quoted so that `metadata.labels["app.kubernetes.io/name"]` cannot be misread as nesting.
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const k = String(key);
      if (PLAIN_KEY.test(k)) out += out === '' ? k : `.${k}`;
      else out += `[${JSON.stringify(k)}]`;
    }
  }
  return out;
}

/** What a value looks like, in the words a YAML author uses. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    case 'number':
      return `the number ${v}`;
    case 'boolean':
      return `the boolean ${v}`;
    case 'bigint':
      return `the number ${v}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof v;
  }
}

const EXPECTED_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean (true or false)',
  object: 'a mapping of fields',
  record: 'a mapping of fields',
  map: 'a mapping of fields',
  array: 'a list',
  tuple: 'a list',
  null: 'null',
  nan: 'a number',
};

function subject(path: readonly PathKey[]): string {
  return path.length === 0 ? 'The document' : formatPath(path);
}

function sentence(s: string): string {
  const t = s.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** Message for an issue raised by our own checks: `message` is a predicate ("must be …"). */
export function ruleMessage(path: readonly PathKey[], predicate: string): string {
  return sentence(`${subject(path)} ${predicate}`);
}

/**
 * Reports a rule violation from inside a zod refinement. The message is written as a predicate
 * about the field; the field's full path is prefixed when the issue is converted.
 */
export function report(
  ctx: z.RefinementCtx<unknown> | { addIssue: (issue: never) => void },
  rule: string,
  predicate: string,
  path: PathKey[] = [],
): void {
  (ctx as { addIssue: (issue: unknown) => void }).addIssue({
    code: 'custom',
    message: predicate,
    path,
    params: { rule },
  });
}

type AnyIssue = z.core.$ZodIssue & { input?: unknown; params?: Record<string, unknown> };

function rangeRule(origin: string | undefined, big: boolean): string {
  switch (origin) {
    case 'string':
      return big ? 'max_length' : 'min_length';
    case 'array':
    case 'set':
      return big ? 'max_items' : 'min_items';
    case 'object':
    case 'record':
    case 'map':
      return big ? 'max_properties' : 'min_properties';
    default:
      return big ? 'max' : 'min';
  }
}

function rangeMessage(issue: AnyIssue & { origin?: string; maximum?: unknown; minimum?: unknown }): string {
  const big = issue.code === 'too_big';
  const bound = big ? issue.maximum : issue.minimum;
  const got = 'input' in issue ? issue.input : undefined;
  switch (issue.origin) {
    case 'string':
      return `must be ${big ? 'at most' : 'at least'} ${String(bound)} character${bound === 1 ? '' : 's'} long${typeof got === 'string' ? ` (it has ${got.length})` : ''}`;
    case 'array':
    case 'set':
      return `must have ${big ? 'at most' : 'at least'} ${String(bound)} item${bound === 1 ? '' : 's'}${Array.isArray(got) ? ` (it has ${got.length})` : ''}`;
    default:
      return `must be ${big ? 'at most' : 'at least'} ${String(bound)}${got !== undefined ? ` (got ${String(got)})` : ''}`;
  }
}

/** Converts zod's issues into ours: one FieldIssue per offending field, stable rule names. */
export function fromZodIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PathKey[] = []): FieldIssue[] {
  const out: FieldIssue[] = [];
  const seen = new Set<string>();
  const push = (path: readonly PathKey[], rule: string, message: string) => {
    const p = formatPath(path);
    const key = `${p}\u0000${rule}`;
    // zod can report the same bound twice (e.g. the safe-integer range and ours); one is enough.
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ path: p, rule, message });
  };

  for (const raw of issues) {
    const issue = raw as AnyIssue;
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const p = [...path, key];
          push(p, 'unknown_field', sentence(`${formatPath(p)} is not a field of ${path.length ? formatPath(path) : 'the document'}`));
        }
        break;
      case 'invalid_type': {
        const hasInput = 'input' in issue && issue.input !== undefined;
        if (!hasInput) {
          push(path, 'required', ruleMessage(path, 'is required'));
        } else if (issue.expected === 'int' && typeof issue.input === 'number') {
          push(path, 'integer', ruleMessage(path, `must be an integer (got ${issue.input})`));
        } else {
          const want = EXPECTED_WORDS[issue.expected] ?? issue.expected;
          push(path, 'type', ruleMessage(path, `must be ${want}, not ${describeValue(issue.input)}`));
        }
        break;
      }
      case 'invalid_value': {
        const values = issue.values.map((v) => String(v));
        const got = 'input' in issue ? ` (got ${describeValue(issue.input)})` : '';
        push(
          path,
          'enum',
          ruleMessage(path, values.length === 1 ? `must be ${values[0]}${got}` : `must be one of ${values.join(', ')}${got}`),
        );
        break;
      }
      case 'too_big':
      case 'too_small': {
        const rule = issue.origin === 'int' ? (issue.code === 'too_big' ? 'max' : 'min') : rangeRule(issue.origin, issue.code === 'too_big');
        push(path, rule, ruleMessage(path, rangeMessage(issue)));
        break;
      }
      case 'custom': {
        const rule = typeof issue.params?.rule === 'string' ? issue.params.rule : 'invalid';
        push(path, rule, ruleMessage(path, issue.message));
        break;
      }
      case 'invalid_format':
        push(path, issue.format, ruleMessage(path, `must be a valid ${issue.format}`));
        break;
      case 'not_multiple_of':
        push(path, 'multiple_of', ruleMessage(path, `must be a multiple of ${String(issue.divisor)}`));
        break;
      case 'invalid_union':
      case 'invalid_key':
      case 'invalid_element':
      default:
        push(path, 'invalid', ruleMessage(path, `is invalid: ${issue.message}`));
        break;
    }
  }
  return out;
}
