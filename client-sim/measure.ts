import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import * as hdr from 'hdr-histogram-js';

/**
 * What the load generators measure besides counts: latency distributions in
 * HDR histograms (hdr-histogram-js; microsecond values, 3 significant
 * digits, up to an hour), and the RSS and CPU use of a process sampled every
 * second: any pid from /proc (the server under test), or this process.
 */

export type Histogram = hdr.Histogram;

/** Highest latency a histogram tracks: one hour in microseconds. */
const MAX_TRACKED_US = 3_600_000_000;

/** A latency histogram in microseconds. */
export function newLatencyHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_TRACKED_US, numberOfSignificantValueDigits: 3 });
}

/** Records a duration in milliseconds (fractional) into a microsecond histogram; values are clamped into its range. */
export function recordMs(h: Histogram, ms: number, expectedIntervalMs?: number): void {
  const us = Math.min(MAX_TRACKED_US, Math.max(1, Math.round(ms * 1000)));
  if (expectedIntervalMs !== undefined && expectedIntervalMs > 0) h.recordValueWithExpectedInterval(us, Math.max(1, Math.round(expectedIntervalMs * 1000)));
  else h.recordValue(us);
}

/** Latency percentiles, in milliseconds. All zero when nothing was recorded. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  stddev: number;
  p50: number;
  p75: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

export function summarizeLatency(h: Histogram): LatencySummary {
  const n = h.totalCount;
  const at = (p: number): number => (n === 0 ? 0 : round3(h.getValueAtPercentile(p) / 1000));
  return {
    count: n,
    min: n === 0 ? 0 : round3(h.minNonZeroValue / 1000),
    mean: n === 0 ? 0 : round3(h.mean / 1000),
    stddev: n === 0 ? 0 : round3(h.stdDeviation / 1000),
    p50: at(50),
    p75: at(75),
    p90: at(90),
    p95: at(95),
    p99: at(99),
    p999: at(99.9),
    max: n === 0 ? 0 : round3(h.maxValue / 1000),
  };
}

/** The histogram as compressed base64 (HdrHistogram's interchange format: other tools can read it). */
export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(s: string): Histogram {
  return hdr.decodeFromCompressedBase64(s);
}

// ---------------------------------------------------------------------------
// Process sampling

/** One reading of a process: cumulative CPU time and resident memory. */
export interface ProcReading {
  /** User + system CPU time since the process started, in seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

let clockTicks: number | undefined;

/** USER_HZ (clock ticks per second of /proc/<pid>/stat), from getconf; 100 if unknown. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Reads /proc/<pid>/stat (utime + stime, fields 14 and 15) and the VmRSS line
 * of /proc/<pid>/status. Undefined when the process is gone or there is no /proc.
 */
export function readProc(pid: number): ProcReading | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: fields restart after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!Number.isFinite(utime) || !Number.isFinite(stime) || !m) return undefined;
    return { cpuSeconds: (utime + stime) / clockTicksPerSecond(), rssBytes: Number(m[1]) * 1024 };
  } catch {
    return undefined;
  }
}

/** Open sockets of a process (its /proc/<pid>/fd links to `socket:[...]`); undefined without /proc. */
export function countSockets(pid: number): number | undefined {
  try {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
      } catch {
        // closed meanwhile
      }
    }
    return n;
  } catch {
    return undefined;
  }
}

/** This process, through Node (works without /proc). */
export function readSelf(): ProcReading {
  const u = process.cpuUsage();
  return { cpuSeconds: (u.user + u.system) / 1e6, rssBytes: process.memoryUsage.rss() };
}

export interface ProcSample {
  /** Seconds since the sampler started. */
  t: number;
  rssBytes: number;
  /** CPU use over the last interval; 100 = one core busy. */
  cpuPercent: number;
  /** Open sockets (when the sampler counts them). */
  sockets?: number;
}

