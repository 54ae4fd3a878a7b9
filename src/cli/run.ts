import fs from 'node:fs';
import path from 'node:path';
import type { ApiClient, ConnectOptions, connectApi as ConnectApi } from '../api/client';
import type { clientTls as ClientTls } from '../api/tls';
import type { ClusterApi } from '../api/types';
import { parseUnitFileNamed } from '../unit';
import { flagBool, flagNumber, flagString, parseArgs } from './args';
import type { ParsedArgs } from './args';
import type { CliIO, Context } from './command';
import { COMMANDS, findCommand } from './commands';
import { commandUsage, globalUsage } from './commands/help';
import { CliError, errorMessage } from './errors';
import { cliVersion } from '../version';

export interface RunOptions {
  /** How to reach the API (tests may pass an in-process ClusterApi). */
  connect?: (endpoint: string, opts: ConnectOptions) => ApiClient | ClusterApi;
  /** Aborted on SIGINT by main(). */
  signal?: AbortSignal;
}

/** File access relative to `cwd`, for the unit arguments of submit/load/start. */
export function localFiles(cwd: string): Pick<CliIO, 'readUnitFile' | 'fileExists'> {
  const resolve = (file: string): string => path.resolve(cwd, file);
  return {
    fileExists: (file) => fs.existsSync(resolve(file)),
    readUnitFile: (file) => {
      const p = resolve(file);
      if (!fs.existsSync(p)) return undefined;
      let text: string;
      try {
        text = fs.readFileSync(p, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new Error(
          code === 'EISDIR' ? `read ${file}: is a directory` : `read ${file}: ${errorMessage(err)}`,
        );
      }
      return parseUnitFileNamed(file, text);
    },
  };
}

/**
 * Runs one flotilla invocation: parses `argv` (without node and script), runs the command and
 * returns the exit status (0 success, 1 error). Never throws; never calls process.exit.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIO,
  opts: RunOptions = {},
): Promise<number> {
  const fail = (message: string, code = 1): number => {
    if (message) io.stderr(`${message}\n`);
    return code;
  };
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(
      argv,
      (name) => findCommand(name)?.flags ?? (findCommand(name) ? [] : undefined),
      io.env,
    );
  } catch (e) {
    return fail(errorMessage(e));
  }

  if (flagBool(parsed, 'version')) {
    io.stdout(`flotilla version ${cliVersion()}\n`);
    return 0;
  }
  if (parsed.command === undefined) {
    io.stdout(globalUsage());
    return 0;
  }
  const command = findCommand(parsed.command);
  if (!command) {
    return fail(`Unknown command "${parsed.command}". Run 'flotilla help' for usage.`);
  }
  if (flagBool(parsed, 'help')) {
    io.stdout(commandUsage(command));
    return 0;
  }

  let client: ApiClient | ClusterApi | undefined;
  const endpoint = flagString(parsed, 'endpoint');
  const needsApi =
    typeof command.needsApi === 'function'
      ? command.needsApi(parsed.args, parsed.given)
      : command.needsApi !== false;
  // grpc-js and the generated protobuf code take a third of a second to load: only when used.
  const { connectApi, clientTls } = needsApi ? loadApi() : NO_API;
  const connect = opts.connect ?? connectApi;
  const api = (): ClusterApi => {
    client ??= connect(endpoint, {
      requestTimeoutMs: Math.round(flagNumber(parsed, 'request-timeout') * 1000),
      credentials: clientTls({
        ca: flagString(parsed, 'ca-file'),
        cert: flagString(parsed, 'cert-file'),
        key: flagString(parsed, 'key-file'),
      }),
    });
    return client;
  };
  const ctx: Context = {
    command,
    args: parsed.args,
    parsed,
    io,
    api,
    signal: opts.signal ?? new AbortController().signal,
  };
  try {
    return await command.run(ctx);
  } catch (e) {
    if (e instanceof CliError) return fail(e.message, e.exitCode);
    return fail(`Error: ${errorMessage(e)}`);
  } finally {
    if (client && 'close' in client) client.close();
  }
}

/** The API client's modules, loaded when a command needs them (a synchronous require: CommonJS). */
function loadApi(): { connectApi: typeof ConnectApi; clientTls: typeof ClientTls } {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { connectApi } = require('../api/client') as { connectApi: typeof ConnectApi };
  const { clientTls } = require('../api/tls') as { clientTls: typeof ClientTls };
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { connectApi, clientTls };
}

const noApi = (): never => {
  throw new Error('this command runs without the API (its needsApi is false)');
};
const NO_API = { connectApi: noApi, clientTls: noApi };

export { COMMANDS };
