'use client';
import '@xyflow/react/dist/style.css';
import { useQuery } from '@tanstack/react-query';
import {
  Background,
  BaseEdge,
  Controls,
  EdgeLabelRenderer,
  getBezierPath,
  MarkerType,
  Position,
  ReactFlow,
  type Edge,
  type EdgeProps,
  type Node,
  type ReactFlowInstance,
} from '@xyflow/react';
import { Suspense, useMemo, useRef, type KeyboardEvent } from 'react';
import { SeriesCharts } from '../../../components/metric-chart.tsx';
import { ErrorMessage, Empty, Loading } from '../../../components/ui.tsx';
import { neighbourInDirection, seriesForEdge, seriesForNode, type Direction } from '../../../lib/golden.ts';
import type { RouterInputs, RouterOutputs } from '../../../lib/api-types.ts';
import { layoutGraph, NODE_HEIGHT, NODE_WIDTH } from '../../../lib/graph-layout.ts';
import { useTRPC } from '../../../lib/trpc.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

type GraphData = RouterOutputs['graph']['get'];
type GNode = GraphData['nodes'][number];
type GEdge = GraphData['edges'][number];
type Query = RouterInputs['graph']['get'];

const WINDOWS = ['1m', '5m', '10m', '30m', '1h', '3h', '24h'] as const;
const GRANULARITIES = ['workload', 'app', 'service'] as const;
const LABELS = { rps: 'Requests/s', errors: 'Error %', p95: 'p95 latency' } as const;
type LabelMode = keyof typeof LABELS;

/** Above this many nodes the graph drops per-edge decorations (see `large`). */
const LARGE_GRAPH = 300;

const HEALTH_COLOR: Record<string, string> = { healthy: 'var(--ok)', degraded: 'var(--warn)', failing: 'var(--err)', idle: 'var(--muted)', na: 'var(--border)' };

function edgeLabel(e: GEdge, mode: LabelMode): string {
  if (mode === 'errors') return `${e.errorPercent.toFixed(1)}%`;
  if (mode === 'p95') return e.p95 === null ? '—' : `${Math.round(e.p95)} ms`;
  return `${e.rps < 10 ? e.rps.toFixed(2) : Math.round(e.rps)} rps`;
}

interface EdgeData extends Record<string, unknown> {
  label: string;
  mtls: boolean;
  color: string;
}

function Lock() {
  return (
    <svg viewBox="0 0 16 16" width="11" height="11" aria-label="mTLS" role="img">
      <path fill="currentColor" d="M4 7V5a4 4 0 1 1 8 0v2h1v8H3V7h1Zm2 0h4V5a2 2 0 1 0-4 0v2Z" />
    </svg>
  );
}

function MeshEdge(props: EdgeProps<Edge<EdgeData>>) {
  const [path, x, y] = getBezierPath(props);
  return (
    <>
      <BaseEdge id={props.id} path={path} markerEnd={props.markerEnd} style={{ stroke: props.data?.color, strokeWidth: props.selected ? 3 : 1.5 }} />
      <EdgeLabelRenderer>
        <div className="edge-label" style={{ transform: `translate(-50%, -50%) translate(${x}px, ${y}px)` }} data-testid="edge-label">
          {props.data?.mtls && <Lock />} {props.data?.label}
        </div>
      </EdgeLabelRenderer>
    </>
  );
}

const edgeTypes = { mesh: MeshEdge };

interface SideProps {
  data: GraphData;
  sel: string;
  win: NonNullable<Query['window']>;
  dir: 'inbound' | 'outbound' | undefined;
  select(sel: string | undefined, extra?: Record<string, string | undefined>): void;
}

function CloseButton({ select }: Pick<SideProps, 'select'>) {
  return <button type="button" className="panel-close" aria-label="Close the details (Escape)" title="Close (Escape)" onClick={() => select(undefined)}>×</button>;
}

