/** The R2N2 architecture's settings and their checks (no tfjs here: the command line's help reads the defaults). */

export type Activation = 'tanh' | 'leaky-relu';

export interface R2N2Config {
  /**
   * Side of the network's first feature grid (the input conv's input); with `inputBlock` b the
   * pair is observed at b·netSize and folded to netSize (see `inputBlock`).
   */
  netSize: number;
  /**
   * Space-to-depth block of the input (absent = 1): frames are resampled to b·netSize per side
   * (`imageSize`) and each b×b block of the CoordConv input becomes b² channels at netSize, so
   * the network observes every pixel of a 128² frame at the cost of a 64² grid (only the input
   * conv grows, to 4·b² input channels). Warps, fields and the image loss are at b·netSize.
   */
  inputBlock?: number;
  /**
   * The mismatch as two more input channels (absent = false): the image loss's gradient with
   * respect to the displacement, (M∘T − F)·∂(M∘T)/∂x and (M∘T − F)·∂(M∘T)/∂y (central
   * differences, network pixels), recomputed every step (`sequence.ts` `networkInput`). An
   * explicit similarity gradient needs no learning (GraDIRN's idea).
   */
  inputGradient?: boolean;
  /** Channels of the three GR2U blocks. */
  channels: [number, number, number];
  /** Channels of the parameter network's input. */
  paramChannels: number;
  /** Residual blocks per GR2U. */
  residualBlocks: number;
  /** Hidden units of the parameter network's FC layer. */
  hidden: number;
  sigmaMax: number;
  activation: Activation;
}

export const DEFAULT_CONFIG: R2N2Config = {
  netSize: 64,
  channels: [16, 32, 64],
  paramChannels: 64,
  residualBlocks: 1,
  hidden: 128,
  sigmaMax: 0.25,
  activation: 'leaky-relu',
};

export function checkConfig(c: R2N2Config): void {
  if (!(Number.isInteger(c.netSize) && c.netSize >= 32 && c.netSize % 16 === 0)) throw new Error(`net size must be a multiple of 16, ≥ 32; got ${c.netSize}`);
  if (c.inputBlock !== undefined && !(Number.isInteger(c.inputBlock) && c.inputBlock >= 1 && c.inputBlock <= 4))
    throw new Error(`input block must be 1, 2, 3 or 4, got ${c.inputBlock}`);
  if (c.channels.length !== 3 || c.channels.some((x) => !(Number.isInteger(x) && x >= 2)))
    throw new Error(`channels must be 3 integers ≥ 2, got ${c.channels}`);
  if (!(Number.isInteger(c.paramChannels) && c.paramChannels >= 2 && c.paramChannels % 2 === 0))
    throw new Error(`param channels must be an even integer ≥ 2, got ${c.paramChannels}`);
  if (!(Number.isInteger(c.residualBlocks) && c.residualBlocks >= 0)) throw new Error(`residual blocks must be an integer ≥ 0, got ${c.residualBlocks}`);
  if (!(Number.isInteger(c.hidden) && c.hidden >= 1)) throw new Error(`hidden units must be a positive integer, got ${c.hidden}`);
  if (!(c.sigmaMax > 0 && c.sigmaMax <= 2)) throw new Error(`sigma max must be in (0, 2], got ${c.sigmaMax}`);
  if (c.inputGradient !== undefined && typeof c.inputGradient !== 'boolean') throw new Error(`input gradient must be true or false, got ${c.inputGradient}`);
  if (c.activation !== 'tanh' && c.activation !== 'leaky-relu') throw new Error(`activation must be tanh or leaky-relu, got ${c.activation}`);
}

/** The space-to-depth block b of the input (1 when the config leaves it out). */
export function inputBlock(c: R2N2Config): number {
  return c.inputBlock ?? 1;
}

/** Side of the images (pair, warps, fields) the network works on: `inputBlock · netSize`. */
export function imageSize(c: R2N2Config): number {
  return inputBlock(c) * c.netSize;
}

/** The CoordConv input's channels: fixed, warped moving, x, y (and the two gradient channels with `inputGradient`). */
export function inputChannels(c: R2N2Config): number {
  return c.inputGradient ? 6 : 4;
}