export interface ProcSummary {
  /** What was sampled: a pid (the first, when several were summed). */
  pid: number;
  /** Every pid sampled, when more than one (their figures are summed). */
  pids?: number[];
  label: string;
  /** False when no reading could be taken (no /proc, process gone). */
  available: boolean;
  samples: ProcSample[];
  /** CPU time over the whole sampling period / its wall time, percent of one core. */
  cpuPercentMean: number;
  cpuPercentMax: number;
  rssMaxBytes: number;
  rssLastBytes: number;
  /** Most sockets open at a sample (when counted). */
  socketsMax?: number;
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** stop() takes a final sample only when at least this long (or the interval, if shorter) has passed since the last. */
const MIN_FINAL_SAMPLE_MS = 250;

/**
 * Samples a process every `intervalMs` (default 1 s): RSS and CPU% over the
 * interval. `start()` takes the first reading, `stop()` a last one (when
 * the last sample is not too recent, see MIN_FINAL_SAMPLE_MS) and returns
 * the summary. The timer does not keep the process alive.
 */
/** One reading of several processes together (a supervisor and its worker): RSS and CPU time summed; undefined if any is gone. */
export function readProcs(pids: readonly number[]): ProcReading | undefined {
  let rss = 0;
  let cpu = 0;
  for (const p of pids) {
    const r = readProc(p);
    if (!r) return undefined;
    rss += r.rssBytes;
    cpu += r.cpuSeconds;
  }
  return { rssBytes: rss, cpuSeconds: cpu };
}

export class ProcSampler {
  readonly pid: number;
  /** Every process sampled (their figures are summed). */
  readonly pids: readonly number[];
  readonly label: string;
  readonly samples: ProcSample[] = [];
  private readonly read: () => ProcReading | undefined;
  private readonly intervalMs: number;
  private readonly sockets: boolean;
  private timer: ReturnType<typeof setInterval> | undefined;
  private t0 = 0;
  private first: ProcReading | undefined;
  private prev: ProcReading | undefined;
  private prevAt = 0;
  private lastAt = 0;

  /**
   * `pid` = 'self' samples this process through Node; several pids (a supervisor and its worker)
   * are sampled together, their RSS, CPU and sockets summed. `intervalMs` 0: no timer, the
   * caller calls `sample()`.
   */
  constructor(pid: number | readonly number[] | 'self', opts: { intervalMs?: number; label?: string; countSockets?: boolean } = {}) {
    this.pids = pid === 'self' ? [process.pid] : typeof pid === 'number' ? [pid] : [...pid];
    if (this.pids.length === 0) throw new RangeError('ProcSampler: no pid');
    this.pid = this.pids[0]!;
    const pids = this.pids;
    this.read = pid === 'self' ? readSelf : pids.length === 1 ? () => readProc(pids[0]!) : () => readProcs(pids);
    this.intervalMs = opts.intervalMs ?? 1000;
    this.label = opts.label ?? (pid === 'self' ? 'this process' : `pid ${pids.join('+')}`);
    this.sockets = opts.countSockets ?? false;
  }

  start(): this {
    this.t0 = performance.now();
    this.first = this.read();
    this.prev = this.first;
    this.prevAt = this.t0;
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => this.sample(), this.intervalMs);
      this.timer.unref();
    }
    return this;
  }

  /** The latest sample, if any. */
  get latest(): ProcSample | undefined {
    return this.samples.at(-1);
  }

  /** Takes one sample now (the timer calls it). */
  sample(): ProcSample | undefined {
    const now = performance.now();
    const r = this.read();
    if (!r) return undefined;
    const dt = (now - this.prevAt) / 1000;
    const cpu = this.prev && dt > 0 ? ((r.cpuSeconds - this.prev.cpuSeconds) / dt) * 100 : 0;
    const s: ProcSample = { t: round1((now - this.t0) / 1000), rssBytes: r.rssBytes, cpuPercent: round1(Math.max(0, cpu)) };
    if (this.sockets) {
      let n: number | undefined;
      for (const p of this.pids) {
        const k = countSockets(p);
        if (k !== undefined) n = (n ?? 0) + k;
      }
      if (n !== undefined) s.sockets = n;
    }
    this.samples.push(s);
    this.prev = r;
    this.prevAt = now;
    this.lastAt = now;
    return s;
  }

  stop(): ProcSummary {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A last sample only over a span long enough to mean something: CPU% over a few ms
    // is 0 or several hundred (clock-tick granularity), and would spoil cpuPercentMax.
    const minFinalMs = this.intervalMs > 0 ? Math.min(this.intervalMs, MIN_FINAL_SAMPLE_MS) : MIN_FINAL_SAMPLE_MS;
    if (performance.now() - this.prevAt >= minFinalMs || this.samples.length === 0) this.sample();
    const last = this.prev;
    const wall = (this.lastAt - this.t0) / 1000;
    const available = this.first !== undefined && last !== undefined && this.samples.length > 0;
    return {
      pid: this.pid,
      ...(this.pids.length > 1 ? { pids: [...this.pids] } : {}),
      label: this.label,
      available,
      samples: this.samples,
      cpuPercentMean: available && wall > 0 ? round1(((last!.cpuSeconds - this.first!.cpuSeconds) / wall) * 100) : 0,
      cpuPercentMax: this.samples.reduce((m, s) => Math.max(m, s.cpuPercent), 0),
      rssMaxBytes: this.samples.reduce((m, s) => Math.max(m, s.rssBytes), 0),
      rssLastBytes: this.samples.at(-1)?.rssBytes ?? 0,
      ...(this.sockets ? { socketsMax: this.samples.reduce((m, s) => Math.max(m, s.sockets ?? 0), 0) } : {}),
    };
  }
}
