#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The `corral` command. Exit codes: 0 ok, 1 invalid input or failed check,
 * 2 usage error. Errors are one line on stderr; `--debug` adds the stack.
 */
import { Command, CommanderError } from 'commander';
import { registerOperatorCommands } from './operator.js';
import { registerSessionsCommands } from './sessions.js';

const program = new Command();
program
  .name('corral')
  .description('Keeps a web-application farm available: balancing, health, shared sessions, redundancy.')
  .option('--debug', 'print stack traces with errors')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('start')
  .description('run a node in the foreground (JSON logs on stdout; SIGTERM drains and exits 0)')
  .option('-c, --config <file>', 'configuration file', 'corral.yaml')
  .option('--drain-timeout <ms>', 'how long SIGTERM waits for in-flight requests', '30000')
  .action(async (opts: { config: string; drainTimeout: string }) => {
    // Each command loads only what it runs (a node process stays small).
    const { runStart } = await import('./start.js');
    process.exitCode = await runStart(opts.config, Number(opts.drainTimeout));
  });

program
  .command('check')
  .description('validate a configuration: exit 0 when valid, 1 with FILE:LINE:COL message per problem')
  .requiredOption('-c, --config <file>', 'configuration file')
  .action(async (opts: { config: string }) => {
    const { runCheck } = await import('./check.js');
    process.exitCode = await runCheck(opts.config);
  });

program
  .command('demo')
  .description('a whole farm on one machine: three sample app servers and the balancer on :8080')
  .option('--port <port>', 'balancer port', '8080')
  .option('--app-ports <ports>', 'comma-separated ports of the three app servers', '9001,9002,9003')
  .option('--admin-port <port>', 'console, stats, metrics and admin API port', '9010')
  .action(async (opts: { port: string; appPorts: string; adminPort: string }) => {
    const { runDemo } = await import('./demo.js');
    process.exitCode = await runDemo(Number(opts.port), opts.appPorts.split(',').map(Number), Number(opts.adminPort));
  });

registerOperatorCommands(program);
registerSessionsCommands(program);

try {
  await program.parseAsync(process.argv);
  // Long-running commands end here after their drain: leftover sockets must not keep the process alive.
  process.exit();
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are not errors; everything else commander reports is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    const debug = process.argv.includes('--debug');
    const e = err as Error;
    process.stderr.write(`corral: ${debug ? (e.stack ?? e.message) : e.message}\n`);
    process.exitCode = 1;
  }
}
