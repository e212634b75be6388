/** The similarity measures by name (no tfjs here: the command line's help lists them). */
export type LossName = 'mse' | 'ncc' | 'lncc' | 'mi' | 'ngf';
export const LOSS_NAMES: LossName[] = ['mse', 'ncc', 'lncc', 'mi', 'ngf'];
