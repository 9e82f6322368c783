// The pod server of `pod add --serve`: started inside the pod's namespace, it answers every
// listed port until killed. TCP: writes one line (the pod's name) and closes. UDP: echoes each
// datagram back. Prints "ready" once every port listens.
//   node podserver.js NAME PORT/PROTO...
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [name = 'pod', ...specs] = process.argv.slice(2);

async function main(): Promise<void> {
  await Promise.all(
    specs.map(
      (spec) =>
        new Promise<void>((resolve, reject) => {
          const [portText, proto = 'tcp'] = spec.split('/');
          const port = Number(portText);
          if (proto === 'udp') {
            const s = createSocket('udp4');
            s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
            s.once('error', reject);
            s.bind(port, '0.0.0.0', () => resolve());
          } else {
            const srv = createServer((c) => {
              c.on('error', () => undefined);
              c.end(`${name}\n`);
            });
            srv.once('error', reject);
            srv.listen(port, '0.0.0.0', () => resolve());
          }
        }),
    ),
  );
  process.stdout.write(`ready ${specs.join(',')}\n`);
}

process.on('SIGTERM', () => process.exit(0));
main().catch((e: Error) => {
  process.stderr.write(`podserver: ${e.message}\n`);
  process.exit(1);
});
