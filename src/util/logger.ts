// Component loggers: one `component` field per log line, however deep the nesting. pino appends a child's
// bindings to its parent's, so `.child({ component })` under a logger that already has one writes the key
// twice (`"component":"snapshot","component":"source"`), which JSON readers resolve differently.
import { pino, type Logger } from 'pino';

/** The logger each component logger was made from (the caller's, without our `component`). */
const bases = new WeakMap<Logger, Logger>();

/**
 * A child of `logger` (a silent one when undefined) whose lines carry `component: name`, or
 * `component: "<parent>.<name>"` under another component logger ("snapshot.source"). A caller's logger that
 * binds `component` itself keeps its own: pino cannot drop a binding, and a second key is what this prevents.
 */
export function componentLogger(logger: Logger | undefined, name: string): Logger {
  if (!logger) return pino({ level: 'silent' });
  const base = bases.get(logger);
  if (base) return remember(base.child({ component: `${logger.bindings().component as string}.${name}` }), base);
  if ('component' in logger.bindings()) return logger;
  return remember(logger.child({ component: name }), logger);
}

function remember(child: Logger, base: Logger): Logger {
  bases.set(child, base);
  return child;
}
