/** Error classification of the store: which PostgreSQL failures mean "unavailable" (fail closed, retry later). */
import { DatabaseUnavailableError } from '../errors.js';
import { SQLSTATE } from '../schema.js';

/** lock_not_available: lock_timeout expired while a statement waited for a row or table lock. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Connection-level failures: no SQLSTATE (socket errors, client-side timeouts) or the classes for connection
 * exceptions (08), resources (53), operator intervention such as shutdown or statement_timeout (57), system
 * errors (58, XX), object not in prerequisite state (55000) and lock_timeout (55P03).
 */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return ['08', '53', '57', '58', 'XX'].includes(code.slice(0, 2)) || code === '55000' || code === LOCK_NOT_AVAILABLE;
}

/** Deadlocks and serialization failures: the statement may simply be run again. */
export function isTransient(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === SQLSTATE.deadlock || code === SQLSTATE.serializationFailure;
}

/** Unavailability becomes DatabaseUnavailableError; errors the database raised on purpose (guards) pass as they are. */
export function classify(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError || !isUnavailable(error)) return error;
  return new DatabaseUnavailableError(`PostgreSQL unavailable: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
