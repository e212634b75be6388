export * from './image.js';
export * from './result.js';
export * from './landmarks.js';
export * from './series.js';
export * from './atomic.js';
