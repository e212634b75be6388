/** The files of a model directory (io/model.ts), named without loading tfjs. */
export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
