// `pagevault forget <url> <id>...`: forget() the named snapshots; their objects go the way a prune's do.
import { forget } from '../index.ts';
import { graceFrom, storageOptionsFrom, type CommandResult, type Context } from './command.ts';
import { describeCollect } from './prune.ts';

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const result = await forget({
    url: args.url as string,
    storageOptions: storageOptionsFrom(args),
    ids: (args.ids as unknown[]).map(String),
    graceMs: graceFrom(args),
    dryRun: args.dryRun === true,
    signal: context.signal,
    logger: context.logger,
  });
  return { value: result, text: describeCollect(result) };
}
