import { IioError } from '../../errors';
import { stored, type AttrSlot } from './attrs';
import { modelAd9361 } from './ad9361';
import { wireLoopback, type BoardContext } from './board';
import { installDds } from './dds';

/**
 * Device families an XML context is recognised as, by its drivers' names, and what is
 * modelled for each (docs/emu.md lists it):
 *
 * - every ADI FPGA DAC core with `altvoltageN` channels: DDS tones (dds.ts);
 * - AD9361 (Pluto, FMCOMMS2/3, ADRV9361): rates, FIR, loopback (ad9361.ts);
 * - AD9081/AD9082 (`axi-ad9081-rx-hpc`, `axi-ad9081-tx-hpc`): `loopback_mode` 1 loops the
 *   JESD link TX → RX; 2 and 3 (the converters' direct loopback) loop too, and are
 *   refused (EOPNOTSUPP) unless `adc_frequency` equals `dac_frequency`, as the driver
 *   refuses them;
 * - ADRV9002 (`axi-adrv9002-rx-lpc`, `axi-adrv9002-tx-lpc`): debug attribute
 *   `txN_ssi_test_mode_loopback_en` = 1 loops TX channel N's SSI into RX channel N;
 * - FMCDAQ2 (`axi-ad9144-hpc` → `axi-ad9680-hpc`): the board has no loopback control;
 *   the DAC outputs are wired to the ADC inputs, as on ADI's test bench cable.
 */
export function modelBoards(board: BoardContext): string[] {
  const found: string[] = [];
  for (const dev of board.devices) installDds(board, dev);

  if (modelAd9361(board)) found.push('AD9361');

  const mxfeRx = board.device(/^axi-ad9081-rx/);
  const mxfeTx = board.device(/^axi-ad9081-tx/);
  const modeInfo = mxfeRx?.info.attrs.find((a) => a.name === 'loopback_mode');
  if (mxfeRx && mxfeTx && modeInfo) {
    const mode = stored(board.text(modeInfo)?.trim() ?? '0', { integer: true });
    const freq = (name: string): string | undefined => {
      const p = board.find(mxfeRx, (x) => x.info.name === name)[0];
      return board.text(p?.info)?.trim();
    };
    const slot: AttrSlot = {
      ...mode,
      write: (v) => {
        const m = Number(v);
        if (![0, 1, 2, 3].includes(m)) throw new IioError('EINVAL', `"${v}" is not 0, 1, 2 or 3`);
        if (m >= 2 && freq('adc_frequency') !== freq('dac_frequency')) {
          throw new IioError(
            'EOPNOTSUPP',
            `direct loopback needs the ADC and DAC at one frequency (adc_frequency ${freq('adc_frequency')}, dac_frequency ${freq('dac_frequency')})`,
          );
        }
        mode.write!(String(m));
      },
    };
    board.setSlot(modeInfo, slot);
    wireLoopback(mxfeRx, mxfeTx, () => () => mode.read() !== '0');
    found.push('AD9081');
  }

  const phy9002 = board.device('adrv9002-phy');
  const rx9002 = board.device(/^axi-adrv9002-rx/);
  const tx9002 = board.device(/^axi-adrv9002-tx/);
  if (phy9002 && rx9002 && tx9002) {
    const switches = [0, 1].map((k) => {
      const info = phy9002.info.debugAttrs.find(
        (a) => a.name === `tx${k}_ssi_test_mode_loopback_en`,
      );
      return info ? board.slot(info) : undefined;
    });
    const isOn = (s: AttrSlot | undefined): boolean => {
      try {
        return s?.read().trim() === '1';
      } catch {
        return false;
      }
    };
    // RX I/Q pair k (scan positions 2k, 2k+1) ← TX channel k's I/Q.
    wireLoopback(rx9002, tx9002, (i) => () => isOn(switches[Math.floor(i / 2)]));
    found.push('ADRV9002');
  }

  const daq2Dac = board.device('axi-ad9144-hpc');
  const daq2Adc = board.device('axi-ad9680-hpc');
  if (daq2Dac && daq2Adc) {
    wireLoopback(daq2Adc, daq2Dac, () => () => true);
    found.push('FMCDAQ2');
  }
  return found;
}
