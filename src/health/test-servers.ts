/**
 * Misbehaving servers for the health tests: real sockets on 127.0.0.1,
 * port 0. Not part of the public API.
 */
import net from 'node:net';
import { once } from 'node:events';

export type Behaviour = (socket: net.Socket) => void;

/** A listener that can die and come back on the same port. */
export class TestServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(public behaviour: Behaviour) {}

  static async start(behaviour: Behaviour): Promise<TestServer> {
    const s = new TestServer(behaviour);
    await s.up();
    return s;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listens (again, on the same port once one was assigned). */
  async up(): Promise<void> {
    if (this.server !== undefined) return;
    const server = net.createServer((socket) => {
      this.accepted++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      this.behaviour(socket);
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops every connection: further connects are refused. */
  async down(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.down();
  }
}

/** Reads a request head, then runs `then`. */
function afterHead(then: (socket: net.Socket) => void): Behaviour {
  return (socket) => {
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (seen.includes('\r\n\r\n') || seen.includes('\n\n')) {
        socket.off('data', onData);
        then(socket);
      }
    };
    socket.on('data', onData);
  };
}

export const behaviours = {
  /** A well-formed response. */
  http(status = 200, body = 'ok', headers: Record<string, string> = {}): Behaviour {
    return afterHead((socket) => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(`HTTP/1.1 ${status} X\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
    });
  },
  /** Accepts and never answers. */
  hang(): Behaviour {
    return () => {};
  },
  /** Answers bytes that are not HTTP. */
  garbage(text = 'SSH-2.0-OpenSSH_9.6\r\n'): Behaviour {
    return afterHead((socket) => socket.end(text));
  },
  /** A 200 with a body of `size` bytes, written as fast as the peer takes it. */
  bigBody(size = 10 * 1024 * 1024, chunked = false): Behaviour {
    return afterHead((socket) => {
      const block = Buffer.alloc(64 * 1024, 'x');
      socket.write(
        chunked
          ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'
          : `HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`,
      );
      let left = size;
      const pump = (): void => {
        while (left > 0 && !socket.destroyed) {
          const n = Math.min(left, block.length);
          left -= n;
          const piece = chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), block.subarray(0, n), Buffer.from('\r\n')]) : block.subarray(0, n);
          if (!socket.write(piece)) {
            socket.once('drain', pump);
            return;
          }
        }
        if (!socket.destroyed) socket.end(chunked ? '0\r\n\r\n' : '');
      };
      pump();
    });
  },
  /** A head cut in the middle, then FIN. */
  closeMidHead(): Behaviour {
    return afterHead((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-le'));
  },
  /** A head cut in the middle, then RST (the request is left unread, so the kernel resets). */
  resetMidHead(): Behaviour {
    return (socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-le', () => socket.resetAndDestroy());
    };
  },
  /** A complete head promising more body than is sent. */
  closeMidBody(): Behaviour {
    return afterHead((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial'));
  },
  /** Closes as soon as it accepts. */
  closeAtOnce(): Behaviour {
    return (socket) => socket.end();
  },
  /** Writes a banner/reply and closes (send-expect, agents). */
  reply(text: string, waitForInput = false): Behaviour {
    return (socket) => {
      if (!waitForInput) {
        socket.end(text);
        return;
      }
      socket.once('data', () => socket.end(text));
    };
  },
};

/** Resolves when `predicate` becomes true, polling each event-loop turn; rejects after `ms`. */
export async function until(predicate: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A port where connects hang (SYNs dropped): a child process listens with a
 * backlog of 1 and never accepts; filler connections fill the accept queue.
 * Linux drops SYNs to a full queue, so a further connect gets no answer.
 */
export async function blackHole(): Promise<{ port: number; close(): void }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    process.execPath,
    ['-e', "require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},function(){console.log(this.address().port);Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)})"],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const [data] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(String(data).trim());
  const fillers: net.Socket[] = [];
  let connected = 0;
  await new Promise<void>((resolve) => {
    for (let i = 0; i < 8; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.once('connect', () => {
        if (++connected === 2) resolve();
      });
      fillers.push(s);
    }
  });
  return {
    port,
    close(): void {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}
