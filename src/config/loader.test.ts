import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, parseConfig } from './loader.js';
import { formatProblem } from './problem.js';
import type { BackendConfig, CorralConfig, FrontendConfig } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'corral-config-'));
writeFileSync(join(dir, 'cert.pem'), 'cert');
writeFileSync(join(dir, 'key.pem'), 'key');
const FILE = join(dir, 'corral.yaml');
after(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { CORRAL_ADMIN_PASSWORD: 's3cret', CORRAL_CLUSTER_KEY: 'cluster-key' };

/**
 * The example of docs/ARCHITECTURE.md, plus the `api` backend its route names,
 * and with `sendProxy` moved from `app` (used by an http frontend only) to the
 * backend of a `mode: tcp` frontend, where it applies.
 */
const EXAMPLE = `
node: { name: lb1 }                      # default: hostname
workers: auto                            # processes sharing the listeners: auto = one per core, or a number
admin:
  listen: 127.0.0.1:9010
  auth: { user: admin, password: \${CORRAL_ADMIN_PASSWORD} }   # required unless listen is loopback
frontends:
  - name: web
    listen: 0.0.0.0:8080
    mode: http                           # http | tcp
    tls: { cert: cert.pem, key: key.pem } # optional; more certs by SNI: certs: [...]
    routes:                              # optional; first match wins; else default backend
      - { host: api.example.com, pathPrefix: /v1, backend: api }
    backend: app
    trustedProxies: [10.0.0.0/8]         # client-sent X-Forwarded-For kept only from these peers
    acceptProxy: false                   # accept PROXY protocol v1/v2 from a trusted outer balancer
    maxConn: 10000                       # open client connections; beyond: refused, logged
    timeouts: { headers: 10s, idle: 60s }
  - name: db
    listen: 0.0.0.0:5433
    mode: tcp
    backend: pg
backends:
  - name: app
    balance: roundrobin                  # roundrobin | leastconn | source | hash | lblc | random | first
    hashOn: { header: X-User }           # for balance: hash (header | cookie | path | query)
    sticky: { cookie: SERVERID }         # or { source: true, timeout: 30m }; cookie is signed
    allBackups: false                    # true: spread over all backups, not just the first
    forwardFor: true                     # X-Forwarded-For/-Proto/-Host and Forwarded
    serverHeader: X-Server               # names the server that answered (off when absent)
    retries: 3                           # connect failures, redispatched to another server
    maxConn: 0                           # per server, 0 = unlimited; excess waits in a queue
    timeouts: { connect: 5s, server: 50s, client: 50s, queue: 5s }
    health:
      type: http                         # tcp | http | send-expect | none
      path: /health                      # http: method, path, expectStatus (default 2xx,3xx)
      interval: 2s
      timeout: 1s
      rise: 2
      fall: 3
      warmup: 10s                        # must stay up this long before it takes traffic
      slowStart: 30s                     # weight ramps from 0 to full
      agent: { port: 9999, interval: 5s } # optional: server reports its load, weight follows
    outlier: { consecutive5xx: 5, ejectFor: 30s }
    servers:
      - { name: app1, address: 127.0.0.1:9001, weight: 32 }
      - { name: app2, address: 127.0.0.1:9002, weight: 32 }
      - { name: spare, address: 127.0.0.1:9003, backup: true }
      - { name: app1-tls, address: 127.0.0.1:9443, track: app/app1, tls: true }
      - { name: app4, address: 127.0.0.1:9004, check: { port: 9104 } }   # check elsewhere
  - name: api
    servers:
      - { name: api1, address: "[::1]:9101", maxConn: 50 }
  - name: pg
    sendProxy: v2                        # optional PROXY protocol towards servers (tcp mode)
    servers:
      - { name: pg1, address: 127.0.0.1:5432 }
statusFiles: [./server-status.json]      # rewritten atomically on every server state change (seed 001)
sessions:
  store: memory                          # memory | peer | redis
  replicas: 2                            # peer: copies of each session
  listen: 0.0.0.0:42425                  # peer: this node's state-service address
  peers: [10.0.0.11:42425, 10.0.0.12:42425]  # peer: every state-service address (until the cluster role supplies membership)
  redis: { url: redis://127.0.0.1:6379 }
  ttl: 30m
cluster:
  key: \${CORRAL_CLUSTER_KEY}             # shared secret: peers authenticate and encrypt with it
  peers: [10.0.0.11:42424, 10.0.0.12:42424]
  listen: 0.0.0.0:42424
  priority: 100                          # higher wins the primary role
  coordination: embedded                 # embedded | postgres
  postgres: { url: postgres://db.example.com/corral }
  vip: { address: 10.0.0.100/24, interface: eth0 }
  hooks: { onPrimary: ./start.sh, onSecondary: ./stop.sh }
  sync: { files: [./certs, ./corral.yaml] }
`;

/** A small valid config the error tests add one mistake to. */
const BASE = `frontends:
  - name: web
    listen: 127.0.0.1:0
    backend: app
backends:
  - name: app
    servers:
      - { name: a1, address: 127.0.0.1:9001 }
`;

function parse(text: string, env: Record<string, string> = ENV): CorralConfig {
  const result = parseConfig(text, FILE, env);
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.problems.map(formatProblem).join('\n')}`);
  return result.config;
}

/** Every problem as `LINE:COL message`. */
function problems(text: string, env: Record<string, string> = ENV): string[] {
  const result = parseConfig(text, FILE, env);
  assert.equal(result.ok, false, 'expected problems');
  return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
}

/** `LINE:COL` of the nth occurrence of `needle` in `text`. */
function positionOf(text: string, needle: string, nth = 0): string {
  let offset = -1;
  for (let i = 0; i <= nth; i++) {
    offset = text.indexOf(needle, offset + 1);
    assert.ok(offset >= 0, `"${needle}" #${nth} not in the text`);
  }
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${(before[before.length - 1] ?? '').length + 1}`;
}

/** Asserts a problem whose message is (or matches) `message` is reported where `needle` is written. */
function expectProblem(text: string, needle: string, message: string | RegExp, nth = 0): void {
  const all = problems(text);
  const at = positionOf(text, needle, nth);
  const hit = all.some((p) => {
    const [where, ...rest] = p.split(' ');
    const said = rest.join(' ');
    return where === at && (typeof message === 'string' ? said === message : message.test(said));
  });
  assert.ok(hit, `expected ${at} ${String(message)}\ngot:\n${all.join('\n')}`);
}

describe('parseConfig: the architecture example', () => {
  const config = parse(EXAMPLE);

  it('normalizes every section', () => {
    assert.deepEqual(config.node, { name: 'lb1' });
    assert.equal(config.workers, 'auto');
    assert.deepEqual(config.admin, {
      listen: { host: '127.0.0.1', port: 9010 },
      auth: { user: 'admin', password: 's3cret' },
    });

    const web = config.frontends[0];
    assert.deepEqual(web, {
      name: 'web',
      listen: { host: '0.0.0.0', port: 8080 },
      mode: 'http',
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), certs: [] },
      routes: [{ host: 'api.example.com', pathPrefix: '/v1', backend: 'api' }],
      backend: 'app',
      trustedProxies: ['10.0.0.0/8'],
      acceptProxy: false,
      maxConn: 10_000,
      timeouts: { headers: 10_000, idle: 60_000 },
    } satisfies FrontendConfig);

    const app = config.backends[0];
    assert.ok(app);
    assert.equal(app.balance, 'roundrobin');
    assert.deepEqual(app.hashOn, { kind: 'header', name: 'X-User' });
    assert.deepEqual(app.sticky, { cookie: 'SERVERID', source: false, timeout: 1_800_000 });
    assert.equal(app.sendProxy, undefined);
    assert.equal(config.frontends[1]?.mode, 'tcp');
    assert.equal(config.backends[2]?.sendProxy, 'v2');
    assert.equal(app.forwardFor, true);
    assert.equal(app.serverHeader, 'X-Server');
    assert.deepEqual(app.timeouts, { connect: 5_000, server: 50_000, client: 50_000, queue: 5_000 });
    assert.deepEqual(app.health, {
      type: 'http',
      method: 'GET',
      path: '/health',
      expectStatus: [[200, 399]],
      interval: 2_000,
      timeout: 1_000,
      rise: 2,
      fall: 3,
      warmup: 10_000,
      slowStart: 30_000,
      agent: { port: 9999, interval: 5_000 },
    });
    assert.deepEqual(app.outlier, {
      consecutive5xx: 5,
      consecutiveConnectFailures: 5,
      ejectFor: 30_000,
      maxEjectFor: 300_000,
      maxEjectedPercent: 10,
    });
    assert.deepEqual(
      app.servers.map((s) => [s.name, s.weight, s.backup, s.tls]),
      [
        ['app1', 32, false, false],
        ['app2', 32, false, false],
        ['spare', 1, true, false],
        ['app1-tls', 1, false, true],
        ['app4', 1, false, false],
      ],
    );
    assert.deepEqual(app.servers[3]?.track, { backend: 'app', server: 'app1' });
    assert.deepEqual(app.servers[4]?.check, { port: 9104 });
    assert.deepEqual(config.backends[1]?.servers[0], {
      name: 'api1',
      address: { host: '::1', port: 9101 },
      weight: 1,
      backup: false,
      tls: false,
      tlsVerify: true,
      maxConn: 50,
    });

    assert.deepEqual(config.statusFiles, [join(dir, 'server-status.json')]);
    assert.deepEqual(config.sessions, {
      store: 'memory',
      replicas: 2,
      listen: { host: '0.0.0.0', port: 42425 },
      peers: [
        { host: '10.0.0.11', port: 42425 },
        { host: '10.0.0.12', port: 42425 },
      ],
      redis: { url: 'redis://127.0.0.1:6379', prefix: 'corral:sess:' },
      ttl: 1_800_000,
      encrypt: false,
      maxValueBytes: 1_048_576,
    });
    assert.deepEqual(config.cluster, {
      key: 'cluster-key',
      peers: [
        { host: '10.0.0.11', port: 42424 },
        { host: '10.0.0.12', port: 42424 },
      ],
      listen: { host: '0.0.0.0', port: 42424 },
      priority: 100,
      coordination: 'embedded',
      postgres: { url: 'postgres://db.example.com/corral' },
      vip: { address: '10.0.0.100/24', interface: 'eth0' },
      hooks: { onPrimary: './start.sh', onSecondary: './stop.sh' },
      sync: { files: [join(dir, 'certs'), join(dir, 'corral.yaml')] },
    });
  });

  it('is deeply frozen', () => {
    const frozen: unknown[] = [];
    const walk = (value: unknown): void => {
      if (typeof value !== 'object' || value === null) return;
      frozen.push(value);
      Object.values(value).forEach(walk);
    };
    walk(config);
    assert.ok(frozen.length > 50);
    for (const value of frozen) assert.ok(Object.isFrozen(value));
    assert.throws(() => {
      (config.backends[0]?.servers[0] as { weight: number }).weight = 0;
    }, TypeError);
  });

  it('omits optional keys that are not set', () => {
    const server = config.backends[0]?.servers[0];
    assert.ok(server);
    assert.deepEqual(Object.keys(server).sort(), ['address', 'backup', 'name', 'tls', 'tlsVerify', 'weight']);
  });
});

describe('parseConfig: defaults', () => {
  it('fills every default of a minimal config', () => {
    const config = parse(BASE);
    assert.equal(config.node.name, hostname());
    assert.equal(config.workers, 'auto');
    assert.equal(config.admin, undefined);
    assert.equal(config.sessions, undefined);
    assert.equal(config.cluster, undefined);
    assert.deepEqual(config.statusFiles, []);
    assert.deepEqual(config.frontends[0], {
      name: 'web',
      listen: { host: '127.0.0.1', port: 0 },
      mode: 'http',
      routes: [],
      backend: 'app',
      trustedProxies: [],
      acceptProxy: false,
      maxConn: 10_000,
      timeouts: { headers: 10_000, idle: 60_000 },
    } satisfies FrontendConfig);
    assert.deepEqual(config.backends[0], {
      name: 'app',
      balance: 'roundrobin',
      hashSourcePort: false,
      lblcExpire: 360_000,
      allBackups: false,
      forwardFor: false,
      retries: 3,
      maxConn: 0,
      timeouts: { connect: 5_000, server: 50_000, client: 50_000, queue: 5_000 },
      health: {
        type: 'none',
        method: 'GET',
        path: '/',
        expectStatus: [[200, 399]],
        interval: 2_000,
        timeout: 1_000,
        rise: 2,
        fall: 3,
        warmup: 0,
        slowStart: 0,
      },
      servers: [{ name: 'a1', address: { host: '127.0.0.1', port: 9001 }, weight: 1, backup: false, tls: false, tlsVerify: true }],
    } satisfies BackendConfig);
  });

  it('defaults a present health block to tcp checks', () => {
    const config = parse(BASE.replace('    servers:', '    health: { interval: 5s }\n    servers:'));
    assert.equal(config.backends[0]?.health.type, 'tcp');
    assert.equal(config.backends[0]?.health.interval, 5_000);
  });

  it('fills the sessions, cluster and sticky defaults', () => {
    const config = parse(
      `${BASE.replace('    servers:', '    sticky: { source: true }\n    servers:')}sessions: {}\ncluster: {}\n`,
    );
    assert.deepEqual(config.backends[0]?.sticky, { source: true, timeout: 1_800_000 });
    assert.deepEqual(config.sessions, {
      store: 'memory',
      replicas: 2,
      peers: [],
      redis: { url: 'redis://127.0.0.1:6379', prefix: 'corral:sess:' },
      ttl: 1_800_000,
      encrypt: false,
      maxValueBytes: 1_048_576,
    });
    assert.deepEqual(config.cluster, { peers: [], priority: 100, coordination: 'embedded' });
  });
});

describe('parseConfig: normalization', () => {
  const withHealth = (expectStatus: string): CorralConfig =>
    parse(BASE.replace('    servers:', `    health: { type: http, expectStatus: ${expectStatus} }\n    servers:`));

  it('reads expectStatus as a code, a list, a range or a class', () => {
    assert.deepEqual(withHealth('200').backends[0]?.health.expectStatus, [[200, 200]]);
    assert.deepEqual(withHealth('[200, 204]').backends[0]?.health.expectStatus, [
      [200, 200],
      [204, 204],
    ]);
    assert.deepEqual(withHealth('"200-399"').backends[0]?.health.expectStatus, [[200, 399]]);
    assert.deepEqual(withHealth('"2xx"').backends[0]?.health.expectStatus, [[200, 299]]);
    assert.deepEqual(withHealth('"2xx,3xx"').backends[0]?.health.expectStatus, [
      [200, 299],
      [300, 399],
    ]);
    assert.deepEqual(withHealth('[2xx, 404]').backends[0]?.health.expectStatus, [
      [200, 299],
      [404, 404],
    ]);
  });

  it('reads each hashOn kind', () => {
    const hashOn = (yaml: string) =>
      parse(BASE.replace('    servers:', `    balance: hash\n    hashOn: ${yaml}\n    servers:`)).backends[0]?.hashOn;
    assert.deepEqual(hashOn('{ header: X-User }'), { kind: 'header', name: 'X-User' });
    assert.deepEqual(hashOn('{ cookie: sid }'), { kind: 'cookie', name: 'sid' });
    assert.deepEqual(hashOn('{ path: true }'), { kind: 'path' });
    assert.deepEqual(hashOn('{ query: user }'), { kind: 'query', name: 'user' });
  });

  it('reads admin auth by token', () => {
    const config = parse(`${BASE}admin: { listen: "[::]:9010", auth: { token: abc } }\n`);
    assert.deepEqual(config.admin, { listen: { host: '::', port: 9010 }, auth: { token: 'abc' } });
  });

  it('reads *:PORT as every interface and lower-cases route hosts', () => {
    const config = parse(
      BASE.replace('127.0.0.1:0', '"*:8080"').replace(
        '    backend: app',
        '    backend: app\n    routes: [{ host: "*.Example.COM", backend: app }]',
      ),
    );
    assert.deepEqual(config.frontends[0]?.listen, { host: '0.0.0.0', port: 8080 });
    assert.equal(config.frontends[0]?.routes[0]?.host, '*.example.com');
  });

  it('normalizes trusted proxies and resolves extra certificates', () => {
    const config = parse(
      BASE.replace(
        '    backend: app',
        '    backend: app\n    trustedProxies: [10.1.2.3, "::1"]\n' +
          '    tls: { cert: cert.pem, key: key.pem, certs: [{ cert: cert.pem, key: key.pem }] }',
      ),
    );
    assert.deepEqual(config.frontends[0]?.trustedProxies, ['10.1.2.3/32', '::1/128']);
    assert.deepEqual(config.frontends[0]?.tls?.certs, [{ cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }]);
  });

  it('merges <<: *anchor mappings', () => {
    const text = BASE.replace(
      '      - { name: a1, address: 127.0.0.1:9001 }',
      '      - &server { name: a1, address: 127.0.0.1:9001, weight: 7, backup: true }\n' +
        '      - { <<: *server, name: a2, address: 127.0.0.1:9002 }',
    );
    const a2 = parse(text).backends[0]?.servers[1];
    assert.deepEqual([a2?.name, a2?.address.port, a2?.weight, a2?.backup], ['a2', 9002, 7, true]);
  });

  it('keeps absolute paths', () => {
    const config = parse(`${BASE}statusFiles: [/var/lib/corral/status.json, rel/status.json]\n`);
    assert.deepEqual(config.statusFiles, ['/var/lib/corral/status.json', join(dir, 'rel/status.json')]);
  });
});

describe('parseConfig: ${ENV} substitution', () => {
  it('substitutes in block and flow values, and reads numbers from strings', () => {
    const text = `${BASE}workers: \${W}\nnode: { name: "node-\${N}" }\nstatusFiles: ["\${DIR}/s.json"]\n`;
    const config = parse(text, { W: '4', N: '7', DIR: '/tmp' });
    assert.equal(config.workers, 4);
    assert.equal(config.node.name, 'node-7');
    assert.deepEqual(config.statusFiles, ['/tmp/s.json']);
  });

  it('keeps $${ as a literal ${', () => {
    const config = parse(`${BASE}cluster: { hooks: { onPrimary: "echo $\${HOME}" } }\n`, {});
    assert.equal(config.cluster?.hooks?.onPrimary, 'echo ${HOME}');
  });

  it('reports an unset variable at its scalar, once', () => {
    const text = `${BASE}admin:\n  listen: 0.0.0.0:9010\n  auth: { user: admin, password: \${PASSWORD} }\n`;
    const all = problems(text, {});
    assert.deepEqual(all, [`${positionOf(text, '${PASSWORD}')} admin.auth.password: environment variable PASSWORD is not set`]);
  });

  it('does not report a value whose substitution failed a second time', () => {
    const text = `${BASE}admin: { listen: "\${ADMIN_LISTEN}" }\n`;
    assert.deepEqual(problems(text, {}), [
      `${positionOf(text, '"${ADMIN_LISTEN}"')} admin.listen: environment variable ADMIN_LISTEN is not set`,
    ]);
  });
});

describe('parseConfig: problems and their positions', () => {
  it('reports YAML syntax errors with positions and nothing else', () => {
    const text = 'frontends:\n  - name: web\n    listen: [1, 2\nbogus: 1\n';
    const all = problems(text);
    assert.ok(all.length >= 1);
    assert.ok(all.every((p) => /^\d+:\d+ invalid YAML: /.test(p)), all.join('\n'));
    assert.ok(!all.some((p) => p.includes('bogus')));
  });

  it('reports a duplicate YAML key at the duplicate', () => {
    const text = `${BASE}workers: 2\nworkers: 3\n`;
    assert.deepEqual(problems(text), [`${positionOf(text, 'workers: 3')} invalid YAML: Map keys must be unique`]);
  });

  it('rejects a document that is not a mapping', () => {
    assert.deepEqual(problems('- a\n- b\n'), ['1:1 the top level: expected a mapping, got a list']);
  });

  it('accepts an empty file', () => {
    assert.deepEqual(parse('').frontends, []);
  });

  it('reports an unknown key at the key, with a suggestion', () => {
    const text = BASE.replace('address: 127.0.0.1:9001', 'address: 127.0.0.1:9001, wieght: 3');
    expectProblem(text, 'wieght', 'backends[0].servers[0].wieght: unknown key (did you mean "weight"?)');
    const top = `${BASE}frontend: []\n`;
    expectProblem(top, 'frontend: []', 'frontend: unknown key (did you mean "frontends"?)');
    const far = `${BASE}zzz: 1\n`;
    expectProblem(far, 'zzz', 'zzz: unknown key');
  });

  it('reports a missing required key at the map that lacks it', () => {
    const text = BASE.replace('    listen: 127.0.0.1:0\n', '');
    expectProblem(text, 'name: web', 'frontends[0]: missing required key "listen"');
  });

  it('reports values of the wrong type', () => {
    expectProblem(`${BASE}statusFiles: x.json\n`, 'x.json', 'statusFiles: expected a list, got "x.json"');
    expectProblem(`${BASE}admin: 5\n`, '5\n', 'admin: expected a mapping, got 5');
    expectProblem(`${BASE}admin:\n`, 'admin:', 'admin: expected a mapping, got nothing');
    expectProblem(
      BASE.replace('name: a1', 'name: 12'),
      '12,',
      'backends[0].servers[0].name: expected a string, got 12 (quote it to make it a string)',
    );
  });

  it('explains bad durations, addresses and enums', () => {
    const text = BASE.replace('    backend: app', '    backend: app\n    timeouts: { idle: 60 }\n    mode: htp');
    expectProblem(text, '60 }', /^frontends\[0\]\.timeouts\.idle: a duration needs a unit/);
    expectProblem(text, 'htp', 'frontends[0].mode: expected one of http, tcp, got "htp" (did you mean "http"?)');
    const address = BASE.replace('127.0.0.1:9001', '::1:9001');
    expectProblem(address, '::1:9001', /^backends\[0\]\.servers\[0\]\.address: IPv6 addresses go in brackets: \[::1\]:9001/);
  });

  it('reports duplicate frontend, backend and server names at the second one', () => {
    const text = `frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
  - { name: web, listen: 127.0.0.1:0, backend: app }
