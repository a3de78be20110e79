// The published package logs every start and stop at info level; its logger reads LOG_LEVEL when first imported,
// so this module is imported before it.
process.env.LOG_LEVEL ??= 'warn';
