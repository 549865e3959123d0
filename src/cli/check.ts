import { formatProblem, loadConfigFile } from '../config/index.js';

/** `corral check -c FILE`: every problem as FILE:LINE:COL message on stderr. */
export async function runCheck(file: string): Promise<number> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  const c = result.config;
  const servers = c.backends.reduce((n, b) => n + b.servers.length, 0);
  process.stdout.write(
    `${file}: valid (${c.frontends.length} frontend(s), ${c.backends.length} backend(s), ${servers} server(s))\n`,
  );
  return 0;
}
