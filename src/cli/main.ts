#!/usr/bin/env node
// The pagevault CLI: builds the yargs parser from the command table, runs the chosen command with an
// AbortSignal wired to SIGINT/SIGTERM, prints its result, and is the one place that maps a failure to an
// exit code and calls process.exit.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from '../errors.ts';
import { toolVersion } from '../version.ts';
import { commands, globalOptions, type CommandSpec } from './commands.ts';
import { exitCodeFor, exitCodes } from './exit-codes.ts';
import { createLogger, formatError, printResult, type OutputOptions } from './output.ts';
import { createProgress } from './progress.ts';

interface Parsed {
  spec: CommandSpec;
  args: Record<string, unknown>;
}

const envPrefix = 'PAGEVAULT_';

/**
 * yargs reads every PAGEVAULT_* variable as a flag, and strict mode would reject those that are not ours
 * (test tiers and scripts share the prefix): only variables naming a flag are left for it to read.
 */
function dropForeignEnv(env: NodeJS.ProcessEnv): void {
  const flags = [globalOptions, ...commands.map((c) => c.options)].flatMap((o) => Object.keys(o));
  const known = new Set(flags.map((f) => envPrefix + f.toUpperCase().replace(/-/g, '_')));
  for (const name of Object.keys(env)) if (name.startsWith(envPrefix) && !known.has(name)) delete env[name];
}

/** Parses argv; undefined when yargs answered by itself (--help, --version). UsageError for bad usage. */
async function parse(argv: string[]): Promise<Parsed | undefined> {
  let chosen: Parsed | undefined;
  dropForeignEnv(process.env);
  let parser = yargs(argv)
    .scriptName('pagevault')
    .usage('$0 <command>\n\nBack up live SQLite databases to S3-compatible object storage, and restore them verified.')
    .options(globalOptions)
    .env(envPrefix.slice(0, -1))
    .strict()
    .demandCommand(1, 'name a command: snapshot, restore or ls')
    .version(toolVersion)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((message, err) => {
      throw err instanceof UsageError ? err : new UsageError('BAD_ARGUMENT', message || err?.message || 'bad arguments', { cause: err });
    });
  for (const spec of commands) {
    parser = parser.command(
      spec.command,
      spec.describe,
      (y) => {
        for (const [name, options] of Object.entries(spec.positionals)) y.positional(name, options);
        y.options(spec.options);
        for (const [example, what] of spec.examples) y.example(example, what);
        return y;
      },
      (args) => {
        chosen = { spec, args: args as Record<string, unknown> };
      },
    );
  }
  await parser.parseAsync();
  return chosen;
}

function outputOptions(args: Record<string, unknown>): OutputOptions {
  const json = args.json === true;
  return {
    json,
    verbose: args.verbose === true,
    quiet: args.quiet === true,
    logLevel: typeof args.logLevel === 'string' ? args.logLevel : undefined,
    progress: !json && process.stderr.isTTY === true,
  };
}

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) exit(exitCodeFor(undefined, signal)); // a second signal: stop now
    received = signal;
    process.stderr.write(`pagevault: ${signal}: aborting the uploads (send it again to exit at once)\n`);
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let verbose = argv.includes('--verbose') || argv.includes('-v');
  try {
    const parsed = await parse(argv);
    if (!parsed) return exitCodes.ok.code;
    const output = outputOptions(parsed.args);
    verbose = output.verbose;
    const logger = createLogger(output);
    const command = await parsed.spec.load();
    const result = await command.run(parsed.args, {
      signal: controller.signal,
      logger,
      progress: (unit) => createProgress(output.progress, unit),
    });
    printResult(output.json, result.value, result.text);
    return exitCodes.ok.code;
  } catch (err) {
    process.stderr.write(`${formatError(err, verbose)}\n`);
    return exitCodeFor(err, received);
  }
}

function exit(code: number): never {
  process.exit(code);
}

const code = await main(hideBin(process.argv));
// stdout may be a pipe still flushing the result: exit once it has taken everything.
process.stdout.write('', () => exit(code));
