/** The regularisers by name (no tfjs here: the command line's help lists them). */
export type RegulariserName = 'tv' | 'diffusion' | 'bending' | 'none';
export const REGULARISER_NAMES: RegulariserName[] = ['tv', 'diffusion', 'bending', 'none'];