backends:
  - name: app
    servers:
      - { name: a1, address: 127.0.0.1:9001 }
      - { name: a1, address: 127.0.0.1:9002 }
  - name: app
    servers: [{ name: a1, address: 127.0.0.1:9003 }]
`;
    expectProblem(text, 'web', 'frontends[1].name: duplicate frontend name "web" (first defined at line 2)', 1);
    expectProblem(text, 'app', 'backends[1].name: duplicate backend name "app" (first defined at line 5)', 3);
    expectProblem(text, 'a1', 'backends[0].servers[1].name: duplicate server name "a1" (first defined at line 7)', 1);
    // The same server name in another backend is fine.
    assert.equal(problems(text).length, 3);
  });

  it('reports duplicate listen addresses, but not port 0', () => {
    const text = `frontends:
  - { name: a, listen: 0.0.0.0:8080, backend: app }
  - { name: b, listen: 127.0.0.1:8080, backend: app }
  - { name: c, listen: 127.0.0.1:0, backend: app }
  - { name: d, listen: 127.0.0.1:0, backend: app }
  - { name: e, listen: "[::1]:8080", backend: app }
backends: [{ name: app, servers: [{ name: s, address: 127.0.0.1:1 }] }]
admin: { listen: 127.0.0.1:9010 }
sessions: { listen: localhost:9010 }
`;
    expectProblem(text, '127.0.0.1:8080', 'frontends[1].listen: 127.0.0.1:8080 is already used by frontends[0].listen (line 2)');
    assert.deepEqual(problems(text).length, 1, 'localhost and 127.0.0.1 are not assumed equal; [::1] does not clash with 0.0.0.0');
    const same = `${text}cluster: { listen: 127.0.0.1:9010 }\n`;
    expectProblem(same, '127.0.0.1:9010', 'cluster.listen: 127.0.0.1:9010 is already used by admin.listen (line 8)', 1);
  });

  it('reports frontends that name a missing backend, in backend and in routes', () => {
    const text = BASE.replace('    backend: app', '    backend: ap\n    routes: [{ pathPrefix: /v1, backend: api }]');
    expectProblem(text, 'ap\n', 'frontends[0].backend: no backend named "ap" (did you mean "app"?)');
    expectProblem(text, 'api', 'frontends[0].routes[0].backend: no backend named "api" (did you mean "app"?)');
  });

  it('reports a frontend with neither backend nor routes', () => {
    const text = BASE.replace('    backend: app\n', '');
    expectProblem(text, 'name: web', 'frontends[0]: frontend "web" needs a backend, routes, or both');
    // Routes alone are enough.
    parse(BASE.replace('    backend: app', '    routes: [{ host: a.example.com, backend: app }]'));
  });

  it('accepts sendProxy where the architecture example puts it: on a backend used by http frontends only', () => {
    const text = EXAMPLE.replace('    forwardFor: true  ', '    sendProxy: v2\n    forwardFor: true  ').replace('    sendProxy: v2   ', '    retries: 1      ');
    assert.equal(parse(text).backends[0]?.sendProxy, 'v2');
  });

  it('requires a backend on a mode tcp frontend, and rejects routes and trustedProxies there', () => {
    const text = `frontends:
  - name: raw
    listen: 127.0.0.1:0
    mode: tcp
    routes: [{ pathPrefix: /v1, backend: app }]
    trustedProxies: [10.0.0.0/8]
