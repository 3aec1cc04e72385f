import { decodeHistogram, encodeHistogram, newLatencyHistogram, summarizeLatency, type ProcSummary } from './measure.js';
import type { CrowdResult, CrowdTick } from './results.js';

/**
 * One result from the crowd results of several load-generator processes (or machines) that
 * loaded the same server at the same time (`jpip-bench crowd --json` on each, then
 * `jpip-bench report --merge`): counts are summed, the latency histograms are added (so the
 * merged percentiles are those of all the samples pooled, to the histograms' 3 significant
 * digits), and the timelines are laid on one clock (each part's ticks at its start time + t, in
 * one-second buckets from the earliest start). What cannot be pooled exactly is said:
 * per-second p50/p99 of the merged timeline are the highest of the parts' (an upper bound), and
 * `serviceTimeMs` (open-loop runs) is dropped unless there is one part.
 */

/** Where a merged result came from. */
export interface MergedPart {
  source: string;
  startedAt: string;
  hostname: string;
  clients: number;
  responses: number;
}

/** Crowd settings that must agree for results to be one run. */
const SAME_SETTINGS = ['pattern', 'dialect', 'framesPerQuery', 'level', 'len', 'rate'] as const;

export class MergeError extends Error {
  override readonly name = 'MergeError';
}

