/** The image formats a result can be written in (`--format`), by file extension (no itk-wasm here: the help lists them). */
export const RESULT_FORMATS = ['nii.gz', 'nrrd', 'mha'] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];
