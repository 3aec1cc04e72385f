import { readdirSync } from 'node:fs';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BlockCacheStats } from './block-cache.js';
import type { ResponseCacheStats } from './response-cache.js';

/**
 * The server's Prometheus metrics (prom-client), on a registry of its own so
 * that several servers in one process (tests) do not mix their figures.
 * Values that are state rather than events (sessions, open images, index
 * bytes) are read when /metrics is scraped, through `collect` callbacks.
 */

export interface MetricSources {
  connections: () => number;
  sessions: () => number;
  indexEntries: () => number;
  indexBytes: () => number;
  openFiles: () => number;
  journalBytes: () => number;
  /** The image block cache's figures (optional: servers without one). */
  blockCache?: () => BlockCacheStats;
  /** The response cache's figures (optional). */
  responseCache?: () => ResponseCacheStats;
  /** The index threads' figures (optional: only with indexThreads > 0). */
  indexThreads?: () => { tiles: number; failures: number; restarts: number };
  /** The assembly threads' figures (optional: only with assemblyThreads > 0). */
  assemblyThreads?: () => { chunks: number; bytes: number; preads: number; failures: number; restarts: number };
}

/** Upper bounds of jpip_request_duration_seconds, in seconds. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/**
 * What every connection and response adds to the metrics, counted in plain numbers and read when
 * /metrics is scraped: prom-client's inc and observe on every response cost ~5 us (measured:
 * 20 KB windows 16,206 -> 17,673 responses/s without them).
 */
