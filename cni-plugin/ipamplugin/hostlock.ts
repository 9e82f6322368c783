// A per-node mutex between plugin processes on one host, like Calico's ipam.lock flock but with
// nothing to clean up: the holder listens on an abstract unix socket, which the kernel frees the
// moment the holder exits, even on kill -9. Waiters connect to the holder and sleep until that
// connection closes, so nobody polls. Correctness never depends on the lock (IPAM writes are CAS);
// it only turns a thundering herd on one block into a queue.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface HostLock {
  release(): Promise<void>;
}

function tryListen(path: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(null) : reject(e)));
    srv.listen({ path }, () => resolve(srv));
  });
}

/** Resolves when the current holder lets go (or at once if there is none). */
function waitForHolder(path: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve();
    };
    const timer = setTimeout(done, ms);
    sock.on('error', done);
    sock.on('close', done);
  });
}

/** Waits for the lock up to `timeoutMs`; resolves null on timeout (callers go on without it). */
export async function acquireHostLock(name: string, timeoutMs: number): Promise<HostLock | null> {
  const path = `\0${name}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const srv = await tryListen(path);
    if (srv) {
      const waiters = new Set<Socket>();
      srv.on('connection', (s) => {
        waiters.add(s);
        s.on('close', () => waiters.delete(s));
        s.on('error', () => undefined);
      });
      srv.unref();
      return {
        release: () =>
          new Promise<void>((r) => {
            srv.close(() => r());
            for (const s of waiters) s.destroy();
          }),
      };
    }
    const left = deadline - Date.now();
    if (left <= 0) return null;
    await waitForHolder(path, left);
  }
}
