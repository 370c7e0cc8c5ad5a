import type { PrismaClient } from '../generated/prisma/client.ts';
import { BUCKETS, KEY_COLUMNS, rowKeyString, type RollupKey, type RollupRow } from './rows.ts';

// The rollup tables through SQL: the edge dictionary, multi-row upsert-increments for minutes,
// hour recompute from minutes (replace, so running it twice changes nothing), retention, cursors.

type Tx = Pick<PrismaClient, '$executeRawUnsafe' | '$queryRawUnsafe'>;

export const D_COLUMNS = Array.from({ length: BUCKETS }, (_, i) => `d${i}`);
export const VALUE_COLUMNS = ['requests', 'errors', 'bytesIn', 'bytesOut', 'durationSumMs', ...D_COLUMNS];
const ROW_COLUMNS = ['bucket', 'edgeId', ...VALUE_COLUMNS];
const q = (c: string) => `"${c}"`;

/** Rows per INSERT statement: 27 parameters each, well under PostgreSQL's 65535. */
const CHUNK = 1000;

export type RollupTable = 'TelemetryMinute' | 'TelemetryHour';

/**
 * Rollup keys -> TelemetryEdge ids, cached. Edges are created outside the rollup transaction (an
 * id is cached only once its row is committed); entries expire after an hour, so an edge the
 * rollup job deletes (unreferenced for the whole hour retention) is never in a cache.
 */
export class EdgeDictionary {
  private readonly ids = new Map<string, { id: number; at: number }>();
  constructor(private readonly ttlMs = 3_600_000, private readonly max = 200_000) {}

  async resolve(db: Tx, keys: Iterable<RollupKey>): Promise<Map<string, number>> {
    const now = Date.now();
    const out = new Map<string, number>();
    const missing = new Map<string, RollupKey>();
    for (const k of keys) {
      const s = rowKeyString(k);
      if (out.has(s) || missing.has(s)) continue;
      const hit = this.ids.get(s);
      if (hit && now - hit.at < this.ttlMs) out.set(s, hit.id);
      else missing.set(s, k);
    }
    if (missing.size === 0) return out;
    const list = [...missing];
    for (let i = 0; i < list.length; i += CHUNK) {
      const chunk = list.slice(i, i + CHUNK);
      const params: unknown[] = [];
      const tuples = chunk.map(([s, k]) => {
        const b = params.length;
        params.push(s, ...KEY_COLUMNS.map((c) => k[c]));
        return `(${['key', ...KEY_COLUMNS].map((c, j) => `$${b + j + 1}${c === 'mtls' ? '::boolean' : '::text'}`).join(', ')})`;
      });
      await db.$executeRawUnsafe(
        `INSERT INTO "TelemetryEdge" (${['key', ...KEY_COLUMNS].map(q).join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT ("key") DO NOTHING`,
        ...params,
      );
      const rows = await db.$queryRawUnsafe<{ id: number; key: string }[]>(`SELECT "id", "key" FROM "TelemetryEdge" WHERE "key" = ANY($1::text[])`, chunk.map(([s]) => s));
      if (this.ids.size + rows.length > this.max) this.ids.clear();
      for (const r of rows) {
        out.set(r.key, Number(r.id));
        this.ids.set(r.key, { id: Number(r.id), at: now });
      }
    }
    return out;
  }
}

/** Adds each row's values to the row with the same (bucket, edge), creating it. `ids` from EdgeDictionary.resolve. */
export async function upsertIncrement(tx: Tx, table: RollupTable, rows: readonly RollupRow[], ids: Map<string, number>): Promise<void> {
  const update = VALUE_COLUMNS.map((c) => `${q(c)} = t.${q(c)} + EXCLUDED.${q(c)}`).join(', ');
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const r of chunk) {
      const id = ids.get(rowKeyString(r));
      if (id === undefined) throw new Error('telemetry: rollup row without an edge id');
      const base = params.length;
      params.push(r.bucket, id, Math.round(r.requests), Math.round(r.errors), Math.round(r.bytesIn), Math.round(r.bytesOut), r.durationSumMs, ...r.d.map((v) => Math.round(v)));
      tuples.push(`(${ROW_COLUMNS.map((c, j) => `$${base + j + 1}${cast(c)}`).join(', ')})`);
    }
    await tx.$executeRawUnsafe(
      `INSERT INTO ${q(table)} AS t (${ROW_COLUMNS.map(q).join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT ("bucket", "edgeId") DO UPDATE SET ${update}`,
      ...params,
    );
  }
}

