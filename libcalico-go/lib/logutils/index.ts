// Calico's log line, for every Tortie binary (agent, CNI plugins, controllers):
//   2026-11-24 23:45:01.123 [INFO][4242] startup.ts: Using autodetected IPv4 address 10.0.0.11/24 Node=n1
// Local time, level, PID, source, message, then `key=value` fields. Levels follow Felix's
// LogSeverityScreen and the CNI's log_level (Trace, Debug, Info, Warning, Error, Fatal, Panic).

export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'FATAL' | 'PANIC';

/** Severity order: higher is more severe. */
export const LOG_LEVEL_RANK: Readonly<Record<LogLevel, number>> = { TRACE: 0, DEBUG: 1, INFO: 2, WARNING: 3, ERROR: 4, FATAL: 5, PANIC: 6 };

/** Maps a level name (any case; "warn" = WARNING) to a level; undefined when unknown. */
export function parseLogLevel(s: string): LogLevel | undefined {
  const u = s.trim().toUpperCase();
  if (u === 'WARN') return 'WARNING';
  return Object.hasOwn(LOG_LEVEL_RANK, u) ? (u as LogLevel) : undefined;
}

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Any level, e.g. from a configuration value. */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** The same sink and level, naming another source file. */
  child(file: string): Logger;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local time as Felix prints it: `YYYY-MM-DD hh:mm:ss.mmm`. */
export function formatTimestamp(d: Date): string {
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/** ` k=v k2="two words"`: empty and undefined values left out, values that need it JSON-quoted. */
export function formatFields(fields: LogFields = {}): string {
  let s = '';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === '') continue;
    s += ` ${k}=${typeof v === 'string' && /^[\w./:-]+$/.test(v) ? v : JSON.stringify(v)}`;
  }
  return s;
}

export function formatLine(level: LogLevel, file: string, msg: string, fields?: LogFields, when = new Date(), pid = process.pid): string {
  return `${formatTimestamp(when)} [${level}][${pid}] ${file}: ${msg}${formatFields(fields)}`;
}

export interface LoggerOptions {
  /** Lowest level written (default INFO). */
  level?: LogLevel;
  /** Where lines go (without trailing newline). Default: process.stderr. */
  sink?: (line: string) => void;
}

export function createLogger(file: string, opts: LoggerOptions = {}): Logger {
  const min = LOG_LEVEL_RANK[opts.level ?? 'INFO'];
  const sink = opts.sink ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LOG_LEVEL_RANK[level] >= min) sink(formatLine(level, file, msg, fields));
  };
  return {
    debug: (m, f) => log('DEBUG', m, f),
    info: (m, f) => log('INFO', m, f),
    warn: (m, f) => log('WARNING', m, f),
    error: (m, f) => log('ERROR', m, f),
    log,
    child: (f) => createLogger(f, opts),
  };
}

/** A logger that drops everything (tests, library defaults). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  log() {},
  child() {
    return silentLogger;
  },
};
