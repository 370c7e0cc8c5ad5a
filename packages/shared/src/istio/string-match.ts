import { z } from 'zod';

import { report } from './issues.ts';

// Istio's StringMatch is a proto oneof: at most one of exact, prefix or regex. An empty match
// ({}) is legal and, for header and query-parameter maps, means "present with any value".

/** Envoy caps RE2 program size; Istio approximates that with a 1024-character limit. */
export const MAX_REGEX_LENGTH = 1024;

export const STRING_MATCH_TYPES = ['exact', 'prefix', 'regex'] as const;

export const stringMatchSchema = z
  .strictObject({
    exact: z.string().optional(),
    prefix: z.string().optional(),
    regex: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    const set = STRING_MATCH_TYPES.filter((k) => m[k] !== undefined);
    if (set.length > 1) report(ctx, 'one_of', `must set only one of exact, prefix or regex (it sets ${set.join(' and ')})`);
    if (m.regex !== undefined) {
      if (m.regex === '') report(ctx, 'regex', 'must not be an empty regex', ['regex']);
      else if (m.regex.length > MAX_REGEX_LENGTH) {
        report(ctx, 'regex', `must be at most ${MAX_REGEX_LENGTH} characters long, Istio's limit for RE2 expressions (it has ${m.regex.length})`, ['regex']);
      }
    }
  });
export type StringMatch = z.infer<typeof stringMatchSchema>;

/**
 * Value of a header / query-parameter / withoutHeaders map. YAML `name:` with nothing after it
 * is null, which Istio's webhook rejects ("header match cannot be null"); `name: {}` is the
 * documented way to match on presence alone.
 */
export const namedStringMatchSchema = stringMatchSchema
  .nullable()
  .superRefine((m, ctx) => {
    if (m === null) {
      report(ctx, 'match_type_required', 'has no match type: give exact, prefix or regex, or {} to match on the presence of the key alone');
    }
  })
  .transform((m) => m as StringMatch);

/** True when the match has no type set, i.e. it matches any value. */
export function isEmptyStringMatch(m: StringMatch | undefined): boolean {
  return m === undefined || (m.exact === undefined && m.prefix === undefined && m.regex === undefined);
}
