// What the benchmark needs before it measures: the tools (installed with apt
// when missing), a compiled Corral, the nginx stream module, and a
// description of the machine and software for the report.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { log, run, which } from './proc.mjs';

/** The command each Debian package provides. */
const PACKAGE_OF = { wrk: 'wrk', haproxy: 'haproxy', nginx: 'nginx', curl: 'curl', taskset: 'util-linux' };

let aptUpdated = false;

function aptInstall(packages) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new Error(`missing ${packages.join(', ')}; run as root or install them: apt-get install -y ${packages.join(' ')}`);
  }
  // Keep Debian's maintainer scripts from starting system nginx/haproxy
  // services: a temporary policy-rc.d (only if none exists) says "no".
  const policy = '/usr/sbin/policy-rc.d';
  let madePolicy = false;
  if (!existsSync(policy)) {
    log(`writing a temporary ${policy} (exit 101) so that apt does not start system services`);
    writeFileSync(policy, '#!/bin/sh\n# temporary, written by corral bench/run.mjs\nexit 101\n', { mode: 0o755 });
    madePolicy = true;
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (!aptUpdated) {
      log('running: apt-get update');
      const u = run('apt-get', ['update'], { inherit: true, env });
      if (u.code !== 0) throw new Error('apt-get update failed');
      aptUpdated = true;
    }
    log(`running: apt-get install -y ${packages.join(' ')}`);
    const r = run('apt-get', ['install', '-y', ...packages], { inherit: true, env });
    if (r.code !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed`);
  } finally {
    if (madePolicy) {
      rmSync(policy, { force: true });
      log(`removed the temporary ${policy}`);
    }
  }
}

/** Installs the Debian packages providing the given commands when `which` cannot find them. */
export function ensureTools(commands) {
  const missing = commands.filter((c) => which(c) === null);
  if (missing.length === 0) {
    log(`tools present: ${commands.map((c) => `${c}=${which(c)}`).join(' ')}`);
    return;
  }
  log(`missing: ${missing.join(', ')}`);
  aptInstall([...new Set(missing.map((c) => PACKAGE_OF[c] ?? c))]);
  const still = missing.filter((c) => which(c) === null);
  if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.join(', ')}`);
}

/**
 * Whether nginx can proxy TCP (the stream module), installing
 * libnginx-mod-stream when it is neither built in nor present.
 * Returns { ok, loadModule (path or null), how }.
 */
export function ensureNginxStream() {
  const v = run('nginx', ['-V']);
  const flags = v.stderr + v.stdout;
  if (/--with-stream(\s|$)/.test(flags)) return { ok: true, loadModule: null, how: 'built into nginx' };
  const candidates = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'];
  const find = () => candidates.find((p) => existsSync(p)) ?? null;
  let mod = find();
  if (mod === null) {
    log('nginx has no stream module; installing libnginx-mod-stream');
    try {
      aptInstall(['libnginx-mod-stream']);
    } catch (e) {
      return { ok: false, loadModule: null, how: `libnginx-mod-stream not installable: ${e.message}` };
    }
    mod = find();
  }
  if (mod === null) return { ok: false, loadModule: null, how: 'no ngx_stream_module.so found' };
  return { ok: true, loadModule: mod, how: `dynamic module ${mod}` };
}

function newestMtime(dir) {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, name.name);
    if (name.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (name.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Builds Corral when dist/ is missing or older than src/. Returns a note for
 * the report ('' when the build is fresh).
 */
export function ensureBuild(root) {
  const main = join(root, 'dist/src/cli/main.js');
  const stamp = join(root, 'dist/.tsbuildinfo'); // rewritten by every tsc build, unlike unchanged outputs
  const builtAt = existsSync(stamp) ? statSync(stamp).mtimeMs : existsSync(main) ? statSync(main).mtimeMs : 0;
  const srcAt = newestMtime(join(root, 'src'));
  if (existsSync(main) && builtAt >= srcAt) {
    log('dist/ is up to date with src/');
    return '';
  }
  log(existsSync(main) ? 'dist/ is older than src/: running npm run build' : 'dist/ missing: running npm run build');
  const r = run('npm', ['run', 'build'], { cwd: root, inherit: true });
  if (r.code === 0 && existsSync(main)) return '';
  if (existsSync(main)) {
    log('WARNING: npm run build failed; measuring the dist/ that is already there');
    return 'npm run build failed at benchmark time; the existing dist/ (possibly older than src/) was measured';
  }
  throw new Error('npm run build failed and there is no dist/src/cli/main.js to run');
}

/**
 * Copies dist/src into the benchmark's temp dir so that a rebuild by someone
 * else during a long run cannot change the code under test half-way. The copy
 * resolves its dependencies through a symlink to the project's node_modules.
 * Returns { dir, builtAt } (dir holds dist/src/cli/main.js).
 */
export function snapshotBuild(root, workDir) {
  const dir = join(workDir, 'corral-build');
  mkdirSync(join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const main = join(root, 'dist', 'src', 'cli', 'main.js');
  return { dir, builtAt: statSync(main).mtime };
}

function firstLine(s) {
  return (s ?? '').split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}

function dpkgVersion(pkg) {
  const r = run('dpkg-query', ['-W', '-f=${Version}', pkg]);
  return r.code === 0 ? r.stdout.trim() : '';
}

/** CPU, memory, OS and software versions, as label/value pairs. */
export function describeMachine(root) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const virt = /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo) ? 'virtual machine (hypervisor flag set)' : 'no hypervisor flag';
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? totalmem() / 1024);
  let distro = 'unknown';
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro;
  } catch {
    // not Linux-standard
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const head = run('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).stdout.trim();
  const dirty = run('git', ['status', '--porcelain', '--', 'src'], { cwd: root }).stdout.split('\n').filter(Boolean).length;
  const version = (cmd, args) => {
    if (which(cmd) === null) return 'not installed';
    const r = run(cmd, args);
    return firstLine(r.stdout) || firstLine(r.stderr);
  };
  const wrkVer = version('wrk', ['-v']).replace(/\s*Copyright.*$/, '');
  const wrkDeb = dpkgVersion('wrk');
  return [
    ['CPU', `${model}, ${cpus().length} logical CPUs (${virt})`],
    ['RAM', `${(memKb / 1024 / 1024).toFixed(1)} GiB`],
    ['kernel', release()],
    ['distro', distro],
    ['node', `${process.version} (${process.execPath})`],
    ['haproxy', version('haproxy', ['-v'])],
    ['nginx', version('nginx', ['-v'])],
    ['wrk', `${wrkVer}${wrkDeb ? ` (Debian ${wrkDeb})` : ''}`],
    ['curl', version('curl', ['--version'])],
    ['Corral', `${pkg.version}, git ${head || '?'}${dirty > 0 ? ` + ${dirty} uncommitted change(s) under src/` : ''}`],
  ];
}
