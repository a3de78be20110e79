import type { Logger } from './types.js';

const noop = (): void => {};

/** Drops everything: the default for library use, where the host application passes its own logger. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** One JSON object per line on stderr; used by the CLI before fastify's logger exists. */
export function jsonLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'info', base: object = {}): Logger {
  const order = ['debug', 'info', 'warn', 'error'] as const;
  const min = order.indexOf(level);
  const make =
    (name: (typeof order)[number]) =>
    (obj: object, msg?: string): void => {
      if (order.indexOf(name) < min) return;
      process.stderr.write(`${JSON.stringify({ level: name, time: new Date().toISOString(), ...base, ...obj, msg })}\n`);
    };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}
