// Lookup structures analyze() builds once per call, so that no check scans the whole mesh for each
// resource it looks at (which made analysis quadratic in the size of the mesh).
//
// Each one answers, for a whole collection at once, the question one of the predicates in
// context.ts (hostMatches, selects, globMatches) answers for one item. Where an index only narrows
// the candidates, the original predicate still decides; and results come back in the order a scan
// of the collection would have produced them. So the diagnostics cannot change, only their cost.

/** Appends `value` to the list filed under `key`. */
export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Positions in ascending order without repeats: the order a scan would have visited them in. */
export function inScanOrder(positions: number[]): number[] {
  // Usually they already are (a single posting list): skip the copy and sort.
  let ascending = true;
  for (let i = 1; i < positions.length && ascending; i++) ascending = (positions[i - 1] as number) < (positions[i] as number);
  if (ascending) return positions;
  const sorted = [...positions].sort((a, b) => a - b);
  return sorted.filter((p, i) => i === 0 || p !== sorted[i - 1]);
}

/**
 * A label map's own pairs. selects(selector, labels) holds only if every pair of the selector is
 * one of these: a key missing from `labels` reads as undefined (or, for names like "constructor",
 * as an Object.prototype member), which no label value parsed from JSON equals.
 */
function pairs(labels: Record<string, string>): Array<[string, string]> {
  return Object.entries(labels);
}

/**
 * Items filed under Istio host patterns, found by the concrete host they cover — the same answer as
 * filtering with hostMatches(pattern, host). "*" covers everything; "*<suffix>" covers hosts longer
 * than the suffix that end in it; any pattern covers the identical string.
 */
export class HostPatternIndex<T> {
  private readonly items: T[] = [];
  private readonly exact = new Map<string, number[]>();
  private readonly everything: number[] = [];
  /** "*.example.com" is filed under ".example.com"; a host is looked up by its suffixes of these lengths. */
  private readonly bySuffix = new Map<string, number[]>();
  private readonly suffixLengths = new Set<number>();

  add(pattern: string, item: T): void {
    const i = this.items.push(item) - 1;
    pushTo(this.exact, pattern, i);
    if (pattern === '*') this.everything.push(i);
    else if (pattern.startsWith('*')) {
      const suffix = pattern.slice(1);
      pushTo(this.bySuffix, suffix, i);
      this.suffixLengths.add(suffix.length);
    }
  }

  /** Items whose pattern covers `host`, in the order they were added. */
  matching(host: string): T[] {
    const hits = [...(this.exact.get(host) ?? []), ...this.everything];
    for (const len of this.suffixLengths) {
      if (len >= host.length) continue;
      const list = this.bySuffix.get(host.slice(host.length - len));
      if (list) hits.push(...list);
    }
    return inScanOrder(hits).map((i) => this.items[i] as T);
  }
}

/** selects(selector, labels) from context.ts: the predicate an index stands in for. */
export type Selects = (selector: Record<string, string>, labels: Record<string, string>) => boolean;

/**
 * Items (workloads) indexed by the label pairs they carry, to find the ones a selector selects
 * without testing every item: only the items carrying the selector's least common pair are tested.
 */
export class LabelIndex<T> {
  /** label key -> label value -> positions of the items carrying that pair, ascending. */
  private readonly byPair = new Map<string, Map<unknown, number[]>>();

  constructor(
    readonly items: readonly T[],
    private readonly labelsOf: (item: T) => Record<string, string>,
    private readonly selects: Selects,
  ) {
    items.forEach((item, i) => {
      for (const [k, v] of pairs(labelsOf(item))) {
        let byValue = this.byPair.get(k);
        if (!byValue) this.byPair.set(k, (byValue = new Map()));
        pushTo(byValue, v, i);
      }
    });
  }

  /** Positions of the items whose label `key` is `value`, ascending. */
  withLabel(key: string, value: unknown): readonly number[] {
    return this.byPair.get(key)?.get(value) ?? [];
  }

  /**
   * Positions that may be selected, ascending: every item for an empty selector, otherwise the
   * items carrying the selector's least common pair (an item lacking any of its pairs is not selected).
   */
  private candidates(selector: Record<string, string>): readonly number[] {
    const wanted = pairs(selector);
    if (wanted.length === 0) return this.items.map((_, i) => i);
    let narrowest: readonly number[] | undefined;
    for (const [k, v] of wanted) {
      const list = this.withLabel(k, v);
      if (!narrowest || list.length < narrowest.length) narrowest = list;
    }
    return narrowest ?? [];
  }

  private accepts(selector: Record<string, string>, position: number): boolean {
    return this.selects(selector, this.labelsOf(this.items[position] as T));
  }

