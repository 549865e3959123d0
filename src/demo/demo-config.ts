/** The embedded configuration `corral demo` writes out and runs. */
export interface DemoPorts {
  readonly balancer: number;
  readonly apps: readonly number[];
}

export function demoConfigYaml(ports: DemoPorts): string {
  const servers = ports.apps
    .map((p, i) => `      - { name: app${i + 1}, address: 127.0.0.1:${p}, weight: ${i === 2 ? 2 : 1} }`)
    .join('\n');
  return `# corral demo: three sample app servers behind one balancer.
# Written by \`corral demo\` for you to read; \`corral start -c corral-demo.yaml\` runs the same farm
# against app servers you start yourself. Every key is described in docs/config.md.
node: { name: demo }
frontends:
  - name: web
    listen: 127.0.0.1:${ports.balancer}
    mode: http
    backend: app
    timeouts: { headers: 10s, idle: 60s }
backends:
  - name: app
    balance: roundrobin          # smooth weighted round robin: app3 gets twice the share
    forwardFor: true             # X-Forwarded-For/-Proto/-Host and Forwarded
    serverHeader: X-Server       # every response names the server that answered
    sticky: { cookie: SERVERID } # send the cookie back and you stay on one server
    retries: 3                   # a refused or reset connection is retried on another server
    timeouts: { connect: 2s, server: 30s, client: 30s, queue: 5s }
    health:                      # HTTP checks: down after 2 failures, back after 2 passes and 3 s of warm-up
      type: http
      path: /health
      interval: 1s
      timeout: 500ms
      rise: 2
      fall: 2
      warmup: 3s
      slowStart: 5s
    servers:
${servers}
`;
}