function Side({ data, sel, win, dir, select }: SideProps) {
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const name = (id: string) => byId.get(id)?.name ?? id;
  if (sel.startsWith('edge:')) {
    const e = data.edges.find((x) => x.id === sel.slice(5));
    if (!e) return null;
    const series = seriesForEdge(e, byId, win);
    return (
      <aside className="panel" aria-label="Selected edge" data-testid="side-panel">
        <div className="panel-title"><h2>{name(e.source)} → {name(e.target)}</h2><CloseButton select={select} /></div>
        <table><tbody>
          <tr><th>Protocol</th><td>{e.protocol}</td></tr>
          <tr><th>Requests/s</th><td>{e.rps.toFixed(2)}</td></tr>
          <tr><th>Errors</th><td>{e.errorPercent.toFixed(2)}% ({e.errors} of {e.requests})</td></tr>
          <tr><th>Latency p50 / p95 / p99</th><td>{[e.p50, e.p95, e.p99].map((v) => (v === null ? '—' : `${Math.round(v)} ms`)).join(' / ')}</td></tr>
          <tr><th>mTLS</th><td>{Math.round(e.mtlsShare * 100)}% of requests</td></tr>
        </tbody></table>
        {series && (
          <section aria-label="Golden metrics" className="side-charts">
            <h3>Over the last {win}</h3>
            <p className="small muted">{series.caption}.</p>
            <SeriesCharts input={series.input} />
          </section>
        )}
      </aside>
    );
  }
  const n = byId.get(sel);
  if (!n) return null;
  const inbound = data.edges.filter((e) => e.target === n.id);
  const outbound = data.edges.filter((e) => e.source === n.id);
  const series = seriesForNode(n, win, dir);
  return (
    <aside className="panel" aria-label="Selected node" data-testid="side-panel">
      <div className="panel-title"><h2>{n.name}</h2><CloseButton select={select} /></div>
      <table><tbody>
        <tr><th>Kind</th><td>{n.kind}</td></tr>
        <tr><th>Namespace</th><td>{n.namespace}</td></tr>
        {n.version && <tr><th>Version</th><td>{n.version}</td></tr>}
        <tr><th>Health</th><td>{n.health}</td></tr>
        <tr><th>In / out</th><td>{n.inboundRps.toFixed(2)} / {n.outboundRps.toFixed(2)} rps</td></tr>
        <tr><th>Errors in</th><td>{n.errorPercent.toFixed(2)}%</td></tr>
      </tbody></table>
      {series && (
        <section aria-label="Golden metrics" className="side-charts">
          <div className="spread">
            <h3>Over the last {win}</h3>
            {n.kind === 'workload' && (
              <div className="seg" role="group" aria-label="Direction">
                {(['inbound', 'outbound'] as const).map((d) => (
                  <button key={d} type="button" aria-pressed={series.input.direction === d} onClick={() => select(sel, { dir: d })}>{d}</button>
                ))}
              </div>
            )}
          </div>
          <p className="small muted">{series.caption}.</p>
          <SeriesCharts input={series.input} />
        </section>
      )}
      <h3 style={{ marginTop: 12 }}>Callers</h3>
      {inbound.length === 0 ? <Empty>None in this window.</Empty> : <ul>{inbound.map((e) => <li key={e.id}><button type="button" className="linkish" onClick={() => select(`edge:${e.id}`)}>{name(e.source)}</button> · {e.rps.toFixed(2)} rps</li>)}</ul>}
      <h3>Calls</h3>
      {outbound.length === 0 ? <Empty>None in this window.</Empty> : <ul>{outbound.map((e) => <li key={e.id}><button type="button" className="linkish" onClick={() => select(`edge:${e.id}`)}>{name(e.target)}</button> · {e.rps.toFixed(2)} rps</li>)}</ul>}
    </aside>
  );
}

