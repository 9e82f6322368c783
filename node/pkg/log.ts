// Felix-style log lines on stderr:
//   2026-11-24 23:45:01.123 [INFO][4242] startup.ts: Using autodetected IPv4 address 10.0.0.11/24
// Levels follow Felix's LogSeverityScreen (Debug, Info, Warning, Error, Fatal; Trace below Debug).

export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'FATAL';

const RANK: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARNING: 3, ERROR: 4, FATAL: 5 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** The same sink and level, naming another source file. */
  child(file: string): Logger;
}

/** Maps a FELIX_LOGSEVERITYSCREEN value (any case) to a level; undefined when unknown. */
export function parseLogLevel(s: string): LogLevel | undefined {
  const u = s.trim().toUpperCase();
  if (u === 'WARN') return 'WARNING';
  return u in RANK ? (u as LogLevel) : undefined;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local time as Felix prints it: `YYYY-MM-DD hh:mm:ss.mmm`. */
export function formatTimestamp(d: Date): string {
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

export function formatLine(level: LogLevel, file: string, msg: string, when = new Date(), pid = process.pid): string {
  return `${formatTimestamp(when)} [${level}][${pid}] ${file}: ${msg}`;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go (without trailing newline). Default: process.stderr. */
  sink?: (line: string) => void;
}

export function createLogger(file: string, opts: LoggerOptions = {}): Logger {
  const min = RANK[opts.level ?? 'INFO'];
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel, msg: string) => {
    if (RANK[level] >= min) sink(formatLine(level, file, msg));
  };
  return {
    debug: (m) => emit('DEBUG', m),
    info: (m) => emit('INFO', m),
    warn: (m) => emit('WARNING', m),
    error: (m) => emit('ERROR', m),
    child: (f) => createLogger(f, opts),
  };
}

/** A logger that drops everything (tests, library defaults). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
