// Flags from the environment (PAGEVAULT_ plus the flag's name in capitals) and boolean values as people write
// them. yargs reads a boolean's value itself and turns anything but "true" into false, silently; here every
// boolean, from the environment or as --flag=value, is read as true/false, 1/0, yes/no or on/off (any case)
// and anything else is a usage error naming where it came from.
import type { Options } from 'yargs';
import { UsageError } from '../errors.ts';

export const envPrefix = 'PAGEVAULT_';

const truthy = new Set(['true', '1', 'yes', 'on']);
const falsy = new Set(['false', '0', 'no', 'off']);
const spellings = 'true/false, 1/0, yes/no or on/off';

/** true or false for the usual spellings, undefined for anything else. */
export function parseBoolean(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (truthy.has(t)) return true;
  if (falsy.has(t)) return false;
  return undefined;
}

export function envName(flag: string): string {
  return envPrefix + flag.toUpperCase().replace(/-/g, '_');
}

/**
 * Prepares `env` and `argv` for yargs, given every flag the CLI declares: drops PAGEVAULT_* variables that
 * name no flag (test tiers and scripts share the prefix, and strict mode would reject them), writes boolean
 * variables as "true"/"false" (an empty one counts as unset), and returns argv with `--flag=<boolean>` as
 * `--flag` or `--no-flag`. Throws UsageError for a boolean value it cannot read.
 */
export function prepareFlags(argv: readonly string[], env: NodeJS.ProcessEnv, flags: Record<string, Options>): string[] {
  const booleans = new Set(Object.keys(flags).filter((f) => flags[f]!.type === 'boolean'));
  const known = new Set(Object.keys(flags).map(envName));
  for (const name of Object.keys(env)) {
    if (!name.startsWith(envPrefix)) continue;
    if (!known.has(name)) delete env[name];
  }
  for (const flag of booleans) {
    const name = envName(flag);
    const value = env[name];
    if (value === undefined) continue;
    if (value.trim() === '') {
      delete env[name];
      continue;
    }
    const b = parseBoolean(value);
    if (b === undefined) throw new UsageError('BAD_OPTION', `${name} must be ${spellings}, got ${JSON.stringify(value)}`);
    env[name] = String(b);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([^=]+)=(.*)$/s.exec(arg);
    if (!m || !booleans.has(m[1]!)) {
      out.push(arg);
      continue;
    }
    const b = parseBoolean(m[2]!);
    if (b === undefined) throw new UsageError('BAD_OPTION', `--${m[1]} must be ${spellings}, got ${JSON.stringify(m[2])}`);
    out.push(b ? `--${m[1]}` : `--no-${m[1]}`);
  }
  return out;
}

/**
 * Whether boolean `flag` is on, read from argv and the environment the way yargs will (the last of --flag,
 * --no-flag and --flag=<boolean> wins, then the variable), leniently: for choosing how to report a failure
 * that happened before, or while, the arguments were parsed.
 */
export function flagOn(argv: readonly string[], env: NodeJS.ProcessEnv, flag: string, alias?: string): boolean {
  let on: boolean | undefined;
  for (const arg of argv) {
    if (arg === '--') break;
    if (arg === `--${flag}` || (alias !== undefined && arg === `-${alias}`)) on = true;
    else if (arg === `--no-${flag}`) on = false;
    else if (arg.startsWith(`--${flag}=`)) on = parseBoolean(arg.slice(flag.length + 3)) ?? on;
  }
  if (on !== undefined) return on;
  const value = env[envName(flag)];
  return value !== undefined && parseBoolean(value) === true;
}