function GraphView() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const win = (WINDOWS as readonly string[]).includes(params.get('window') ?? '') ? (params.get('window') as NonNullable<Query['window']>) : '10m';
  const granularity = (GRANULARITIES as readonly string[]).includes(params.get('by') ?? '') ? (params.get('by') as Query['granularity']) : 'workload';
  const mode: LabelMode = (params.get('label') as LabelMode) in LABELS ? (params.get('label') as LabelMode) : 'rps';
  const sel = params.get('sel') ?? '';
  const dirParam = params.get('dir');
  const dir = dirParam === 'inbound' || dirParam === 'outbound' ? dirParam : undefined;
  const select = (next: string | undefined, extra: Record<string, string | undefined> = {}) => setParams({ sel: next, dir: undefined, ...extra });
  const flow = useRef<ReactFlowInstance | null>(null);
  const graph = useQuery({ ...trpc.graph.get.queryOptions({ ...(ns ? { namespace: ns } : {}), window: win, granularity }), refetchInterval: 10_000 });

  const data = graph.data;
  // Layout depends only on the shape (ids and edges), not on the numbers that change every refresh.
  const shape = data ? `${data.nodes.map((n) => n.id).join('|')}#${data.edges.map((e) => `${e.source}>${e.target}`).join('|')}` : '';
  const positions = useMemo(() => (data ? layoutGraph(data.nodes.map((n) => n.id), data.edges) : new Map()),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [shape]);
  const nodes: Node[] = useMemo(
    () =>
      (data?.nodes ?? []).map((n: GNode) => ({
        id: n.id,
        position: positions.get(n.id) ?? { x: 0, y: 0 },
        data: { label: `${n.name}${n.version && !n.name.endsWith(n.version) ? ` ${n.version}` : ''}` },
        selected: n.id === sel,
        sourcePosition: Position.Right,
        targetPosition: Position.Left,
        style: { width: NODE_WIDTH, height: NODE_HEIGHT, borderColor: HEALTH_COLOR[n.health], borderWidth: 2, background: 'var(--panel)', color: 'var(--text)', fontSize: 12 },
        ariaLabel: `${n.kind} ${n.namespace}/${n.name}, ${n.health}`,
      })),
    [data, positions, sel],
  );
  // Big meshes: edge labels (one DOM element each), arrow markers and marching-ants animation cost
  // per edge on every frame; above this size they go, and the view opens zoomed in on the callers
  // (only what is on screen is rendered) instead of fitting thousands of nodes.
  const large = (data?.nodes.length ?? 0) > LARGE_GRAPH;
  const edges: Edge<EdgeData>[] = useMemo(
    () =>
      (data?.edges ?? []).map((e) => {
        const color = e.errorPercent >= 5 ? 'var(--err)' : e.errorPercent > 0 ? 'var(--warn)' : 'var(--muted)';
        return {
          id: e.id,
          source: e.source,
          target: e.target,
          type: large ? 'default' : 'mesh',
          animated: !large && e.rps > 0,
          selected: `edge:${e.id}` === sel,
          ...(large ? { style: { stroke: color } } : { markerEnd: { type: MarkerType.ArrowClosed, color } }),
          data: { label: edgeLabel(e, mode), mtls: e.mtlsShare >= 0.999, color },
        };
      }),
    [data, mode, sel, large],
  );

  // Keyboard: Tab reaches the nodes, arrows move to the nearest node that way, Enter (or Space)
  // opens the side panel, Escape closes it and puts focus back on the node. In the capture phase,
  // so React Flow's own handling of these keys (its selection state, a blur on Escape) stays out.
  const focusNode = (id: string) => {
    const find = () => document.querySelector<HTMLElement>(`.react-flow__node[data-id="${CSS.escape(id)}"]`);
    const el = find();
    const p = positions.get(id);
    if (el) el.focus();
    else if (p && flow.current) {
      // Off-screen in a large graph (not rendered): bring it into view, then focus it.
      void flow.current.setCenter(p.x + NODE_WIDTH / 2, p.y + NODE_HEIGHT / 2, { zoom: flow.current.getZoom() });
      requestAnimationFrame(() => requestAnimationFrame(() => find()?.focus()));
    }
  };
  const onKeys = (e: KeyboardEvent<HTMLDivElement>) => {
    const target = e.target as HTMLElement;
    if (target.closest('input, select, textarea')) return;
    const nodeEl = target.closest<HTMLElement>('.react-flow__node');
    const id = nodeEl?.dataset.id;
    if (e.key === 'Escape' && sel) {
      e.preventDefault();
      e.stopPropagation();
      const back = sel.startsWith('edge:') ? data?.edges.find((x) => x.id === sel.slice(5))?.source : sel;
      select(undefined);
      if (back) focusNode(back);
      return;
    }
    if (!id) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      e.stopPropagation();
      select(id);
    } else if (e.key.startsWith('Arrow')) {
      e.preventDefault();
      e.stopPropagation();
      const next = neighbourInDirection(id, e.key as Direction, positions);
      if (next) focusNode(next);
    }
  };

  return (
    <>
      <h1>Service graph</h1>
      <div className="panel row" role="search">
        <label className="inline">Namespace <input name="ns" value={ns} placeholder="all" onChange={(e) => setParams({ ns: e.target.value, sel: undefined })} /></label>
        <label className="inline">Window
          <select name="window" value={win} onChange={(e) => setParams({ window: e.target.value })}>{WINDOWS.map((w) => <option key={w}>{w}</option>)}</select>
        </label>
        <label className="inline">Nodes
          <select name="by" value={granularity} onChange={(e) => setParams({ by: e.target.value, sel: undefined })}>{GRANULARITIES.map((g) => <option key={g}>{g}</option>)}</select>
        </label>
        <label className="inline">Edge labels
          <select name="label" value={mode} onChange={(e) => setParams({ label: e.target.value })}>{Object.entries(LABELS).map(([k, v]) => <option key={k} value={k}>{v}</option>)}</select>
        </label>
      </div>
      {graph.isPending ? <Loading what="graph" /> : graph.isError ? <ErrorMessage error={graph.error} /> : graph.data.nodes.length === 0 ? (
        <Empty>No traffic was reported in the last {win}{ns ? ` in ${ns}` : ''}.</Empty>
      ) : (
        <div className="graph-layout" onKeyDownCapture={onKeys}>
          <div className="graph-canvas" data-testid="graph" aria-label="Service graph: Tab to a node, arrow keys to move, Enter for its details, Escape to close them">
            <ReactFlow
              nodes={nodes}
              edges={edges}
              edgeTypes={edgeTypes}
              {...(large ? { defaultViewport: { x: 0, y: 0, zoom: 0.6 } } : { fitView: true })}
              minZoom={0.05}
              nodesDraggable={false}
              nodesConnectable={false}
              edgesFocusable={false}
              onInit={(i) => (flow.current = i as unknown as ReactFlowInstance)}
              onlyRenderVisibleElements={large}
              onNodeClick={(_, n) => select(n.id)}
              onEdgeClick={(_, e) => select(`edge:${e.id}`)}
              onPaneClick={() => select(undefined)}
              colorMode="system"
              proOptions={{ hideAttribution: true }}
            >
              <Background />
              <Controls />
            </ReactFlow>
          </div>
          {sel ? <Side data={graph.data} sel={sel} win={win} dir={dir} select={select} /> : <aside className="panel muted">Select a node or an edge for its details and charts. Keyboard: Tab to a node, arrow keys to move, Enter to open, Escape to close.</aside>}
        </div>
      )}
      {graph.data && <p className="small muted">{graph.data.nodes.length} nodes, {graph.data.edges.length} edges{graph.data.nodes.length > LARGE_GRAPH ? ' (large graph: edge labels and animation off; select an edge for its numbers)' : ''} · {graph.data.resolution} resolution · refreshed every 10 s. Node border: health; edge colour: errors; lock: all requests mTLS.</p>}
    </>
  );
}

export default function GraphPage() {
  return <Suspense fallback={<Loading what="page" />}><GraphView /></Suspense>;
}