backends:
  - name: app
    servers:
      - { name: a1, address: 127.0.0.1:9001 }
`;
    assert.deepEqual(problems(text), [
      `${positionOf(text, 'name: raw')} frontends[0]: frontend "raw" is mode tcp and needs a backend`,
      `${positionOf(text, 'routes')} frontends[0].routes: has no effect in mode tcp (there are no requests to route; every connection goes to backend)`,
      `${positionOf(text, 'trustedProxies')} frontends[0].trustedProxies: has no effect in mode tcp (there is no X-Forwarded-For; an outer balancer passes the client address with acceptProxy)`,
    ]);
    // Empty lists ask for nothing; with a backend the frontend is valid.
    parse(text.replace('    routes: [{ pathPrefix: /v1, backend: app }]\n    trustedProxies: [10.0.0.0/8]', '    backend: app\n    routes: []\n    trustedProxies: []'));
  });

  it('rejects HTTP-only keys and balance hash on a backend a tcp frontend uses, naming each key', () => {
    const text = `frontends:
  - { name: raw, listen: 127.0.0.1:0, mode: tcp, backend: app }
  - { name: raw2, listen: 127.0.0.1:0, mode: tcp, backend: app }
backends:
  - name: app
    balance: hash
    hashOn: { header: X-User }
    sticky: { cookie: SRV, source: true }
    forwardFor: true
    serverHeader: X-Server
    servers:
      - { name: a1, address: 127.0.0.1:9001 }
