/**
 * `serial:` URIs, parsed as libiio's serial.c (serial_parse_params) does:
 * `serial:PORT[,BAUD[,BITS[PARITY[STOP[FLOW]]]]]`, e.g. `serial:/dev/ttyUSB0,115200,8n1`,
 * defaults 115200 baud, 8 data bits, no parity, 1 stop bit, no flow control. Commas may
 * also separate the fields after the baud rate (`115200,8,n,1`), as libiio accepts.
 */
import { IioError } from '../../errors';

export type Parity = 'none' | 'odd' | 'even' | 'mark' | 'space';
export type FlowControl = 'none' | 'xonxoff' | 'rtscts' | 'dtrdsr';

export interface SerialParams {
  readonly port: string;
  readonly baudRate: number;
  readonly dataBits: number;
  readonly parity: Parity;
  readonly stopBits: number;
  readonly flow: FlowControl;
}

const PARITY: Record<string, Parity> = {
  n: 'none',
  o: 'odd',
  e: 'even',
  m: 'mark',
  s: 'space',
};
const FLOW: Record<string, FlowControl> = { n: 'none', x: 'xonxoff', r: 'rtscts', d: 'dtrdsr' };

function bad(uri: string, why: string): IioError {
  return new IioError(
    'EINVAL',
    `malformed serial: URI "${uri}": ${why} (use serial:PORT[,BAUD[,BITS PARITY STOP[FLOW]]], e.g. serial:/dev/ttyUSB0,115200,8n1; parity n/o/e/m/s, stop 1 or 2, flow x (XON/XOFF), r (RTS/CTS), d (DTR/DSR))`,
  );
}

/** Parses what follows `serial:`. */
export function parseSerialUri(rest: string, uri = `serial:${rest}`): SerialParams {
  const comma = rest.indexOf(',');
  const port = (comma < 0 ? rest : rest.slice(0, comma)).trim();
  if (!port) throw bad(uri, 'the port is empty');
  const params: SerialParams = {
    port,
    baudRate: 115200,
    dataBits: 8,
    parity: 'none',
    stopBits: 1,
    flow: 'none',
  };
  if (comma < 0) return params;
  const text = rest.slice(comma + 1);
  if (!text) return params;
  let i = 0;
  const number = (what: string): number => {
    const m = /^[0-9]+/.exec(text.slice(i));
    if (!m) throw bad(uri, `expected the ${what} at "${text.slice(i)}"`);
    i += m[0].length;
    return Number(m[0]);
  };
  const comma0 = (): void => {
    if (text[i] === ',') i++;
  };
  const baudRate = number('baud rate');
  if (baudRate < 110 || baudRate > 4000000) {
    throw bad(uri, `the baud rate ${baudRate} is out of range (110-4000000)`);
  }
  comma0();
  if (i >= text.length) return { ...params, baudRate };
  const dataBits = number('number of data bits');
  if (dataBits < 5 || dataBits > 9) throw bad(uri, `${dataBits} data bits (use 5 to 9)`);
  comma0();
  if (i >= text.length) return { ...params, baudRate, dataBits };
  const parity = PARITY[text[i].toLowerCase()];
  if (!parity) throw bad(uri, `"${text[i]}" is not a parity (n, o, e, m or s)`);
  i++;
  comma0();
  if (i >= text.length) return { ...params, baudRate, dataBits, parity };
  const stopBits = number('number of stop bits');
  if (stopBits < 1 || stopBits > 2) throw bad(uri, `${stopBits} stop bits (use 1 or 2)`);
  comma0();
  if (i >= text.length) return { ...params, baudRate, dataBits, parity, stopBits };
  const flow = FLOW[text[i].toLowerCase()];
  if (!flow) throw bad(uri, `"${text[i]}" is not a flow control (n, x, r or d)`);
  if (i + 1 < text.length)
    throw bad(uri, `unexpected "${text.slice(i + 1)}" after the flow control`);
  return { port, baudRate, dataBits, parity, stopBits, flow };
}

/**
 * The `uri` context attribute, as libiio writes it: `serial:PORT,BAUD,BITS PARITY STOP
 * FLOW`, the flow control's letter always present (`n` for none).
 */
export function formatSerialUri(p: SerialParams): string {
  const parity = Object.keys(PARITY).find((k) => PARITY[k] === p.parity) ?? 'n';
  const flow = Object.keys(FLOW).find((k) => FLOW[k] === p.flow) ?? 'n';
  return `serial:${p.port},${p.baudRate},${p.dataBits}${parity}${p.stopBits}${flow}`;
}
