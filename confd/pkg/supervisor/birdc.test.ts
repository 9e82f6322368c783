// The control-socket client against a stand-in server speaking BIRD's line protocol (the real
// daemon is exercised in bird-supervisor.test.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BirdControlConnection, BirdcError, birdAnswers, birdCommand, isFinalReplyLine, replyFromLines } from './birdc.js';

const SHOW_PROTOCOLS = [
  '2002-Name       Proto      Table      State  Since         Info',
  '1002-device1    Device     ---        up     22:52:32.766  ',
  ' Mesh_192_0_2_12 BGP        ---        up     22:52:34.493  Established   ',
  '0000 ',
];

describe('reply parsing', () => {
  it('knows the final line', () => {
    assert.equal(isFinalReplyLine('0000 '), true);
    assert.equal(isFinalReplyLine('0003 Reconfigured'), true);
    assert.equal(isFinalReplyLine('8002 /x/bird.cfg:5:1 syntax error'), true);
    assert.equal(isFinalReplyLine('0002-Reading configuration from /x'), false);
    assert.equal(isFinalReplyLine(' s1         Static     master4    up'), false);
    assert.equal(isFinalReplyLine('+some async message'), false);
  });
  it('keeps the raw reply and the text birdc would print', () => {
    const r = replyFromLines(['0002-Reading configuration from /x/bird.cfg', '0003 Reconfigured']);
    assert.deepEqual(r, {
      code: '0003',
      ok: true,
      raw: '0002-Reading configuration from /x/bird.cfg\n0003 Reconfigured\n',
      text: 'Reading configuration from /x/bird.cfg\nReconfigured\n',
    });
    const e = replyFromLines(['0002-Reading configuration from /x/bird.cfg', '8002 /x/bird.cfg:5:1 syntax error, unexpected CF_SYM_UNDEFINED']);
    assert.equal(e.ok, false);
    assert.equal(e.code, '8002');
    assert.equal(replyFromLines(['9001 syntax error, unexpected CF_SYM_UNDEFINED']).ok, false);
    const t = replyFromLines(SHOW_PROTOCOLS);
    assert.equal(t.code, '0000');
    assert.equal(t.text.split('\n')[2], 'Mesh_192_0_2_12 BGP        ---        up     22:52:34.493  Established   ');
  });
});

describe('BirdControlConnection against a stand-in BIRD', () => {
  let dir: string;
  let server: Server;
  let sock: string;
  /** What the stand-in does with each command line. */
  let behaviour: (cmd: string, c: Socket) => void;
  const conns = new Set<Socket>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-birdc-'));
    sock = join(dir, 'bird.ctl');
    server = createServer((c) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      c.on('error', () => {});
      c.write('0001 BIRD 2.0.12 ready.\n');
      let buf = '';
      c.on('data', (d) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const cmd = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          behaviour(cmd, c);
        }
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
  });
  after(async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the greeting, sends commands one after another, returns whole replies', async () => {
    behaviour = (cmd, c) => {
      if (cmd === 'show protocols') {
        // In pieces, split mid-line, to exercise the line assembly.
        const all = SHOW_PROTOCOLS.map((l) => l + '\n').join('');
        c.write(all.slice(0, 30));
        setTimeout(() => c.write(all.slice(30)), 20);
      } else if (cmd === 'configure') c.write('0002-Reading configuration from /x/bird.cfg\n0003 Reconfigured\n');
      else c.write('9001 syntax error, unexpected CF_SYM_UNDEFINED\n');
    };
    const conn = await BirdControlConnection.open(sock);
    try {
      assert.equal(conn.banner, 'BIRD 2.0.12 ready.');
      const [a, b, x] = await Promise.all([conn.request('show protocols'), conn.request('configure'), conn.request('frobnicate')]);
      assert.equal(a.raw, SHOW_PROTOCOLS.map((l) => l + '\n').join(''));
      assert.equal(b.code, '0003');
      assert.equal(x.ok, false);
      assert.equal(x.text, 'syntax error, unexpected CF_SYM_UNDEFINED\n');
    } finally {
      conn.close();
    }
    assert.equal((await birdCommand(sock, 'configure')).text, 'Reading configuration from /x/bird.cfg\nReconfigured\n');
    assert.equal(await birdAnswers(sock), true);
  });

  it('times out per line and names the socket', async () => {
    behaviour = (_cmd, c) => c.write('2002-Name Proto Table State Since Info\n'); // and then nothing
    await assert.rejects(birdCommand(sock, 'show protocols', { timeoutMs: 300 }), (e: unknown) => {
      assert.ok(e instanceof BirdcError);
      assert.equal(e.socketPath, sock);
      assert.equal(e.errno, 'ETIMEDOUT');
      assert.match(e.message, new RegExp(`${sock.replace(/[.]/g, '\\.')} sent no line within 300 ms \\(waiting for the reply to "show protocols"\\) after 1 line`));
      return true;
    });
  });

  it('reports a connection closed in the middle of a reply', async () => {
    behaviour = (_cmd, c) => c.end('2002-Name Proto Table State Since Info\n');
    await assert.rejects(birdCommand(sock, 'show protocols'), /BIRD closed its control socket .*bird\.ctl after 1 line\(s\) of the reply to "show protocols"/);
  });

  it('refuses a command of more than one line', async () => {
    behaviour = () => {};
    await assert.rejects(birdCommand(sock, 'show protocols\nconfigure'), /a BIRD command is one line/);
  });

  it('names the socket when nothing listens there', async () => {
    const missing = join(dir, 'nothing.ctl');
    await assert.rejects(birdCommand(missing, 'show protocols'), (e: unknown) => {
      assert.ok(e instanceof BirdcError);
      assert.equal(e.errno, 'ENOENT');
      assert.match(e.message, new RegExp(`cannot connect to BIRD's control socket ${missing.replace(/[.]/g, '\\.')}: `));
      return true;
    });
    assert.equal(await birdAnswers(missing), false);
  });

  it('refuses a server that does not greet like BIRD', async () => {
    const other = join(dir, 'other.ctl');
    const s = createServer((c) => c.end('HTTP/1.1 400 Bad Request\n'));
    await new Promise<void>((r) => s.listen(other, r));
    try {
      await assert.rejects(birdCommand(other, 'show protocols'), /did not greet as BIRD does/);
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