`;
    const why = 'backend "app" is used by tcp frontends "raw", "raw2"';
    assert.deepEqual(problems(text), [
      `${positionOf(text, 'hash\n')} backends[0].balance: hash needs HTTP requests to hash, but ${why} (use source to hash the client address)`,
      `${positionOf(text, 'hashOn')} backends[0].hashOn: applies to HTTP mode only, but ${why}`,
      `${positionOf(text, 'cookie')} backends[0].sticky.cookie: applies to HTTP mode only, but ${why} (use sticky.source)`,
      `${positionOf(text, 'forwardFor')} backends[0].forwardFor: applies to HTTP mode only, but ${why} (use sendProxy to pass the client address)`,
      `${positionOf(text, 'serverHeader')} backends[0].serverHeader: applies to HTTP mode only, but ${why}`,
    ]);
    // balance hash alone is one problem, not also "needs hashOn".
    const bare = text.replace(/ {4}hashOn.*\n {4}sticky.*\n {4}forwardFor.*\n {4}serverHeader.*\n/, '');
    assert.deepEqual(problems(bare), [
      `${positionOf(bare, 'hash\n')} backends[0].balance: hash needs HTTP requests to hash, but ${why} (use source to hash the client address)`,
    ]);
    // forwardFor: false is the default, source stickiness and sendProxy are what TCP mode offers.
    parse(bare.replace('    balance: hash\n', '    balance: source\n    forwardFor: false\n    sticky: { source: true }\n    sendProxy: v1\n'));
  });

  it('applies the TCP rules to a backend shared by tcp and http frontends, and only to the first of duplicates', () => {
    const text = `frontends:
  - { name: web, listen: 127.0.0.1:0, backend: app }
  - { name: raw, listen: 127.0.0.1:0, mode: tcp, backend: app }
