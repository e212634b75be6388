/** Interpolation names (no tfjs here: the command line's help lists them). */
export type Interpolation = 'nearest' | 'linear' | 'cubic';
export const INTERPOLATIONS: Interpolation[] = ['nearest', 'linear', 'cubic'];
export type LabelInterpolation = 'nearest' | 'linear';
export const LABEL_INTERPOLATIONS: LabelInterpolation[] = ['nearest', 'linear'];
