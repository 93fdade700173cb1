#!/usr/bin/env node
// The pagevault CLI: builds the yargs parser from the command table, runs the chosen command with an
// AbortSignal wired to SIGINT/SIGTERM, prints its result, and is the one place that maps a failure to an
// exit code and calls process.exit.
import { setMaxListeners } from 'node:events';
import yargs, { type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from '../errors.ts';
import { toolVersion } from '../version.ts';
import { commands, globalOptions, type CommandSpec } from './commands.ts';
import { envPrefix, flagOn, prepareFlags } from './env.ts';
import { exitCodeFor, exitCodes } from './exit-codes.ts';
import { createLogger, formatError, jsonError, printResult, type OutputOptions } from './output.ts';
import { createProgress } from './progress.ts';

interface Parsed {
  spec: CommandSpec;
  args: Record<string, unknown>;
}

/** Every flag the CLI declares, of every command. */
const allFlags: Record<string, Options> = Object.assign({}, globalOptions, ...commands.map((c) => c.options));

function commandName(spec: CommandSpec): string {
  return spec.command.split(' ')[0]!;
}

/** Parses argv; undefined when yargs answered by itself (--help, --version). UsageError for bad usage. */
async function parse(argv: string[]): Promise<Parsed | undefined> {
  let chosen: Parsed | undefined;
  let parser = yargs(prepareFlags(argv, process.env, allFlags))
    .scriptName('pagevault')
    .usage('$0 <command>\n\nBack up live SQLite databases to S3-compatible object storage, and restore them verified.')
    .options(globalOptions)
    .env(envPrefix.slice(0, -1))
    .strict()
    .demandCommand(1, 'name a command: snapshot, restore, ls, prune, forget or verify')
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
  const verbose = args.verbose === true;
  const quiet = args.quiet === true;
  if (quiet && verbose) throw new UsageError('BAD_OPTION', '--quiet and --verbose conflict: give one of them (or neither)');
  return {
    json,
    verbose,
    quiet,
    logLevel: typeof args.logLevel === 'string' ? args.logLevel : undefined,
    progress: !json && process.stderr.isTTY === true,
  };
}

/** How a failure is reported: known from the parsed flags, else read from argv and the environment. */
interface Reporting {
  json: boolean;
  verbose: boolean;
  command: string | undefined;
}

function report(err: unknown, code: number, how: Reporting, partial?: unknown): void {
  process.stderr.write(`${formatError(err, how.verbose, how.command)}\n`);
  if (how.json) process.stdout.write(jsonError(err, code, how.command, partial));
}

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  // Every request in flight listens to it (a prune or verify has dozens at once): that is no leak to warn of.
  setMaxListeners(0, controller.signal);
  let received: NodeJS.Signals | undefined;
  // Until the arguments are parsed, a failure is reported as they appear to ask.
  const how: Reporting = {
    json: flagOn(argv, process.env, 'json'),
    verbose: flagOn(argv, process.env, 'verbose', 'v'),
    command: argv.find((arg) => commands.some((spec) => commandName(spec) === arg)),
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) exit(exitCodeFor(undefined, signal)); // a second signal: stop now
    received = signal;
    const what = how.command === 'snapshot' ? 'the uploads' : how.command === 'restore' ? 'the restore' : 'the command';
    process.stderr.write(`pagevault: ${signal}: aborting ${what} (send it again to exit at once)\n`);
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const parsed = await parse(argv);
    if (!parsed) return exitCodes.ok.code;
    how.command = commandName(parsed.spec);
    how.json = parsed.args.json === true;
    const output = outputOptions(parsed.args);
    how.verbose = output.verbose;
    const logger = createLogger(output);
    logger.debug({ version: toolVersion, node: process.version, command: how.command }, 'pagevault started');
    const command = await parsed.spec.load();
    const result = await command.run(parsed.args, {
      signal: controller.signal,
      logger,
      progress: (unit) => createProgress(output.progress, unit),
    });
    if (result.error === undefined) {
      printResult(output, result.value, result.text);
      return result.exitCode ?? exitCodes.ok.code;
    }
    // The command did what it could: its findings first, then why it failed.
    const code = exitCodeFor(result.error, received);
    if (!output.json) printResult(output, result.value, result.text);
    report(result.error, code, how, result.value);
    return code;
  } catch (err) {
    const code = exitCodeFor(err, received);
    report(err, code, how);
    return code;
  }
}

function exit(code: number): never {
  process.exit(code);
}

const code = await main(hideBin(process.argv));
// stdout may be a pipe still flushing the result: exit once it has taken everything.
process.stdout.write('', () => exit(code));
