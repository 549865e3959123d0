import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AdminError, attachAdmin, LatencyHistograms } from '../admin/index.js';
import type { AdminServer } from '../admin/index.js';
import { formatProblem, parseConfig } from '../config/index.js';
import { startAppServer } from '../demo/app-server.js';
import type { AppServer } from '../demo/app-server.js';
import { demoConfigYaml } from '../demo/demo-config.js';
import { createLogger } from '../log.js';
import { CorralNode } from '../node.js';
import { waitForStop } from './start.js';

/** `corral demo`: three app servers and a balancer in one process; Ctrl-C stops everything. */
export async function runDemo(port: number, appPorts: number[], adminPort = 9010): Promise<number> {
  if (appPorts.length !== 3 || appPorts.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
    process.stderr.write('corral demo: --app-ports needs three ports, e.g. 9001,9002,9003\n');
    return 2;
  }
  const file = resolve('corral-demo.yaml');
  const yaml = demoConfigYaml({ balancer: port, apps: appPorts });
  const parsed = parseConfig(yaml, file);
  if (!parsed.ok) {
    for (const p of parsed.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  await writeFile(file, yaml);
  const apps: AppServer[] = [];
  try {
    for (let i = 0; i < 3; i++) apps.push(await startAppServer(`app${i + 1}`, appPorts[i] as number));
  } catch (err) {
    for (const a of apps) await a.close();
    process.stderr.write(`corral demo: cannot start the sample app servers: ${(err as Error).message}\n`);
    return 1;
  }
  // Health flips are logged at info; access lines (one per request) only when asked for.
  const log = createLogger({ level: process.env.CORRAL_LOG_LEVEL ?? 'info' });
  const latency = new LatencyHistograms();
  let node: CorralNode;
  try {
    node = await CorralNode.start({ config: parsed.config, log, latency, accessLog: process.env.CORRAL_ACCESS_LOG === '1' });
  } catch (err) {
    for (const a of apps) await a.close();
    process.stderr.write(`corral demo: ${(err as Error).message}\n`);
    return 1;
  }
  let admin: AdminServer | null;
  try {
    admin = await attachAdmin({ node, log, latency, config: { listen: { host: '127.0.0.1', port: adminPort } } });
  } catch (err) {
    await node.stop(0);
    for (const a of apps) await a.close();
    const code = err instanceof AdminError ? `${err.code}: ` : '';
    process.stderr.write(`corral demo: ${code}${(err as Error).message}\n`);
    return 1;
  }
  const consoleUrl = `http://127.0.0.1:${adminPort}`;
  const lb = `http://127.0.0.1:${port}`;
  process.stdout.write(
    [
      '',
      'Corral demo farm is running.',
      `  balancer      ${lb}/   (config: ${file})`,
      ...apps.map((a) => `  ${a.name}          http://127.0.0.1:${a.port}/`),
      `  console       ${consoleUrl}/   stats ${consoleUrl}/stats   metrics ${consoleUrl}/metrics`,
      '',
      'Try:',
      `  for i in $(seq 8); do curl -s ${lb}/; done          # app3 has weight 2: every other answer`,
      `  curl -si ${lb}/ | grep -i -e x-server -e set-cookie      # which server answered, the sticky cookie`,
      `  curl -s -X POST http://127.0.0.1:${appPorts[1]}/_demo/down      # app2 drops its connections`,
      `  for i in $(seq 8); do curl -s ${lb}/; done          # retries move app2's share elsewhere: no errors`,
      `  curl -s -X POST http://127.0.0.1:${appPorts[1]}/_demo/recover   # app2 passes its checks, warms up 3 s, ramps up`,
      `  curl -s -X POST http://127.0.0.1:${appPorts[0]}/_demo/fail      # app1 answers 500: its health check takes it out`,
      `  npx corral servers --stats --admin ${consoleUrl}                # ipvsadm-style table`,
      `  npx corral server drain app/app3 --admin ${consoleUrl}          # no new clients for app3`,
      '',
      'Health changes are logged below as JSON lines. Ctrl-C stops everything.',
      'Access log (one line per request): CORRAL_ACCESS_LOG=1 npm start',
      '',
    ].join('\n'),
  );
  return waitForStop(node, log, 5_000, async () => {
    await admin?.close();
    for (const a of apps) await a.close();
  });
}
