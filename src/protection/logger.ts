import type { Logger } from './types.js';

const noop = (): void => {};

/** Drops everything: the default for library use, where the host application passes its own logger (pino fits). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
