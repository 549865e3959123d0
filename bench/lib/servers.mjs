// The processes the benchmark measures against: the fixed upstream (nginx on
// the load CPU) and the proxies under test (each alone on the proxy CPU, on
// 127.0.0.1:8080). Each writes its own config into a private temp dir.
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, ftruncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, PROXY_CPU } from './measure.mjs';
import { launch, log, processTree, run, sleep, stopProc, waitForPort, waitForPortClosed } from './proc.mjs';

export const UPSTREAM_PORT = 9001;
const BENCH_LIB = dirname(fileURLToPath(import.meta.url));
export const PROXY_PORT = 8080;
export const BULK_FILE = 'bulk.bin';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** nginx keeps its temp files under its own prefix, never in /var/lib/nginx. */
function nginxCommon(prefix) {
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  return [
    'worker_processes 1;',
    'daemon off;',
    'master_process on;',
    asRoot ? 'user root;' : '',
    `pid ${join(prefix, 'nginx.pid')};`,
    `error_log ${join(prefix, 'error.log')} warn;`,
    'events { worker_connections 8192; }',
  ].join('\n');
}

function nginxTempPaths(prefix) {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${join(prefix, 'tmp', k)};`)
    .join('\n');
}

function startNginx(name, prefix, conf, cpu, logDir) {
  mkdirSync(prefix, { recursive: true });
  const file = join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  return launch(name, 'taskset', ['-c', cpu, 'nginx', '-p', `${prefix}/`, '-e', join(prefix, 'error.log'), '-c', file], { logDir });
}

/**
 * Creates the bulk-transfer file (fallocate, else a sparse truncate) and
 * reads it once so that it sits in the page cache.
 */
export function makeBulkFile(dir, bytes) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, BULK_FILE);
  const f = run('fallocate', ['-l', String(bytes), path]);
  if (f.code !== 0) {
    const fd = openSync(path, 'w');
    ftruncateSync(fd, bytes);
    closeSync(fd);
  }
  run('dd', [`if=${path}`, 'of=/dev/null', 'bs=4M', 'status=none'], { timeoutMs: 120000 }); // into the page cache
  return path;
}

/** The fixed upstream: nginx, 1 worker, on the load CPU, `hello world\n` on / and the bulk file under /files/. */
export async function startUpstream(work, wwwDir) {
  const prefix = join(work, 'upstream');
  mkdirSync(prefix, { recursive: true });
  const conf = `# upstream for the corral benchmark (generated)
${nginxCommon(prefix)}
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 300s;
  keepalive_requests 1000000000;
${nginxTempPaths(prefix)}
  server {
    listen 127.0.0.1:${UPSTREAM_PORT} backlog=4096;
    location /files/ { alias ${wwwDir}/; default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "hello world\\n"; }
  }
}
`;
  const proc = startNginx('upstream-nginx', prefix, conf, LOAD_CPU, join(work, 'logs'));
  const state = await waitForPort(UPSTREAM_PORT, proc, 10000);
  if (state !== 'open') {
    const err = readFileSync(proc.stderrFile, 'utf8') + safeRead(join(prefix, 'error.log'));
    await stopProc(proc);
    throw new Error(`upstream nginx did not start (${state}): ${err.trim()}`);
  }
  return proc;
}

function safeRead(p) {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function haproxyConf(mode) {
  return `# proxy under test (generated): HAProxy ${mode} mode, one thread
global
  nbthread 1
  maxconn 8000

defaults
  mode ${mode}
${mode === 'http' ? '  option http-keep-alive\n  http-reuse always\n' : ''}  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend bench_in
  bind 127.0.0.1:${PROXY_PORT}
  default_backend bench_up

backend bench_up
  server up1 127.0.0.1:${UPSTREAM_PORT}
`;
}

function nginxHttpProxyConf(prefix) {
  return `# proxy under test (generated): nginx, 1 worker, upstream keep-alive
${nginxCommon(prefix)}
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000000;
${nginxTempPaths(prefix)}
  upstream bench_up {
    server 127.0.0.1:${UPSTREAM_PORT};
    keepalive 64;
    keepalive_requests 1000000000;
  }
  server {
    listen 127.0.0.1:${PROXY_PORT} backlog=4096;
    location / {
      proxy_pass http://bench_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # stream large bodies through memory buffers instead of spooling them to disk
      proxy_max_temp_file_size 0;
    }
  }
}
`;
}

function nginxStreamConf(prefix, loadModule) {
  return `# proxy under test (generated): nginx stream (L4), 1 worker