  /** Positions (ascending) of the items `selects(selector, labels)` accepts. */
  positionsSelected(selector: Record<string, string>): number[] {
    return this.candidates(selector).filter((i) => this.accepts(selector, i));
  }

  /** Whether `selects(selector, labels)` accepts any item; stops at the first. */
  anySelected(selector: Record<string, string>): boolean {
    return this.candidates(selector).some((i) => this.accepts(selector, i));
  }
}

/**
 * The reverse of LabelIndex: items carrying a selector (workload-specific policies), found by the
 * labels of a workload they would select. Each item is filed under the pair of its selector that
 * the fewest other selectors use; labels the selector selects necessarily carry that pair, so
 * looking up each of the labels' own pairs finds every candidate.
 */
export class SelectorIndex<T> {
  private readonly byPair = new Map<string, Map<unknown, number[]>>();

  constructor(
    private readonly items: readonly T[],
    private readonly selectorOf: (item: T) => Record<string, string>,
    private readonly selects: Selects,
  ) {
    // How many selectors use each pair; which pair an item is filed under only affects speed.
    const uses = new Map<string, number>();
    const count = (k: string, v: unknown): number => uses.get(`${k}\u0000${String(v)}`) ?? 0;
    for (const item of items) for (const [k, v] of pairs(selectorOf(item))) uses.set(`${k}\u0000${String(v)}`, count(k, v) + 1);
    items.forEach((item, i) => {
      let rarest: [string, string] | undefined;
      for (const p of pairs(selectorOf(item))) if (!rarest || count(...p) < count(...rarest)) rarest = p;
      if (!rarest) return; // an empty selector selects everything: callers handle those separately
      let byValue = this.byPair.get(rarest[0]);
      if (!byValue) this.byPair.set(rarest[0], (byValue = new Map()));
      pushTo(byValue, rarest[1], i);
    });
  }

  /** Items with a non-empty selector that selects `labels`, in their original order. */
  selecting(labels: Record<string, string>): T[] {
    const hits: number[] = [];
    for (const [k, v] of pairs(labels)) {
      const list = this.byPair.get(k)?.get(v);
      if (list) hits.push(...list);
    }
    return inScanOrder(hits)
      .map((i) => this.items[i] as T)
      .filter((item) => this.selects(this.selectorOf(item), labels));
  }
}

/**
 * A list of strings searchable by exact value, prefix and suffix in O(log n) plus the matches, for
 * the wildcard forms of Istio hosts and security-policy strings. Lookups return positions in the
 * list, ascending, so callers can keep the list's order.
 */
export class StringSearch {
  private readonly positions = new Map<string, number[]>();
  /** Positions sorted by value, and by reversed value (a suffix of the value is a prefix of that). */
  private readonly byValue: Array<[string, number]>;
  private readonly byReversed: Array<[string, number]>;

  constructor(readonly values: readonly string[]) {
    values.forEach((v, i) => pushTo(this.positions, v, i));
    const order = (a: [string, number], b: [string, number]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]);
    this.byValue = values.map((v, i): [string, number] => [v, i]).sort(order);
    this.byReversed = values.map((v, i): [string, number] => [reverse(v), i]).sort(order);
  }

  get size(): number {
    return this.values.length;
  }

  all(): number[] {
    return this.values.map((_, i) => i);
  }

  has(value: string): boolean {
    return this.positions.has(value);
  }

  hasPrefix(prefix: string): boolean {
    return prefixRange(this.byValue, prefix, 1).length > 0;
  }

  hasSuffix(suffix: string): boolean {
    return prefixRange(this.byReversed, reverse(suffix), 1).length > 0;
  }

  equalTo(value: string): number[] {
    return [...(this.positions.get(value) ?? [])];
  }

  withPrefix(prefix: string): number[] {
    return inScanOrder(prefixRange(this.byValue, prefix));
  }

  withSuffix(suffix: string): number[] {
    return inScanOrder(prefixRange(this.byReversed, reverse(suffix)));
  }
}

/** Reverses UTF-16 code units, the units startsWith/endsWith and `<` compare by. */
function reverse(s: string): string {
  return s.split('').reverse().join('');
}

/** Positions of the entries whose key starts with `prefix` (at most `limit`), in a list sorted by key. */
function prefixRange(sorted: ReadonlyArray<[string, number]>, prefix: string, limit = Infinity): number[] {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as [string, number])[0] < prefix) lo = mid + 1;
    else hi = mid;
  }
  const out: number[] = [];
  for (let i = lo; i < sorted.length && out.length < limit; i++) {
    const [key, position] = sorted[i] as [string, number];
    if (!key.startsWith(prefix)) break;
    out.push(position);
  }
  return out;
}
