import { IioError } from '../../errors';
import { parseAvailable } from '../../model/attr';
import { live, parseBool, stored, type AttrSlot } from './attrs';
import { wireLoopback, type AttrPlace, type BoardContext } from './board';
import type { EmuDevice } from './device';

/**
 * The AD9361 family (ADALM-Pluto, FMCOMMS2/3/4, ADRV9361/9364 SOMs): the `ad9361-phy`
 * driver and the FPGA cores it clocks, `cf-ad9361-lpc` (RX) and `cf-ad9361-dds-core-lpc`
 * (TX). Modelled from the driver's behaviour:
 *
 * - One baseband rate R for RX and TX (`in_`/`out_voltage_sampling_frequency`, writing
 *   either sets both). Its `_available` range is `[25 MHz / (12 × d) 1 max]`, d the
 *   enabled FIR's decimation (RX) or interpolation (TX), 1 without FIR: 2083333 →
 *   520833 with a decimate-by-4 FIR, so 1 MS/s needs one.
 * - `filter_fir_config` takes a filter file (`RX n GAIN g DEC d`, `TX n GAIN g INT i`,
 *   one coefficient or `tx,rx` pair per line, 16…128 taps in steps of 16) and reads back
 *   `FIR Rx: taps,dec Tx: taps,int`; `in_voltage_filter_fir_en`, `out_…` and
 *   `in_out_voltage_filter_fir_en` switch the RX, TX or both filters, refused (EINVAL)
 *   as the driver refuses them: decimation other than 1/2/4, more taps than
 *   (ADC clock / 2 / R) × 16, a TX filter without interpolation above 64 taps.
 * - The cores run at R divided by their own factor, chosen from their captured
 *   `sampling_frequency_available` ("R R/8": the FPGA's decimator), which follows R.
 * - Debug attribute `loopback`: 1 loops TX into RX digitally (the chip's BIST loopback),
 *   0 is off; 2 (the FPGA's RX → TX loopback) is accepted and not modelled.
 */

const MIN_ADC_CLK = 25_000_000;
const MAX_ADC_CLK = 640_000_000;
/** The RX clock chain's dividers from the ADC clock to the FIR's input, largest first. */
const CHAIN_DIVIDERS = [12, 8, 6, 4, 3, 2, 1];
const DEFAULT_MAX_RATE = 61_440_000;

interface Fir {
  taps: number;
  /** Decimation (RX) or interpolation (TX) of the loaded filter; 0 when none is loaded. */
  ratio: number;
}

function invalid(detail: string): IioError {
  return new IioError('EINVAL', detail);
}

/** Reads a filter file as the driver does; throws EINVAL where the driver refuses it. */
export function parseFirConfig(text: string): { rx: Fir; tx: Fir } {
  let tx: { dest: number; ratio: number } | undefined;
  let rx: { dest: number; ratio: number } | undefined;
  let taps = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const t = /^TX\s+(-?\d+)\s+GAIN\s+(-?\d+)\s+INT\s+(-?\d+)/.exec(line);
    if (t && !tx) {
      tx = { dest: Number(t[1]), ratio: Number(t[3]) };
      continue;
    }
    const r = /^RX\s+(-?\d+)\s+GAIN\s+(-?\d+)\s+DEC\s+(-?\d+)/.exec(line);
    if (r && !rx) {
      rx = { dest: Number(r[1]), ratio: Number(r[3]) };
      continue;
    }
    if (/^\s*[-+]?\d+/.test(line)) taps++;
  }
  if (!tx || ![1, 2, 3].includes(tx.dest)) {
    throw invalid('the filter has no "TX <1|2|3> GAIN <dB> INT <1|2|4>" line');
  }
  if (!rx || ![1, 2, 3].includes(rx.dest)) {
    throw invalid('the filter has no "RX <1|2|3> GAIN <dB> DEC <1|2|4>" line');
  }
  if (taps < 16 || taps > 128 || taps % 16) {
    throw invalid(`the filter has ${taps} taps; 16 to 128 in steps of 16 are allowed`);
  }
  return { rx: { taps, ratio: rx.ratio }, tx: { taps, ratio: tx.ratio } };
}

/** The ADC clock the driver picks for an RX FIR input rate, undefined when none fits. */
function adcClock(firInputRate: number): number | undefined {
  for (const d of CHAIN_DIVIDERS) {
    const adc = firInputRate * d;
    if (adc >= MIN_ADC_CLK && adc <= MAX_ADC_CLK) return adc;
  }
  return undefined;
}

/** The value of a captured `[min step max]` range's max, or a default. */
function capturedMax(text: string | undefined): number {
  const a = text === undefined ? undefined : parseAvailable(text);
  return a?.kind === 'range' && a.max > 0 ? a.max : DEFAULT_MAX_RATE;
}

