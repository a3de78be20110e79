/**
 * One logger and one line format for every process of the image (serve, operator, migrate, the CLI, the demo):
 * pino JSON lines with the level as a name, ISO time, `msg`, a `component`, and errors under `err` with their
 * `cause` chain (so "fetch failed" keeps its ECONNREFUSED). Humans get pino-pretty when the output is a terminal
 * or HA_SIGNER_LOG_FORMAT=pretty.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';
import { SIGNER_ENV } from './contract.js';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The level variable is the one `serve` documents (src/contract.ts); the format applies to every process. */
export const LOG_ENV = { level: SIGNER_ENV.logLevel, format: 'HA_SIGNER_LOG_FORMAT' } as const;

/** A log setting that is not one of its allowed values; `field` names the flag or variable. */
export class LogSettingError extends Error {
  readonly code = 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'; // the CLI answers it as a usage error (exit 2)
  constructor(
    readonly field: string,
    value: string,
    allowed: readonly string[],
  ) {
    super(`${field}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
}

export function parseLogLevel(field: string, raw: string): LogLevel {
  const value = raw.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new LogSettingError(field, raw, LOG_LEVELS);
  return value as LogLevel;
}

export function parseLogFormat(field: string, raw: string): LogFormat {
  const value = raw.trim().toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(value)) throw new LogSettingError(field, raw, LOG_FORMATS);
  return value as LogFormat;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The level from HA_SIGNER_LOG_LEVEL (the CLI's --log-level sets it), default info. */
export function logLevelFromEnv(env: Env = process.env): LogLevel {
  const raw = env[LOG_ENV.level];
  return raw === undefined || raw.trim() === '' ? 'info' : parseLogLevel(LOG_ENV.level, raw);
}

export interface CreateLoggerOptions {
  /** Who logs: signer, operator, migrate, demo, cli, ... */
  component: string;
  /** Default: HA_SIGNER_LOG_LEVEL, then info. */
  level?: LogLevel;
  /** Default stdout. Commands that write a document to stdout log to stderr. */
  destination?: 'stdout' | 'stderr';
  /** Default: HA_SIGNER_LOG_FORMAT, then pretty when the destination is a terminal, else json. */
  format?: LogFormat;
  env?: Env;
  /**
   * Called when a line cannot be written (EPIPE: the reader of a pipe went away, as in `npm run demo | head`).
   * Default: drop the line; a closed log output must not crash a server.
   */
  onWriteError?: (error: NodeJS.ErrnoException) => void;
}

/** A pino logger in the shared format; fastify takes it as `loggerInstance`. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const env = options.env ?? process.env;
  const level = options.level ?? logLevelFromEnv(env);
  const fd = options.destination === 'stderr' ? 2 : 1;
  const stream = fd === 2 ? process.stderr : process.stdout;
  const rawFormat = env[LOG_ENV.format];
  const format =
    options.format ?? (rawFormat && rawFormat.trim() !== '' ? parseLogFormat(LOG_ENV.format, rawFormat) : stream.isTTY ? 'pretty' : 'json');
  return pino(
    {
      level,
      base: { pid: process.pid, hostname: hostname(), component: options.component },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // errWithCause keeps `cause` as a nested error (type, message, code, stack) instead of folding it into text.
      // An ErrorSummary (below) is already plain data: passed through as it is.
      serializers: { err: (value: unknown) => (value instanceof Error ? pino.stdSerializers.errWithCause(value) : value) },
    },
    output(fd, format === 'pretty', stream.isTTY === true, options.onWriteError ?? (() => {})),
  );
}

/** Synchronous writes (nothing lost on exit); write errors go to onWriteError instead of an unhandled 'error' event. */
function output(fd: 1 | 2, pretty: boolean, colorize: boolean, onWriteError: (error: NodeJS.ErrnoException) => void): DestinationStream {
  const destination = pino.destination({ fd, sync: true });
  destination.on('error', onWriteError);
  const prettified = pretty ? prettyStream(destination, colorize) : undefined;
  prettified?.on('error', onWriteError);
  return prettified ?? destination;
}

/**
 * pino-pretty, loaded only when asked for (a synchronous require keeps createLogger synchronous). Undefined when the
 * package is absent (a production install without it): the caller falls back to JSON rather than failing to start.
 */
function prettyStream(destination: DestinationStream, colorize: boolean): (DestinationStream & NodeJS.EventEmitter) | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => DestinationStream & NodeJS.EventEmitter;
    return pretty({
      destination,
      sync: true,
      colorize,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,component',
      messageFormat: '({component}) {msg}',
    });
  } catch {
    return undefined;
  }
}

/** `(msg, fields)` logging for code written that way (the operator): entries carrying an error log at warn. */
export type LogFn = (msg: string, fields?: Record<string, unknown>) => void;

export function logFn(logger: Logger): LogFn {
  return (msg, fields = {}) => {
    if (fields.err !== undefined || fields.error !== undefined) logger.warn(fields, msg);
    else logger.info(fields, msg);
  };
}

export interface ErrorSummary {
  type: string;
  message: string;
  code?: string;
  cause?: ErrorSummary;
  errors?: ErrorSummary[];
}

/**
 * An error's type, message, code and cause chain, without stacks: for expected failures a loop retries (the database
 * not up yet, an unreachable API server), where a stack on every attempt is noise but the cause (ECONNREFUSED) is the
 * point. Unexpected errors are logged as `err: error` instead, stack and all.
 */
export function errorSummary(error: unknown, depth = 0): ErrorSummary {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error) };
  const { code } = error as { code?: unknown };
  const summary: ErrorSummary = { type: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
  if (depth >= 5) return summary;
  if (error.cause !== undefined) summary.cause = errorSummary(error.cause, depth + 1);
  if (error instanceof AggregateError) summary.errors = error.errors.slice(0, 5).map((inner: unknown) => errorSummary(inner, depth + 1));
  return summary;
}