backends:
  - name: app
    serverHeader: X-Server
    sendProxy: v2
    servers:
      - { name: a1, address: 127.0.0.1:9001 }
  - name: app
    forwardFor: true
    servers:
      - { name: a1, address: 127.0.0.1:9001 }
`;
    assert.deepEqual(problems(text), [
      `${positionOf(text, 'serverHeader')} backends[0].serverHeader: applies to HTTP mode only, but backend "app" is used by tcp frontend "raw"`,
      `${positionOf(text, 'app', 3)} backends[1].name: duplicate backend name "app" (first defined at line 5)`,
    ]);
  });

  it('counts route backends for http frontends only, and leaves unused backends alone', () => {
    const text = `frontends:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pathPrefix: /x, backend: x }] }
  - { name: raw, listen: 127.0.0.1:0, mode: tcp, backend: app, routes: [{ pathPrefix: /y, backend: y }] }
backends:
  - { name: app, servers: [{ name: a1, address: 127.0.0.1:9001 }] }
  - { name: x, sendProxy: v1, servers: [{ name: a1, address: 127.0.0.1:9001 }] }
  - { name: y, forwardFor: true, sendProxy: v1, servers: [{ name: a1, address: 127.0.0.1:9001 }] }
  - { name: spare, forwardFor: true, sendProxy: v1, balance: hash, hashOn: { path: true }, servers: [{ name: a1, address: 127.0.0.1:9001 }] }