const isVoltage = (p: AttrPlace): boolean => !!p.channel && /^voltage\d/.test(p.channel.id);

/** Models the AD9361 family when the context has its devices; returns whether it did. */
export function modelAd9361(board: BoardContext): boolean {
  const phy = board.device('ad9361-phy');
  const rxCore = board.device('cf-ad9361-lpc');
  const txCore = board.device('cf-ad9361-dds-core-lpc');
  if (!phy) return false;

  const phyAttr = (name: string, output?: boolean): AttrPlace | undefined =>
    board.find(
      phy,
      (p) =>
        p.info.name === name &&
        isVoltage(p) &&
        (output === undefined || p.channel!.isOutput === output),
    )[0];

  // State, from what was captured.
  let rate = Number(board.text(phyAttr('sampling_frequency', false)?.info)) || 30_720_000;
  const fir = { rx: { taps: 0, ratio: 0 } as Fir, tx: { taps: 0, ratio: 0 } as Fir };
  const cfgInfo = phy.info.attrs.find((a) => a.name === 'filter_fir_config');
  const cfg = /FIR Rx: (\d+),(\d+) Tx: (\d+),(\d+)/.exec(board.text(cfgInfo) ?? '');
  if (cfg) {
    fir.rx = { taps: Number(cfg[1]), ratio: Number(cfg[2]) };
    fir.tx = { taps: Number(cfg[3]), ratio: Number(cfg[4]) };
  }
  const on = {
    rx: board.text(phyAttr('filter_fir_en', false)?.info)?.trim() === '1',
    tx: board.text(phyAttr('filter_fir_en', true)?.info)?.trim() === '1',
  };
  const max = {
    rx: capturedMax(board.text(phyAttr('sampling_frequency_available', false)?.info)),
    tx: capturedMax(board.text(phyAttr('sampling_frequency_available', true)?.info)),
  };
  const ratio = (dir: 'rx' | 'tx'): number => (on[dir] ? fir[dir].ratio : 1);
  const minRate = (dir: 'rx' | 'tx'): number =>
    Math.floor(MIN_ADC_CLK / (12 * Math.max(1, ratio(dir))));

  /** Why the driver would refuse this FIR state at rate r, or undefined. */
  const refusal = (r: number): string | undefined => {
    for (const dir of ['rx', 'tx'] as const) {
      if (on[dir] && ![1, 2, 4].includes(fir[dir].ratio)) {
        return fir[dir].ratio === 0
          ? `no ${dir.toUpperCase()} FIR is loaded (write filter_fir_config first)`
          : `the ${dir.toUpperCase()} FIR's ${dir === 'rx' ? 'decimation' : 'interpolation'} is ${fir[dir].ratio}; 1, 2 or 4 are allowed`;
      }
    }
    if (on.tx && fir.tx.ratio === 1 && fir.tx.taps > 64) {
      return 'a TX FIR without interpolation takes at most 64 taps';
    }
    for (const dir of ['rx', 'tx'] as const) {
      if (!(r <= max[dir])) return `${r} S/s is above ${max[dir]}, the highest rate`;
      if (r < minRate(dir)) {
        return `${r} S/s is below ${minRate(dir)}, the lowest ${dir.toUpperCase()} rate with ${on[dir] ? `the FIR's factor ${ratio(dir)}` : 'no FIR'}`;
      }
    }
    const adc = adcClock(r * ratio('rx'));
    if (adc === undefined) return `no ADC clock fits ${r} S/s`;
    const limit = Math.floor(adc / 2 / r) * 16;
    for (const dir of ['rx', 'tx'] as const) {
      if (on[dir] && fir[dir].taps > limit) {
        return `${fir[dir].taps} ${dir.toUpperCase()} FIR taps exceed the ${limit} the ADC clock (${adc} Hz) allows at ${r} S/s`;
      }
    }
    return undefined;
  };

  // The baseband rate, shared by RX and TX; the cores follow it.
  const followers: Array<() => void> = [];
  const setRate = (r: number): void => {
    const why = refusal(r);
    if (why) throw invalid(why);
    rate = r;
    for (const f of followers) f();
  };
  const rateSlot: AttrSlot = {
    read: () => String(rate),
    write: (v) => setRate(Number(v)),
    numeric: true,
    integer: true,
  };

  // The FPGA cores: R divided by their own factor. With a decimator their captured list
  // ("R R/8 ") gives the factors, and follows R; without one, a rate written to the core
  // is the transceiver's (the core hands it to the driver).
  const coreSlots = (core: EmuDevice | undefined, output: boolean): void => {
    if (!core) return;
    const rateAttr = board.find(
      core,
      (p) => p.info.name === 'sampling_frequency' && !!p.channel && p.channel.isOutput === output,
    );
    const listAttr = board.find(
      core,
      (p) => p.info.name === 'sampling_frequency_available' && isVoltage(p),
    );
    const capturedRate = Number(board.text(rateAttr[0]?.info)) || rate;
    const captured = parseAvailable(board.text(listAttr[0]?.info) ?? '');
    const ratios =
      captured.kind === 'list' ? captured.values.map((v) => Number(v) / capturedRate) : [];
    const hasList = ratios.length > 0 && ratios.every((x) => x > 0);
    let factor = rate / capturedRate;
    const coreRate = (): number => Math.floor(rate / factor);
    const apply = (): void => core.setOwnRate(coreRate());
    const slot: AttrSlot = {
      read: () => String(coreRate()),
      write: (v) => {
        if (hasList) factor = rate / Number(v);
        else {
          setRate(Number(v));
          factor = 1;
        }
        apply();
      },
      numeric: true,
    };
    for (const p of rateAttr) board.setSlot(p.info, slot);
    if (hasList) {
      const listSlot = live(() => `${ratios.map((x) => Math.floor(rate * x)).join(' ')} `);
      for (const p of listAttr) board.setSlot(p.info, listSlot);
    }
    apply();
    followers.push(apply);
  };
  coreSlots(rxCore, false);
  coreSlots(txCore, true);

  board.replace(phy, (p) => p.info.name === 'sampling_frequency' && isVoltage(p), rateSlot);
  for (const dir of ['rx', 'tx'] as const) {
    board.replace(
      phy,
      (p) =>
        p.info.name === 'sampling_frequency_available' &&
        isVoltage(p) &&
        p.channel!.isOutput === (dir === 'tx'),
      live(() => `[${minRate(dir)} 1 ${max[dir]}]`),
    );
  }

  // The FIR: its file, and the switches.
  if (cfgInfo) {
    board.setSlot(cfgInfo, {
      read: () => `FIR Rx: ${fir.rx.taps},${fir.rx.ratio} Tx: ${fir.tx.taps},${fir.tx.ratio}`,
      write: (v) => {
        const parsed = parseFirConfig(v);
        const before = { rx: fir.rx, tx: fir.tx };
        fir.rx = parsed.rx;
        fir.tx = parsed.tx;
        // Loading into an enabled filter re-checks it, as enabling does.
        const why = on.rx || on.tx ? refusal(rate) : undefined;
        if (why) {
          fir.rx = before.rx;
          fir.tx = before.tx;
          throw invalid(why);
        }
      },
    });
  }
  const firSwitch = (dirs: Array<'rx' | 'tx'>): AttrSlot => ({
    read: () => (dirs.some((d) => on[d]) ? '1' : '0'),
    write: (v) => {
      const b = parseBool(v);
      if (b === undefined) throw invalid(`"${v}" is not a boolean (0 or 1)`);
      for (const d of dirs) on[d] = b;
      // The driver re-checks the clock chain either way (disabling a decimating FIR at
      // 1 MS/s fails too), and leaves the filter bypassed when the check fails.
      const why = refusal(rate);
      if (why) {
        for (const d of dirs) on[d] = false;
        throw invalid(why);
      }
    },
  });
  /** The sysfs file when the XML names it, else the attribute's name and direction. */
  const fileIs = (p: AttrPlace, file: string, name: string, output?: boolean): boolean => {
    const f = p.info.filename;
    if (f !== undefined && f !== p.info.name) return f === file;
    return p.info.name === name && (output === undefined || p.channel?.isOutput === output);
  };
  board.replace(
    phy,
    (p) => fileIs(p, 'in_voltage_filter_fir_en', 'filter_fir_en', false),
    firSwitch(['rx']),
  );
  board.replace(
    phy,
    (p) => fileIs(p, 'out_voltage_filter_fir_en', 'filter_fir_en', true),
    firSwitch(['tx']),
  );
  board.replace(
    phy,
    (p) => fileIs(p, 'in_out_voltage_filter_fir_en', 'voltage_filter_fir_en'),
    firSwitch(['rx', 'tx']),
  );

  // Digital loopback, TX core → RX core.
  const loopInfo = phy.info.debugAttrs.find((a) => a.name === 'loopback');
  if (loopInfo && rxCore && txCore) {
    const captured = board.text(loopInfo);
    const loop = stored(captured === undefined ? '0' : captured.trim(), { integer: true });
    const guarded: AttrSlot = {
      ...loop,
      write: (v) => {
        if (!['0', '1', '2'].includes(v.trim())) {
          throw invalid(`"${v}" is not a loopback mode (0 off, 1 TX→RX, 2 RX→TX)`);
        }
        loop.write!(v.trim());
      },
    };
    board.setSlot(loopInfo, guarded);
    wireLoopback(rxCore, txCore, () => () => loop.read() === '1');
  }
  return true;
}