/** Resolve edges, then upsert (tests, benchmarks, tools; the ingest splits the two around its transaction). */
export async function writeRows(db: PrismaClient, table: RollupTable, rows: readonly RollupRow[], dict = new EdgeDictionary()): Promise<void> {
  const ids = await dict.resolve(db, rows);
  await upsertIncrement(db, table, rows, ids);
}

function cast(c: string): string {
  if (c === 'bucket') return '::timestamptz';
  if (c === 'bytesIn' || c === 'bytesOut') return '::bigint';
  if (c === 'durationSumMs') return '::double precision';
  return '::integer';
}

/**
 * Recomputes TelemetryHour for the hours in [from, to) from the minutes: replace, not add, so it
 * may run any number of times over the same hours.
 */
export async function recomputeHours(tx: Tx, from: Date, to: Date): Promise<number> {
  const sums = VALUE_COLUMNS.map((c) => `sum(${q(c)})${c === 'durationSumMs' ? '' : c.startsWith('bytes') ? '::bigint' : '::integer'}`).join(', ');
  const set = VALUE_COLUMNS.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ');
  return tx.$executeRawUnsafe(
    `INSERT INTO "TelemetryHour" (${ROW_COLUMNS.map(q).join(', ')})
     SELECT date_trunc('hour', "bucket"), "edgeId", ${sums} FROM "TelemetryMinute"
     WHERE "bucket" >= $1::timestamptz AND "bucket" < $2::timestamptz
     GROUP BY date_trunc('hour', "bucket"), "edgeId"
     ON CONFLICT ("bucket", "edgeId") DO UPDATE SET ${set}`,
    from,
    to,
  );
}

export async function deleteBefore(tx: Tx, table: RollupTable, before: Date): Promise<number> {
  return tx.$executeRawUnsafe(`DELETE FROM ${q(table)} WHERE "bucket" < $1::timestamptz`, before);
}

/** Edges created before `before` that no rollup row references any more. */
export async function deleteUnusedEdges(tx: Tx, before: Date): Promise<number> {
  return tx.$executeRawUnsafe(
    `DELETE FROM "TelemetryEdge" e WHERE e."createdAt" < $1::timestamptz
       AND NOT EXISTS (SELECT 1 FROM "TelemetryMinute" m WHERE m."edgeId" = e."id")
       AND NOT EXISTS (SELECT 1 FROM "TelemetryHour" h WHERE h."edgeId" = e."id")`,
    before,
  );
}

export interface CursorRow {
  proxyId: string;
  bootId: string;
  seq: number;
  values: Record<string, number[]>;
}

export async function saveCursors(tx: Tx, cursors: readonly CursorRow[]): Promise<void> {
  for (let i = 0; i < cursors.length; i += CHUNK) {
    const chunk = cursors.slice(i, i + CHUNK);
    const params: unknown[] = [];
    const tuples = chunk.map((c) => {
      const b = params.length;
      params.push(c.proxyId, c.bootId, c.seq, JSON.stringify(c.values));
      return `($${b + 1}::text, $${b + 2}::text, $${b + 3}::integer, $${b + 4}::jsonb, now())`;
    });
    await tx.$executeRawUnsafe(
      `INSERT INTO "TelemetryCursor" ("proxyId", "bootId", "seq", "values", "updatedAt") VALUES ${tuples.join(', ')}
       ON CONFLICT ("proxyId") DO UPDATE SET "bootId" = EXCLUDED."bootId", "seq" = EXCLUDED."seq", "values" = EXCLUDED."values", "updatedAt" = now()`,
      ...params,
    );
  }
}

export async function loadCursor(tx: Tx, proxyId: string): Promise<CursorRow | undefined> {
  const rows = await tx.$queryRawUnsafe<{ proxyId: string; bootId: string; seq: number; values: unknown }[]>(
    `SELECT "proxyId", "bootId", "seq", "values" FROM "TelemetryCursor" WHERE "proxyId" = $1`,
    proxyId,
  );
  const r = rows[0];
  if (!r) return undefined;
  const values = (typeof r.values === 'string' ? JSON.parse(r.values) : r.values) as Record<string, number[]>;
  return { proxyId: r.proxyId, bootId: r.bootId, seq: Number(r.seq), values };
}

export async function deleteCursorsBefore(tx: Tx, before: Date): Promise<number> {
  return tx.$executeRawUnsafe(`DELETE FROM "TelemetryCursor" WHERE "updatedAt" < $1::timestamptz`, before);
}
