'use client';
import { diffLines } from 'diff';

/** A line diff of two texts (unified, without hunks: these documents are short). */
export function DiffView({ before, after, label }: { before: string; after: string; label?: string }) {
  const parts = diffLines(before, after);
  const changed = parts.some((p) => p.added || p.removed);
  return (
    <div className="diff" role="region" aria-label={label ?? 'Diff'} data-testid="diff">
      {!changed && <div className="muted">No changes.</div>}
      {parts.flatMap((p, i) =>
        p.value
          .replace(/\n$/, '')
          .split('\n')
          .map((line, j) => (
            <div key={`${i}-${j}`} className={p.added ? 'add' : p.removed ? 'del' : undefined}>
              {p.added ? '+ ' : p.removed ? '- ' : '  '}
              {line}
            </div>
          )),
      )}
    </div>
  );
}