export class TrafficTally {
  /** TCP connections accepted. */
  connections = 0;
  readonly byStatus = new Map<number, number>();
  readonly byEor = new Map<number, number>();
  readonly cutBy = new Map<string, number>();
  bodyBytes = 0;
  /** Responses per duration bucket (not cumulative); the last slot: over the largest bound. */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  /** A response closed: its status, time to its last byte, body bytes, EOR reason (when it finished with one) and why it was cut (when it was). */
  response(status: number, seconds: number, bytes: number, eor: number | undefined, cut: string | undefined): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    this.bodyBytes += bytes;
    if (eor !== undefined) this.byEor.set(eor, (this.byEor.get(eor) ?? 0) + 1);
    if (cut !== undefined) this.cutBy.set(cut, (this.cutBy.get(cut) ?? 0) + 1);
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

export interface ServerMetrics {
  readonly registry: Registry;
  readonly connectionsRejected: Counter;
  /** Connections accepted, and every response's figures (jpip_responses_total, jpip_response_body_bytes_total, jpip_eor_total, jpip_responses_cut_total, jpip_request_duration_seconds). */
  readonly tally: TrafficTally;
  readonly workerRestarts: Counter;
  /** Sets the restart and reject counts the supervisor reports (they only grow). */
  supervisorCounts(restarts: number, rejected: number): void;
  /** The Prometheus text. */
  text(): Promise<string>;
  readonly contentType: string;
}

/** Open file descriptors of this process (Linux /proc; -1 elsewhere). */
export function openFdCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

export function createMetrics(src: MetricSources, opts: { defaultMetrics?: boolean } = {}): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect(this: Gauge) {
        this.set(read());
      },
    });
  };
  gauge('jpip_connections', 'TCP connections open in the worker', src.connections);
  gauge('jpip_sessions', 'JPIP sessions (channels) open', src.sessions);
  gauge('jpip_index_cache_entries', 'images open with their index (one copy per image per process)', src.indexEntries);
  gauge('jpip_index_cache_bytes', 'bytes of packet tables and structure held by open images', src.indexBytes);
  gauge('jpip_open_image_files', 'image file descriptors open', src.openFiles);
  gauge('jpip_journal_bytes', 'size of the session journal file', src.journalBytes);
  /** A counter whose value is read from a source at scrape time (it only grows). */
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect(this: Counter) {
        this.reset();
        this.inc(read());
      },
    });
  };
  const blocks = src.blockCache;
  if (blocks) {
    gauge('jpip_block_cache_bytes', 'bytes of image file blocks held in memory for responses', () => blocks().bytes);
    counter('jpip_block_cache_hits_total', 'pieces of image files served from the block cache', () => blocks().hits);
    counter('jpip_block_cache_misses_total', 'blocks read from image files into the block cache', () => blocks().misses);
    counter('jpip_block_cache_evictions_total', 'blocks dropped to keep the block cache within its budget', () => blocks().evictions);
  }
  const kept = src.responseCache;
  if (kept) {
    gauge('jpip_response_cache_bytes', 'bytes of whole response bodies kept for clients that hold nothing yet', () => kept().bytes);
    gauge('jpip_response_cache_entries', 'response bodies kept', () => kept().entries);
    gauge('jpip_response_cache_recording_bytes', 'bytes copied so far of responses being produced to be kept (within the same budget)', () => kept().recording);
    counter('jpip_response_cache_hits_total', 'responses to clients holding nothing answered with a kept body', () => kept().hits);
    counter('jpip_response_cache_misses_total', 'responses to clients holding nothing that had to be produced', () => kept().misses);
    counter('jpip_response_cache_evictions_total', 'kept response bodies dropped to stay within the budget', () => kept().evictions);
  }
  const threads = src.indexThreads;
  if (threads) {
    counter('jpip_index_thread_tiles_total', 'tiles indexed from packet headers on index threads', () => threads().tiles);
    counter('jpip_index_thread_failures_total', 'index-thread jobs that failed (the main thread indexed the tile itself)', () => threads().failures);
    counter('jpip_index_thread_restarts_total', 'index threads replaced after dying', () => threads().restarts);
  }
  const assembly = src.assemblyThreads;
  if (assembly) {
    counter('jpip_assembly_thread_chunks_total', 'response chunks whose image bytes were read on assembly threads', () => assembly().chunks);
    counter('jpip_assembly_thread_bytes_total', 'image bytes read into responses on assembly threads', () => assembly().bytes);
    counter('jpip_assembly_thread_preads_total', 'positional reads the assembly threads made (neighbouring pieces are read together)', () => assembly().preads);
    counter('jpip_assembly_thread_failures_total', 'chunks an assembly thread could not fill (the main thread read them itself)', () => assembly().failures);
    counter('jpip_assembly_thread_restarts_total', 'assembly threads replaced after dying', () => assembly().restarts);
  }
  if (!opts.defaultMetrics) {
    gauge('process_resident_memory_bytes', 'resident memory size in bytes', () => process.memoryUsage().rss);
    gauge('process_open_fds', 'number of open file descriptors', openFdCount);
  }
  let restarts = 0;
  let rejectedBySupervisor = 0;
  const tally = new TrafficTally();
  /** A counter by one label, set from a tally when scraped. */
  const tallied = <K extends string | number>(name: string, help: string, label: string, read: () => ReadonlyMap<K, number>): void => {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers,
      collect(this: Counter) {
        this.reset();
        for (const [k, n] of read()) this.inc({ [label]: String(k) }, n);
      },
    });
  };
  counter('jpip_connections_total', 'TCP connections accepted', () => tally.connections);
  tallied('jpip_responses_total', 'HTTP responses by status', 'status', () => tally.byStatus);
  counter('jpip_response_body_bytes_total', 'JPP/JPT-stream body bytes written', () => tally.bodyBytes);
  tallied('jpip_eor_total', 'responses by EOR reason (1 image done, 2 window done, 4 byte limit, 6 session limit, 7 server cap)', 'reason', () => tally.byEor);
  tallied('jpip_responses_cut_total', 'responses cut before their end (client gone, send stall, drain timeout)', 'why', () => tally.cutBy);
  // The histogram's text is written here from the tally: prom-client has no way to set a
  // histogram's counts, only to observe values one at a time.
  const durationText = (): string => {
    const name = 'jpip_request_duration_seconds';
    const lines = [`# HELP ${name} time from request to the last byte written`, `# TYPE ${name} histogram`];
    let cumulative = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      cumulative += tally.buckets[i]!;
      lines.push(`${name}_bucket{le="${le}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{le="+Inf"} ${tally.count}`, `${name}_sum ${tally.sum}`, `${name}_count ${tally.count}`);
    return lines.join('\n') + '\n';
  };
  const m: ServerMetrics = {
    registry,
    connectionsRejected: new Counter({ name: 'jpip_connections_rejected_total', help: 'connections answered 503 because maxConnections was reached', registers }),
    tally,
    workerRestarts: new Counter({ name: 'jpip_worker_restarts_total', help: 'worker processes restarted by the supervisor', registers }),
    supervisorCounts(r: number, rejected: number): void {
      if (r > restarts) m.workerRestarts.inc(r - restarts);
      if (rejected > rejectedBySupervisor) m.connectionsRejected.inc(rejected - rejectedBySupervisor);
      restarts = Math.max(restarts, r);
      rejectedBySupervisor = Math.max(rejectedBySupervisor, rejected);
    },
    text: async () => {
      const text = await registry.metrics();
      return `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${durationText()}`;
    },
    contentType: registry.contentType,
  };
  return m;
}

/** Whether an address is the loopback (127.0.0.0/8, ::1, IPv4-mapped loopback). */
export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  if (addr === '::1') return true;
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
