// A per-node mutex between plugin processes on one host, like Calico's ipam.lock flock but with
// nothing to clean up: it is an abstract unix socket, which the kernel frees the moment its
// holder exits, even on kill -9. Correctness never depends on it (IPAM writes are CAS); it only
// turns a thundering herd on one block into a queue.
import { createServer, type Server } from 'node:net';

export interface HostLock {
  release(): Promise<void>;
}

function tryListen(name: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(null) : reject(e)));
    srv.listen({ path: `\0${name}` }, () => resolve(srv));
  });
}

/** Waits for the lock up to `timeoutMs`; resolves null on timeout (callers go on without it). */
export async function acquireHostLock(name: string, timeoutMs: number): Promise<HostLock | null> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const srv = await tryListen(name);
    if (srv) {
      srv.unref();
      return { release: () => new Promise<void>((r) => srv.close(() => r())) };
    }
    if (Date.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, 1 + Math.random() * Math.min(20, 2 + attempt)));
  }
}