/** The merged result (its `mergedFrom` lists the parts). `sources` name the parts in errors and in `mergedFrom`. */
export function mergeCrowdResults(parts: readonly CrowdResult[], sources: readonly string[] = parts.map((_, i) => `part ${i + 1}`)): CrowdResult {
  if (parts.length === 0) throw new MergeError('nothing to merge');
  const first = parts[0]!;
  parts.forEach((p, i) => {
    if (p.schema !== first.schema) throw new MergeError(`${sources[i]}: not a crowd result (${p.schema})`);
    for (const k of SAME_SETTINGS) {
      if (JSON.stringify(p.settings[k]) !== JSON.stringify(first.settings[k])) {
        throw new MergeError(`${sources[i]}: settings.${k} is ${JSON.stringify(p.settings[k])}, ${sources[0]} has ${JSON.stringify(first.settings[k])}: not parts of one run`);
      }
    }
    if (typeof p.latencyHistogram !== 'string' || p.latencyHistogram === '') throw new MergeError(`${sources[i]}: no latency histogram (written by an older jpip-bench?)`);
  });

  const starts = parts.map((p) => Date.parse(p.startedAt));
  if (starts.some((t) => !Number.isFinite(t))) throw new MergeError('a part has no valid startedAt');
  const t0 = Math.min(...starts);
  const end = Math.max(...parts.map((p, i) => starts[i]! + p.elapsedSeconds * 1000));
  const elapsedSeconds = Math.max(0.001, (end - t0) / 1000);

  // Latency: the histograms added.
  const latency = newLatencyHistogram();
  for (const p of parts) latency.add(decodeHistogram(p.latencyHistogram));

  const sum = <K extends keyof CrowdResult['totals']>(k: K): number => parts.reduce((n, p) => n + (Number(p.totals[k]) || 0), 0);
  const totals: CrowdResult['totals'] = {
    clients: sum('clients'),
    clientsGaveUp: sum('clientsGaveUp'),
    requests: sum('requests'),
    responses: sum('responses'),
    bytes: sum('bytes'),
    messages: sum('messages'),
    windowsDone: sum('windowsDone'),
    sessionsOpened: sum('sessionsOpened'),
    sessionsClosed: sum('sessionsClosed'),
    sessionsAbandoned: sum('sessionsAbandoned'),
    retries: sum('retries'),
    abortedAtEnd: sum('abortedAtEnd'),
  };

  const errors: CrowdResult['errors'] = { total: 0, byKind: {}, byStatus: {}, samples: [] };
  const samples = new Map<string, CrowdResult['errors']['samples'][number]>();
  for (const p of parts) {
    errors.total += p.errors.total;
    for (const [k, n] of Object.entries(p.errors.byKind)) errors.byKind[k as keyof typeof errors.byKind] = (errors.byKind[k as keyof typeof errors.byKind] ?? 0) + (n ?? 0);
    for (const [k, n] of Object.entries(p.errors.byStatus)) errors.byStatus[k] = (errors.byStatus[k] ?? 0) + n;
    for (const s of p.errors.samples) {
      const key = `${s.kind}\0${s.message}`;
      const have = samples.get(key);
      if (have) have.count += s.count;
      else samples.set(key, { ...s });
    }
  }
  errors.samples = [...samples.values()].sort((a, b) => b.count - a.count);
  const eor: Record<string, number> = {};
  for (const p of parts) for (const [k, n] of Object.entries(p.eor)) eor[k] = (eor[k] ?? 0) + n;

  // One clock: bucket each tick at its absolute second since the earliest start.
  const buckets = new Map<number, CrowdTick>();
  parts.forEach((p, i) => {
    const offset = (starts[i]! - t0) / 1000;
    for (const tick of p.timeline) {
      const t = Math.max(1, Math.round(tick.t + offset));
      const b = buckets.get(t);
      if (!b) {
        buckets.set(t, { ...tick, t, serverRssBytes: tick.serverRssBytes, serverCpuPercent: tick.serverCpuPercent });
        continue;
      }
      b.active += tick.active;
      b.inFlight += tick.inFlight;
      b.requests += tick.requests;
      b.responses += tick.responses;
      b.bytes += tick.bytes;
      b.errors += tick.errors;
      b.p50 = Math.max(b.p50, tick.p50);
      b.p99 = Math.max(b.p99, tick.p99);
      b.serverRssBytes ??= tick.serverRssBytes;
      b.serverCpuPercent ??= tick.serverCpuPercent;
      b.simulatorCpuPercent = (b.simulatorCpuPercent ?? 0) + (tick.simulatorCpuPercent ?? 0);
    }
  });
  const timeline = [...buckets.values()].sort((a, b) => a.t - b.t);
  let responsesSoFar = 0;
  let errorsSoFar = 0;
  for (const b of timeline) {
    responsesSoFar += b.responses;
    errorsSoFar += b.errors;
    b.totalResponses = responsesSoFar;
    b.totalErrors = errorsSoFar;
  }
  totals.peakClients = timeline.length > 0 ? Math.max(...timeline.map((b) => b.active)) : sum('peakClients');
  totals.peakInFlight = timeline.length > 0 ? Math.max(...timeline.map((b) => b.inFlight)) : sum('peakInFlight');

  // The server is the same for every part: the part that measured it most says how it fared.
  const measured = parts.map((p) => p.server).filter((s): s is NonNullable<CrowdResult['server']> => s !== undefined && s.available);
  const server = measured.sort((a, b) => b.samples.length - a.samples.length)[0] ?? first.server;
  // The generators are several processes: their CPU adds up; memory is per process (the largest).
  const sims = parts.map((p) => p.simulator);
  const simulator: ProcSummary = {
    ...first.simulator,
    pids: sims.map((s) => s.pid),
    label: `${sims.length} load generator processes`,
    available: sims.some((s) => s.available),
    samples: [],
    cpuPercentMean: round1(sims.reduce((n, s) => n + s.cpuPercentMean, 0)),
    cpuPercentMax: round1(sims.reduce((n, s) => n + s.cpuPercentMax, 0)),
    rssMaxBytes: Math.max(...sims.map((s) => s.rssMaxBytes)),
    rssLastBytes: Math.max(...sims.map((s) => s.rssLastBytes)),
  };

  return {
    ...first,
    startedAt: new Date(t0).toISOString(),
    settings: { ...first.settings, clients: parts.reduce((n, p) => n + p.settings.clients, 0) },
    elapsedSeconds: Math.round(elapsedSeconds * 1000) / 1000,
    totals,
    rates: {
      requestsPerSecond: round1(totals.requests / elapsedSeconds),
      responsesPerSecond: round1(totals.responses / elapsedSeconds),
      bytesPerSecond: Math.round(totals.bytes / elapsedSeconds),
    },
    errors,
    eor,
    latencyMs: pooledLatency(latency, parts),
    serviceTimeMs: parts.length === 1 ? first.serviceTimeMs : undefined,
    latencyHistogram: encodeHistogram(latency),
    server,
    simulator,
    timeline,
    mergedFrom: parts.map((p, i) => ({ source: sources[i]!, startedAt: p.startedAt, hostname: p.env.hostname, clients: p.settings.clients, responses: p.totals.responses })),
  };
}

/**
 * The summary of the added histograms, with the exact extremes of the parts: a histogram read
 * from a file keeps its maximum only to its bucket, the parts' summaries kept it exactly.
 */
function pooledLatency(h: ReturnType<typeof newLatencyHistogram>, parts: readonly CrowdResult[]): CrowdResult['latencyMs'] {
  const s = summarizeLatency(h);
  const counted = parts.filter((p) => p.latencyMs.count > 0);
  if (s.count === 0 || counted.length === 0) return s;
  return { ...s, min: Math.min(...counted.map((p) => p.latencyMs.min)), max: Math.max(...counted.map((p) => p.latencyMs.max)) };
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
