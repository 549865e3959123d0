/**
 * A sample application server for `corral demo` and the tests: answers with
 * its own name, serves `/health`, and can be told to fail or recover:
 *
 *   POST /_demo/fail     every request (and /health) answers 500/503
 *   POST /_demo/down     connections are dropped without an answer
 *   POST /_demo/recover  back to normal
 *
 * Control requests are answered in every mode, so a server that is down can
 * be brought back.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type AppMode = 'ok' | 'fail' | 'down';

export interface AppServer {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server;
  mode: AppMode;
  requests: number;
  close(): Promise<void>;
}

export function startAppServer(name: string, port: number, host = '127.0.0.1'): Promise<AppServer> {
  const server = http.createServer();
  const app: AppServer = {
    name,
    port: 0,
    server,
    mode: 'ok',
    requests: 0,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server.on('request', (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path?.startsWith('/_demo/')) {
      const mode = path.slice('/_demo/'.length);
      if (mode === 'fail' || mode === 'down') app.mode = mode;
      else if (mode === 'recover') app.mode = 'ok';
      else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown demo command\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(`${name} is now ${app.mode}\n`);
      return;
    }
    if (app.mode === 'down') {
      req.socket.destroy();
      return;
    }
    if (path === '/health') {
      const ok = app.mode === 'ok';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'failing\n');
      return;
    }
    app.requests++;
    if (app.mode === 'fail') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${name} is failing\n`);
      return;
    }
    req.resume();
    req.on('end', () => {
      const body = `Hello from ${name}: ${req.method} ${req.url} (request ${app.requests})\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-app-server': name }).end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      (app as { port: number }).port = (server.address() as AddressInfo).port;
      resolve(app);
    });
  });
}
