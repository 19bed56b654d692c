/**
 * A scripted iiod for tests: answers the handshake (VERSION, ZPRINT, PRINT, TIMEOUT)
 * like libiio 0.24's iiod, and hands every other command line to the test's script,
 * which writes whatever reply it wants (malformed ones included).
 */
import { createServer, type Server, type Socket } from 'node:net';

export const FAKE_XML =
  '<?xml version="1.0" encoding="utf-8"?><context name="xml" version-major="0" version-minor="24" version-git="v0.24" description="scripted">' +
  '<device id="iio:device0" name="adc"><channel id="voltage0" type="input"><scan-element index="0" format="le:s16/16&gt;&gt;0" /><attribute name="raw" filename="in_voltage0_raw" /></channel>' +
  '<channel id="voltage1" type="input"><scan-element index="1" format="le:s16/16&gt;&gt;0" /><attribute name="raw" filename="in_voltage1_raw" /></channel>' +
  '<channel id="voltage2" type="input"><scan-element index="2" format="le:s16/16&gt;&gt;0" /></channel>' +
  '<attribute name="sampling_frequency" /><debug-attribute name="direct_reg_access" /></device>' +
  '<device id="trigger0" name="trig0"></device></context>';

export type Script = (line: string, socket: Socket, conn: ScriptedConnection) => void;

export interface ScriptedConnection {
  /** Lines received on this connection so far. */
  readonly lines: string[];
  /** Bytes after a WRITE/WRITEBUF command line are collected here when `expect` is set. */
  expect(n: number, then: (data: Buffer) => void): void;
}

export interface ScriptedServer {
  readonly port: number;
  readonly uri: string;
  script: Script;
  readonly connections: number;
  close(): Promise<void>;
}

/** Starts a scripted server on an ephemeral loopback port. */
export async function startScriptedServer(script: Script, xml = FAKE_XML): Promise<ScriptedServer> {
  let count = 0;
  const sockets = new Set<Socket>();
  const state: { script: Script } = { script };
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let want: { n: number; then: (d: Buffer) => void } | undefined;
    const conn: ScriptedConnection = {
      lines: [],
      expect(n, then) {
        want = { n, then };
      },
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (want) {
          if (buf.length < want.n) return;
          const w = want;
          want = undefined;
          const data = buf.subarray(0, w.n);
          buf = buf.subarray(w.n);
          w.then(data);
          continue;
        }
        const nl = buf.indexOf(10);
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        if (!line) continue;
        conn.lines.push(line);
        if (socket.destroyed) return;
        if (line === 'VERSION') socket.write('0.24.v0.24  \n');
        else if (line === 'ZPRINT') socket.write('-22\n');
        else if (line === 'PRINT') socket.write(`${Buffer.byteLength(xml)}\n${xml}\n`);
        else if (line.startsWith('TIMEOUT ')) socket.write('0\n');
        else if (line === 'EXIT') socket.end();
        else state.script(line, socket, conn);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    port,
    uri: `ip:127.0.0.1:${port}`,
    get script() {
      return state.script;
    },
    set script(s: Script) {
      state.script = s;
    },
    get connections() {
      return count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