${loadModule ? `load_module ${loadModule};\n` : ''}${nginxCommon(prefix)}
stream {
  upstream bench_up { server 127.0.0.1:${UPSTREAM_PORT}; }
  server {
    listen 127.0.0.1:${PROXY_PORT} backlog=4096;
    proxy_pass bench_up;
  }
}
`;
}

/** A Corral config: one frontend on :8080, one backend with the upstream as its only server. */
export function corralYaml({ mode = 'http', workers = 1, idleTimeout } = {}) {
  const timeouts = idleTimeout ? `\n    timeouts: { idle: ${idleTimeout} }` : '';
  return `# generated by corral bench
node: { name: bench }
workers: ${workers}
frontends:
  - name: bench
    listen: 127.0.0.1:${PROXY_PORT}
    mode: ${mode}
    backend: upstream${timeouts}
backends:
  - name: upstream
    servers:
      - { name: nginx, address: 127.0.0.1:${UPSTREAM_PORT} }
`;
}

/**
 * The Node flags `corral` runs with: those of its `#!/usr/bin/env -S node …`
 * line, so a benchmark that starts `node main.js` measures what the
 * installed command runs.
 */
export function corralNodeFlags(root) {
  const first = readFileSync(join(root, 'dist/src/cli/main.js'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node (.*)$/.exec(first);
  return m === null ? [] : m[1].trim().split(/\s+/);
}

/** Starts Corral (from `build`, a dist snapshot) on the proxy CPU with a cheap log level. Returns the launched process. */
export function launchCorral({ build, dir, name, yaml, logDir }) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const env = { ...process.env, CORRAL_LOG_LEVEL: 'warn' };
  return launch(
    name,
    'taskset',
    ['-c', PROXY_CPU, process.execPath, ...corralNodeFlags(build), join(build, 'dist/src/cli/main.js'), 'start', '-c', file, '--drain-timeout', '1000'],
    { env, logDir, cwd: dir },
  );
}

/** What a process wrote before dying: its stderr, else the tail of stdout. */
export function startupComplaint(proc) {
  const err = safeRead(proc.stderrFile).trim();
  const out = safeRead(proc.stdoutFile).trim();
  const text = err || out.split('\n').slice(-3).join(' ');
  return text.replace(/\s+/g, ' ').slice(0, 300) || '(no output)';
}

function classifyFailure(proc, state) {
  const why = startupComplaint(proc);
  if (/not (available|supported|implemented)|unsupported/i.test(why)) {
    return { na: `n/a (not supported in this build: ${why})`, unsupported: true };
  }
  return { na: `failed to start (${state}): ${why}`, unsupported: false };
}

/**
 * The configurations under test. `start(ctx)` resolves either { proc, note }
 * (port 8080 is open) or { na, unsupported } (reason it cannot be measured).
 * `direct` starts nothing: wrk goes straight to the upstream.
 */
export function proxyConfigs(ctx) {
  const { work, build } = ctx;
  const logDir = join(work, 'logs');
  const generic = (launcher) => async () => {
    const proc = launcher();
    const state = await waitForPort(PROXY_PORT, proc, 15000);
    if (state !== 'open') {
      const res = classifyFailure(proc, state);
      await stopProc(proc, 2000);
      return res;
    }
    return { proc, note: '' };
  };
  // The bare Node proxy (bare-proxy.mjs) in http or tcp mode.
  const bare = (name, mode) =>
    generic(() => launch(name, 'taskset', ['-c', PROXY_CPU, process.execPath, join(BENCH_LIB, 'bare-proxy.mjs'), mode, String(PROXY_PORT), String(UPSTREAM_PORT)], { logDir }));
  const corral = (name, opts) => async () => {
    const proc = launchCorral({ build, dir: join(work, 'corral'), name, yaml: corralYaml(opts), logDir });
    const state = await waitForPort(PROXY_PORT, proc, 20000);
    if (state !== 'open') {
      const res = classifyFailure(proc, state);
      await stopProc(proc, 2000);
      return res;
    }
    if ((opts.workers ?? 1) > 1) {
      // Multi-worker support shows as forked worker processes. Give them a moment to appear.
      let kids = 0;
      for (let i = 0; i < 20 && kids < opts.workers; i++) {
        await sleep(100);
        kids = processTree(proc.pid).length - 1;
      }
      if (kids === 0) {
        const said = startupComplaint(proc);
        await stopProc(proc, 3000);
        return {
          na: 'n/a (workers not supported in this build)',
          unsupported: true,
          detail: `started with workers: ${opts.workers} but forked no worker process; its output: ${said}`,
        };
      }
      return { proc, note: `${kids} child process(es)` };
    }
    return { proc, note: '' };
  };
  const http = [
    { name: 'direct', label: 'direct (no proxy, wrk → upstream)', port: UPSTREAM_PORT, start: async () => ({ proc: null, note: '' }) },
    {
      name: 'haproxy',
      label: 'HAProxy (mode http, nbthread 1, http-reuse always)',
      port: PROXY_PORT,
      start: generic(() => {
        const file = join(work, 'haproxy-http.cfg');
        writeFileSync(file, haproxyConf('http'));
        return launch('haproxy-http', 'taskset', ['-c', PROXY_CPU, 'haproxy', '-db', '-f', file], { logDir });
      }),
    },
    {
      name: 'nginx',
      label: 'nginx (1 worker, upstream keepalive 64)',
      port: PROXY_PORT,
      start: generic(() => {
        const prefix = join(work, 'nginx-http');
        return startNginx('nginx-http', prefix, nginxHttpProxyConf(prefix), PROXY_CPU, logDir);
      }),
    },
    {
      name: 'node-bare',
      label: 'a bare Node proxy (bench/lib/bare-proxy.mjs: no features, the floor for a Node proxy)',
      port: PROXY_PORT,
      start: bare('node-bare', 'http'),
    },
    { name: 'corral', label: 'Corral (workers: 1)', port: PROXY_PORT, start: corral('corral', { mode: 'http', workers: 1 }) },
    { name: 'corral-w2', label: 'Corral (workers: 2, both on CPU 1)', port: PROXY_PORT, start: corral('corral-w2', { mode: 'http', workers: 2 }) },
  ];
  const tcp = [
    { name: 'direct', label: 'direct (no proxy)', port: UPSTREAM_PORT, start: async () => ({ proc: null, note: '' }) },
    {
      name: 'haproxy-tcp',
      label: 'HAProxy (mode tcp, nbthread 1)',
      port: PROXY_PORT,
      start: generic(() => {
        const file = join(work, 'haproxy-tcp.cfg');
        writeFileSync(file, haproxyConf('tcp'));
        return launch('haproxy-tcp', 'taskset', ['-c', PROXY_CPU, 'haproxy', '-db', '-f', file], { logDir });
      }),
    },
    {
      name: 'nginx-stream',
      label: 'nginx stream (1 worker)',
      port: PROXY_PORT,
      start: async () => {
        if (!ctx.stream.ok) return { na: `n/a (nginx stream module: ${ctx.stream.how})`, unsupported: true };
        const prefix = join(work, 'nginx-stream');
        return generic(() => startNginx('nginx-stream', prefix, nginxStreamConf(prefix, ctx.stream.loadModule), PROXY_CPU, logDir))();
      },
    },
    {
      name: 'node-bare-tcp',
      label: 'a bare Node TCP pipe (bench/lib/bare-proxy.mjs tcp: the floor for a Node proxy)',
      port: PROXY_PORT,
      start: bare('node-bare-tcp', 'tcp'),
    },
    { name: 'corral-tcp', label: 'Corral (mode tcp, workers: 1)', port: PROXY_PORT, start: corral('corral-tcp', { mode: 'tcp', workers: 1 }) },
  ];
  return { http, tcp };
}

/** Stops a proxy and waits until :8080 is free for the next one. */
export async function stopProxy(proc) {
  if (!proc) return;
  await stopProc(proc, 5000);
  if (!(await waitForPortClosed(PROXY_PORT, 5000))) log(`WARNING: port ${PROXY_PORT} still open after stopping ${proc.name}`);
}
