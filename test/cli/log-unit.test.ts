/** src/log.ts pieces that need no process: level/format parsing and error summaries. */
import { describe, expect, it } from 'vitest';
import { LogSettingError, errorSummary, logLevelFromEnv, parseLogFormat, parseLogLevel } from '../../src/log.js';

describe('log settings', () => {
  it('accepts level and format names in any case and refuses others naming the setting', () => {
    expect(parseLogLevel('--log-level', 'DEBUG')).toBe('debug');
    expect(parseLogFormat('HA_SIGNER_LOG_FORMAT', ' Pretty ')).toBe('pretty');
    expect(() => parseLogLevel('--log-level', '30')).toThrow(LogSettingError);
    expect(() => parseLogLevel('--log-level', '30')).toThrow(
      /--log-level: expected one of trace, debug, info, warn, error, fatal, silent, got "30"/,
    );
    expect(logLevelFromEnv({})).toBe('info');
    expect(logLevelFromEnv({ HA_SIGNER_LOG_LEVEL: 'warn' })).toBe('warn');
    expect(() => logLevelFromEnv({ HA_SIGNER_LOG_LEVEL: 'loud' })).toThrow(/HA_SIGNER_LOG_LEVEL/);
  });
});

describe('errorSummary', () => {
  it('keeps type, message, code and the cause chain (AggregateError members too), and no stack', () => {
    const refused = (host: string) => Object.assign(new Error(`connect ECONNREFUSED ${host}:5432`), { code: 'ECONNREFUSED' });
    const error = new TypeError('fetch failed', {
      cause: new AggregateError([refused('::1'), refused('127.0.0.1')], 'all addresses failed'),
    });
    const summary = errorSummary(error);
    expect(summary).toEqual({
      type: 'TypeError',
      message: 'fetch failed',
      cause: {
        type: 'AggregateError',
        message: 'all addresses failed',
        errors: [
          { type: 'Error', message: 'connect ECONNREFUSED ::1:5432', code: 'ECONNREFUSED' },
          { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:5432', code: 'ECONNREFUSED' },
        ],
      },
    });
    expect(JSON.stringify(summary)).not.toContain('stack');
    expect(errorSummary('plain text')).toEqual({ type: 'string', message: 'plain text' });
  });

  it('stops at a cause cycle', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(JSON.stringify(errorSummary(a)).length).toBeLessThan(400);
  });
});