`;
    assert.deepEqual(problems(text), [
      `${positionOf(text, 'routes', 1)} frontends[1].routes: has no effect in mode tcp (there are no requests to route; every connection goes to backend)`,
    ]);
  });

  it('reports track references to missing backends or servers, to itself, and loops', () => {
    const text = `${BASE}      - { name: a2, address: 127.0.0.1:9002, track: app/a9 }
      - { name: a3, address: 127.0.0.1:9003, track: web/a1 }
      - { name: a4, address: 127.0.0.1:9004, track: app/a4 }
      - { name: a5, address: 127.0.0.1:9005, track: app/a6 }
      - { name: a6, address: 127.0.0.1:9006, track: app/a5 }
      - { name: a7, address: 127.0.0.1:9007, track: a1 }
`;
    expectProblem(text, 'app/a9', 'backends[0].servers[1].track: backend "app" has no server named "a9" (did you mean "a1"?)');
    expectProblem(text, 'web/a1', 'backends[0].servers[2].track: no backend named "web"');
    expectProblem(text, 'app/a4', 'backends[0].servers[3].track: a server cannot track itself');
    expectProblem(text, 'app/a6', 'backends[0].servers[4].track: track loop: app/a5 → app/a6 → app/a5');
    expectProblem(text, 'a1 }', 'backends[0].servers[6].track: expected backend/server such as app/app1, got "a1"', 1);
    assert.equal(problems(text).length, 5, 'a loop is reported once');
  });

  it('reports balance hash without hashOn, and hashOn without exactly one member', () => {
    const none = BASE.replace('    servers:', '    balance: hash\n    servers:');
    expectProblem(none, 'hash', 'backends[0].balance: hash needs hashOn (one of header, cookie, path, query)');
    const two = BASE.replace('    servers:', '    balance: hash\n    hashOn: { header: X-A, query: q }\n    servers:');
    expectProblem(two, '{ header', 'backends[0].hashOn: set exactly one of header, cookie, path: true, query (found header, query)');
    const zero = BASE.replace('    servers:', '    balance: hash\n    hashOn: { path: false }\n    servers:');
    expectProblem(zero, '{ path', 'backends[0].hashOn: set exactly one of header, cookie, path: true, query (none is set)');
  });

  it('reports sticky with neither cookie nor source', () => {
    const text = BASE.replace('    servers:', '    sticky: { timeout: 5m }\n    servers:');
    expectProblem(text, '{ timeout', 'backends[0].sticky: needs cookie or source: true');
    const off = BASE.replace('    servers:', '    sticky: { source: false }\n    servers:');
    expectProblem(off, '{ source', 'backends[0].sticky: needs cookie or source: true');
  });

  it('reports weights outside 0..256 and rise or fall below 1', () => {
    const weight = BASE.replace('127.0.0.1:9001', '127.0.0.1:9001, weight: 257');
    expectProblem(weight, '257', 'backends[0].servers[0].weight: expected a whole number from 0 to 256, got 257');
    const negative = BASE.replace('127.0.0.1:9001', '127.0.0.1:9001, weight: -1');
    expectProblem(negative, '-1', 'backends[0].servers[0].weight: expected a whole number from 0 to 256, got -1');
    parse(BASE.replace('127.0.0.1:9001', '127.0.0.1:9001, weight: 0'));
    parse(BASE.replace('127.0.0.1:9001', '127.0.0.1:9001, weight: 256'));
    const checks = BASE.replace('    servers:', '    health: { rise: 0, fall: 0.5 }\n    servers:');
    expectProblem(checks, '0,', 'backends[0].health.rise: expected a whole number ≥ 1, got 0');
    expectProblem(checks, '0.5', 'backends[0].health.fall: expected a whole number ≥ 1, got 0.5');
  });

  it('reports a backend with no servers', () => {
    const missing = BASE.replace(/ {4}servers:\n.*\n$/, '');
    expectProblem(missing, 'name: app', 'backends[0]: backend "app" has no servers');
    const empty = BASE.replace(/ {4}servers:\n.*\n$/, '    servers: []\n');
    expectProblem(empty, '[]', 'backends[0].servers: backend "app" has no servers');
  });

  it('requires admin.auth unless admin.listen is a loopback address', () => {
    const open = `${BASE}admin:\n  listen: 0.0.0.0:9010\n`;
    expectProblem(open, 'listen: 0.0.0.0:9010', 'admin.auth is required unless admin.listen is a loopback address');
    parse(`${BASE}admin: { listen: 127.0.0.1:9010 }\n`);
    parse(`${BASE}admin: { listen: "[::1]:9010" }\n`);
    parse(`${BASE}admin: { listen: localhost:9010 }\n`);
    parse(`${BASE}admin: { listen: 0.0.0.0:9010, auth: { user: a, password: b } }\n`);
    const half = `${BASE}admin: { listen: 0.0.0.0:9010, auth: { user: a } }\n`;
    expectProblem(half, '{ user', 'admin.auth: needs user and password, or token');
    const both = `${BASE}admin: { listen: 0.0.0.0:9010, auth: { user: a, password: b, token: c } }\n`;
    expectProblem(both, '{ user', 'admin.auth: set either token, or user and password, not both');
  });

  it('requires listen and peers for the peer session store', () => {
    const text = `${BASE}sessions:\n  store: peer\n`;
    expectProblem(text, 'store: peer', 'sessions.listen is required when sessions.store is peer');
    expectProblem(text, 'store: peer', /^sessions\.peers is required when sessions\.store is peer/);
    const emptyPeers = `${BASE}sessions: { store: peer, listen: 0.0.0.0:42425, peers: [] }\n`;
    expectProblem(emptyPeers, '[]', /^sessions\.peers is required/);
    parse(`${BASE}sessions: { store: peer, listen: 0.0.0.0:42425, peers: [10.0.0.1:42425] }\n`);
  });

  it('requires a redis:// or rediss:// URL, without echoing it', () => {
    const text = `${BASE}sessions: { store: redis, redis: { url: "http://user:hunter2@cache:6379" } }\n`;
    const [problem] = problems(text);
    assert.equal(problem, `${positionOf(text, '"http')} sessions.redis.url: expected a redis:// or rediss:// URL, got a http:// URL`);
    parse(`${BASE}sessions: { store: redis, redis: { url: "rediss://cache:6380/1" } }\n`);
  });

  it('requires TLS files to exist, relative to the config file', () => {
    const text = BASE.replace('    backend: app', '    backend: app\n    tls: { cert: missing.pem, key: key.pem }');
    expectProblem(text, 'missing.pem', `frontends[0].tls.cert: file not found: ${join(dir, 'missing.pem')}`);
    const directory = BASE.replace('    backend: app', `    backend: app\n    tls: { cert: cert.pem, key: "${dir}" }`);
    expectProblem(directory, `"${dir}"`, `frontends[0].tls.key: not a regular file: ${dir}`);
  });

  it('reports health keys that do not apply to the check type', () => {
    const text = BASE.replace('    servers:', '    health:\n      path: /health\n      send: PING\n    servers:');
    expectProblem(text, 'path', 'backends[0].health.path: applies to type http only (type is tcp)');
    expectProblem(text, 'send', 'backends[0].health.send: applies to type send-expect only (type is tcp)');
    const sendExpect = BASE.replace('    servers:', '    health:\n      type: send-expect\n      send: PING\n    servers:');
    expectProblem(sendExpect, 'type: send-expect', 'backends[0].health: type send-expect needs expect (what the server must answer)');
    const agent = BASE.replace('    servers:', '    health: { agent: { interval: 5s } }\n    servers:');
    expectProblem(agent, '{ interval', 'backends[0].health.agent: needs port or command');
  });

  it('checks the cluster section', () => {
    const text = `${BASE}cluster:\n  peers: [10.0.0.1:42424]\n  coordination: postgres\n`;
    expectProblem(text, 'peers', 'cluster.postgres.url is required when cluster.coordination is postgres');
    expectProblem(text, 'peers', 'cluster.key is required when cluster.peers is set');
    const url = `${BASE}cluster: { key: k, coordination: postgres, postgres: { url: "mysql://db/x" } }\n`;
    expectProblem(url, '"mysql', 'cluster.postgres.url: expected a postgres:// or postgresql:// URL, got a mysql:// URL');
  });

  it('reports every problem of a file, in reading order', () => {
    const text = `workers: none
frontends:
  - name: web
    listen: 0.0.0.0:80800
    backend: nope
    tls: { cert: cert.pem, key: nokey.pem }
backends:
  - name: app
    balance: hash
    timeouts: { connect: 5 }
    servers:
      - { name: a1, address: 127.0.0.1:9001, weight: 1000, colour: red }
      - { name: a1, address: 127.0.0.1:9002, track: app/zz }
admin:
  listen: 0.0.0.0:9010
sessions:
  store: peer
  ttl: \${SESSION_TTL}
`;
    assert.deepEqual(problems(text, {}), [
      `1:10 workers: expected auto or a number of processes from 1 to 1024, got "none"`,
      `4:13 frontends[0].listen: the port must be a number from 0 to 65535, got "0.0.0.0:80800"`,
      `5:14 frontends[0].backend: no backend named "nope"`,
      `6:33 frontends[0].tls.key: file not found: ${join(dir, 'nokey.pem')}`,
      `9:14 backends[0].balance: hash needs hashOn (one of header, cookie, path, query)`,
      `10:26 backends[0].timeouts.connect: a duration needs a unit: expected a duration such as 500ms, 2s, 1m30s or 1h (units d, h, m, s, ms), got "5"`,
      `12:54 backends[0].servers[0].weight: expected a whole number from 0 to 256, got 1000`,
      `12:60 backends[0].servers[0].colour: unknown key`,
      `13:17 backends[0].servers[1].name: duplicate server name "a1" (first defined at line 12)`,
      `13:53 backends[0].servers[1].track: backend "app" has no server named "zz"`,
      `15:3 admin.auth is required unless admin.listen is a loopback address`,
      `17:3 sessions.listen is required when sessions.store is peer`,
      `17:3 sessions.peers is required when sessions.store is peer (every state-service address)`,
      `18:8 sessions.ttl: environment variable SESSION_TTL is not set`,
    ]);
  });
});

describe('loadConfigFile', () => {
  it('reads and parses a file', async () => {
    const path = join(dir, 'load.yaml');
    writeFileSync(path, BASE);
    const result = await loadConfigFile(path, {});
    assert.equal(result.ok, true);
  });

  it('reports an unreadable file as one problem at 1:1', async () => {
    const path = join(dir, 'absent.yaml');
    const result = await loadConfigFile(path, {});
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.problems.length, 1);
    const [problem] = result.problems;
    assert.equal(problem?.file, path);
    assert.equal(problem?.line, 1);
    assert.equal(problem?.col, 1);
    assert.match(problem?.message ?? '', /^cannot read config file: ENOENT/);
  });

  it('reports problems under the file name it was given', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'workers: 0\n');
    const result = await loadConfigFile(path, {});
    assert.ok(!result.ok);
    assert.deepEqual(result.problems.map(formatProblem), [
      `${path}:1:10 workers: expected auto or a number of processes from 1 to 1024, got 0`,
    ]);
  });
});

describe('formatProblem', () => {
  it('writes FILE:LINE:COL message', () => {
    assert.equal(formatProblem({ file: 'corral.yaml', line: 3, col: 11, message: 'boom' }), 'corral.yaml:3:11 boom');
  });
});
